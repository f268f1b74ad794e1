"""Reference energy of one layer on one accelerator, estimated by ZigZag in-process.

The layer is handed to ZigZag as an in-memory workload (no ONNX, no files in the
working tree); ZigZag searches the energy-optimal mapping (its API optimizes latency
by default, so the energy reduction stage is used instead) with its deterministic
LOMA temporal-mapping search.  The search-effort knobs are the fields of
:class:`SearchSettings`; they enter the cache key and the CSV ``settings`` column.
Units: ZigZag's costs are pJ per access and per MAC, so energies are pJ (checked in
tests: MAC energy = F x the platform's MAC cost).  Operands are renamed from
ZigZag's I/W/O to the project's X/W/Y.  See docs/reference_data.md.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import logging
from dataclasses import asdict, dataclass, field

from complexity.layer import Layer
from validation.platforms import Platform, get_platform

__all__ = ["SearchSettings", "ZigZagResult", "ZigZagError", "estimate", "tool_version",
           "layer_workload", "TOOL"]

#: Name of the estimator in the CSV ``tool`` column.
TOOL = "zigzag"

_OPERAND_NAMES = {"I": "X", "W": "W", "O": "Y"}


class ZigZagError(RuntimeError):
    """ZigZag found no valid mapping (or failed) for a layer on a platform."""


def tool_version() -> str:
    """Installed zigzag-dse version (part of every cache key and CSV row)."""
    return importlib.metadata.version("zigzag-dse")


@dataclass(frozen=True)
class SearchSettings:
    """ZigZag's search-effort knobs.

    ``lpf_limit``: maximal number of loop prime factors LOMA permutes (ZigZag's
    default 6; ZigZag raises it to the number of temporal loops when lower);
    ``temporal_mapping_type``: "uneven" (ZigZag's default) or "even";
    ``nb_spatial_mappings``: spatial mappings generated when a mapping file gives
    only a hint (ours fix the spatial mapping, so it rarely matters).
    The criterion is always energy and the engine always LOMA.
    """

    lpf_limit: int = 6
    temporal_mapping_type: str = "uneven"
    nb_spatial_mappings: int = 3

    def __post_init__(self) -> None:
        if isinstance(self.lpf_limit, bool) or not isinstance(self.lpf_limit, int) or self.lpf_limit < 1:
            raise ValueError(f"lpf_limit: must be a positive integer, got {self.lpf_limit!r}")
        if self.temporal_mapping_type not in ("uneven", "even"):
            raise ValueError(f"temporal_mapping_type: must be 'uneven' or 'even', got {self.temporal_mapping_type!r}")
        if isinstance(self.nb_spatial_mappings, bool) or not isinstance(self.nb_spatial_mappings, int) \
                or self.nb_spatial_mappings < 1:
            raise ValueError(f"nb_spatial_mappings: must be a positive integer, got {self.nb_spatial_mappings!r}")

    def as_string(self) -> str:
        """Canonical one-line form, e.g. ``opt=energy;engine=loma;lpf_limit=6;tm=uneven;sm=3``."""
        return (f"opt=energy;engine=loma;lpf_limit={self.lpf_limit};tm={self.temporal_mapping_type};"
                f"sm={self.nb_spatial_mappings}")


@dataclass(frozen=True)
class ZigZagResult:
    """ZigZag's estimate for one layer: energies in pJ, DRAM traffic in words (elements).

    ``memory_energy_pJ`` maps ``"<memory>/<operand>"`` (operand X, W or Y) to the
    energy of that memory level for that operand; ``dram_words_*`` count words read
    from DRAM (X, W) and written to plus read back from DRAM (Y, partial sums included).
    """

    energy_pJ: float
    energy_mac_pJ: float
    energy_memory_pJ: float
    energy_dram_pJ: float
    dram_words_X: int
    dram_words_W: int
    dram_words_Y: int
    cycles: float
    macs: int
    memory_energy_pJ: dict = field(default_factory=dict)

    @property
    def dram_words(self) -> int:
        return self.dram_words_X + self.dram_words_W + self.dram_words_Y

    def to_dict(self) -> dict:
        d = asdict(self)
        d["dram_words"] = self.dram_words
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ZigZagResult":
        keys = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in d.items() if k in keys})


def layer_workload(layer: Layer, bits: int = 8) -> list[dict]:
    """ZigZag's workload description of ``layer`` (one Conv node, every operand ``bits`` wide).

    Loops: B batch, G groups, K filters and C input channels per group, OY/OX
    outputs, FY/FX kernel taps; the input extent IX = sw*OX + FX is clipped to the
    real width ``w`` after removing the padding, as ZigZag does for ONNX models.
    """
    return [{
        "id": 0,
        "name": layer.name or "layer",
        "operator_type": "Conv",
        "equation": "O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]",
        "dimension_relations": [f"ix={layer.sw}*ox+1*fx", f"iy={layer.sh}*oy+1*fy"],
        "loop_dims": ["B", "K", "G", "OX", "OY", "C", "FX", "FY"],
        "loop_sizes": [layer.b, layer.dg, layer.groups, layer.nw, layer.nh, layer.cg, layer.kw, layer.kh],
        "operand_precision": {"W": bits, "I": bits, "O": bits, "O_final": bits},
        "operand_source": {"W": 0, "I": 0},
        "pr_loop_dims": ["IX", "IY"],
        "pr_loop_sizes": [layer.w, layer.h],
        "padding": [[layer.pw, layer.pw], [layer.ph, layer.ph]],
    }]


@contextlib.contextmanager
def _quiet():
    """Silence ZigZag's logging and stray prints for the duration of a call."""
    previous = logging.root.manager.disable
    logging.disable(logging.CRITICAL)
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink):
            yield
    finally:
        logging.disable(previous)


