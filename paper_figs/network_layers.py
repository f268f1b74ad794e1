"""Per-layer energy of one network on one named architecture, in pJ: floor, schedule and estimate.

Every number of this figure is energy of the same machine, a real architecture
(validation.architectures: a bundled ZigZag platform with its Buffer memory of M
words, or an architecture file), in pJ; nothing is in model units.

(a) Per layer, on a log axis: the energy floor E_LB(arch) (bounds.hierarchy; no
mapping on that architecture can spend less, docs/hierarchy.md), the best nested
schedule found E_UB(arch) (bounds.nested; one mapping that achieves it,
docs/dataflow_nested.md) and, as a star, the reference estimator's energy of the
same layer on the same platform at the same M where the reference data hold it.  A
thin line joins the floor to the highest mark, so the gap shows.  An estimate below
the floor is a defect unless the estimator undercounts an operand's DRAM traffic
(validation.hierarchy_check); such stars are drawn hollow.

(b) Where the energy goes per layer, stacked on a linear pJ axis: DRAM, on-chip
memories and MACs of the schedule (S, E_UB's levels) next to the reference
estimator's own split (R: energy_dram_pJ, energy_mac_pJ, the rest on-chip).

Machine and rows: ``--arch`` (or the reference platform that holds most of the
network's layers, eyeriss_like on ties, else eyeriss_like), resized to ``--M`` words
for a bundled platform (default: the platform's usual M in the reference, 1,048,576
words for eyeriss_like); reference rows are only drawn for the platform the
architecture describes, at that M.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from paper_figs.common import LAYER_COLUMNS, figure_layers, words_label
from paper_figs.registry import FigureInputError, FigureInputs, FigureResult, register
from paper_figs.style import BOUND_COLORS, OKABE_ITO, PAGE_WIDTH, new_figure, save

NAME = "network_layers"
#: Network drawn when the reference data hold none of the zoo networks.
DEFAULT_NETWORK = "vgg16"
#: Platform drawn when several hold the network's layers equally, and the architecture without reference rows.
PREFERRED_PLATFORM = "eyeriss_like"
#: Level groups of panel (b), in stacking order, with their colours.
GROUPS = (("dram", "DRAM", BOUND_COLORS["dram"]), ("onchip", "on-chip memories", BOUND_COLORS["buffer"]),
          ("mac", "MAC", BOUND_COLORS["mac"]))
#: Colour of the best nested schedule's marks (the floor is BOUND_COLORS["lb"], the estimate "ref").
UB_COLOR = OKABE_ITO["green"]


# ----- reference rows -----------------------------------------------------------------

def _norm(s) -> str:
    return "".join(ch for ch in str(s).lower() if ch.isalnum())


def reference_index(layers, rows: pd.DataFrame | None, network: str = "") -> np.ndarray:
    """Position (in ``rows``) of each layer's reference row, or -1 where the rows do not hold it.

    A row matches a layer by name within ``network`` (the ``network`` and ``layer_name``
    columns), else by shape: reference datasets often keep one row per distinct shape,
    tagged with the first network that has it.
    """
    out = np.full(len(layers), -1, dtype=np.int64)
    if rows is None or len(rows) == 0:
        return out
    shapes = rows.loc[:, list(LAYER_COLUMNS)].to_numpy(dtype=np.int64)
    named = None
    if "layer_name" in rows.columns and "network" in rows.columns:
        in_net = (rows["network"].map(_norm) == _norm(network)).to_numpy()
        named = np.where(in_net, rows["layer_name"].astype(str).to_numpy(), None)
    for i, l in enumerate(layers):
        hit = np.flatnonzero(named == l.name) if named is not None and l.name else np.array([], int)
        if hit.size == 0:
            key = np.array([getattr(l, c) for c in LAYER_COLUMNS])
            hit = np.flatnonzero((shapes == key).all(axis=1))
        if hit.size:
            out[i] = hit[0]
    return out


def match_reference(layers, rows: pd.DataFrame | None, network: str = "") -> np.ndarray:
    """Reference energy (pJ) per layer, or NaN where the rows do not hold it (see reference_index)."""
    idx = reference_index(layers, rows, network)
    out = np.full(len(layers), np.nan)
    if rows is not None and len(rows):
        e = rows["energy_pJ"].to_numpy(dtype=float)
        out[idx >= 0] = e[idx[idx >= 0]]
    return out


def usual_rows(ref: pd.DataFrame | None) -> dict:
    """{platform: its rows at its most common Buffer size M}, PREFERRED_PLATFORM first, then by name."""
    if ref is None or len(ref) == 0:
        return {}
    groups = dict(list(ref.groupby("platform", sort=True)))
    out = {}
    for plat in sorted(groups, key=lambda p: p != PREFERRED_PLATFORM):
        rows = groups[plat]
        out[str(plat)] = rows.loc[rows["M"] == rows["M"].value_counts().index[0]]
    return out


def best_platform(layers, candidates: dict, network: str = "") -> tuple[float, str | None]:
    """(share of ``layers`` matched, platform) of the candidate matching most; the first one on ties."""
    best = (0.0, None)
    for plat, rows in candidates.items():
        k = float(np.isfinite(match_reference(layers, rows, network)).mean()) if len(layers) else 0.0
        if k > best[0]:
            best = (k, plat)
    return best


def pick_network(ref: pd.DataFrame | None, names: list[str], wanted: str | None):
    """(network, platform or None, that platform's rows at its usual M, or None).

    ``wanted`` wins if given, else DEFAULT_NETWORK if the reference holds at least half
    of its layers, else the network with the largest share of its layers in the reference.  The platform is the
    one whose rows at its most common Buffer size M match most of the network's layers
    (PREFERRED_PLATFORM on ties).
    """
    from complexity.zoo import get_network
    if wanted is not None and wanted not in names:
        raise KeyError(f"unknown network {wanted!r}; known: {', '.join(names)}")
    if ref is None or len(ref) == 0:
        return wanted or DEFAULT_NETWORK, None, None
    candidates = usual_rows(ref)
    best = {}  # network -> (share of its layers matched, platform)
    for net in ([wanted] if wanted else names):
        k, plat = best_platform(get_network(net), candidates, net)
        if plat is not None:
            best[net] = (k, plat)
    if wanted:
        net = wanted
    elif best.get(DEFAULT_NETWORK, (0.0,))[0] >= 0.5:
        net = DEFAULT_NETWORK
    elif best:
        net = max(best, key=lambda n: (best[n][0], len(get_network(n))))
    else:
        net = DEFAULT_NETWORK
    if net not in best:
        return net, None, None
    plat = best[net][1]
    return net, str(plat), candidates[plat]


def reference_split(rows: pd.DataFrame | None, idx: np.ndarray) -> dict:
    """Per layer the reference's energy (pJ) in DRAM, on-chip memories and MACs; NaN where unknown."""
    n = len(idx)
    out = {g: np.full(n, np.nan) for g, _, _ in GROUPS}
    if rows is None or len(rows) == 0 or not {"energy_dram_pJ", "energy_mac_pJ"} <= set(rows.columns):
        return out
    have = idx >= 0
    col = {c: pd.to_numeric(rows[c], errors="coerce").to_numpy(dtype=float)[idx[have]]
           for c in ("energy_pJ", "energy_dram_pJ", "energy_mac_pJ")}
    out["dram"][have] = col["energy_dram_pJ"]
    out["mac"][have] = col["energy_mac_pJ"]
    out["onchip"][have] = col["energy_pJ"] - col["energy_dram_pJ"] - col["energy_mac_pJ"]
    return out


# ----- display names ------------------------------------------------------------------

_RESNET = re.compile(r"layer(\d+)\.(\d+)\.(?:(conv\d+)|downsample(?:\.\d+)?)")
_FEATURE = re.compile(r"features\.(\d+)")
_CLASSIFIER = re.compile(r"classifier\.(\d+)")
_FIRE = re.compile(r"features\.(\d+)\.(squeeze|expand1x1|expand3x3)")
_MBV2 = re.compile(r"features\.(\d+)\.conv\.(\d+)(?:\.0)?")
_MBV2_END = re.compile(r"features\.(\d+)\.0")
_INCEPTION = re.compile(r"inception(\w+?)\.branch(\d+)(?:\.(\d+))?\.conv")
_FIRE_PART = {"squeeze": "sq", "expand1x1": "e1x1", "expand3x3": "e3x3"}
#: Longest display name; longer ones keep their tail (the most specific part).
MAX_NAME = 16


def _module_path(name: str) -> str:
    """A torch module path from an ONNX node name ("/layer1/layer1.0/conv1/Conv" -> "layer1.0.conv1")."""
    parts = [p for p in str(name).split("/") if p]
    if len(parts) > 1 and parts[-1][:1].isupper():  # the op type torch.onnx appends
        parts = parts[:-1]
    if not parts:
        return str(name)
    if len(parts) > 1 and "." not in parts[-1] and "." in parts[-2]:
        return f"{parts[-2]}.{parts[-1]}"
    return parts[-1]


def _shorten(name: str) -> str:
    name = re.sub(r"\.conv$", "", name)
    return name if len(name) <= MAX_NAME else "…" + name[-(MAX_NAME - 1):]


def display_names(names, network: str = "") -> list[str]:
    """Short, readable layer names: stage/block for torchvision's naming, else the name shortened.

    resnet "layer1.0.conv1" -> "s1.b0 conv1", "layer1.0.downsample.0" -> "s1.b0 down";
    vgg "features.N" -> "conv1_1", "conv1_2", "conv2_1", ... (a new stage after each
    pooling gap), other plain "features.N" -> "conv1", "conv2", ...; "classifier.N" ->
    "fc1", "fc2", ... ("fc" if one; squeezenet's final 1x1 conv: "conv10"); fire modules
    -> "fire2 sq", "fire2 e1x1", ...; mobilenet_v2 -> "stem", "b2 exp", "b2 dw",
    "b2 proj", ..., "head"; googlenet "inception3a.branch2.1.conv" -> "3a b2.1".
    ONNX node names are reduced to the module path first.
    """
    paths = [_module_path(n) for n in names]
    is_vgg = _norm(network).startswith("vgg")
    plain = [int(m.group(1)) for p in paths if (m := _FEATURE.fullmatch(p))]
    step = min(np.diff(plain)) if len(plain) > 1 else 0
    fire = {int(m.group(1)) for p in paths if (m := _FIRE.fullmatch(p))}
    fire_no = {f: k + 2 for k, f in enumerate(sorted(fire))}  # fire modules count from 2 (Iandola et al.)
    blocks: dict[int, list[int]] = {}
    for p in paths:
        if m := _MBV2.fullmatch(p):
            blocks.setdefault(int(m.group(1)), []).append(int(m.group(2)))
    n_fc = sum(1 for p in paths if _CLASSIFIER.fullmatch(p))
    out, conv, stage, sub, fc, prev = [], 0, 1, 0, 0, None
    for p in paths:
        if m := _RESNET.fullmatch(p):
            out.append(f"s{m.group(1)}.b{m.group(2)} {m.group(3) or 'down'}")
        elif m := _FEATURE.fullmatch(p):
            i = int(m.group(1))
            conv += 1
            if is_vgg:
                if prev is not None and i - prev > step:
                    stage, sub = stage + 1, 0
                sub += 1
                out.append(f"conv{stage}_{sub}")
            else:
                out.append(f"conv{conv}")
            prev = i
        elif m := _CLASSIFIER.fullmatch(p):
            fc += 1
            out.append("conv10" if fire and n_fc == 1 else "fc" if n_fc == 1 else f"fc{fc}")
        elif m := _FIRE.fullmatch(p):
            out.append(f"fire{fire_no[int(m.group(1))]} {_FIRE_PART[m.group(2)]}")
        elif blocks and (m := _MBV2.fullmatch(p)):
            b, i = int(m.group(1)), int(m.group(2))
            convs = sorted(blocks[b])
            roles = {2: ("dw", "proj"), 3: ("exp", "dw", "proj")}.get(len(convs))
            out.append(f"b{b} {roles[convs.index(i)] if roles else f'c{i}'}")
        elif blocks and (m := _MBV2_END.fullmatch(p)):
            out.append("stem" if int(m.group(1)) < min(blocks) else "head")
        elif m := _INCEPTION.fullmatch(p):
            out.append(f"{m.group(1)} b{m.group(2)}" + (f".{m.group(3)}" if m.group(3) else ""))
        else:
            out.append(_shorten(p))
    return out


# ----- the machine and the numbers ----------------------------------------------------

def choose_case(inputs: FigureInputs) -> dict:
    """What to draw: label, layers, network (for name matching), arch spec, Architecture, M, platform, rows, notes.

    ``rows`` are the reference rows of the platform the architecture describes at the
    drawn M (None when there are none); a reference platform without an architecture, or
    reference rows of another platform than --arch, are never drawn against its floor.
    Raises FigureInputError for --M with an architecture file, or an architecture that
    cannot be built.
    """
    from complexity.architecture import ArchitectureError
    from complexity.zoo import get_network, network_names
    from validation.architectures import architecture_names, get_architecture
    bundled = set(architecture_names())
    spec = inputs.arch
    is_file = spec is not None and spec not in bundled
    if is_file and inputs.M is not None:
        raise FigureInputError(f"--M {inputs.M:,} cannot resize --arch {spec}, an architecture file; "
                               f"set the Buffer capacity in the file or drop --M")
    notes = []
    ref = inputs.reference if inputs.reference is not None and len(inputs.reference) else None
    usable = None
    if ref is not None:
        plats = sorted(set(ref["platform"].astype(str)))
        if spec is None:
            keep = [p for p in plats if p in bundled]
            why = f"reference platform(s) {', '.join(plats)} have no bundled architecture (use --arch FILE)"
        elif not is_file:
            keep = [spec] if spec in plats else []
            why = f"the reference data hold no rows of {spec} (only {', '.join(plats)})"
        else:
            keep = plats if len(plats) == 1 else []
            why = (f"--arch {spec}: the reference data hold {len(plats)} platforms; add --platform P to draw "
                   f"the estimates of the one it describes")
        if keep:
            usable = ref.loc[ref["platform"].astype(str).isin(keep)]
        else:
            notes.append(f"{why}: no reference stars")
    if inputs.layers or inputs.network:
        label, layers = figure_layers(inputs, DEFAULT_NETWORK)
        network = inputs.network or label
        plat = best_platform(layers, usual_rows(usable), network)[1]
    else:
        network, plat, _ = pick_network(usable, list(network_names()), None)
        label, layers = network, list(get_network(network))
    platform_rows = None if plat is None else usable.loc[usable["platform"].astype(str) == plat]
    usual_M = None if platform_rows is None else int(platform_rows["M"].value_counts().index[0])
    try:
        if is_file:
            arch, M = get_architecture(spec), None
        else:
            name = spec or plat or PREFERRED_PLATFORM
            if inputs.M is not None or usual_M is not None:
                M = inputs.M_or(usual_M)
                arch = get_architecture(name, M)
            else:
                from validation.platforms import get_platform
                arch = get_architecture(name)
                M = int(arch.level(get_platform(name).buffer_memory).capacity)
    except ArchitectureError as exc:
        raise FigureInputError(f"--arch {spec or name}: {exc}") from None
    rows_M = M if M is not None else usual_M
    rows = None
    if platform_rows is not None:
        rows = platform_rows.loc[platform_rows["M"] == rows_M]
        if len(rows) == 0:
            rows = None
            have = ", ".join(f"{m:,}" for m in sorted(set(platform_rows["M"].astype(int))))
            notes.append(f"no reference rows of {plat} at M = {rows_M:,} words (it has M = {have}): no stars")
    elif ref is None:
        notes.append(f"{inputs.source}: floor and schedule only")
    return {"label": label, "layers": list(layers), "network": network, "spec": spec or arch.name,
            "arch": arch, "M": M, "platform": plat, "rows": rows, "rows_M": rows_M, "notes": notes}


def level_split(levels, dram: str) -> tuple[float, float, float]:
    """(DRAM, on-chip, MAC) energy in pJ of a schedule's levels: level ``dram``, "mac" and the rest."""
    e_dram = sum(float(lv["E_pJ"]) for lv in levels if lv["name"] == dram)
    e_mac = sum(float(lv["E_pJ"]) for lv in levels if lv["name"] == "mac")
    e_all = sum(float(lv["E_pJ"]) for lv in levels)
    return e_dram, e_all - e_dram - e_mac, e_mac


def layer_energies(layers, arch) -> dict:
    """Per layer on ``arch`` (pJ): floor lb_pJ, schedule ub_pJ (NaN if none fits) and the schedule's level split."""
    from bounds.hierarchy_api import evaluate_hierarchy_network
    res = evaluate_hierarchy_network(layers, arch).layers
    n = len(res)
    out = {"lb_pJ": np.array([r.lower.E_pJ for r in res], dtype=float), "ub_pJ": np.full(n, np.nan),
           **{f"ub_{g}_pJ": np.full(n, np.nan) for g, _, _ in GROUPS}, "infeasible": [r.infeasible for r in res]}
    for i, r in enumerate(res):
        if r.upper is not None:
            out["ub_pJ"][i] = r.upper.E_pJ
            for (g, _, _), e in zip(GROUPS, level_split(r.upper.levels, arch.dram.name)):
                out[f"ub_{g}_pJ"][i] = e
    return out


def _undercount(rows, idx: np.ndarray, platform: str, arch) -> np.ndarray:
    """True per layer whose reference row undercounts an operand's DRAM words (validation.hierarchy_check)."""
    from validation.hierarchy_check import hierarchy_rows
    out = np.zeros(len(idx), dtype=bool)
    if rows is None or not (idx >= 0).any():
        return out
    hit = hierarchy_rows(rows.iloc[idx[idx >= 0]], archs={platform: arch})
    out[idx >= 0] = (hit["undercount"] != "").to_numpy()
    return out


def _pJ(e: float) -> str:
    """An energy with an SI prefix: 1.2e9 pJ -> "1.2 mJ"."""
    for scale, unit in ((1e12, "J"), (1e9, "mJ"), (1e6, "µJ"), (1e3, "nJ")):
        if e >= scale:
            return f"{e / scale:.3g} {unit}"
    return f"{e:.3g} pJ"


# ----- the figure ---------------------------------------------------------------------

@register(NAME, "per-layer energy of one network on one architecture in pJ: the floor E_LB(arch), the best "
                "nested schedule E_UB(arch) and the reference estimate; DRAM/on-chip/MAC split of schedule "
                "and estimate")
def draw(out_dir: Path, inputs: FigureInputs) -> FigureResult:
    case = choose_case(inputs)
    layers, arch, M, plat, rows = case["layers"], case["arch"], case["M"], case["platform"], case["rows"]
    notes = list(case["notes"])
    d = layer_energies(layers, arch)
    idx = reference_index(layers, rows, case["network"])
    d.update(network=case["label"], arch=arch.name, arch_spec=case["spec"], platform=plat, M=M,
             ref_M=case["rows_M"] if rows is not None else None, E_unit="pJ",
             layer_names=[l.name for l in layers], names=display_names([l.name for l in layers], case["network"]),
             ref_E=match_reference(layers, rows, case["network"]),
             ref_undercount=_undercount(rows, idx, plat, arch))
    d.update({f"ref_{g}_pJ": v for g, v in reference_split(rows, idx).items()})
    for name, why in zip(d["names"], d["infeasible"]):
        if why:
            notes.append(f"{name}: no nested schedule fits on {arch.name} ({why})")
    low = np.isfinite(d["ref_E"]) & (d["ref_E"] < d["lb_pJ"])
    if low.any():
        notes.append(f"{int(low.sum())} estimate(s) below the floor, {int((low & d['ref_undercount']).sum())} of "
                     f"them undercounting DRAM traffic (hollow stars)")
    tool = ""
    if rows is not None and "tool" in rows.columns and rows["tool"].notna().any():
        tool = f"{rows['tool'].dropna().astype(str).iloc[0]}, "

    n = len(layers)
    width = max(PAGE_WIDTH, 1.1 + 0.115 * n)
    fig, axes = new_figure(width, 5.6 if n > 24 else 5.0, 2, 1, sharex=True, height_ratios=(1.15, 1))
    ax, bx = axes[0, 0], axes[1, 0]
    x = np.arange(n, dtype=float)
    lb, ub, ref = d["lb_pJ"], d["ub_pJ"], d["ref_E"]

    # (a) floor, schedule and estimate per layer, log pJ
    top = np.nanmax(np.vstack([lb, ub, ref]), axis=0)
    ax.vlines(x, lb, top, color="0.6", lw=0.7, zorder=1)
    ax.hlines(lb, x - 0.36, x + 0.36, color=BOUND_COLORS["lb"], lw=1.8, zorder=3,
              label="floor E_LB (no mapping spends less)")
    ax.scatter(x, ub, marker="o", s=16 if n <= 24 else 10, color=UB_COLOR, edgecolor="black", linewidth=0.3,
               zorder=4, label="best nested schedule E_UB")
    has_ref = np.isfinite(ref)
    if has_ref.any():
        full, hollow = has_ref & ~d["ref_undercount"], has_ref & d["ref_undercount"]
        star = dict(marker="*", s=42 if n <= 24 else 30, linewidth=0.4, zorder=5)
        ax.scatter(x[full], ref[full], color=BOUND_COLORS["ref"], edgecolor="black",
                   label=f"estimate ({tool}{'' if plat == arch.name else plat + ', '}M = {words_label(d['ref_M'])})",
                   **star)
        if hollow.any():
            ax.scatter(x[hollow], ref[hollow], facecolor="none", edgecolor=BOUND_COLORS["ref"],
                       label="hollow: undercounts DRAM words", **star)
    ax.set_yscale("log")
    ax.set_ylabel(f"energy on {arch.name} (pJ)")
    where = (f"{arch.name}, Buffer M = {M:,} words ({words_label(M)})" if M is not None
             else f"{arch.name} (architecture file {Path(case['spec']).name}, levels as given)")
    title = f"(a) {case['label']} on {where}: energy per layer in pJ"
    if rows is None and plat is not None and case["rows_M"] is not None:
        title += f"\nno reference rows of {plat} at M = {case['rows_M']:,} words: floor and schedule only"
    ax.set_title(title, loc="left")
    d["title"] = title
    totals = f"network total: floor {_pJ(lb.sum())}"
    if np.isfinite(ub).all():
        totals += f", schedule {_pJ(ub.sum())} ({ub.sum() / lb.sum():.2f}× floor)"
    if has_ref.all():
        totals += f", estimate {_pJ(ref.sum())} ({ref.sum() / lb.sum():.2f}×)"
    ax.legend(ncols=len(ax.get_legend_handles_labels()[1]), loc="upper center", title=totals, title_fontsize=6.5,
              fontsize=6.5, handlelength=1.6, columnspacing=1.2)
    finite = np.concatenate([lb, ub[np.isfinite(ub)], ref[has_ref]])
    lo, hi = finite.min() / 1.8, finite.max()
    ax.set_ylim(lo, hi * (hi / lo) ** 0.32)  # head room for the legend
    ax.grid(True, axis="y", which="major")

    # (b) level split of the schedule (S) and the estimate (R), linear pJ
    has_split = np.isfinite(d["ref_dram_pJ"])
    w = 0.4 if has_split.any() else 0.7
    xs = x - 0.21 if has_split.any() else x
    bottom_s, bottom_r = np.zeros(n), np.zeros(n)
    for g, label, color in GROUPS:
        v = np.nan_to_num(d[f"ub_{g}_pJ"])
        bx.bar(xs, v, bottom=bottom_s, width=w, color=color, edgecolor="black", linewidth=0.2, label=label)
        bottom_s += v
        if has_split.any():
            r = np.where(has_split, np.nan_to_num(d[f"ref_{g}_pJ"]), 0.0)
            bx.bar(x[has_split] + 0.21, r[has_split], bottom=bottom_r[has_split], width=w, color=color,
                   edgecolor="black", linewidth=0.2, hatch="/////")
            bottom_r += r
    if has_split.any():
        from matplotlib.patches import Patch
        bx.legend(handles=[*bx.get_legend_handles_labels()[0],
                           Patch(facecolor="white", edgecolor="black", linewidth=0.4, label="left: schedule S"),
                           Patch(facecolor="white", edgecolor="black", linewidth=0.4, hatch="/////",
                                 label=f"right: estimate R ({plat})")],
                  ncols=5, loc="upper center")
        what = "schedule E_UB (S, plain) and estimate (R, hatched)"
    else:
        bx.legend(ncols=3, loc="upper center")
        what = "schedule E_UB"
    bx.set_title(f"(b) where the energy goes on {arch.name}: {what}, pJ", loc="left")
    bx.set_ylabel(f"energy on {arch.name} (pJ)")
    bx.grid(True, axis="y")
    bx.ticklabel_format(axis="y", style="sci", scilimits=(0, 0), useMathText=True)
    bx.set_ylim(0, max(bottom_s.max(), bottom_r.max()) * 1.22)
    bx.set_xticks(x, d["names"], rotation=90, fontsize=6.5 if n <= 24 else 5.5)
    bx.set_xlim(-0.7, n - 0.3)
    paths = save(fig, out_dir, NAME)
    return FigureResult(NAME, paths, d, notes=tuple(notes))
