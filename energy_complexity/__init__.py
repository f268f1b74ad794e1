"""energy-complexity: energy lower and upper bounds of CNN layers, and their validation.

The notebook-facing API gathers the main entry points of the layered packages
(complexity -> bounds -> validation -> paper_figs); see README.md and docs/theory.md.

    >>> from energy_complexity import Layer, Machine, evaluate
    >>> r = evaluate(Layer.conv(64, 64, 56, 3, pad=1), Machine(M=65536))
    >>> r.lower_bound.Q <= min(r.os.Q, r.ws.Q)
    True
"""

from complexity import Layer, LayerError, Machine, MachineError

#: Name -> module of the names imported on first use (PEP 562), so that ``import
#: energy_complexity`` (and with it every CLI command) pulls in neither sympy nor numpy's
#: heavier users until they are needed. Add new API names here, not as eager imports.
_LAZY = {
    **dict.fromkeys(("LayerBounds", "NetworkBounds", "evaluate", "evaluate_network", "evaluate_table"),
                    "bounds.api"),
    **dict.fromkeys(("lb_expressions", "lower_bound", "lower_bound_np"), "bounds.lower_bound"),
    **dict.fromkeys(("OSTiles", "os_best", "os_best_np", "os_expressions"), "bounds.output_stationary"),
    **dict.fromkeys(("Cost", "InfeasibleError"), "bounds.result"),
    **dict.fromkeys(("WSTiles", "ws_best", "ws_best_np", "ws_expressions"), "bounds.weight_stationary"),
    # the *_np entry points that also take keywords, a DataFrame or Layers (bounds/arrays.py)
    **dict.fromkeys(("lower_bound_np", "os_best_np", "ws_best_np", "layer_table"), "bounds.arrays"),
    **dict.fromkeys(("closed_forms", "ClosedForms", "evaluate_expression", "ExpressionError", "TileError"),
                    "bounds.render"),
    **dict.fromkeys(("estimate_layer", "estimate_network", "LayerEstimate", "NetworkEstimate"), "estimation"),
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'energy_complexity' has no attribute {name!r}")
    import importlib
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups are plain attribute reads
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


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
           "get_network", "network_names", "layer_table", "closed_forms", "ClosedForms", "evaluate_expression",
           "ExpressionError", "TileError", "estimate_layer", "estimate_network", "LayerEstimate", "NetworkEstimate"]
__version__ = "0.1.0"
