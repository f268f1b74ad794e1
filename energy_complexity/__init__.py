"""energy-complexity: energy lower and upper bounds of CNN layers, and their validation.

The notebook-facing API gathers the main entry points of the layered packages
(complexity -> bounds -> validation -> paper_figs); see README.md.
"""

from complexity import Layer, LayerError, Machine, MachineError

__all__ = ["Layer", "LayerError", "Machine", "MachineError"]
__version__ = "0.1.0"
