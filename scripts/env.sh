# Sourced by scripts/bench.sh, scripts/test.sh and scripts/gpu-check.sh: create or reuse the virtual
# environment and install only what is missing. Sets $PY to the environment's python.
#
# No network is needed when the packages are already there: the venv sees the host python's packages
# when that python has torch (a CUDA or a CPU build), and scripts/deps.py compares pyproject.toml's
# requirements with what is installed; pip runs only for what is missing (never a build of the project
# itself), and never for torch when torch is importable.
#
#   RIDGEBENCH_VENV        where the environment lives (default: .venv in the checkout)
#   PYTHON                 the host python (default: python3)
#   RIDGEBENCH_TORCH_INDEX a pip index for torch, e.g. https://download.pytorch.org/whl/cpu on a
#                          CPU-only machine outside this project, to avoid PyPI's multi-GB CUDA build
#   RIDGEBENCH_DRY_RUN=1   print what would be installed, install nothing
#   CI=true                ruff is required (outside CI it is optional and the lint is skipped)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${RIDGEBENCH_VENV:-$ROOT/.venv}
HOST_PY=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
    "$HOST_PY" -m venv "$VENV"
    if "$HOST_PY" -c 'import torch' 2>/dev/null; then
        # Keep the machine's own torch (CUDA or CPU), the triton it pins and whatever else it has. Like
        # `venv --system-site-packages`, but it also works when $HOST_PY is itself a venv or conda env:
        # the host's package folders come after the venv's own, so what is installed here wins.
        echo "ridgebench: torch found on $HOST_PY; the environment reuses its packages" >&2
        "$HOST_PY" -c 'import site, sys; dirs = site.getsitepackages() + ([site.getusersitepackages()] if site.ENABLE_USER_SITE else []); print("import site; " + "; ".join(f"site.addsitedir({d!r})" for d in dirs))' \
            > "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/ridgebench-host.pth"
    fi
fi
PY=$VENV/bin/python

missing=$("$PY" scripts/deps.py missing) || { echo "ridgebench: set-up stopped (see above)" >&2; exit 1; }
if [ -n "$missing" ]; then
    echo "ridgebench: installing what is missing: $(echo "$missing" | tr '\n' ' ')" >&2
    if [ "${RIDGEBENCH_DRY_RUN:-0}" = 1 ]; then
        echo "ridgebench: dry run, nothing installed" >&2
    else
        torch_req=$(echo "$missing" | grep '^torch' || true)
        rest=$(echo "$missing" | grep -v '^torch' || true)
        if [ -n "$torch_req" ]; then
            # No torch at all: the CPU build (a local file on this project's machines).
            if [ -n "${RIDGEBENCH_TORCH_INDEX:-}" ]; then
                "$PY" -m pip install --quiet --index-url "$RIDGEBENCH_TORCH_INDEX" "torch==2.13.0"
            else
                "$PY" -m pip install --quiet "torch==2.13.0"
            fi
        fi
        if [ -n "$rest" ]; then
            echo "$rest" | tr '\n' '\0' | xargs -0 "$PY" -m pip install --quiet
        fi
        "$PY" scripts/deps.py check
    fi
fi
export PY
