"""Start-up speed of the command line against ``python -c "import numpy"``.

Whole processes are timed (start to exit, imports included), each command interleaved
with the yardstick run by run (A B A B ...), and the ratio is the median of the pairwise
ratios, so a machine that drifts in speed does not bias it.  Commands:

* ``bounds`` for one layer (target: <= 1.3 x (import numpy + the computation itself)),
* ``--help`` (must import neither pandas nor sympy),
* ``bounds --network resnet50 --json``,
* ``bounds --network resnet50 --arch eyeriss_like`` (the floor and the best nested
  schedule per layer; measured 2.7 x the same command without ``--arch`` with
  farm-bench, 2026-12-03: the schedule's beam search is ~80% of it).

It also lists which heavy modules (sympy, pandas, scipy, matplotlib) each command
imports, read from the process itself.  Run: ``python benchmarks/bench_cli.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

LAYER = ["--c", "64", "--d", "64", "--hw", "56", "--k", "3", "--pad", "1", "--M", "64K"]
COMMANDS = {
    "bounds one layer": ["bounds", *LAYER],
    "--help": ["--help"],
    "bounds --network resnet50 --json": ["bounds", "--network", "resnet50", "--M", "64K", "--json"],
    "bounds --network resnet50 --arch eyeriss_like": ["bounds", "--network", "resnet50", "--M", "64K",
                                                      "--arch", "eyeriss_like"],
}
YARDSTICK = [sys.executable, "-c", "import numpy"]
HEAVY = ("sympy", "pandas", "scipy", "matplotlib")

_PROBE = """
import sys
from energy_complexity.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print("HEAVY", ",".join(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)
"""


def _wall(cmd: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - t


def cli(argv: list[str]) -> list[str]:
    return [sys.executable, "-m", "energy_complexity.cli", *argv]


def paired(cmd: list[str], runs: int) -> dict:
    """Median seconds of ``cmd`` and of the yardstick, and the median of the pairwise ratios."""
    _wall(cmd), _wall(YARDSTICK)  # warm-up: file cache, .pyc
    a, b = [], []
    for _ in range(runs):
        a.append(_wall(cmd))
        b.append(_wall(YARDSTICK))
    return {"cmd": statistics.median(a), "numpy": statistics.median(b),
            "ratio": statistics.median(x / y for x, y in zip(a, b))}


def heavy_modules(argv: list[str]) -> str:
    p = subprocess.run([sys.executable, "-c", _PROBE.format(argv=argv, heavy=HEAVY)],
                       capture_output=True, text=True, check=False)
    line = [ln for ln in p.stderr.splitlines() if ln.startswith("HEAVY")]
    return (line[-1].split(" ", 1)[1] if line and " " in line[-1] else "") or "none"


def compute_seconds() -> float:
    """In-process time of the one-layer computation itself (evaluate, warm), best of 5."""
    from bounds.api import evaluate
    from complexity import Layer, Machine
    L, m = Layer.conv(64, 64, 56, 3, pad=1), Machine(M=65536)
    evaluate(L, m)
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        evaluate(L, m)
        best = min(best, time.perf_counter() - t)
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9, help="pairs of runs per command (default %(default)s)")
    args = ap.parse_args()
    comp = compute_seconds()
    print(f"one-layer computation in process: {comp * 1e3:.1f} ms")
    print(f"{'command':<34} {'median s':>9} {'numpy s':>8} {'ratio':>6}  heavy modules imported")
    for name, argv in COMMANDS.items():
        r = paired(cli(argv), args.runs)
        extra = ""
        if name == "bounds one layer":
            extra = f"; vs numpy + computation: {r['cmd'] / (r['numpy'] + comp):.2f}x (target <= 1.3)"
        print(f"{name:<34} {r['cmd']:>9.3f} {r['numpy']:>8.3f} {r['ratio']:>6.2f}  {heavy_modules(argv)}{extra}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
