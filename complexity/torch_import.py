"""Import the layers of a PyTorch module as Layers (torch is optional).

Two routes, both offline and both working with the ``[torch]`` extra as installed
(torch only; the default ``torch.onnx`` exporter of torch >= 2.9 needs onnxscript, which
the extra does not install):

* ``layers_from_torch(module, input_shape)``: one forward pass on zeros of
  ``input_shape`` records, through forward hooks, the input shape that reaches every
  ``nn.Conv1d/2d``, ``nn.ConvTranspose1d/2d`` and ``nn.Linear``.  A convolution that is
  not exactly one Layer (see complexity.onnx_import: dilation, asymmetric 'same' padding,
  a transposed stride that does not divide the kernel) is skipped and named; other leaf
  modules that own weights (LSTM, Conv3d, ...) are counted in one line.
* ``layers_from_torch_onnx(module, input_shape)``: export to ONNX with the TorchScript
  exporter (``dynamo=False``) and import the ONNX graph; this also sees functional
  calls (``F.linear``, ``x @ W``), exactly as complexity.onnx_import does.

Both return a list of Layers with ``.report`` (an ``OnnxImport``) and print its notes on
stderr, one line each, unless ``quiet``.  See docs/estimation.md, "Importing models".
"""

from __future__ import annotations

import io
import warnings
from collections import Counter

from complexity.layer import Layer, LayerError
from complexity.onnx_import import (ImportedLayers, OnnxImport, SkippedNode, _conv_2d, _conv_transpose_2d, _Skip,
                                    import_onnx, print_notes)

__all__ = ["layers_from_torch", "layers_from_torch_onnx", "export_onnx", "TorchImportError"]

#: Leaf modules with parameters that are not layers of the model (normalizations).
_NORM_MODULES = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm",
                 "InstanceNorm1d", "InstanceNorm2d", "PReLU", "Embedding")


class TorchImportError(LayerError):
    """A module that cannot be run or exported; the message names it."""


def _torch():
    try:
        import torch
    except ImportError:
        raise ImportError("complexity.torch_import needs PyTorch, which is not installed: "
                          "pip install torch==2.13.0 (CPU build), or pip install -e '.[torch]'") from None
    return torch


def _pair(v) -> tuple[int, int]:
    return (int(v[0]), int(v[1])) if isinstance(v, (tuple, list)) else (int(v), int(v))


