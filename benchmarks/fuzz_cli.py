"""Fuzz the command line and the Python API with random and extreme layer / machine specs.

Every CLI call (``bounds`` and ``estimate`` through ``energy_complexity.cli.main``, in
process) must either exit 0 with JSON whose numbers are finite and non-negative (and
LB <= OS, WS where a dataflow fits), or exit 2 with exactly one line on stderr, no
traceback and no numpy repr.  Every API call (``Layer``, ``Machine``, ``evaluate``) must
return such numbers or raise LayerError / MachineError / InfeasibleError with a one-line
message free of numpy reprs.  Each call's wall time and peak memory are recorded (with
--tracemalloc the call's traced peak, numpy's buffers included; else the process peak RSS
when the call raised it); a call over ``--time-limit`` seconds is interrupted and counted
as a failure.

Specs: sizes up to 10^12, M up to 10^15, suffixed and float spellings, negatives, NaN,
inf, text.  Run: ``python benchmarks/fuzz_cli.py [--cli N] [--api N] [--seed S]``; the
test suite runs a few hundred cases through ``run_fuzz`` (tests/test_cli_hardening.py).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import re
import resource
import signal
import sys
import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import seed as hseed  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_NUMPY_REPR = re.compile(r"np\.(float|int|uint|bool|str)\w*\(")

# ----- strategies --------------------------------------------------------------------

_BIG = st.integers(1, 10**12)
_SMALL = st.integers(1, 64)
_JUNK = st.sampled_from(["nan", "NaN", "inf", "-inf", "-1", "-0", "0", "1.5", "abc", "", "1e400", "64KB",
                         "0x10", "1e-3", "2.0", "64K", "1Mi", "1e6", "1_000", " 7 ", "1e19", "9" * 40])


def _spell(n: int):
    """A size written as the CLI accepts it, or nearly: plain, suffixed, float."""
    return st.sampled_from(["plain", "float", "K", "Ki", "exp"]).map(
        lambda how: (str(n) if how == "plain" or (how in ("K", "Ki") and n % 1024) else
                     f"{n}.0" if how == "float" else
                     f"{n // 1024}{how}" if how in ("K", "Ki") else f"{n:.6e}" if n < 10**6 else str(n)))


_size = st.one_of(_SMALL, _SMALL, _BIG, st.integers(1, 4096)).flatmap(_spell)
_M = st.one_of(st.integers(1, 64), st.integers(3, 2**20), st.integers(1, 10**15)).flatmap(_spell)
_value = st.one_of(_size, _size, _JUNK)


@st.composite
def layer_flags(draw) -> list[str]:
    """Flags of one layer: mostly a consistent layer (kernel fits, padding < kernel), sometimes junk."""
    if draw(st.integers(0, 3)) == 0:  # arbitrary flags, arbitrary values
        names = draw(st.lists(st.sampled_from(["b", "c", "d", "h", "w", "hw", "kh", "kw", "k", "stride", "sh", "sw",
                                               "pad", "ph", "pw", "groups"]), max_size=8, unique=True))
        return [x for n in names for x in (f"--{n}", draw(_value))]
    g = draw(st.sampled_from([1, 1, 1, 2, 4]))
    c = g * draw(st.one_of(_SMALL, _BIG))
    d = g * draw(st.one_of(_SMALL, _BIG))
    h = draw(st.one_of(_SMALL, st.integers(1, 10**6), _BIG))
    w = draw(st.one_of(st.just(h), _SMALL, st.integers(1, 10**6)))
    k = draw(st.integers(1, 11))
    p = draw(st.integers(0, k - 1))
    s = draw(st.one_of(st.integers(1, 4), st.integers(1, 10**6)))
    flags = ["--c", str(c), "--d", str(d), "--h", str(h), "--w", str(w), "--k", str(k)]
    if p:
        flags += ["--pad", str(p)]
    if s > 1:
        flags += ["--stride", str(s)]
    if g > 1:
        flags += ["--groups", str(g)]
    if draw(st.booleans()):
        flags += ["--b", str(draw(st.one_of(st.integers(1, 8), _BIG)))]
    return flags


@st.composite
def cli_argv(draw) -> list[str]:
    cmd = draw(st.sampled_from(["bounds", "bounds", "bounds", "estimate"]))
    argv = [cmd, *draw(layer_flags())]
    if cmd == "bounds":
        argv += ["--M", draw(st.one_of(_M, _M, _M, _JUNK))]
        for cost in ("--eD", "--eB", "--eM"):
            if draw(st.integers(0, 5)) == 0:
                argv += [cost, draw(st.sampled_from(["0", "1", "200", "1e300", "nan", "inf", "-1", "x"]))]
    if draw(st.integers(0, 5)) == 0:
        argv += ["--bits", draw(st.sampled_from(["1", "8", "16", "64", "0", "65", "nan", "8.5"]))]
    return argv + ["--json"]


_api_num = st.one_of(
    st.integers(-3, 64), st.integers(1, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([float("nan"), float("inf"), 2.5, 4.0, "x", None, True]),
    st.integers(1, 64).map(lambda v: __import__("numpy").float64(v)),
    st.sampled_from(["nan", "inf", "2.5"]).map(lambda v: __import__("numpy").float64(v)))


@st.composite
def api_spec(draw) -> tuple[dict, dict]:
    if draw(st.booleans()):
        layer = {"c": draw(st.one_of(_SMALL, _BIG)), "d": draw(st.one_of(_SMALL, _BIG)),
                 "h": draw(st.one_of(_SMALL, st.integers(1, 10**6))),
                 "w": draw(st.one_of(_SMALL, st.integers(1, 10**6))),
                 "kh": 1, "kw": 1}
        layer["kh"] = draw(st.integers(1, min(layer["h"], 7)))
        layer["kw"] = draw(st.integers(1, min(layer["w"], 7)))
    else:
        layer = {f: draw(_api_num) for f in draw(st.lists(st.sampled_from(
            ["b", "c", "d", "h", "w", "kh", "kw", "sh", "sw", "ph", "pw", "groups"]), max_size=6, unique=True))}
        layer.setdefault("c", draw(_api_num))
        layer.setdefault("d", draw(_api_num))
    machine = {"M": draw(st.one_of(st.integers(1, 10**15), st.integers(1, 2**20), _api_num))}
    if draw(st.integers(0, 3)) == 0:
        machine["eD"] = draw(_api_num)
    return layer, machine


# ----- checks ------------------------------------------------------------------------

class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


@dataclass
class Stats:
    """Counts, the worst time and memory, and the failures (kept, not raised, for a full report)."""

    calls: int = 0
    ok: int = 0
    refused: int = 0
    worst_s: float = 0.0
    worst_s_case: object = None
    worst_bytes: int = 0
    worst_bytes_case: object = None
    failures: list = field(default_factory=list)

    def record(self, case, seconds: float, peak: int) -> None:
        self.calls += 1
        if self.calls % 500 == 0:  # progress, so that a long run that is stopped still says something
            print(f"  ... {self.calls} calls, {len(self.failures)} failures, worst {self.worst_s:.2f} s, "
                  f"{self.worst_bytes / 2**20:.0f} MiB", file=sys.stderr, flush=True)
        if seconds > self.worst_s:
            self.worst_s, self.worst_s_case = seconds, case
        if peak > self.worst_bytes:
            self.worst_bytes, self.worst_bytes_case = peak, case

    def summary(self, name: str) -> str:
        return (f"{name}: {self.calls} calls, {self.ok} ok, {self.refused} refused with one line, "
                f"{len(self.failures)} failures; worst time {self.worst_s:.3f} s ({self.worst_s_case}); "
                f"worst peak memory {self.worst_bytes / 2**20:.1f} MiB ({self.worst_bytes_case})")


def _numbers(obj, path=""):
    """(path, value) of every number in a JSON tree."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, str):
        return
    if isinstance(obj, (int, float)):
        yield path, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _numbers(v, f"{path}.{k}")
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _numbers(v, f"{path}[{i}]")


