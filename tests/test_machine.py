"""The two-level machine: defaults, bitwidth scaling, validation."""

import numpy as np
import pytest

from complexity.machine import EYERISS_COSTS, Machine, MachineError


def test_defaults_are_the_normalized_eyeriss_costs():
    m = Machine(M=1024)
    assert (m.e_dram, m.e_buf, m.e_mac) == (EYERISS_COSTS["eD"], EYERISS_COSTS["eB"], EYERISS_COSTS["eM"]) == (200, 6, 1)
    assert m.energy(10, 40, 10) == 200 * 10 + 6 * 40 + 10


def test_bitwidth_scales_memory_linearly_and_mac_quadratically():
    m8 = Machine(M=1024, bits=8)
    assert (m8.e_dram, m8.e_buf, m8.e_mac) == (100, 3, 0.25)
    Q, A, F = np.array([5, 7]), np.array([20, 30]), np.array([5, 7])
    assert np.allclose(m8.energy(Q, A, F), 100 * Q + 3 * A + 0.25 * F)


@pytest.mark.parametrize("kwargs,param", [
    (dict(M=0), "M"), (dict(M=-3), "M"), (dict(M=2.5), "M"),
    (dict(M=8, eD=-1), "eD"), (dict(M=8, eB="x"), "eB"), (dict(M=8, eM=float("inf")), "eM"),
    (dict(M=8, bits=0), "bits"), (dict(M=8, bits=128), "bits"),
])
def test_invalid_machines_name_the_parameter(kwargs, param):
    with pytest.raises(MachineError) as err:
        Machine(**kwargs)
    assert err.value.parameter == param
