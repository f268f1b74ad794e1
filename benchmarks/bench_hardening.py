"""Time and peak memory of the searches that used to hang or blow up (issue 10), each in a fresh process.

Run: python benchmarks/bench_hardening.py [--quick]
For every case prints the wall-clock time of the whole process (Python start-up and imports
included), its CPU time, its peak resident memory (ru_maxrss) and its exit code:
  * the `bounds` and `estimate` command lines of the issue (before: 7 TiB traceback, > 12 GB,
    56 GiB, 34 s / 5.4 GB, MemoryError on a 19999 x 19999 grid, and a loop over 1..c);
  * the `estimate` calls the fuzz (benchmarks/fuzz_cli.py) found running for minutes or past its
    10 s limit (before: 1104 s for h = 1e12 at stride 1885, > 10 s for the others; two are now
    refused in one line: no mapping fits, a kernel of 8.3 million folds);
  * the same layers through the API (bounds.api.evaluate, exhaustive tiles), which has no
    size guard, so the searches themselves are measured even where the CLI refuses a layer;
  * evaluate_table on 5,000 and 50,000 distinct random realistic rows, exact (the default)
    and with exact=False (the fast candidate search).
Targets: every case a few seconds and < 2 GB.  Not a timed test: timings depend on the load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: (label, CLI arguments) of the issue's commands (``bounds`` now needs --M: 64K words as in the issue's others).
COMMANDS = [
    ("bounds c=1e12", ["bounds", "--c", "1000000000000", "--d", "64", "--hw", "56", "--k", "3", "--pad", "1",
                       "--M", "65536"]),
    ("bounds c=1e9", ["bounds", "--c", "1000000000", "--d", "64", "--hw", "56", "--k", "3", "--pad", "1",
                      "--M", "65536"]),
    ("bounds hw=100000", ["bounds", "--c", "64", "--d", "64", "--hw", "100000", "--k", "3", "--pad", "1",
                          "--M", "65536"]),
    ("bounds hw=7168", ["bounds", "--c", "64", "--d", "64", "--hw", "7168", "--k", "3", "--pad", "1",
                        "--M", "65536"]),
    ("bounds c=d=1e8 k=1", ["bounds", "--c", "100000000", "--d", "100000000", "--hw", "7", "--k", "1",
                            "--M", "65536"]),
    ("estimate c=1e12", ["estimate", "--c", "1000000000000", "--d", "64", "--hw", "56", "--k", "3", "--pad", "1"]),
    # estimate calls of benchmarks/fuzz_cli.py that ran for minutes (the first 1104 s) or past its 10 s limit
    ("estimate h=1e12 s=1885 c=9.8e9", ["estimate", "--c", "9756918197", "--d", "2", "--h", "999999999999", "--w", "52",
                                        "--k", "4", "--stride", "1885", "--b", "2"]),
    ("estimate b=1433959 s=104831", ["estimate", "--c", "4068", "--d", "58", "--h", "467", "--w", "467", "--k", "3",
                                     "--pad", "2", "--stride", "104831", "--groups", "2", "--b", "1433959"]),
    ("estimate d=130721 h=402888", ["estimate", "--c", "52", "--d", "130721", "--h", "402888", "--w", "1", "--k", "1"]),
    ("estimate b=224102 s=629", ["estimate", "--c", "660", "--d", "660", "--h", "39317", "--w", "11", "--k", "4",
                                 "--stride", "629", "--b", "224102"]),
    ("estimate b=284046 h=999999", ["estimate", "--c", "88", "--d", "8438", "--h", "999999", "--w", "1", "--k", "5",
                                    "--pad", "4", "--stride", "370", "--groups", "2", "--b", "284046"]),
    ("estimate c=d=4.6e9", ["estimate", "--c", "4622480005", "--d", "4622480005", "--h", "832", "--w", "4", "--k", "8",
                            "--pad", "2", "--b", "8"]),
    ("estimate hw=2.75e11 (refused)", ["estimate", "--c", "184", "--d", "20156", "--hw", "275028125277", "--k", "11",
                                       "--pad", "5", "--stride", "10345", "--groups", "4"]),
    ("estimate kh=1e8 (refused)", ["estimate", "--c", "4", "--d", "4", "--h", "100000000", "--w", "4",
                                   "--kh", "100000000", "--kw", "3"]),
]

#: The same layers through the API: (label, Layer.conv keyword arguments, M).
API_LAYERS = [
    ("evaluate c=1e12", dict(c=10 ** 12, d=64, hw=56, k=3, pad=1), 65536),
    ("evaluate c=1e9", dict(c=10 ** 9, d=64, hw=56, k=3, pad=1), 65536),
    ("evaluate hw=100000", dict(c=64, d=64, hw=100000, k=3, pad=1), 65536),
    ("evaluate hw=7168", dict(c=64, d=64, hw=7168, k=3, pad=1), 65536),
    ("evaluate c=d=1e8 k=1", dict(c=10 ** 8, d=10 ** 8, hw=7, k=1), 65536),
]

# Runs ``body`` in this fresh process and prints one JSON line: its CPU time and peak RSS.
_HARNESS = r"""
import json, resource, sys, time
sys.path.insert(0, {bench!r})
t0, c0 = time.perf_counter(), time.process_time()
code = 0
try:
{body}
except SystemExit as e:
    code = e.code if isinstance(e.code, int) else 1
