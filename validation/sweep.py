"""Many ZigZag estimates in parallel, each finished one cached on disk at once.

A task is (layer, platform, Buffer size, search settings).  Its result is stored as
one small JSON file named by a hash of everything that determines it: the layer,
the platform (and a hash of its hardware and mapping files), the Buffer size in
words, the tool and its version, and the search settings.  Files are written
atomically (temporary file + rename) by the process that computed them, so a
sweep killed at any moment loses only the layers in flight, and a rerun computes
exactly the missing ones.  Ctrl-C raises ``SweepInterrupted`` (a KeyboardInterrupt)
that says how many estimates are on disk; joblib workers ignore SIGINT
and are stopped by the main process, so an interrupt prints no worker tracebacks.  Results of different tool versions live in different
subdirectories (``zigzag-3.9.1/...``) and are never mixed: a cache holding other
versions says so, and appending to a CSV written by another version is refused.

Parallelism goes through joblib, so the same sweep runs on a Dask or Ray cluster
by choosing joblib's backend (docs/reference_data.md, "Running on a cluster").
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable, Sequence

from complexity.layer import Layer
from validation import zigzag_backend as zz
from validation.platforms import get_platform, onchip_words
from validation.reference_data import LAYER_COLUMNS

__all__ = ["Task", "ResultCache", "default_cache_dir", "run_sweep", "records_to_frame",
           "ToolVersionMismatch", "SweepStats", "SweepInterrupted"]


class ToolVersionMismatch(ValueError):
    """Results of two versions of the estimator would be mixed."""


class SweepInterrupted(KeyboardInterrupt):
    """A sweep stopped by Ctrl-C: ``cached`` of its ``distinct`` estimates are in ``cache_dir``."""

    def __init__(self, cached: int, distinct: int, cache_dir: Path):
        super().__init__(f"{cached} of {distinct} estimates cached in {cache_dir}")
        self.cached, self.distinct, self.cache_dir = cached, distinct, cache_dir


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/energy-complexity (default ~/.cache/energy-complexity)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "energy-complexity"


@dataclass(frozen=True)
class Task:
    """One estimate to make: ``buffer_words`` None means the platform's own Buffer."""

    layer: Layer
    platform: str
    buffer_words: int | None = None
    settings: zz.SearchSettings = zz.SearchSettings()
    network: str = ""

    @property
    def M(self) -> int:
        """The Buffer capacity in words that this task uses."""
        return self.buffer_words if self.buffer_words is not None else _default_buffer_words(self.platform)

    def key_fields(self, version: str) -> dict:
        plat = get_platform(self.platform)
        return {
            "layer": {k: getattr(self.layer, k) for k in LAYER_COLUMNS},
            "platform": self.platform,
            "platform_files": plat.fingerprint(),
            "M": self.M,
            "tool": zz.TOOL,
            "tool_version": version,
            "settings": self.settings.as_string(),
        }

    def key(self, version: str) -> str:
        text = json.dumps(self.key_fields(version), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:32]


@lru_cache(maxsize=None)
def _default_buffer_words(platform: str) -> int:
    """The platform's own Buffer size (read from its hardware file once per process, not once per task)."""
    return get_platform(platform).default_buffer_words


