"""PyTorch import (skipped when torch is not installed)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

from complexity.layer import Layer  # noqa: E402
from complexity.torch_import import layers_from_torch  # noqa: E402


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


def test_small_module_gives_expected_layers():
    layers = layers_from_torch(Tiny(), (2, 3, 32, 32))
    assert layers == [
        Layer(b=2, c=3, d=8, h=32, w=32, kh=3, kw=3, sh=2, sw=2, ph=1, pw=1, name="features.0"),
        Layer(b=2, c=8, d=8, h=16, w=16, kh=3, kw=3, ph=1, pw=1, groups=8, name="features.3"),
        Layer(b=2, c=8, d=12, h=8, w=8, kh=1, kw=3, ph=0, pw=1, name="features.5"),
        Layer.fc(768, 5, b=2, name="head"),
    ]


def test_unsupported_modules_are_warned_by_name():
    class WithLSTM(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(4, 6)
            self.fc = nn.Linear(4, 3)

        def forward(self, x):
            return self.fc(x)

    with pytest.warns(UserWarning, match="LSTM x1"):
        layers = layers_from_torch(WithLSTM(), (5, 4))
    assert layers == [Layer.fc(4, 3, b=5, name="fc")]
