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
#   RIDGEBENCH_DRY_RUN=1   print what would be installed and what an install failure would mean
#                          (stop at a hard floor, warn at a soft one: scripts/deps.py FLOORS); install nothing
#   CI=true                ruff is required (outside CI it is optional and the lint is skipped)
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VENV=${RIDGEBENCH_VENV:-$ROOT/.venv}
HOST_PY=${PYTHON:-python3}

if [ ! -x "$VENV/bin/python" ]; then
    if ! "$HOST_PY" -m venv "$VENV" 2>/dev/null; then
        # A python without ensurepip (Debian's python3 without python3-venv): a venv without pip (pip then
        # comes from the host python, if it has one), or else the host python itself.
        rm -rf "$VENV"
        if "$HOST_PY" -m venv --without-pip "$VENV" 2>/dev/null; then
            echo "ridgebench: $HOST_PY cannot put pip in a venv (no ensurepip): $VENV has none" >&2
        else
            rm -rf "$VENV"
            echo "ridgebench: $HOST_PY cannot create a venv; using $HOST_PY itself" >&2
            VENV=
        fi
    fi
    if [ -n "$VENV" ] && "$HOST_PY" -c 'import torch' 2>/dev/null; then
        # Keep the machine's own torch (CUDA or CPU), the triton it pins and whatever else it has. Like
        # `venv --system-site-packages`, but it also works when $HOST_PY is itself a venv or conda env:
        # the host's package folders come after the venv's own, so what is installed here wins.
        echo "ridgebench: torch found on $HOST_PY; the environment reuses its packages" >&2
        "$HOST_PY" -c 'import site, sys; dirs = site.getsitepackages() + ([site.getusersitepackages()] if site.ENABLE_USER_SITE else []); print("import site; " + "; ".join(f"site.addsitedir({d!r})" for d in dirs))' \
            > "$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/ridgebench-host.pth"
    fi
fi
PY=${VENV:+$VENV/bin/python}
PY=${PY:-$(command -v "$HOST_PY")}

# pip: the environment's own, else the host python's pointed at it (pip >= 22.3), else none
PIP=("$PY" -m pip)
if ! "$PY" -m pip --version >/dev/null 2>&1; then
    if "$HOST_PY" -m pip --version >/dev/null 2>&1; then PIP=("$HOST_PY" -m pip --python "$PY"); else PIP=(); fi
fi

missing=$("$PY" scripts/deps.py missing) || { echo "ridgebench: set-up stopped (see above)" >&2; exit 1; }
export RIDGEBENCH_SOFT_FLOORS=
if [ -n "$missing" ]; then
    echo "ridgebench: installing what is missing: $(echo "$missing" | tr '\n' ' ')" >&2
    if [ "${RIDGEBENCH_DRY_RUN:-0}" = 1 ]; then
        echo "ridgebench: dry run, nothing installed" >&2
        "$PY" scripts/deps.py explain
    else
        torch_req=$(echo "$missing" | grep '^torch' || true)
        rest=$(echo "$missing" | grep -v '^torch' || true)
        if [ ${#PIP[@]} = 0 ]; then
            echo "ridgebench: no pip for $PY (nor for $HOST_PY): nothing can be installed" >&2
        else
            # Offline or refused: not fatal here. deps.py check decides below, floor by floor.
            if [ -n "$torch_req" ]; then
                # No torch at all: the CPU build (a local file on this project's machines).
                if [ -n "${RIDGEBENCH_TORCH_INDEX:-}" ]; then
                    "${PIP[@]}" install --quiet --index-url "$RIDGEBENCH_TORCH_INDEX" "torch==2.13.0" \
                        || echo "ridgebench: pip could not install torch==2.13.0" >&2
                else
                    "${PIP[@]}" install --quiet "torch==2.13.0" || echo "ridgebench: pip could not install torch==2.13.0" >&2
                fi
            fi
            if [ -n "$rest" ]; then
                echo "$rest" | tr '\n' '\0' | xargs -0 "${PIP[@]}" install --quiet \
                    || echo "ridgebench: pip could not install: $(echo "$rest" | tr '\n' ' ')" >&2
            fi
        fi
        soft=$("$PY" scripts/deps.py check) || { echo "ridgebench: set-up stopped before any step" >&2; exit 1; }
        export RIDGEBENCH_SOFT_FLOORS=$soft
    fi
fi
export PY
