"""The list of paper figures: each a function that draws one figure and returns what it plotted.

A figure function takes the output folder and a :class:`FigureInputs` and returns
a :class:`FigureResult` holding the paths it wrote and the plotted arrays, so that
tests can compare the pixels' numbers with the API's.  Figures that need the
reference energy data declare it (``needs_reference``) and are skipped with a
message when none is present (see docs/figures.md).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from paper_figs.style import style

__all__ = ["FigureInputs", "FigureResult", "FigureSpec", "FIGURES", "register", "figure_names",
           "make_figure", "make_all"]


@dataclass(frozen=True)
class FigureInputs:
    """What figures draw from: reference energy rows (or None) and the model's per-word costs.

    ``reference`` uses the layout of validation.reference_data; ``source`` names
    where it came from (for messages).  ``M`` is the Buffer size (words) of the
    figures that fix one; ``network`` the zoo network of the per-layer figure.
    """

    reference: pd.DataFrame | None = None
    source: str = "no reference data"
    eD: float = 200.0
    eB: float = 6.0
    eM: float = 1.0
    bits: int = 16
    M: int = 65536
    network: str | None = None

    @property
    def costs(self) -> dict:
        return {"eD": self.eD, "eB": self.eB, "eM": self.eM, "bits": self.bits}


@dataclass(frozen=True)
class FigureResult:
    """The files a figure wrote (PNG, PDF), the arrays it plotted, or why it was skipped."""

    name: str
    paths: tuple[Path, ...] = ()
    data: dict = field(default_factory=dict)
    skipped: str | None = None
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FigureSpec:
    name: str
    func: Callable[[Path, FigureInputs], FigureResult]
    summary: str
    needs_reference: bool = False


#: name -> FigureSpec (figure_names() gives the paper order).
FIGURES: dict[str, FigureSpec] = {}


def register(name: str, summary: str, *, needs_reference: bool = False):
    """Decorator adding a figure function to FIGURES under ``name``."""
    def deco(func):
        FIGURES[name] = FigureSpec(name, func, summary, needs_reference)
        return func
    return deco


#: Figure modules of paper_figs (each registers the figure of its name), in paper order.
ORDER = ("bound_vs_estimate", "energy_vs_buffer", "gap_map", "residuals", "network_layers", "energy_vs_macs",
         "mapping_gap")


def _load_all() -> None:
    for name in ORDER:  # importing a module registers its figure
        importlib.import_module(f"paper_figs.{name}")


def figure_names() -> list[str]:
    """Registered figure names, in paper order."""
    _load_all()
    return [n for n in ORDER if n in FIGURES] + [n for n in FIGURES if n not in ORDER]


def make_figure(name: str, out_dir: str | Path, inputs: FigureInputs | None = None) -> FigureResult:
    """Draw one figure into ``out_dir``; a reference figure without reference rows is skipped."""
    _load_all()
    if name not in FIGURES:
        raise KeyError(f"unknown figure {name!r}; known: {', '.join(FIGURES)}")
    spec = FIGURES[name]
    inputs = inputs or FigureInputs()
    if spec.needs_reference and (inputs.reference is None or len(inputs.reference) == 0):
        return FigureResult(name, skipped=f"needs reference energy data ({inputs.source}); "
                                          "see docs/figures.md")
    with style():
        return spec.func(Path(out_dir), inputs)


def make_all(out_dir: str | Path, inputs: FigureInputs | None = None,
             only: list[str] | None = None) -> list[FigureResult]:
    """Draw every registered figure (or those named in ``only``), in paper order."""
    names = figure_names() if not only else list(only)
    return [make_figure(n, out_dir, inputs) for n in names]
