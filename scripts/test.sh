#!/usr/bin/env bash
# Install the project with its test dependencies, then run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --disable-pip-version-check -e ".[test,torch,web]"
exec python3 -m pytest -q -n 2 "$@"
