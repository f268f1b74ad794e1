#!/usr/bin/env bash
# Install the project, then run the main job on the bundled default layer:
# the energy lower bound and both dataflows' best tiles on the two-level model, the
# floor in pJ on the bundled Eyeriss-like architecture (no mapping can go below it)
# with the best nested schedule found, then the closed forms.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e .
energy-complexity bounds --c 64 --d 64 --hw 56 --k 3 --pad 1 --M 65536 --arch eyeriss_like
energy-complexity derive --k 3 --stride 1
