"""PyTorch import, by forward hooks and by ONNX export (skipped when torch is not installed).

The export test also shows that the TorchScript exporter works without onnxscript, which
the ``[torch]`` extra does not install.
"""

from __future__ import annotations

import importlib.util

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from complexity.layer import Layer  # noqa: E402
from complexity.onnx_import import SkippedNode  # noqa: E402
from complexity.torch_import import export_onnx, layers_from_torch, layers_from_torch_onnx  # noqa: E402


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), nn.MaxPool2d(2),
            nn.Conv2d(8, 12, (1, 3), padding=(0, 1)),
        )
        self.head = nn.Linear(12 * 8 * 8, 5)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))


TINY = [
    Layer(b=2, c=3, d=8, h=32, w=32, kh=3, kw=3, sh=2, sw=2, ph=1, pw=1, name="features.0"),
    Layer(b=2, c=8, d=8, h=16, w=16, kh=3, kw=3, ph=1, pw=1, groups=8, name="features.3"),
    Layer(b=2, c=8, d=12, h=8, w=8, kh=1, kw=3, ph=0, pw=1, name="features.5"),
    Layer.fc(768, 5, b=2, name="head"),
]


class Hard(nn.Module):
    """A dilated conv that is exact (phases), one that is not, a transposed conv, Conv1d, a functional matmul."""

    def __init__(self):
        super().__init__()
        self.dil = nn.Conv2d(3, 8, 3, dilation=2, padding=2)          # 16x16 -> 4 phases of 8x8, pad 1
        self.dil_s2 = nn.Conv2d(8, 8, 3, dilation=2, padding=2, stride=2)
        self.up = nn.ConvTranspose2d(8, 4, 2, stride=2)               # 8x8 -> 16x16: a 1x1 conv to 16 channels
        self.seq = nn.Conv1d(4, 6, 5, padding=2)
        self.w = nn.Parameter(torch.zeros(6, 3))

    def forward(self, x):
        z = self.up(self.dil_s2(self.dil(x)))                          # (2, 4, 16, 16)
        s = self.seq(z.flatten(2)[:, :, :64])                          # (2, 6, 64)
        return s.transpose(1, 2) @ self.w                              # (2, 64, 3)


def test_small_module_gives_expected_layers(capsys):
    layers = layers_from_torch(Tiny(), (2, 3, 32, 32))
    assert layers == TINY
    assert layers.report.skipped == () and capsys.readouterr().err == ""


def test_hooks_skip_inexact_convs_by_name_and_count_other_modules(capsys):
    class WithLSTM(Hard):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(4, 6)

    layers = layers_from_torch(WithLSTM(), (2, 3, 16, 16))
    assert layers == [Layer(b=8, c=3, d=8, h=8, w=8, kh=3, kw=3, ph=1, pw=1, name="dil"),
                      Layer(b=2, c=8, d=16, h=8, w=8, name="up"),
                      Layer(b=2, c=4, d=6, h=1, w=64, kh=1, kw=5, pw=2, name="seq")]
    assert layers.report.skipped == (SkippedNode("dil_s2", "Conv2d", "height dilation 2 is exact only with stride 1 "
                                                 "and an input size and padding divisible by it (got size 16, "
                                                 "stride 2, padding 2)"),)
    err = capsys.readouterr().err.splitlines()
    assert err == ["PyTorch import: skipped Conv2d module 'dil_s2': height dilation 2 is exact only with stride 1 "
                   "and an input size and padding divisible by it (got size 16, stride 2, padding 2)",
                   "PyTorch import: skipped 1 unsupported module: LSTM (1)"]


