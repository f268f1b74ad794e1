#!/usr/bin/env bash
# Run every benchmark (speed targets and slow checks), one after another.
# Installs the project first; takes a few minutes (ZigZag throughput dominates).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e .
for b in bench_bounds.py gap_report.py bench_tile_search.py bench_validate.py bench_nested.py bench_hardening.py; do
  echo "== benchmarks/$b"
  python3 "benchmarks/$b"
done
echo "== benchmarks/bench_zigzag.py --layers 4 (ZigZag layers per minute, no cache)"
python3 benchmarks/bench_zigzag.py --layers 4
