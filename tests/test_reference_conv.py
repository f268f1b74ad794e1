"""The numpy reference convolution against a loop-by-loop definition."""

import numpy as np
import pytest

from bounds.reference_conv import conv2d_numpy, random_operands
from complexity.layer import Layer


def _loops(L, x, w):
    xp = np.pad(x, ((0, 0), (0, 0), (L.ph, L.ph), (L.pw, L.pw)))
    y = np.zeros((L.b, L.d, L.nh, L.nw))
    for n in range(L.b):
        for o in range(L.d):
            g = o // L.dg
            for i in range(L.nh):
                for j in range(L.nw):
                    for ci in range(L.cg):
                        for r in range(L.kh):
                            for s in range(L.kw):
                                y[n, o, i, j] += w[o, ci, r, s] * xp[n, g * L.cg + ci, i * L.sh + r, j * L.sw + s]
    return y


@pytest.mark.parametrize("L", [
    Layer(b=2, c=4, d=6, h=5, w=6, kh=3, kw=2, sh=2, sw=1, ph=1, pw=1, groups=2),
    Layer.conv(c=3, d=3, hw=7, k=3, stride=3, pad=2, groups=3),
    Layer.conv(c=2, d=5, hw=6, k=2, stride=3),
    Layer.fc(n_in=7, n_out=3, b=3),
])
def test_conv2d_numpy_matches_loops(L):
    x, w = random_operands(L, seed=1)
    assert np.array_equal(conv2d_numpy(L, x, w), _loops(L, x, w))


def test_shape_mismatch_is_refused():
    L = Layer.conv(c=2, d=2, hw=4, k=3)
    x, w = random_operands(L)
    with pytest.raises(ValueError, match="x has shape"):
        conv2d_numpy(L, x[:, :1], w)
