"""The one CSV layout for reference energy data, shared by every backend and the validation.

Any tool's results can be validated once written in this layout (README.md,
"Reference energy CSV"): one row per (layer, platform, Buffer size) with the
layer's shape, the platform's Buffer capacity ``M`` in words, and the estimated
energy in pJ.  Reading checks every row and fails with one line naming the
problem, never with a traceback deep inside the statistics.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from complexity.layer import Layer, LayerError

__all__ = ["REQUIRED_COLUMNS", "OPTIONAL_COLUMNS", "LAYER_COLUMNS", "ReferenceDataError",
           "read_csv_file", "read_reference_csv", "validate_reference_frame", "write_reference_csv",
           "bundled_reference_path", "load_bundled", "layers_of"]

#: Layer shape columns, named as the fields of complexity.layer.Layer.
LAYER_COLUMNS = ("b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups")

#: Columns every reference CSV must have.
REQUIRED_COLUMNS = ("platform",) + LAYER_COLUMNS + ("M", "energy_pJ")

#: Columns a reference CSV may have (energies in pJ, accesses in words).
OPTIONAL_COLUMNS = ("layer_name", "network", "energy_mac_pJ", "energy_dram_pJ", "dram_words",
                    "dram_words_X", "dram_words_W", "dram_words_Y", "cycles",
                    "tool", "tool_version", "settings", "date", "M_onchip")

_BUNDLED = Path(__file__).resolve().parent / "data" / "reference_energy.csv"


class ReferenceDataError(ValueError):
    """Malformed reference data; the message names the file, column or row at fault."""


def validate_reference_frame(df: pd.DataFrame, source: str = "reference data") -> pd.DataFrame:
    """Check columns, types and values; return a copy with integer layer columns.

    Every row must describe a valid layer (complexity.layer.Layer), a positive
    integer M and a positive, finite energy.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ReferenceDataError(f"{source}: missing required column(s): {', '.join(missing)}")
    if len(df) == 0:
        raise ReferenceDataError(f"{source}: no rows")
    out = df.copy()
    for col in LAYER_COLUMNS + ("M",):
        vals = pd.to_numeric(out[col], errors="coerce")
        bad = vals.isna() | (vals != np.floor(vals))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise ReferenceDataError(f"{source}: row {i + 1}: column {col!r} must be an integer, got {df[col].iloc[i]!r}")
        out[col] = vals.astype(np.int64)
    if (out["M"] < 1).any():
        i = int(np.flatnonzero((out["M"] < 1).to_numpy())[0])
        raise ReferenceDataError(f"{source}: row {i + 1}: column 'M' must be a positive number of words")
    energy = pd.to_numeric(out["energy_pJ"], errors="coerce")
    bad = ~(np.isfinite(energy) & (energy > 0))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ReferenceDataError(f"{source}: row {i + 1}: 'energy_pJ' must be a positive finite number, "
                                 f"got {df['energy_pJ'].iloc[i]!r}")
    out["energy_pJ"] = energy.astype(float)
    out["platform"] = out["platform"].astype(str)
    shapes = out.loc[:, list(LAYER_COLUMNS)].drop_duplicates()
    for idx, row in shapes.iterrows():
        try:
            Layer(**{k: int(row[k]) for k in LAYER_COLUMNS})
        except LayerError as exc:
            raise ReferenceDataError(f"{source}: row {out.index.get_loc(idx) + 1}: {exc}") from None
    return out


def read_csv_file(path: str | Path) -> pd.DataFrame:
    """Read any CSV file ('#' starts a comment), failing with one line if it is missing or unreadable."""
    p = Path(path)
    if not p.is_file():
        raise ReferenceDataError(f"{p}: no such file")
    try:
        return pd.read_csv(p, comment="#")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ReferenceDataError(f"{p}: not a readable CSV file ({str(exc).splitlines()[0]})") from None


def read_reference_csv(path: str | Path) -> pd.DataFrame:
    """Read and check a reference-energy CSV (see REQUIRED_COLUMNS / OPTIONAL_COLUMNS)."""
    return validate_reference_frame(read_csv_file(path), source=str(path))


def write_reference_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write rows in the canonical column order (required, then known optional, then the rest)."""
    out = validate_reference_frame(df, source="rows to write")
    known = [c for c in REQUIRED_COLUMNS + OPTIONAL_COLUMNS if c in out.columns]
    rest = [c for c in out.columns if c not in known]
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    out.loc[:, known + rest].to_csv(p, index=False)
    return p


def bundled_reference_path() -> Path:
    """The reference dataset shipped with the project (see validation/data/PROVENANCE.md)."""
    return _BUNDLED


def load_bundled() -> pd.DataFrame:
    """The bundled reference dataset, checked."""
    return read_reference_csv(_BUNDLED)


def layers_of(df: pd.DataFrame) -> list[Layer]:
    """The Layer of each row, in row order."""
    cols = df.loc[:, list(LAYER_COLUMNS)].to_numpy(dtype=np.int64)
    return [Layer(**dict(zip(LAYER_COLUMNS, map(int, r)))) for r in cols]
