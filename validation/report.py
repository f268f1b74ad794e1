"""Tables as text, Markdown and HTML, and a self-contained report directory.

A report is a list of sections (a title, optional prose, optional DataFrame).  It is
written as ``report.md`` (figures copied beside it under ``figures/``) and
``report.html`` (figures embedded as base64 PNG, so the one file stands alone).
Figures are an optional, generic list of PNG paths; missing ones are skipped.
"""

from __future__ import annotations

import base64
import html
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["Section", "format_value", "table_text", "table_markdown", "table_html", "render_markdown",
           "render_html", "write_report", "find_figures"]


@dataclass(frozen=True)
class Section:
    """A titled part of a report: optional paragraph ``text`` and optional ``table``."""

    title: str
    text: str = ""
    table: pd.DataFrame | None = None


def format_value(v, digits: int = 4) -> str:
    """A cell as text: integers plainly, floats to ``digits`` significant digits, NaN as '-'."""
    if v is None:
        return "-"
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        f = float(v)
        if math.isnan(f):
            return "-"
        if math.isinf(f):
            return "inf" if f > 0 else "-inf"
        if f == 0:
            return "0"
        if abs(f) >= 1e5 or abs(f) < 1e-3:
            return f"{f:.{max(digits - 1, 0)}e}"
        return f"{f:.{digits}g}"
    return str(v)


def _cells(df: pd.DataFrame, digits: int) -> list[list[str]]:
    return [[format_value(v, digits) for v in row] for row in df.itertuples(index=False, name=None)]


def table_text(df: pd.DataFrame, digits: int = 4) -> str:
    """Fixed-width plain text table (numbers right-aligned)."""
    head = [str(c) for c in df.columns]
    rows = _cells(df, digits)
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(head)]
    num = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]

    def line(cells):
        return "  ".join(c.rjust(w) if n else c.ljust(w) for c, w, n in zip(cells, widths, num)).rstrip()

    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows])


def table_markdown(df: pd.DataFrame, digits: int = 4) -> str:
    """GitHub-flavoured Markdown table."""
    def esc(s):
        return s.replace("|", "\\|")

    num = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    out = ["| " + " | ".join(esc(str(c)) for c in df.columns) + " |",
           "|" + "|".join("---:" if n else ":---" for n in num) + "|"]
    out += ["| " + " | ".join(esc(c) for c in r) + " |" for r in _cells(df, digits)]
    return "\n".join(out)


def table_html(df: pd.DataFrame, digits: int = 4) -> str:
    """HTML table (escaped cells)."""
    num = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "\n".join("<tr>" + "".join(f'<td class="{"num" if n else "txt"}">{html.escape(c)}</td>'
                                      for c, n in zip(r, num)) + "</tr>" for r in _cells(df, digits))
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def find_figures(paths) -> list[Path]:
    """PNG files among ``paths`` (files, or directories searched for *.png, sorted); missing ones skipped."""
    out: list[Path] = []
    for p in paths or ():
        p = Path(p)
        if p.is_dir():
            out += sorted(q for q in p.rglob("*.png") if q.is_file())
        elif p.is_file() and p.suffix.lower() == ".png":
            out.append(p)
    seen, uniq = set(), []
    for p in out:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            uniq.append(p)
    return uniq


def _figure_names(figures: list[Path]) -> list[str]:
    """Unique file names for the copied figures (parent folder prefixed on a clash)."""
    names, used = [], set()
    for p in figures:
        n = p.name
        if n in used:
            n = f"{p.parent.name}_{p.name}"
        i = 2
        while n in used:
            n = f"{p.stem}_{i}{p.suffix}"
            i += 1
        used.add(n)
        names.append(n)
    return names


def render_markdown(title: str, sections, figure_links=(), digits: int = 4) -> str:
    """The report as Markdown; ``figure_links`` are (caption, relative path) pairs."""
    parts = [f"# {title}", ""]
    for s in sections:
        parts += [f"## {s.title}", ""]
        if s.text:
            parts += [s.text, ""]
        if s.table is not None:
            parts += [table_markdown(s.table, digits) if len(s.table) else "_(no rows)_", ""]
    if figure_links:
        parts += ["## Figures", ""]
        for cap, rel in figure_links:
            parts += [f"![{cap}]({rel})", "", f"*{cap}*", ""]
    return "\n".join(parts)


_CSS = ("body{font-family:sans-serif;max-width:72em;margin:2em auto;padding:0 1em;color:#222}"
        "table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.9em}"
        "th,td{border:1px solid #bbb;padding:0.2em 0.5em}th{background:#eee}td.num{text-align:right}"
        "figure{margin:1em 0}img{max-width:100%}figcaption{font-style:italic}")


def render_html(title: str, sections, figures=(), digits: int = 4) -> str:
    """The report as one self-contained HTML page; ``figures`` are (caption, PNG path) pairs."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    for s in sections:
        parts.append(f"<h2>{html.escape(s.title)}</h2>")
        if s.text:
            parts += [f"<p>{html.escape(p)}</p>" for p in s.text.split("\n\n")]
        if s.table is not None:
            parts.append(table_html(s.table, digits) if len(s.table) else "<p><em>(no rows)</em></p>")
    if figures:
        parts.append("<h2>Figures</h2>")
        for cap, path in figures:
            data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
            parts.append(f'<figure><img alt="{html.escape(cap)}" src="data:image/png;base64,{data}">'
                         f"<figcaption>{html.escape(cap)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(directory, title: str, sections, figures=(), digits: int = 4) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``directory`` (created if needed).

    ``figures``: PNG paths or directories (see ``find_figures``); they are copied to
    ``directory/figures/`` for the Markdown and embedded in the HTML.
    Returns (markdown path, html path).
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    pngs = find_figures(figures)
    names = _figure_names(pngs)
    links = []
    if pngs:
        (d / "figures").mkdir(exist_ok=True)
        for p, n in zip(pngs, names):
            dst = d / "figures" / n
            if p.resolve() != dst.resolve():
                shutil.copyfile(p, dst)
            links.append((p.stem.replace("_", " "), f"figures/{n}"))
    md = d / "report.md"
    md.write_text(render_markdown(title, sections, links, digits), encoding="utf-8")
    ht = d / "report.html"
    ht.write_text(render_html(title, sections, [(p.stem.replace("_", " "), p) for p in pngs], digits),
                  encoding="utf-8")
    return md, ht
