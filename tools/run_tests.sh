#!/usr/bin/env bash
# The test suite as CI runs it: install (idempotent), then every test, slow and integration included.
# Extra arguments go to pytest, e.g. `bash tools/run_tests.sh tests/kernels -x`.
# For the fast default subset during development: `.venv/bin/python -m pytest`.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bash tools/install.sh
exec .venv/bin/python -m pytest -m "" "$@"
