"""Tables as text, Markdown and HTML, and a self-contained report directory.

A report is a title, an optional intro line and a list of sections (a title, optional
prose, optional bullet ``items``, optional DataFrame with its ``caption``, optional
figures by name).  It is written as ``report.md`` (figures copied beside it under
``figures/``) and ``report.html`` (figures embedded as base64 PNG, so the one file
stands alone).  Figures are PNG paths or :class:`Figure` objects (a path with a
caption); a section places the figures it names, the rest follow in a last
"Figures" section, with any figure that could not be drawn listed as skipped.
"""

from __future__ import annotations

import base64
import html
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["Section", "Figure", "format_value", "table_text", "table_markdown", "table_html", "render_markdown",
           "render_html", "write_report", "find_figures", "as_figures", "anchor"]


@dataclass(frozen=True)
class Section:
    """A titled part of a report.

    ``text``: paragraphs (blank-line separated); ``items``: (head, body) blocks, the
    head in bold, the body a string or a sequence of sentences (one line each in HTML);
    ``table`` with its ``caption`` (what the table is, with units); ``figures``: names
    (PNG stems) of the figures shown in this section, when present.
    """

    title: str
    text: str = ""
    table: pd.DataFrame | None = None
    caption: str = ""
    items: tuple = ()
    figures: tuple = ()


@dataclass(frozen=True)
class Figure:
    """A PNG of the report with its caption (a sentence: what it shows, in which units)."""

    path: Path
    caption: str = ""

    @property
    def name(self) -> str:
        return Path(self.path).stem

    @property
    def label(self) -> str:
        """Short alt text: the file stem with spaces."""
        return self.name.replace("_", " ")


def anchor(title: str) -> str:
    """An HTML id for a section title ("Asymptotic fit: ..." -> "asymptotic-fit")."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40].rstrip("-") or "section"


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


def table_html(df: pd.DataFrame, digits: int = 4, caption: str = "") -> str:
    """HTML table (escaped cells), with a <caption> when ``caption`` is given."""
    num = [pd.api.types.is_numeric_dtype(df[c]) for c in df.columns]
    cap = f"<caption>{html.escape(caption)}</caption>\n" if caption else ""
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "\n".join("<tr>" + "".join(f'<td class="{"num" if n else "txt"}">{html.escape(c)}</td>'
                                      for c, n in zip(r, num)) + "</tr>" for r in _cells(df, digits))
    return f"<table>\n{cap}<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>"


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


def as_figures(figures) -> list[Figure]:
    """:class:`Figure` objects from Figures, PNG paths and folders of PNGs (``find_figures``);
    a bare path is captioned by its file stem.  Missing files are skipped, duplicates dropped."""
    out: list[Figure] = []
    seen: set = set()
    for f in figures or ():
        items = [f] if isinstance(f, Figure) else [Figure(p, p.stem.replace("_", " ")) for p in find_figures([f])]
        for g in items:
            p = Path(g.path)
            if p.is_file() and p.resolve() not in seen:
                seen.add(p.resolve())
                out.append(Figure(p, g.caption or g.label))
    return out


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


def _placement(sections, figures: list[Figure]) -> tuple[dict, list[Figure]]:
    """({section index: [figures it shows]}, the figures no section claims), each figure once."""
    by_name: dict = {}
    for f in figures:
        by_name.setdefault(f.name, f)
    placed, used = {}, set()
    for i, s in enumerate(sections):
        mine = [by_name[n] for n in s.figures if n in by_name and n not in used]
        used.update(f.name for f in mine)
        placed[i] = mine
    rest = [f for f in figures if not (f.name in used and by_name[f.name] is f)]
    return placed, rest


def _numbered(sections, figures: list[Figure]) -> tuple[dict, list[Figure], dict]:
    """The placement plus {id(figure): number} in reading order."""
    placed, rest = _placement(sections, figures)
    order = [f for i in range(len(sections)) for f in placed[i]] + rest
    return placed, rest, {id(f): k for k, f in enumerate(order, 1)}


def _sentences(body) -> list[str]:
    """An item's body, a string or a sequence of sentences, as a list of sentences."""
    return [body] if isinstance(body, str) else [str(t) for t in body]


_KEY = re.compile(r"^([A-Z][A-Za-z0-9_ /()-]{0,40}?): ")


def _sentence_html(t: str) -> str:
    """One sentence as a paragraph, a leading 'Key: ' in bold."""
    m = _KEY.match(t)
    if not m:
        return f"<p>{html.escape(t)}</p>"
    return f'<p><span class="key">{html.escape(m.group(1))}:</span> {html.escape(t[m.end():])}</p>'


def _skipped_text(skipped) -> list[str]:
    return [f"{name}: skipped ({why})" for name, why in skipped]


def render_markdown(title: str, sections, figure_links=(), digits: int = 4, *, intro: str = "",
                    skipped=()) -> str:
    """The report as Markdown.

    ``figure_links``: (Figure, relative path) pairs, or (caption, relative path) pairs;
    ``skipped``: (figure name, reason) pairs listed after the figures.
    """
    links = [(f if isinstance(f, Figure) else Figure(Path(rel), f), rel) for f, rel in figure_links]
    rel_of = {id(f): rel for f, rel in links}
    placed, rest, num = _numbered(sections, [f for f, _ in links])

    def fig(f):
        return [f"![{f.label}]({rel_of[id(f)]})", "", f"*Figure {num[id(f)]}. {f.caption}*", ""]

    parts = [f"# {title}", ""]
    if intro:
        parts += [intro, ""]
    for i, s in enumerate(sections):
        parts += [f"## {s.title}", ""]
        if s.text:
            parts += [s.text, ""]
        if s.items:
            parts += [f"- **{h}**: " + " ".join(_sentences(b)) for h, b in s.items] + [""]
        if s.table is not None:
            if s.caption:
                parts += [f"*Table: {s.caption}*", ""]
            parts += [table_markdown(s.table, digits) if len(s.table) else "_(no rows)_", ""]
        for f in placed[i]:
            parts += fig(f)
    if rest or skipped:
        parts += ["## Figures", ""]
        for f in rest:
            parts += fig(f)
        parts += [f"- {t}" for t in _skipped_text(skipped)] + ([""] if skipped else [])
    return "\n".join(parts)


