#!/usr/bin/env bash
# Run the interpreter tests and the sm_80/sm_90 audit under another triton (and optionally other package
# versions), to check that a version floor in pyproject.toml is a tested one:
#
#   scripts/compat.sh 3.6.0                        # triton 3.6.0 (what torch 2.11 pins)
#   scripts/compat.sh 3.6.0 numpy==1.26.4          # ... with other pins too
#   scripts/compat.sh 3.6.0 -- -k softmax          # arguments after -- go to pytest
#
# It builds ~/.cache/ridgebench-compat/triton-VERSION (RIDGEBENCH_COMPAT_DIR), a venv that sees the
# project's environment (scripts/env.sh) and installs only the given versions over it (pip --no-deps: the
# one download is the triton wheel, ~200 MB, once). Exit status: pytest's.
set -euo pipefail
if [ $# -lt 1 ] || [[ "$1" == -* ]]; then
    echo "usage: scripts/compat.sh TRITON_VERSION [PACKAGE==VERSION ...] [-- PYTEST_ARGS ...]" >&2
    exit 2
fi
version=$1; shift
pins=("triton==$version")
while [ $# -gt 0 ] && [ "$1" != "--" ]; do pins+=("$1"); shift; done
[ "${1:-}" = "--" ] && shift
source "$(dirname "$0")/env.sh"
dir=${RIDGEBENCH_COMPAT_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/ridgebench-compat}/triton-$version
CPY=$dir/bin/python
if [ ! -x "$CPY" ]; then
    "$PY" -m venv "$dir"
    # The project's environment behind this venv's own packages (what is installed here wins).
    "$PY" -c 'import site; print("import site; " + "; ".join(f"site.addsitedir({d!r})" for d in site.getsitepackages()))' \
        > "$("$CPY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/ridgebench-base.pth"
fi
"$CPY" -m pip install --quiet --no-deps "${pins[@]}"
"$CPY" - "${pins[@]}" <<'PY'
import sys
from importlib import metadata
import numpy, torch, triton
for pin in sys.argv[1:]:
    name, _, want = pin.partition("==")
    have = metadata.version(name)
    if have != want:
        sys.exit(f"compat: {name} {have} is installed, not {want}")
print(f"compat: triton {triton.__version__}, torch {torch.__version__}, numpy {numpy.__version__}, "
      f"python {sys.version.split()[0]}")
PY
# The interpreter tests (every kernel's test modules, named from the table of ops as tests/conftest.py
# does; the compiled-test helpers; the interpreter fix) and the audit.
kernel_tests=$(cd "$(dirname "$0")/.." && "$CPY" -c \
    'from tests.conftest import KERNEL_TEST_MODULES; print(" ".join(f"tests/{m}.py" for m in sorted(KERNEL_TEST_MODULES)))')
# shellcheck disable=SC2086  # one word per test module
"$CPY" -m pytest --device cpu -p no:cacheprovider $kernel_tests tests/test_compiled.py \
    tests/test_triton_compat.py tests/test_audit.py tests/test_audit_gates.py "$@"
