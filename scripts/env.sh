# Sourced by scripts/bench.sh and scripts/test.sh: create or reuse the virtual environment and install
# what ridgebench needs. Sets $PY to the environment's python.
#
#   RIDGEBENCH_VENV        where the environment lives (default: .venv in the checkout)
#   RIDGEBENCH_TORCH_INDEX a pip index for torch, e.g. https://download.pytorch.org/whl/cpu on a
#                          CPU-only machine outside this project, to avoid PyPI's multi-GB CUDA build
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${RIDGEBENCH_VENV:-$ROOT/.venv}
HOST_PY=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
    if "$HOST_PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
        # A GPU machine: keep its own CUDA torch and the triton that torch pins.
        echo "ridgebench: CUDA torch found on $HOST_PY; the environment will use it" >&2
        "$HOST_PY" -m venv --system-site-packages "$VENV"
    else
        "$HOST_PY" -m venv "$VENV"
    fi
fi
PY=$VENV/bin/python

stamp=$VENV/.ridgebench-installed
want=$(cat pyproject.toml scripts/env.sh | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    if ! "$PY" -c 'import torch' 2>/dev/null; then
        # No torch yet: the CPU build (a local file on this project's machines).
        if [ -n "${RIDGEBENCH_TORCH_INDEX:-}" ]; then
            "$PY" -m pip install --quiet --index-url "$RIDGEBENCH_TORCH_INDEX" "torch==2.13.0"
        else
            "$PY" -m pip install --quiet "torch==2.13.0"
        fi
    fi
    "$PY" -m pip install --quiet "$ROOT[dev]"
    echo "$want" > "$stamp"
fi
export PY