class ResultCache:
    """A directory of finished estimates, one JSON file each, kept apart per tool version."""

    def __init__(self, root: str | Path | None = None, version: str | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()
        self.version = version or zz.tool_version()
        self.dir = self.root / f"{zz.TOOL}-{self.version}"

    def other_versions(self) -> list[str]:
        """Tool versions other than ours with results in this cache (kept apart, never used)."""
        if not self.root.is_dir():
            return []
        prefix = f"{zz.TOOL}-"
        return sorted(p.name[len(prefix):] for p in self.root.iterdir()
                      if p.is_dir() and p.name.startswith(prefix) and p != self.dir)

    def path(self, task: Task) -> Path:
        return self.dir / task.platform / f"{task.key(self.version)}.json"

    def get(self, task: Task) -> dict | None:
        p = self.path(task)
        try:
            rec = json.loads(p.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if rec.get("tool_version") != self.version:
            raise ToolVersionMismatch(f"cache file {p} holds {zz.TOOL} {rec.get('tool_version')}, "
                                      f"expected {self.version}")
        return rec

    def put(self, task: Task, record: dict) -> Path:
        """Write atomically: a reader sees either no file or the whole record."""
        p = self.path(task)
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(record, f, sort_keys=True)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, p)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return p

    def count(self) -> int:
        """Finished estimates on disk (a write cut short leaves only a hidden temporary file, not counted)."""
        if not self.dir.is_dir():
            return 0
        return sum(1 for p in self.dir.rglob("*.json") if not p.name.startswith(".tmp-"))


#: The estimator the workers call; tests replace it to count calls.
ESTIMATOR: Callable = zz.estimate


def _record(task: Task, version: str, result: zz.ZigZagResult | None, error: str | None,
            seconds: float) -> dict:
    rec = {k: getattr(task.layer, k) for k in LAYER_COLUMNS}
    rec.update({
        "layer_name": task.layer.name, "network": task.network, "platform": task.platform, "M": task.M,
        "tool": zz.TOOL, "tool_version": version, "settings": task.settings.as_string(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seconds": round(seconds, 3), "error": error,
    })
    if result is not None:
        rec.update(result.to_dict())
    return rec


def compute(task: Task, cache_root: str, version: str, estimator: Callable | None = None) -> tuple[dict, bool]:
    """Estimate one task unless cached; cache it before returning.  Returns (record, computed).

    ``estimator`` defaults to the module's ``ESTIMATOR``; workers receive it explicitly so that
    a replaced estimator reaches other processes too.
    """
    cache = ResultCache(cache_root, version)
    hit = cache.get(task)
    if hit is not None:
        return hit, False
    estimator = estimator if estimator is not None else ESTIMATOR
    t0 = time.perf_counter()
    try:
        res, err = estimator(task.layer, task.platform, task.buffer_words, task.settings), None
    except zz.ZigZagError as exc:  # deterministic: cache the failure, do not retry it forever
        res, err = None, str(exc)
    rec = _record(task, version, res, err, time.perf_counter() - t0)
    cache.put(task, rec)
    return rec, True


@dataclass
class SweepStats:
    """Counts of one sweep; ``to_compute`` is set before the first estimate, the rest as it goes."""

    total: int = 0
    cached: int = 0
    computed: int = 0
    failed: int = 0
    seconds: float = 0.0
    to_compute: int = 0


def run_sweep(tasks: Sequence[Task], cache: ResultCache | None = None, jobs: int = 1,
              progress: bool = True, stats: SweepStats | None = None,
              desc: str = "zigzag", on_plan: Callable[[SweepStats], None] | None = None) -> list[dict]:
    """Records (one dict per task, in task order) for every task, computing only uncached ones.

    ``jobs`` > 1 runs joblib workers (processes; the active joblib backend decides
    where, e.g. a Dask cluster).  A tqdm progress bar counts finished tasks.
    ``on_plan(stats)`` is called once the cache has been read (``stats.cached`` and
    ``stats.to_compute`` set), before anything is computed.  Ctrl-C raises
    ``SweepInterrupted``; every estimate finished by then is in the cache.
    """
    from tqdm.auto import tqdm

    cache = cache or ResultCache()
    stats = stats if stats is not None else SweepStats()
    t0 = time.perf_counter()
    stats.total = len(tasks)
    out: list[dict | None] = [None] * len(tasks)
    todo: list[int] = []
    # the same task twice is computed once
    first_of: dict[str, int] = {}
    dupes: list[tuple[int, int]] = []
    try:
        for i, t in enumerate(tasks):
            k = t.key(cache.version)
            if k in first_of:
                dupes.append((i, first_of[k]))
                continue
            first_of[k] = i
            hit = cache.get(t)
            if hit is not None:
                out[i] = hit
                stats.cached += 1
            else:
                todo.append(i)
        stats.to_compute = len(todo)
        if on_plan is not None:
            on_plan(stats)
        bar = tqdm(total=len(first_of), initial=stats.cached, desc=desc, unit="layer",
                   disable=not progress, dynamic_ncols=True)
        try:
            _compute_all(tasks, todo, cache, jobs, out, stats, bar)
        except KeyboardInterrupt:
            bar.leave = False  # the caller's one line replaces the bar
            raise
        finally:
            bar.close()
            stats.seconds = time.perf_counter() - t0
    except KeyboardInterrupt:  # count from disk: workers may have finished more than this process saw
        distinct = {}
        for t in tasks:
            distinct.setdefault(t.key(cache.version), t)
        done = sum(1 for t in distinct.values() if cache.path(t).is_file())
        raise SweepInterrupted(done, len(distinct), cache.dir) from None
    for i, j in dupes:
        out[i] = out[j]
    stats.failed = sum(1 for r in out if r is not None and r.get("error"))
    return out  # type: ignore[return-value]


def _compute_all(tasks, todo, cache, jobs, out, stats, bar) -> None:
    """Compute the tasks ``todo`` into ``out`` in this process or in joblib workers."""
    if jobs <= 1 or len(todo) <= 1:
        for i in todo:
            rec, computed = compute(tasks[i], str(cache.root), cache.version)
            out[i] = rec
            stats.computed += computed
            stats.cached += not computed
            bar.update(1)
        return
    from joblib import Parallel, delayed
    par = Parallel(n_jobs=jobs, return_as="generator_unordered", batch_size=1)
    calls = (delayed(_compute_indexed)(i, tasks[i], str(cache.root), cache.version, ESTIMATOR, os.getpid())
             for i in todo)
    with _sigint_ignored_while_starting():
        gen = par(calls)
    try:
        for i, rec, computed in gen:
            out[i] = rec
            stats.computed += computed
            stats.cached += not computed
            bar.update(1)
    finally:
        gen.close()  # on an interrupt: joblib stops the workers before the caller counts the cache


@contextmanager
def _sigint_ignored_while_starting():
    """Ignore SIGINT in this process while joblib starts its workers, which inherit the disposition.

    A Ctrl-C in a terminal goes to the whole process group; ignored in the workers, it stops
    only the main process, which stops the sweep (no worker prints a traceback).  Workers
    started later ignore it from their first task on (``_compute_indexed``).  A no-op off
    the main thread, where signal handlers cannot be set.
    """
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _compute_indexed(i: int, task: Task, cache_root: str, version: str, estimator: Callable | None = None,
                     parent_pid: int | None = None):
    if parent_pid is not None and os.getpid() != parent_pid:  # a worker process: Ctrl-C is the parent's
        import signal
        import threading
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.SIG_IGN)
    rec, computed = compute(task, cache_root, version, estimator)
    return i, rec, computed


#: Columns of a sweep's CSV, after the layer columns.
RESULT_COLUMNS = ("layer_name", "network", "platform", "M", "energy_pJ", "energy_mac_pJ",
                  "energy_memory_pJ", "energy_dram_pJ", "dram_words", "dram_words_X", "dram_words_W",
                  "dram_words_Y", "cycles", "macs", "tool", "tool_version", "settings", "date")


@lru_cache(maxsize=None)
def _onchip(platform: str, buffer_words: int) -> int:
    return onchip_words(platform, buffer_words)


def records_to_frame(records: Iterable[dict], with_memory_breakdown: bool = True):
    """A reference-energy DataFrame (validation.reference_data layout) of the successful records.

    ``M_onchip`` is the platform's total on-chip capacity in words with that Buffer
    (validation.platforms.onchip_words), computed here rather than cached, so that
    cached results need no recomputation.  With ``with_memory_breakdown``, one extra
    column ``mem_<memory>/<operand>_pJ`` per memory level and operand.  Raises
    ToolVersionMismatch if the records come from several tool versions.
    """
    import pandas as pd
    ok = [r for r in records if r is not None and not r.get("error")]
    versions = sorted({str(r["tool_version"]) for r in ok})
    if len(versions) > 1:
        raise ToolVersionMismatch(f"records of several {zz.TOOL} versions ({', '.join(versions)}) "
                                  "would be mixed in one table")
    rows = []
    for r in ok:
        row = {k: r[k] for k in LAYER_COLUMNS}
        row.update({k: r.get(k) for k in RESULT_COLUMNS})
        row["M_onchip"] = _onchip(row["platform"], int(row["M"]))
        if with_memory_breakdown:
            for k, v in sorted((r.get("memory_energy_pJ") or {}).items()):
                row[f"mem_{k}_pJ"] = v
        rows.append(row)
    cols = list(LAYER_COLUMNS) + list(RESULT_COLUMNS) + ["M_onchip"]
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=cols)
    extra = sorted(c for c in df.columns if c not in cols)
    return df.loc[:, cols + extra]