_CSS = ("body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:72em;margin:1.2em auto;"
        "padding:0 1em;color:#222;line-height:1.4}"
        "h1{margin:0 0 0.2em;font-size:1.7em}h2{margin:1.4em 0 0.4em;border-bottom:1px solid #ddd}"
        "p.intro{margin:0 0 0.6em;color:#444}h2#verdict+p{font-size:0.88em;color:#555;margin:0.3em 0}"
        "div.scroll{overflow-x:auto;max-width:100%}"
        "ul.items{list-style:none;padding:0;margin:0.5em 0;display:grid;"
        "grid-template-columns:repeat(auto-fit,minmax(30em,1fr));gap:0.5em}"
        "ul.items li{padding:0.35em 0.7em;border-left:4px solid #4a7ab5;background:#f4f7fb;font-size:0.93em}"
        "ul.items div.head{font-weight:bold;margin-bottom:0.15em}ul.items p{margin:0.1em 0}"
        "ul.items span.key{font-weight:600;color:#2b4f7e}"
        "table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.85em}td.txt{white-space:nowrap}"
        "caption{caption-side:top;text-align:left;padding:0 0 0.3em;color:#444;font-size:0.95em}"
        "th,td{border:1px solid #bbb;padding:0.2em 0.5em}th{background:#eee}td.num{text-align:right}"
        "figure{margin:0.8em 0}img{max-width:100%}figcaption{color:#444;font-size:0.95em}"
        "nav{font-size:0.9em;color:#444}nav a{margin-right:0.9em}")


def _figure_html(f: Figure, n: int) -> str:
    data = base64.b64encode(Path(f.path).read_bytes()).decode("ascii")
    return (f'<figure id="fig-{html.escape(f.name)}"><img alt="{html.escape(f.label)}" '
            f'src="data:image/png;base64,{data}">'
            f"<figcaption><b>Figure {n}.</b> {html.escape(f.caption)}</figcaption></figure>")


def render_html(title: str, sections, figures=(), digits: int = 4, *, intro: str = "", skipped=()) -> str:
    """The report as one self-contained HTML page.

    ``figures``: Figure objects or (caption, PNG path) pairs; a section shows the
    figures it names, the rest come in a last "Figures" section with the ``skipped``
    (name, reason) pairs.  A contents line follows the first section.
    """
    figs = [f if isinstance(f, Figure) else Figure(Path(f[1]), f[0]) for f in figures]
    placed, rest, num = _numbered(sections, figs)
    titles = [s.title for s in sections] + (["Figures"] if rest or skipped else [])
    nav = "<nav>Contents: " + "".join(f'<a href="#{anchor(t)}">{html.escape(t)}</a>' for t in titles) + "</nav>"
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    if intro:
        parts.append(f'<p class="intro">{html.escape(intro)}</p>')
    for i, s in enumerate(sections):
        parts.append(f'<h2 id="{anchor(s.title)}">{html.escape(s.title)}</h2>')
        if s.text:
            parts += [f"<p>{html.escape(p)}</p>" for p in s.text.split("\n\n")]
        if s.items:
            parts.append('<ul class="items">' + "".join(
                f'<li><div class="head">{html.escape(h)}</div>' + "".join(_sentence_html(t) for t in _sentences(b))
                + "</li>" for h, b in s.items) + "</ul>")
        if s.table is not None:
            if len(s.table):
                parts.append(f'<div class="scroll">{table_html(s.table, digits, s.caption)}</div>')
            else:
                parts.append(f"<p><em>(no rows)</em> {html.escape(s.caption)}</p>")
        parts += [_figure_html(f, num[id(f)]) for f in placed[i]]
        if i == 0 and len(sections) > 1:
            parts.append(nav)
    if rest or skipped:
        parts.append('<h2 id="figures">Figures</h2>')
        parts += [_figure_html(f, num[id(f)]) for f in rest]
        if skipped:
            parts.append("<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in _skipped_text(skipped)) + "</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(directory, title: str, sections, figures=(), digits: int = 4, *, intro: str = "",
                 skipped=()) -> tuple[Path, Path]:
    """Write ``report.md`` and ``report.html`` into ``directory`` (created if needed).

    ``figures``: Figure objects, PNG paths or directories (see ``as_figures``); they are
    copied to ``directory/figures/`` for the Markdown and embedded in the HTML.
    ``skipped``: (figure name, reason) pairs of figures that were not drawn.
    Returns (markdown path, html path).
    """
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    figs = as_figures(figures)
    names = _figure_names([Path(f.path) for f in figs])
    links = []
    if figs:
        (d / "figures").mkdir(exist_ok=True)
        for f, n in zip(figs, names):
            dst = d / "figures" / n
            if Path(f.path).resolve() != dst.resolve():
                shutil.copyfile(f.path, dst)
            links.append((f, f"figures/{n}"))
    md = d / "report.md"
    md.write_text(render_markdown(title, sections, links, digits, intro=intro, skipped=skipped), encoding="utf-8")
    ht = d / "report.html"
    ht.write_text(render_html(title, sections, figs, digits, intro=intro, skipped=skipped), encoding="utf-8")
    return md, ht