r = resource.getrusage(resource.RUSAGE_SELF)
print("@@" + json.dumps({{"cpu": time.process_time() - c0, "inner": time.perf_counter() - t0,
                          "rss_mb": r.ru_maxrss / 1024, "code": code}}))
"""


def _run(body: str, timeout: float) -> dict:
    """Run ``body`` (indented Python) in a fresh interpreter; wall time of the whole process, CPU, peak RSS."""
    import time

    src = _HARNESS.format(bench=os.path.join(ROOT, "benchmarks"), body=body)
    t = time.perf_counter()
    try:
        p = subprocess.run([sys.executable, "-c", src], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"wall": timeout, "cpu": float("nan"), "rss_mb": float("nan"), "code": "timeout", "tail": ""}
    wall = time.perf_counter() - t
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("@@")]
    if not lines:
        return {"wall": wall, "cpu": float("nan"), "rss_mb": float("nan"), "code": p.returncode,
                "tail": (p.stderr.strip().splitlines() or [""])[-1]}
    out = json.loads(lines[-1][2:])
    out["wall"] = wall
    err = p.stderr.strip().splitlines()
    out["tail"] = err[-1] if err else ""
    return out


def _cli_body(args: list) -> str:
    return ("    import runpy\n"
            f"    sys.argv = ['energy-complexity'] + {args!r}\n"
            "    import io, contextlib\n"
            "    with contextlib.redirect_stdout(io.StringIO()):\n"
            "        runpy.run_module('energy_complexity.cli', run_name='__main__')\n")


def _api_body(kw: dict, M: int) -> str:
    return ("    from bounds.api import evaluate\n"
            "    from complexity.layer import Layer\n"
            "    from complexity.machine import Machine\n"
            f"    r = evaluate(Layer.conv(**{kw!r}), Machine(M={M}))\n")


def _table_body(n: int, exact: bool) -> str:
    return ("    import pandas as pd\n"
            "    from bench_bounds import random_pairs\n"
            "    from bounds.api import evaluate_table\n"
            f"    P, M = random_pairs({n}, seed=1)\n"
            "    df = pd.DataFrame({**P, 'M': M})\n"
            "    assert len(df.drop_duplicates()) == len(df)\n"
            f"    out = evaluate_table(df, exact={exact})\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="skip the 50,000-row table")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per case (default 300)")
    args = ap.parse_args(argv)
    cases = [(label, _cli_body(a)) for label, a in COMMANDS]
    cases += [(label, _api_body(kw, M)) for label, kw, M in API_LAYERS]
    for n in ((5000,) if args.quick else (5000, 50000)):
        cases += [(f"evaluate_table {n:,} rows exact", _table_body(n, True)),
                  (f"evaluate_table {n:,} rows exact=False", _table_body(n, False))]
    print(f"{'case':38s} {'wall s':>8s} {'cpu s':>8s} {'peak MB':>9s}  exit")
    worst = 0.0
    for label, body in cases:
        r = _run(body, args.timeout)
        worst = max(worst, r["rss_mb"] if r["rss_mb"] == r["rss_mb"] else 0.0)
        note = f"  ({r['tail']})" if r["code"] not in (0, None) and r["tail"] else ""
        print(f"{label:38s} {r['wall']:8.2f} {r['cpu']:8.2f} {r['rss_mb']:9.1f}  {r['code']}{note}", flush=True)
    print(f"largest peak memory: {worst:.0f} MB (target < 2048 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
