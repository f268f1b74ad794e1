"""Layers and the two-level memory machine of the energy complexity model."""

from complexity.layer import Layer, LayerError, out_size, real_taps_1d, used_inputs_1d
from complexity.machine import EYERISS_COSTS, REFERENCE_BITS, Machine, MachineError

__all__ = ["Layer", "LayerError", "Machine", "MachineError", "EYERISS_COSTS", "REFERENCE_BITS",
           "out_size", "used_inputs_1d", "real_taps_1d"]
