#!/usr/bin/env bash
# The main job: benchmark -> results -> roofline -> claims, on the GPU when there is one and on the
# CPU otherwise. Extra arguments go to pytest (e.g. --sweep full, -k gemv).
set -euo pipefail
source "$(dirname "$0")/env.sh"
"$PY" -m pytest --benchmark "$@"