def test_transposed_convs_by_hooks_equal_the_export_route():
    class Up(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.ConvTranspose2d(4, 6, 4, stride=2, padding=2, groups=2)   # sub-pixel: kernel 2, pad 0
            self.b = nn.ConvTranspose2d(6, 3, 3, stride=2, padding=1)             # zeros between inputs
            self.c = nn.ConvTranspose1d(3, 5, 3, padding=1)                       # stride 1: pad 3-1-1

        def forward(self, x):
            y = self.b(self.a(x))                                                  # (1, 3, 15, 15)
            return self.c(y.flatten(2))

    hooks = layers_from_torch(Up(), (1, 4, 5, 5), quiet=True)
    assert hooks == [Layer(c=4, d=24, h=5, w=5, kh=2, kw=2, groups=2, name="a"),
                     Layer(c=3, d=5, h=1, w=225, kh=1, kw=3, pw=1, name="c")]
    assert hooks.report.skipped == (SkippedNode("b", "ConvTranspose2d", "height stride 2 must divide the kernel 3 "
                                                "and the pads 1 to be a convolution (otherwise zeros sit between "
                                                "the inputs)"),)
    exported = layers_from_torch_onnx(Up(), (1, 4, 5, 5), quiet=True)
    assert exported == hooks and [s.name for s in exported.report.skipped] == ["b"]


def test_export_route_works_without_onnxscript_and_sees_more(capsys):
    if importlib.util.find_spec("onnxscript") is not None:
        pytest.skip("onnxscript is installed, so this cannot show that export works without it")
    assert layers_from_torch_onnx(Tiny(), (2, 3, 32, 32), quiet=True) == TINY
    layers = layers_from_torch_onnx(Hard(), (2, 3, 16, 16))
    assert layers == [Layer(b=8, c=3, d=8, h=8, w=8, kh=3, kw=3, ph=1, pw=1, name="dil"),
                      Layer(b=2, c=8, d=16, h=8, w=8, name="up"),
                      Layer(b=2, c=4, d=6, h=1, w=64, kh=1, kw=5, pw=2, name="seq"),
                      Layer.fc(6, 3, b=2 * 64, name="MatMul")]
    assert [s.name for s in layers.report.skipped] == ["dil_s2"]
    err = capsys.readouterr().err
    assert err.startswith("ONNX import: skipped Conv node 'dil_s2': height dilation 2") and err.count("\n") == 1


def test_export_onnx_saves_a_loadable_file(tmp_path):
    import onnx
    model = export_onnx(Tiny(), (1, 3, 32, 32), tmp_path / "tiny.onnx")
    assert [n.op_type for n in onnx.load(str(tmp_path / "tiny.onnx")).graph.node if n.op_type in ("Conv", "Gemm")] \
        == ["Conv", "Conv", "Conv", "Gemm"]
    assert len(model.graph.node) >= 6


@pytest.mark.parametrize("k,s,p", [(4, 2, 2), (2, 2, 0), (6, 3, 3), (3, 1, 1)])
def test_transposed_conv_equals_its_layer_numerically(k, s, p):
    """Every output phase of the transposed convolution is the Layer's convolution (kernel k/s, its padding)."""
    F = torch.nn.functional
    torch.manual_seed(k * 10 + s)
    mod = nn.ConvTranspose2d(3, 2, k, stride=s, padding=p, bias=False)
    (L,) = layers_from_torch(mod, (1, 3, 5, 5), quiet=True)
    assert (L.kh, L.d, L.sh) == (k // s, 2 * s * s, 1)
    x = torch.randn(1, 3, 5, 5)
    with torch.no_grad():
        y = mod(x)
        W = mod.weight                                                # (c, d, k, k)
        for a in range(s):
            for b in range(s):
                ra, rb = (a + p) % s, (b + p) % s
                g = W[:, :, ra::s, rb::s].flip(-1).flip(-2).transpose(0, 1)  # (d, c, k/s, k/s)
                z = F.conv2d(x, g, padding=L.ph)
                assert z.shape[-2:] == (L.nh, L.nw)
                assert torch.allclose(z, y[:, :, a::s, b::s], atol=1e-5)
    assert L.Y == y.numel()


@pytest.mark.parametrize("r,p,n", [(2, 2, 16), (3, 3, 12), (2, 0, 10)])
def test_dilated_conv_equals_its_phase_batch_numerically(r, p, n):
    """Output phase (a, b) of the dilated convolution is the Layer's convolution of input phase (a, b)."""
    F = torch.nn.functional
    torch.manual_seed(r * 100 + p)
    mod = nn.Conv2d(3, 4, 3, dilation=r, padding=p, bias=False)
    (L,) = layers_from_torch(mod, (1, 3, n, n), quiet=True)
    assert (L.b, L.h, L.ph, L.kh) == (r * r, n // r, p // r, 3)
    x = torch.randn(1, 3, n, n)
    with torch.no_grad():
        y = mod(x)
        phases = torch.cat([x[:, :, a::r, b::r] for a in range(r) for b in range(r)])   # the Layer's batch
        z = F.conv2d(phases, mod.weight, padding=L.ph)
        assert z.shape == (L.b, L.d, L.nh, L.nw) and L.Y == y.numel()
        for i, (a, b) in enumerate((a, b) for a in range(r) for b in range(r)):
            assert torch.allclose(z[i], y[0, :, a::r, b::r], atol=1e-5)