def _lazy_latency_classes():
    """ZigZag's cost-model stage and temporal-mapping reduction, with the latency computed lazily.

    ZigZag evaluates the energy *and* the latency of every temporal mapping LOMA
    generates, then keeps the one of least energy (latency breaks ties).  The latency
    model and the integer-unrolling mapping it needs are ~45% of the work; here they
    are computed only for a mapping whose energy is at most the best so far, which
    selects exactly the same mapping (same energy, same tie-break) at about half the
    cost.  tests/test_zigzag.py and benchmarks/bench_zigzag.py check the equality.
    """
    from zigzag.cost_model.cost_model import CostModelEvaluation
    from zigzag.mapping.mapping import Mapping
    from zigzag.stages.evaluation.cost_model_evaluation import CostModelStage
    from zigzag.stages.stage import Stage

    class EnergyFirstCME(CostModelEvaluation):
        """A cost-model evaluation that computes the energy now and the latency on demand.

        The state is that of CostModelEvaluation.__init__ except ``mapping_int`` (the
        integer-unrolling mapping, used only by the latency model), which is built in
        ensure_latency(); the energy model reads ``mapping`` only.
        """

        def __init__(self, *, accelerator, layer, spatial_mapping, spatial_mapping_int, temporal_mapping,
                     access_same_data_considered_as_no_access=True, cycles_per_op=1.0):
            self.accelerator = accelerator
            self.layer = layer
            self.spatial_mapping = spatial_mapping
            self.spatial_mapping_int = spatial_mapping_int
            self.temporal_mapping = temporal_mapping
            self.access_same_data_considered_as_no_access = access_same_data_considered_as_no_access
            self.mem_level_list = accelerator.memory_hierarchy.mem_level_list
            self.mem_hierarchy_dict = accelerator.mem_hierarchy_dict
            self.mem_size_dict = accelerator.mem_size_dict
            self.mem_sharing_tuple = tuple(tuple(group.items()) for group in accelerator.mem_sharing_list)
            self.memory_operand_links = layer.memory_operand_links
            self.cumulative_layer_ids = []
            self.spatial_mapping_dict_int = spatial_mapping_int.mapping_dict_origin
            self.mapping = Mapping(accelerator, spatial_mapping, temporal_mapping, layer,
                                   access_same_data_considered_as_no_access)
            self.active_mem_level = self.mapping.mem_level
            self.cycles_per_op = cycles_per_op
            self._latency_done = False
            self.calc_memory_utilization()
            self.calc_memory_word_access()
            self.calc_energy()

        def ensure_latency(self) -> None:
            if not self._latency_done:
                self.mapping_int = Mapping(self.accelerator, self.spatial_mapping_dict_int, self.temporal_mapping,
                                           self.layer, self.access_same_data_considered_as_no_access)
                self.calc_latency()
                self._latency_done = True

    class EnergyFirstCostModelStage(CostModelStage):
        def run(self):
            yield EnergyFirstCME(
                accelerator=self.accelerator, layer=self.layer, spatial_mapping=self.spatial_mapping,
                spatial_mapping_int=self.spatial_mapping_int, temporal_mapping=self.temporal_mapping,
                access_same_data_considered_as_no_access=self.access_same_data_considered_as_no_access,
            ), None

    class MinimalEnergyLazyStage(Stage):
        """Least energy, ties broken by least latency (ZigZag's rule), latency only when needed."""

        def run(self):
            sub = self.list_of_callables[0](self.list_of_callables[1:], **self.kwargs)
            best = None
            for cme, _extra in sub.run():
                if best is not None and cme.energy_total > best.energy_total:
                    continue
                cme.ensure_latency()
                if best is None or cme.energy_total < best.energy_total or \
                        cme.latency_total2 < best.latency_total2:
                    best = cme
            assert best is not None
            yield best, []

    return EnergyFirstCostModelStage, MinimalEnergyLazyStage


_LAZY: list = []


