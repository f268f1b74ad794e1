"""Layer sizes against brute-force enumeration, and validation errors naming the parameter."""

import itertools

import numpy as np
import pytest

from complexity.layer import Layer, LayerError, out_size, real_taps_1d, used_inputs_1d


def _brute_1d(n, k, s, p):
    """(outputs, used inputs, real taps) along one axis by enumerating every window tap."""
    m = (n + 2 * p - k) // s + 1
    used, taps = set(), 0
    for o in range(m):
        for r in range(k):
            i = o * s - p + r
            if 0 <= i < n:
                used.add(i)
                taps += 1
    return m, len(used), taps


@pytest.mark.parametrize("n,k,s", [(n, k, s) for n in range(1, 12) for k in range(1, 6) for s in range(1, 6)])
def test_axis_counts_match_enumeration(n, k, s):
    for p in range(k):
        if k > n + 2 * p:
            continue
        m, used, taps = _brute_1d(n, k, s, p)
        assert out_size(n, k, s, p) == m
        assert used_inputs_1d(n, k, s, p) == used
        assert real_taps_1d(n, k, s, p) == taps


def test_sizes_of_a_grouped_strided_layer_match_enumeration():
    L = Layer(b=2, c=6, d=9, h=7, w=5, kh=3, kw=2, sh=2, sw=3, ph=1, pw=1, groups=3)
    assert (L.nh, L.nw) == (4, 2)
    assert L.X == 2 * 6 * 7 * 5
    assert L.W == 9 * 2 * 3 * 2
    assert L.Y == 2 * 9 * 4 * 2
    # every MAC is one (batch, filter, channel-in-group, output position, tap) tuple
    macs = real = 0
    used = set()
    for n, o, ci, i, j, r, s in itertools.product(range(2), range(9), range(2), range(4), range(2), range(3), range(2)):
        macs += 1
        y, x = i * 2 - 1 + r, j * 3 - 1 + s
        if 0 <= y < 7 and 0 <= x < 5:
            real += 1
            used.add((n, (o // 3) * 2 + ci, y, x))
    assert L.F == macs
    assert L.F_real == real
    assert L.X_used == len(used)


def test_fully_connected_is_the_one_by_one_case():
    L = Layer.fc(n_in=9216, n_out=4096, b=4)
    assert L.is_fc and (L.nh, L.nw) == (1, 1)
    assert (L.X, L.W, L.Y, L.F) == (4 * 9216, 9216 * 4096, 4 * 4096, 4 * 9216 * 4096)
    assert L.q == 1


def test_depthwise_and_shortcuts():
    L = Layer.conv(c=32, d=32, hw=112, k=3, stride=2, pad=1, groups=32)
    assert L.is_depthwise and L.cg == 1 and L.W == 32 * 9
    assert L.nh == 56 and L.q == 4
    assert Layer.from_dict({"c": 32, "d": 32, "hw": 112, "k": 3, "stride": 2, "pad": 1, "g": 32}) == L


@pytest.mark.parametrize("kwargs,param", [
    (dict(c=0, d=4), "c"),
    (dict(c=4, d=-1), "d"),
    (dict(c=4, d=4, h=0), "h"),
    (dict(c=4, d=4, b=0), "b"),
    (dict(c=4, d=4, sh=0), "sh"),
    (dict(c=4, d=4, ph=-1, kh=3, h=5), "ph"),
    (dict(c=3, d=4, groups=2), "c"),
    (dict(c=4, d=3, groups=2), "d"),
    (dict(c=4, d=4, h=2, w=5, kh=5, kw=3), "kh"),
    (dict(c=4, d=4, h=5, w=5, kh=3, kw=8, pw=1), "kw"),
    (dict(c=4, d=4, h=5, w=5, kh=3, kw=3, ph=3), "ph"),
    (dict(c=4.5, d=4), "c"),
    (dict(c="a", d=4), "c"),
    (dict(c=True, d=4), "c"),
])
def test_invalid_layers_name_the_parameter(kwargs, param):
    with pytest.raises(LayerError) as err:
        Layer(**kwargs)
    assert err.value.parameter == param
    assert param in str(err.value)


def test_integral_numpy_values_are_accepted_as_ints():
    L = Layer(c=np.int64(8), d=np.float64(4.0))
    assert L.c == 8 and isinstance(L.d, int)