def check_json(out: str) -> str | None:
    """None when every number is finite and >= 0 and LB <= each feasible dataflow; else the reason."""
    try:
        data = json.loads(out)
    except ValueError as exc:
        return f"stdout is not JSON: {exc}"
    for path, v in _numbers(data):
        if not math.isfinite(v) or v < 0:
            return f"{path} = {v}"
    if isinstance(data, dict) and "lower_bound" in data:
        for df in ("os", "ws"):
            if data.get(df) is not None and data[df]["Q"] < data["lower_bound"]["Q"]:
                return f"{df} Q {data[df]['Q']} below the lower bound {data['lower_bound']['Q']}"
            if data.get(df) is None and df not in data.get("infeasible", {}):
                return f"{df} is null without a reason"
    return None


def _maxrss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _timed(fn, limit: float):
    """(result or exception, seconds, peak bytes) of fn(), interrupted after ``limit`` seconds.

    Peak bytes: with tracemalloc on, the traced peak of the call (numpy's buffers included);
    otherwise the process's peak RSS when the call raised it, else 0 (the call that set the
    final peak is the worst one either way).
    """
    tracing = tracemalloc.is_tracing()
    if tracing:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
    rss0 = _maxrss()
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, limit)
    t = time.perf_counter()
    try:
        res = fn()
    except BaseException as exc:  # noqa: BLE001 - every outcome is classified by the caller
        res = exc
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    seconds = time.perf_counter() - t
    if tracing:
        return res, seconds, max(0, tracemalloc.get_traced_memory()[1] - base)
    rss1 = _maxrss()
    return res, seconds, rss1 if rss1 > rss0 else 0


