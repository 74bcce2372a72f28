#!/usr/bin/env bash
# The test command: lint, then every test (Triton kernels under the interpreter on the CPU, or compiled
# on the GPU when there is one (pytest --device), the static sm_80/sm_90 compile audit, the roofline
# and claims). Extra arguments go to pytest. ruff is optional outside CI (CI=true requires it).
set -euo pipefail
source "$(dirname "$0")/env.sh"
if "$PY" -m ruff --version >/dev/null 2>&1; then
    "$PY" -m ruff check .
elif [ "${CI:-}" = true ]; then
    echo "ridgebench: ruff is required in CI but not installed" >&2
    exit 1
else
    echo "lint skipped: ruff not installed"
fi
"$PY" -m pytest "$@"
