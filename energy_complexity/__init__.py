"""energy-complexity: energy lower and upper bounds of CNN layers, and their validation.

The notebook-facing API gathers the main entry points of the layered packages
(complexity -> bounds -> validation -> paper_figs); see README.md and docs/theory.md.

    >>> from energy_complexity import Layer, Machine, evaluate
    >>> r = evaluate(Layer.conv(64, 64, 56, 3, pad=1), Machine(M=65536))
    >>> r.lower_bound.Q <= min(r.os.Q, r.ws.Q)
    True
"""

from bounds.api import LayerBounds, NetworkBounds, evaluate, evaluate_network, evaluate_table
from bounds.lower_bound import lb_expressions, lower_bound, lower_bound_np
from bounds.output_stationary import OSTiles, os_best, os_best_np, os_expressions
from bounds.result import Cost, InfeasibleError
from bounds.weight_stationary import WSTiles, ws_best, ws_best_np, ws_expressions
from complexity import Layer, LayerError, Machine, MachineError


def get_network(name: str):
    """The layers of a bundled zoo network (tuple of Layer); see complexity.zoo."""
    from complexity.zoo import get_network as _get
    return _get(name)


def network_names():
    """Names of the bundled zoo networks."""
    from complexity.zoo import network_names as _names
    return _names()


__all__ = ["Layer", "LayerError", "Machine", "MachineError", "Cost", "InfeasibleError",
           "evaluate", "evaluate_network", "evaluate_table", "LayerBounds", "NetworkBounds",
           "lower_bound", "lower_bound_np", "lb_expressions",
           "os_best", "os_best_np", "os_expressions", "OSTiles",
           "ws_best", "ws_best_np", "ws_expressions", "WSTiles",
           "get_network", "network_names"]
__version__ = "0.1.0"