def cli_case(argv: list[str], stats: Stats, limit: float) -> None:
    from energy_complexity.cli import main
    out, err = io.StringIO(), io.StringIO()

    def call():
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                return main(argv)
            except SystemExit as exc:  # argparse: --help or a usage error
                return exc.code

    res, seconds, peak = _timed(call, limit)
    stats.record(argv, seconds, peak)
    e = err.getvalue()
    if isinstance(res, _Timeout):
        stats.failures.append((argv, f"over {limit} s"))
    elif isinstance(res, BaseException):
        stats.failures.append((argv, f"raised {type(res).__name__}: {str(res)[:200]}"))
    elif res == 0:
        why = check_json(out.getvalue())
        if why:
            stats.failures.append((argv, why))
        else:
            stats.ok += 1
    elif res == 2:
        lines = e.strip().splitlines()
        if len(lines) != 1 or "Traceback" in e or _NUMPY_REPR.search(e) or out.getvalue():
            stats.failures.append((argv, f"exit 2 but stderr {e[:300]!r}"))
        else:
            stats.refused += 1
    else:
        stats.failures.append((argv, f"exit {res}: {e[:300]!r}"))


def api_case(spec: tuple[dict, dict], stats: Stats, limit: float) -> None:
    from bounds.api import evaluate
    from bounds.result import InfeasibleError
    from complexity import Layer, LayerError, Machine, MachineError

    layer_kw, machine_kw = spec
    res, seconds, peak = _timed(lambda: evaluate(Layer(**layer_kw), Machine(**machine_kw)), limit)
    case = (layer_kw, machine_kw)
    stats.record(case, seconds, peak)
    if isinstance(res, _Timeout):
        stats.failures.append((case, f"over {limit} s"))
    elif isinstance(res, (LayerError, MachineError, InfeasibleError)):
        msg = str(res)
        if "\n" in msg or _NUMPY_REPR.search(msg):
            stats.failures.append((case, f"message {msg!r}"))
        else:
            stats.refused += 1
    elif isinstance(res, BaseException):
        stats.failures.append((case, f"raised {type(res).__name__} (not a project error): {str(res)[:200]}"))
    else:
        why = check_json(json.dumps(res.to_json()))
        if why:
            stats.failures.append((case, why))
        else:
            stats.ok += 1


def run_fuzz(n_cli: int, n_api: int, seed: int = 0, limit: float = 10.0,
             trace: bool = False) -> tuple[Stats, Stats]:
    """Run ``n_cli`` CLI cases and ``n_api`` API cases; return their Stats (failures listed, not raised).

    ``trace`` measures each call's memory with tracemalloc (exact per call, ~2x slower);
    otherwise by the process's peak RSS.
    """
    cli_stats, api_stats = Stats(), Stats()
    common = dict(deadline=None, database=None, derandomize=False, print_blob=False,
                  suppress_health_check=list(HealthCheck))
    started = trace and not tracemalloc.is_tracing()
    if started:
        tracemalloc.start()
    try:
        @hseed(seed)
        @settings(max_examples=max(n_cli, 1), **common)
        @given(cli_argv())
        def fuzz_cli(argv):
            cli_case(argv, cli_stats, limit)

        @hseed(seed)
        @settings(max_examples=max(n_api, 1), **common)
        @given(api_spec())
        def fuzz_api(spec):
            api_case(spec, api_stats, limit)

        if n_cli:
            fuzz_cli()
        if n_api:
            fuzz_api()
    finally:
        if started:
            tracemalloc.stop()
    return cli_stats, api_stats


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cli", type=int, default=8000, help="CLI cases (default %(default)s)")
    ap.add_argument("--api", type=int, default=4000, help="API cases (default %(default)s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-limit", type=float, default=10.0, help="seconds per call (default %(default)s)")
    ap.add_argument("--tracemalloc", action="store_true",
                    help="per-call traced peak memory (slower) instead of the process peak RSS")
    ap.add_argument("--max-memory-gib", type=float, default=4.0,
                    help="address-space limit of this process: a call beyond it fails with MemoryError "
                         "instead of swapping the machine (default %(default)s)")
    args = ap.parse_args()
    lim = int(args.max_memory_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (lim, lim))
    t = time.perf_counter()
    cli_stats, api_stats = run_fuzz(args.cli, args.api, args.seed, args.time_limit, args.tracemalloc)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(cli_stats.summary("CLI"))
    print(api_stats.summary("API"))
    print(f"total {cli_stats.calls + api_stats.calls} calls in {time.perf_counter() - t:.0f} s; "
          f"process max RSS {rss:.0f} MiB")
    for name, s in (("CLI", cli_stats), ("API", api_stats)):
        kinds: dict = {}
        for case, why in s.failures:
            who = case[0] if name == "CLI" else "evaluate"
            kinds.setdefault(f"{who}: " + re.sub(r"\d+", "N", why)[:90], []).append((case, why))
        for k, items in sorted(kinds.items(), key=lambda kv: -len(kv[1])):
            print(f"  {name} failure x{len(items)}: {k.split(':')[0]}: {items[0][1][:160]}  e.g. {items[0][0]}")
    return 1 if cli_stats.failures or api_stats.failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
