"""The API refuses, as a LayerError naming the count, layers whose counts would wrap the bounds' int64 arithmetic.

Found by benchmarks/fuzz_cli.py: evaluate() on such layers returned negative F, A and
Q_comp (int64 wrap-around) or raised a bare OverflowError / ValueError.
"""

from __future__ import annotations

import pandas as pd
import pytest

from bounds.api import evaluate, evaluate_table
from bounds.hierarchy_api import evaluate_hierarchy
from complexity.layer import COUNT_LIMIT, Layer, LayerError
from complexity.machine import Machine

#: (layer fields, M) of the fuzz's failures.
WRAPPING = [
    (dict(c=413984, d=6523, h=159523, w=413984, kh=1, kw=7), 1188),
    (dict(c=62006759, d=340739981, h=96404, w=8576, kh=4, kw=6), 350),
    (dict(c=999999999999, d=10170, h=10170, w=891, kh=7, kw=5), 3755),
    (dict(c=97347746879, d=97347746879, h=1, w=1, kh=1, kw=1), 16),
]


@pytest.mark.parametrize("fields, M", WRAPPING)
def test_wrapping_layers_are_refused_by_name(fields, M):
    L = Layer(**fields)
    assert L.F > COUNT_LIMIT  # Python ints: the true count
    with pytest.raises(LayerError, match="F: .* exceeds 2\\^60"):
        evaluate(L, Machine(M=M))
    with pytest.raises(LayerError, match="F: row 7: .* exceeds 2\\^60"):
        evaluate_table(pd.DataFrame([dict(fields, M=M)], index=[7]))


def test_the_largest_layer_below_the_limit_is_still_evaluated_exactly():
    # F = 2^60 exactly: at the limit, so accepted, and the counts stay the exact integers
    L = Layer(c=2 ** 20, d=2 ** 20, h=2 ** 10, w=2 ** 10, kh=1, kw=1)
    assert L.F == COUNT_LIMIT
    r = evaluate(L, Machine(M=65536))
    assert r.lower_bound.F == L.F and r.lower_bound.Q >= L.X + L.W + L.Y > 0
    t = evaluate_table(pd.DataFrame([dict(c=2 ** 20, d=2 ** 20, h=2 ** 10, w=2 ** 10, kh=1, kw=1, M=65536)]))
    assert int(t["F"].iloc[0]) == L.F and int(t["lb_Q"].iloc[0]) == r.lower_bound.Q


def test_infinite_or_nan_sizes_are_layer_errors():
    for v in (float("inf"), float("nan")):
        with pytest.raises(LayerError, match="c: must be an integer"):
            Layer(c=v, d=3)


def test_hierarchy_floor_refuses_wrapping_layers():
    from validation.architectures import get_architecture
    with pytest.raises(LayerError, match="exceeds 2\\^60"):
        evaluate_hierarchy(Layer(**WRAPPING[0][0]), get_architecture("eyeriss_like"), upper=False)
