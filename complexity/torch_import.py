"""Import the Conv2d and Linear layers of a PyTorch module as Layers (torch is optional).

One forward pass on zeros of ``input_shape`` records, through forward hooks, the input
shape that reaches every ``nn.Conv2d`` and ``nn.Linear``.  Other leaf modules that own
weights (e.g. LSTM, Conv1d, ConvTranspose2d) are skipped and named in one warning.
See docs/estimation.md, "Importing models".
"""

from __future__ import annotations

import warnings
from collections import Counter

from complexity.layer import Layer, LayerError

__all__ = ["layers_from_torch", "TorchImportError"]

#: Leaf modules with parameters that are not layers of the model (normalizations).
_NORM_MODULES = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm",
                 "InstanceNorm2d", "PReLU")


class TorchImportError(LayerError):
    """A module that cannot be turned into layers; the message names the module."""


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError("layers_from_torch needs PyTorch, which is not installed: "
                          "pip install torch==2.13.0 (CPU build), or pip install -e '.[torch]'") from None
    return torch


def _pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def layers_from_torch(module, input_shape) -> list[Layer]:
    """Layers of ``module`` run on one input of ``input_shape`` (e.g. (1, 3, 224, 224)), in call order."""
    torch = _torch()
    nn = torch.nn
    names = {m: n for n, m in module.named_modules()}
    layers: list[Layer] = []
    hooks = []

    def conv_hook(mod, inputs, output):
        name = names.get(mod, "")
        x = inputs[0]
        if x.dim() != 4:
            raise TorchImportError("input", f"Conv2d {name!r}: expected an NCHW input, got shape {tuple(x.shape)}")
        if _pair(mod.dilation) != (1, 1):
            raise TorchImportError("dilation", f"Conv2d {name!r}: dilated convolution {mod.dilation} is not supported")
        n, c, h, w = (int(s) for s in x.shape)
        kh, kw = _pair(mod.kernel_size)
        sh, sw = _pair(mod.stride)
        if isinstance(mod.padding, str):  # 'same' (stride 1) or 'valid'
            if mod.padding == "valid":
                ph = pw = 0
            else:
                if (kh - 1) % 2 or (kw - 1) % 2:
                    raise TorchImportError("padding", f"Conv2d {name!r}: padding='same' with an even kernel "
                                                      "is asymmetric, not supported")
                ph, pw = (kh - 1) // 2, (kw - 1) // 2
        else:
            ph, pw = _pair(mod.padding)
        layers.append(Layer(b=n, c=c, d=int(mod.out_channels), h=h, w=w, kh=kh, kw=kw, sh=sh, sw=sw,
                            ph=ph, pw=pw, groups=int(mod.groups), name=name))

    def linear_hook(mod, inputs, output):
        x = inputs[0]
        b = 1
        for s in x.shape[:-1]:
            b *= int(s)
        layers.append(Layer.fc(n_in=int(mod.in_features), n_out=int(mod.out_features), b=b,
                               name=names.get(mod, "")))

    skipped: Counter = Counter()
    for name, mod in module.named_modules():
        if isinstance(mod, nn.Conv2d):
            hooks.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, nn.Linear):
            hooks.append(mod.register_forward_hook(linear_hook))
        elif (not any(True for _ in mod.children()) and any(True for _ in mod.parameters(recurse=False))
              and type(mod).__name__ not in _NORM_MODULES):
            skipped[type(mod).__name__] += 1
    try:
        was_training = module.training
        module.eval()
        with torch.no_grad():
            module(torch.zeros(*input_shape))
    finally:
        for h in hooks:
            h.remove()
        module.train(was_training)
    if skipped:
        listed = ", ".join(f"{op} x{n}" for op, n in sorted(skipped.items()))
        warnings.warn(f"PyTorch import skipped unsupported modules: {listed}", stacklevel=2)
    return layers