def _stages(lazy_latency: bool = True):
    from zigzag.stages.evaluation.cost_model_evaluation import CostModelStage
    from zigzag.stages.mapping.spatial_mapping_generation import SpatialMappingGeneratorStage
    from zigzag.stages.mapping.temporal_mapping_generator_stage import TemporalMappingGeneratorStage
    from zigzag.stages.parser.accelerator_parser import AcceleratorParserStage
    from zigzag.stages.parser.workload_parser import WorkloadParserStage
    from zigzag.stages.results.reduce_stages import MinimalEnergyStage
    from zigzag.stages.workload_iterator import WorkloadStage
    # The pipeline of zigzag.api.get_hardware_performance_zigzag without its saving and
    # visualisation stages (which write files), with the energy criterion.
    inner_reduce, cost_stage = MinimalEnergyStage, CostModelStage
    if lazy_latency:
        if not _LAZY:
            _LAZY.extend(_lazy_latency_classes())
        cost_stage, inner_reduce = _LAZY
    return [WorkloadParserStage, AcceleratorParserStage, WorkloadStage, MinimalEnergyStage,
            SpatialMappingGeneratorStage, inner_reduce, TemporalMappingGeneratorStage, cost_stage]


def _run_zigzag(layer: Layer, platform: Platform, buffer_words: int | None, settings: SearchSettings,
                lazy_latency: bool = True):
    from zigzag.mapping.temporal_mapping import TemporalMappingType
    from zigzag.stages.main import MainStage
    main = MainStage(
        list_of_callables=_stages(lazy_latency),
        accelerator=str(platform.hardware_file(buffer_words)),
        workload=layer_workload(layer, platform.bits),
        mapping=str(platform.mapping_path),
        loma_lpf_limit=settings.lpf_limit,
        loma_show_progress_bar=False,
        nb_mappings_generated=settings.nb_spatial_mappings,
        enable_mix_spatial_mapping_generation=False,
        access_same_data_considered_as_no_access=True,  # as zigzag.api does
        temporal_mapping_type=TemporalMappingType(settings.temporal_mapping_type),
    )
    results = main.run()
    if not results:
        raise ZigZagError(f"ZigZag returned no result for {layer.describe()} on {platform.name}")
    return results[0][0]


def _summarize(cme, platform: Platform) -> ZigZagResult:
    from zigzag.mapping.data_movement import DataDirection, DataMoveAttr
    mem_energy: dict[str, float] = {}
    dram: dict[str, float] = {"X": 0, "W": 0, "Y": 0}
    energy_dram = 0.0
    for layer_op, breakdown in cme.mem_energy_breakdown.items():
        ours = _OPERAND_NAMES.get(str(layer_op), str(layer_op))
        mem_op = cme.memory_operand_links.layer_to_mem_op(layer_op)
        levels = cme.accelerator.memory_hierarchy.get_memory_levels(mem_op=mem_op)
        for level, e in zip(levels, breakdown):
            key = f"{level.name}/{ours}"
            mem_energy[key] = mem_energy.get(key, 0.0) + float(e)
        energy_dram += float(breakdown[-1])
        top = cme.mapping.unit_mem_data_movement[layer_op][-1]
        moves = top.get_attribute(DataMoveAttr.DATA_ELEM_MOVE_COUNT)
        if ours == "Y":
            words = moves.get(DataDirection.WR_IN_BY_LOW) + moves.get(DataDirection.RD_OUT_TO_LOW)
        else:
            words = moves.get(DataDirection.RD_OUT_TO_LOW)
        dram[ours] = int(words)
    return ZigZagResult(
        energy_pJ=float(cme.energy_total),
        energy_mac_pJ=float(cme.mac_energy),
        energy_memory_pJ=float(cme.mem_energy),
        energy_dram_pJ=energy_dram,
        dram_words_X=int(dram["X"]), dram_words_W=int(dram["W"]), dram_words_Y=int(dram["Y"]),
        cycles=float(cme.latency_total2),
        macs=int(cme.layer.total_mac_count),
        memory_energy_pJ=mem_energy,
    )


def estimate(layer: Layer, platform: str | Platform, buffer_words: int | None = None,
             settings: SearchSettings = SearchSettings(), *, lazy_latency: bool = True) -> ZigZagResult:
    """ZigZag's minimal-energy estimate of ``layer`` on ``platform`` with a Buffer of ``buffer_words``.

    ``buffer_words`` None keeps the platform's own Buffer.  Deterministic: the same
    arguments give bit-identical results.  ``lazy_latency`` False runs ZigZag's own
    reduction (same result, slower; for checking).  Raises ZigZagError if ZigZag finds
    no mapping.
    """
    plat = get_platform(platform) if isinstance(platform, str) else platform
    with _quiet():
        try:
            cme = _run_zigzag(layer, plat, buffer_words, settings, lazy_latency)
        except ZigZagError:
            raise
        except Exception as exc:  # ZigZag signals "no valid mapping" with several exception types
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ZigZagError(f"ZigZag failed on {layer.describe()} on {plat.name}: "
                              f"{type(exc).__name__}: {first}") from exc
        return _summarize(cme, plat)