def _torch_pads(mod, k: tuple[int, int], dil: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of a Conv module; 'same' puts the odd padding row last, as torch does."""
    if isinstance(mod.padding, str):
        if mod.padding == "valid":
            return (0, 0, 0, 0)
        total = [d * (kk - 1) for kk, d in zip(k, dil)]
        lo = [t // 2 for t in total]
        return (lo[0], lo[1], total[0] - lo[0], total[1] - lo[1])
    ph, pw = _pair(mod.padding)
    return (ph, pw, ph, pw)


def _conv_from_module(mod, x_shape, name: str) -> Layer:
    """The Layer of an nn.Conv1d / nn.Conv2d called on ``x_shape``; _Skip when not exactly one Layer."""
    one_d = len(x_shape) == 3
    if len(x_shape) not in (3, 4) or (one_d and mod.__class__.__name__ != "Conv1d"):
        raise _Skip(f"expected an N{'CL' if one_d else 'CHW'} input, got shape {tuple(x_shape)}")
    if one_d:
        n, c, w = x_shape
        h = 1
        k, s, dil = (1, int(mod.kernel_size[0])), (1, int(mod.stride[0])), (1, int(mod.dilation[0]))
        if isinstance(mod.padding, str):
            pads = _torch_pads(mod, k, dil)
        else:
            pads = (0, int(mod.padding[0]), 0, int(mod.padding[0]))
    else:
        n, c, h, w = x_shape
        k, s, dil = _pair(mod.kernel_size), _pair(mod.stride), _pair(mod.dilation)
        pads = _torch_pads(mod, k, dil)
    return _conv_2d(b=int(n), c=int(c), d=int(mod.out_channels), h=int(h), w=int(w), kh=k[0], kw=k[1],
                    sh=s[0], sw=s[1], pads=pads, dilations=dil, groups=int(mod.groups), name=name)


def _conv_transpose_from_module(mod, x_shape, name: str) -> Layer:
    """The Layer of an nn.ConvTranspose1d / 2d (its sub-pixel convolution); _Skip when not exactly one Layer."""
    one_d = type(mod).__name__ == "ConvTranspose1d"
    if len(x_shape) != (3 if one_d else 4):
        raise _Skip(f"expected an N{'CL' if one_d else 'CHW'} input, got shape {tuple(x_shape)}")
    if any(int(v) for v in mod.output_padding):
        raise _Skip(f"output_padding {tuple(mod.output_padding)} pads one side only")
    lift = (lambda v: (1, int(v[0]))) if one_d else _pair
    n, c, *hw = (int(v) for v in x_shape)
    h, w = (1, hw[0]) if one_d else hw
    if isinstance(mod.padding, str):
        raise _Skip(f"padding={mod.padding!r} of a transposed convolution is not supported")
    k, s, dil = lift(mod.kernel_size), lift(mod.stride), lift(mod.dilation)
    p = (0, int(mod.padding[0])) if one_d else _pair(mod.padding)
    return _conv_transpose_2d(b=n, c=c, d=int(mod.out_channels), h=h, w=w, kh=k[0], kw=k[1], strides=s,
                              pads=(p[0], p[1], p[0], p[1]), dilations=dil, groups=int(mod.groups), name=name)


def layers_from_torch(module, input_shape, *, quiet: bool = False) -> ImportedLayers:
    """Layers of ``module`` run on one input of ``input_shape`` (e.g. (1, 3, 224, 224)), in call order."""
    torch = _torch()
    nn = torch.nn
    names = {m: n for n, m in module.named_modules()}
    layers: list[Layer] = []
    skipped: list[SkippedNode] = []
    hooks = []

    def conv_hook(mod, inputs, output):
        name = names.get(mod, "")
        convert = _conv_transpose_from_module if "Transpose" in type(mod).__name__ else _conv_from_module
        try:
            layers.append(convert(mod, tuple(int(s) for s in inputs[0].shape), name))
        except _Skip as exc:
            skipped.append(SkippedNode(name, type(mod).__name__, str(exc)))

    def linear_hook(mod, inputs, output):
        b = 1
        for s in inputs[0].shape[:-1]:
            b *= int(s)
        layers.append(Layer.fc(n_in=int(mod.in_features), n_out=int(mod.out_features), b=b,
                               name=names.get(mod, "")))

    unsupported: Counter = Counter()
    for name, mod in module.named_modules():
        if isinstance(mod, (nn.Conv2d, nn.Conv1d, nn.ConvTranspose2d, nn.ConvTranspose1d)):
            hooks.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, nn.Linear):
            hooks.append(mod.register_forward_hook(linear_hook))
        elif (not any(True for _ in mod.children()) and any(True for _ in mod.parameters(recurse=False))
              and type(mod).__name__ not in _NORM_MODULES):
            unsupported[type(mod).__name__] += 1
    was_training = module.training
    try:
        module.eval()
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's own notes (e.g. on padding='same') are not import notes
            module(torch.zeros(*input_shape))
    finally:
        for h in hooks:
            h.remove()
        module.train(was_training)
    order = sorted(unsupported.items(), key=lambda kv: (-kv[1], kv[0]))
    report = OnnxImport(tuple(layers), tuple(skipped), tuple(order), source="PyTorch")
    if not quiet:
        print_notes(report)
    return ImportedLayers(report)


def export_onnx(module, input_shape, path=None, *, opset: int = 17):
    """The ``onnx.ModelProto`` of ``module`` traced on zeros of ``input_shape`` (also saved to ``path``).

    Uses the TorchScript exporter (``dynamo=False``), which needs neither onnxscript nor
    a network; the batch dimension is kept as given.
    """
    torch = _torch()
    import onnx
    buf = io.BytesIO()
    was_training = module.training
    try:
        module.eval()
        with warnings.catch_warnings():  # the exporter's deprecation notice is not the user's concern
            warnings.simplefilter("ignore")
            torch.onnx.export(module, (torch.zeros(*input_shape),), buf, dynamo=False, opset_version=opset,
                              input_names=["input"], output_names=["output"])
    except Exception as exc:  # noqa: BLE001 - the exporter raises many types
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise TorchImportError("module", f"{type(module).__name__}: torch.onnx.export failed: {first}") from None
    finally:
        module.train(was_training)
    model = onnx.load_from_string(buf.getvalue())
    if path is not None:
        onnx.save(model, str(path))
    return model


def _module_name(node_name: str) -> str:
    """'/features/features.0/Conv' -> 'features.0' (the exporter's scope path ends with the module's name)."""
    parts = node_name.strip("/").split("/")
    return parts[-2] if len(parts) >= 2 else parts[-1]


def layers_from_torch_onnx(module, input_shape, *, quiet: bool = False) -> ImportedLayers:
    """Layers of ``module`` through its ONNX export (``export_onnx``, then complexity.onnx_import).

    Layers and skipped nodes are named after their module (as in ``layers_from_torch``) when
    the exporter recorded it.
    """
    rep = import_onnx(export_onnx(module, input_shape), batch=int(input_shape[0]))
    report = OnnxImport(tuple(l.replace(name=_module_name(l.name)) for l in rep.layers),
                        tuple(SkippedNode(_module_name(s.name), s.op, s.reason) for s in rep.skipped),
                        rep.unsupported)
    if not quiet:
        print_notes(report)
    return ImportedLayers(report)
