#!/usr/bin/env bash
# The test command: lint, then every test (Triton kernels under the interpreter on the CPU,
# the static sm_80/sm_90 compile audit, the roofline and claims). Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/env.sh"
"$PY" -m ruff check .
"$PY" -m pytest "$@"
