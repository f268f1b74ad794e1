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

__all__ = ["FigureInputs", "FigureInputError", "FigureResult", "FigureSpec", "FIGURES", "ALIASES", "USES",
           "register", "canonical", "unused_inputs", "figure_names", "make_figure", "make_all"]


class FigureInputError(ValueError):
    """A figure cannot use an input it was given (e.g. --arch for a figure of the two-level model only)."""


@dataclass(frozen=True)
class FigureInputs:
    """What figures draw from: reference energy rows (or None), the model's per-word costs and the user's case.

    ``reference`` uses the layout of validation.reference_data; ``source`` names
    where it came from (for messages).  ``M`` is the Buffer size (words) of the
    figures that fix one (None: each figure's default, see ``M_or``); ``network`` a
    zoo network name and ``layers`` the layers of the user's network (from --network
    or --onnx, labelled ``layers_source``); ``arch`` an architecture spec (a bundled
    platform name or a file, validation.architectures.get_architecture) for the
    energy floor in pJ; ``platform`` restricts the reference rows to one platform.
    """

    reference: pd.DataFrame | None = None
    source: str = "no reference data"
    eD: float = 200.0
    eB: float = 6.0
    eM: float = 1.0
    bits: int = 16
    M: int | None = None
    network: str | None = None
    layers: tuple = ()
    layers_source: str | None = None
    arch: str | None = None
    platform: str | None = None

    @property
    def costs(self) -> dict:
        return {"eD": self.eD, "eB": self.eB, "eM": self.eM, "bits": self.bits}

    def M_or(self, default: int) -> int:
        """The Buffer size the user gave, else the figure's own default."""
        return int(self.M) if self.M is not None else int(default)


@dataclass(frozen=True)
class FigureResult:
    """The files a figure wrote (PNG, PDF), the arrays it plotted, or why it was skipped."""

    name: str
    paths: tuple[Path, ...] = ()
    data: dict = field(default_factory=dict)
    skipped: str | None = None
    notes: tuple[str, ...] = ()
    #: True when the figure was skipped because it cannot use an input it was given.
    refused: bool = False


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
ORDER = ("bound_vs_estimate", "traffic_vs_buffer", "gap_map", "residuals", "network_layers", "energy_vs_macs",
         "mapping_gap")
#: Former names, still accepted: energy_vs_buffer draws DRAM words, not energy.
ALIASES = {"energy_vs_buffer": "traffic_vs_buffer"}

#: The user's inputs each figure honours ("M": --M, "network": --network / --onnx, "arch": --arch,
#: "platform": --platform, which filters the reference rows); an input a figure does not use is
#: refused when the figure is asked for by name, else noted (energy_complexity/commands/figures.py).
USES = {
    "bound_vs_estimate": frozenset({"arch", "platform"}),
    "traffic_vs_buffer": frozenset({"platform"}),
    "gap_map": frozenset({"M"}),
    "residuals": frozenset({"arch", "platform"}),
    "network_layers": frozenset({"M", "network", "arch", "platform"}),
    "energy_vs_macs": frozenset({"M", "network"}),
    "mapping_gap": frozenset({"arch", "platform"}),
}
#: Why a figure cannot use an input, for the message.
WHY_NOT = {
    "M": "it draws every reference row at its own Buffer size, or sweeps M",
    "network": "it draws the reference rows or a fixed layer grid, not one network",
    "arch": "it draws the two-level model only",
    "platform": "it uses no reference data",
}


def _load_all() -> None:
    for name in ORDER:  # importing a module registers its figure
        importlib.import_module(f"paper_figs.{name}")


def canonical(name: str) -> str:
    """The figure's current name (``ALIASES`` maps former names)."""
    return ALIASES.get(name, name)


def unused_inputs(name: str, given) -> list[str]:
    """Which of the ``given`` inputs (keys of USES' sets) figure ``name`` does not honour."""
    uses = USES.get(canonical(name), frozenset())
    return [g for g in given if g not in uses]


def figure_names() -> list[str]:
    """Registered figure names, in paper order."""
    _load_all()
    return [n for n in ORDER if n in FIGURES] + [n for n in FIGURES if n not in ORDER]


def make_figure(name: str, out_dir: str | Path, inputs: FigureInputs | None = None) -> FigureResult:
    """Draw one figure into ``out_dir``; a reference figure without reference rows is skipped."""
    _load_all()
    name = canonical(name)
    if name not in FIGURES:
        raise KeyError(f"unknown figure {name!r}; known: {', '.join(FIGURES)}")
    spec = FIGURES[name]
    inputs = inputs or FigureInputs()
    if spec.needs_reference and (inputs.reference is None or len(inputs.reference) == 0):
        return FigureResult(name, skipped=f"needs reference energy data ({inputs.source}); "
                                          "see docs/figures.md")
    with style():
        try:
            return spec.func(Path(out_dir), inputs)
        except FigureInputError as exc:
            return FigureResult(name, skipped=str(exc), refused=True)


def make_all(out_dir: str | Path, inputs: FigureInputs | None = None,
             only: list[str] | None = None) -> list[FigureResult]:
    """Draw every registered figure (or those named in ``only``), in paper order."""
    names = figure_names() if not only else list(only)
    return [make_figure(n, out_dir, inputs) for n in names]
