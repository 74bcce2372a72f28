#!/usr/bin/env bash
# Does this GPU machine run ridgebench right? One command, at most 8 minutes on one H100/H200, no network
# needed when the packages are installed. Everything goes to one directory, named at the start and end:
#
#   scripts/gpu-check.sh [--dry-run] [--out DIR]
#
# Steps, each time-boxed (`timeout`), the next one running whatever the last one did:
#   1. versions and device properties (versions.json), nvidia-smi -q before (nvidia-smi-before.txt);
#      clocks, temperature, power and throttle reasons sampled every second meanwhile (clocks.csv)
#   2. the compiled tests, a fast subset (pytest --device cuda; compiled-tests.log, .xml)
#   3. the timing-method cross-check and 1 GiB read/write/copy bandwidth (crosscheck/)
#   4. the quick sweep, one pytest process per kernel family (bench/<family>/ and bench-<family>.log)
#   5. the families merged into one run, its roofline plots and claims (run/)
#   6. nvidia-smi -q after; summary.txt, printed last
# --dry-run: the same plumbing on a CPU (the GPU hidden): tests under the interpreter, the smoke sweep,
# tiny sizes, no nvidia-smi. CI runs it.
#
# Exit status: 0 when every step passed, 1 otherwise (summary.txt says which).
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DRY=0
OUT=
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --out) OUT=$2; shift ;;
        --out=*) OUT=${1#--out=} ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "gpu-check: unknown argument $1 (expected --dry-run, --out DIR)" >&2; exit 2 ;;
    esac
    shift
done
stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$ROOT/results/gpu-check/$(hostname -s 2>/dev/null || echo host)-$stamp$([ $DRY = 1 ] && echo -dry)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
echo "gpu-check: writing everything to $OUT"
exec > >(tee -a "$OUT/gpu-check.log") 2>&1

source "$ROOT/scripts/env.sh" || { echo "gpu-check: set-up failed"; exit 1; }
set +e  # env.sh sets -e; here a failing step is recorded and the next one runs
cd "$ROOT"
export PYTHONDONTWRITEBYTECODE=1
if [ $DRY = 1 ]; then
    export CUDA_VISIBLE_DEVICES=""  # the plumbing on the CPU, also on a GPU machine
    DEVICE=cpu; SWEEP=smoke; BENCH_OPTS=(--benchmark-max-time=0.02 --ceilings-budget=0.05)
    T_TESTS=300; T_XCHECK=300; T_FAMILY=300; T_REPORT=120; BUDGET=2400
else
    DEVICE=cuda; SWEEP=quick; BENCH_OPTS=(--benchmark-max-time=0.25 --ceilings-budget=0.5)
    T_TESTS=170; T_XCHECK=80; T_FAMILY=75; T_REPORT=45; BUDGET=480  # the 8 minutes, all steps together
fi
RESERVE=30  # seconds kept for nvidia-smi after and the summary
# one family per Triton op of the table (roofline/ops.py), in its order: a new op is swept with no edit here
mapfile -t FAMILIES < <("$PY" -c 'from roofline.ops import KERNELS; print(*KERNELS, sep="\n")')
[ ${#FAMILIES[@]} -gt 0 ] || { echo "gpu-check: no kernels from roofline.ops"; exit 1; }
STATUS=()   # one line per step for the summary
failed=0

step() {  # step NAME SECONDS CMD...: run time-boxed, record status and duration, never stop the script
    local name=$1 limit=$2; shift 2
    local remaining=$((BUDGET - SECONDS - RESERVE))
    if [ "$name" != nvidia-smi-after ] && [ $remaining -lt 10 ]; then
        STATUS+=("$(printf '%-28s %-24s' "$name" "SKIPPED (budget spent)")"); failed=1
        return 0
    fi
    [ "$name" != nvidia-smi-after ] && [ "$limit" -gt $remaining ] && limit=$remaining
    echo; echo "=== gpu-check: $name (time box ${limit}s)"
    local t0=$SECONDS rc
    timeout --kill-after=15 "$limit" "$@"
    rc=$?
    local took=$((SECONDS - t0)) verdict=ok
    if [ $rc = 124 ] || [ $rc = 137 ]; then verdict="TIMEOUT after ${limit}s"; failed=1
    elif [ $rc != 0 ]; then verdict="FAILED (exit $rc)"; failed=1; fi
    STATUS+=("$(printf '%-28s %-24s %4ss' "$name" "$verdict" "$took")")
    return 0
}

# 1. versions, device properties, nvidia-smi before, clocks during
step versions 60 "$PY" - "$OUT/versions.json" <<'PY'
import json, platform, subprocess, sys
from importlib import metadata
import torch
doc = {"python": sys.version.split()[0], "platform": platform.platform(), "torch": torch.__version__,
       "cuda_runtime": torch.version.cuda, "cuda_available": torch.cuda.is_available()}
for dist in ("triton", "numpy", "matplotlib", "pytest", "pytest-benchmark", "pytest-xdist", "nvidia-ml-py"):
    try:
        doc[dist] = metadata.version(dist)
    except metadata.PackageNotFoundError:
        doc[dist] = None
try:
    doc["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
except OSError:
    doc["git_commit"] = None
doc["devices"] = []
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    doc["devices"].append({"index": i, "name": p.name, "capability": f"{p.major}.{p.minor}",
                           "sm_count": p.multi_processor_count, "memory_bytes": p.total_memory,
                           "l2_bytes": getattr(p, "L2_cache_size", None)})
json.dump(doc, open(sys.argv[1], "w"), indent=2)
print(json.dumps(doc, indent=2))
PY
SMI_PID=
if [ $DRY = 0 ] && command -v nvidia-smi >/dev/null; then
    step nvidia-smi-before 30 bash -c "nvidia-smi -q > '$OUT/nvidia-smi-before.txt'"
    fields=timestamp,index,clocks.sm,clocks.mem,temperature.gpu,power.draw,utilization.gpu
    for reasons in clocks_event_reasons.active clocks_throttle_reasons.active; do  # new name, then old
        if nvidia-smi --query-gpu="$reasons" --format=csv,noheader -i 0 >/dev/null 2>&1; then
            fields=$fields,$reasons; break
        fi
    done
    nvidia-smi --query-gpu="$fields" --format=csv -lms 1000 > "$OUT/clocks.csv" 2>&1 &
    SMI_PID=$!
    trap 'kill "$SMI_PID" 2>/dev/null' EXIT  # also when this script is interrupted
elif [ $DRY = 0 ]; then
    STATUS+=("$(printf '%-28s %-24s' nvidia-smi 'FAILED (not found)')"); failed=1
fi

# 2. the compiled tests: the GPU-only tests (all but the heuristic kernels' many tile shapes) and the
#    --device plumbing; --device cpu in the dry run
if [ $DRY = 1 ]; then
    select=(-k "shipped_configs_cover or triton_compat or device_option")
else
    select=(-k "not (test_every_shipped_config and (softmax or gelu))")
fi
step compiled-tests "$T_TESTS" "$PY" -m pytest --device "$DEVICE" -p no:cacheprovider -q -rs \
    tests/test_compiled.py tests/test_device_option.py tests/test_triton_compat.py "${select[@]}" \
    --junitxml="$OUT/compiled-tests.xml"

# 3. timing-method cross-check and bandwidth
xargs_dry=(); [ $DRY = 1 ] && xargs_dry=(--dry-run)
step timing-crosscheck "$T_XCHECK" "$PY" scripts/timing_crosscheck.py --out "$OUT/crosscheck" "${xargs_dry[@]}"

# 4. the sweep, one process per kernel family (a sticky CUDA error loses one family, not the run)
for family in "${FAMILIES[@]}"; do
    step "sweep-$family" "$T_FAMILY" "$PY" -m pytest --benchmark --sweep "$SWEEP" --kernels "$family" \
        --results-root="$OUT/bench/$family" --no-report -p no:cacheprovider -q "${BENCH_OPTS[@]}"
done

# 5. one run from the families, its roofline and claims
step roofline-and-claims "$T_REPORT" "$PY" - "$OUT" "${FAMILIES[@]}" <<'PY'
import shutil, sys
from pathlib import Path
from bench.results import merge_parts
from roofline.claims import write_report
from roofline.plot import plot_results

out, families = Path(sys.argv[1]), sys.argv[2:]
runs = {f: sorted(p for p in (out / "bench" / f).glob("*/*") if (p / "provenance.json").is_file())
        for f in families}
found = {f: r[-1] for f, r in runs.items() if r}
missing = [f for f in families if f not in found]
if not found:
    sys.exit("gpu-check: no family left a results directory")
first = next(iter(found.values()))
run = out / "run" / first.parent.name / first.name
for family, src in found.items():
    part = run / "parts" / family
    part.mkdir(parents=True, exist_ok=True)
    for f in src.iterdir():
        if f.is_file() and f.suffix == ".json":
            shutil.copy(f, part / f.name)
written = merge_parts(run)
print(f"merged run: {run} (families: {', '.join(found)}; missing: {', '.join(missing) or 'none'})")
if "benchmark.json" in written:
    for p in plot_results(run):
        print(f"plot: {p}")
    print(f"claims: {write_report(run, hardware=None)}")
else:
    print("no benchmark was timed: no roofline, no claims")
sys.exit(1 if missing else 0)
PY

# 6. nvidia-smi after, the summary
if [ -n "$SMI_PID" ]; then
    kill "$SMI_PID" 2>/dev/null; wait "$SMI_PID" 2>/dev/null
    step nvidia-smi-after 30 bash -c "nvidia-smi -q > '$OUT/nvidia-smi-after.txt'"
fi
"$PY" - "$OUT" "$DRY" > "$OUT/summary-details.txt" 2>&1 <<'PY'
import json, re, sys
from pathlib import Path
out, dry = Path(sys.argv[1]), sys.argv[2] == "1"
v = json.loads((out / "versions.json").read_text()) if (out / "versions.json").is_file() else {}
dev = ", ".join(f"{d['name']} (sm_{d['capability'].replace('.', '')}, {d['sm_count']} SMs)"
                for d in v.get("devices", [])) or "no GPU"
print(f"device: {dev}; torch {v.get('torch')} (CUDA {v.get('cuda_runtime')}), triton {v.get('triton')}")
xml = out / "compiled-tests.xml"
if xml.is_file():
    import xml.etree.ElementTree as ET
    suite = ET.parse(xml).getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    a = suite.attrib
    print(f"compiled tests: {a.get('tests')} collected, {a.get('failures')} failed, {a.get('errors')} errors, "
          f"{a.get('skipped')} skipped")
txt = out / "crosscheck" / "crosscheck.txt"
if txt.is_file():
    lines = txt.read_text().splitlines()
    keep = ("bandwidth", "DISAGREE", "NOT COVERED", "methods agree", "dry run")
    print(*[l for l in lines if l.startswith(keep)], sep="\n")
for claims in sorted((out / "run").glob("*/*/claims.md")):
    verdicts = re.findall(r"\b(supported|refuted|inconclusive)\b", claims.read_text())
    counts = {k: verdicts.count(k) for k in ("supported", "refuted", "inconclusive")}
    print(f"claims: {claims} (verdict words in it: {counts})")
    skipped = claims.parent / "skipped.json"
    if skipped.is_file():
        cats = {}
        for s in json.loads(skipped.read_text()):
            cats[s["category"]] = cats.get(s["category"], 0) + 1
        print(f"skipped cases: {cats or 'none'}")
if dry:
    print("DRY RUN: plumbing only, nothing here was measured on a GPU")
PY

{
    echo
    echo "=== gpu-check summary ($([ $DRY = 1 ] && echo 'DRY RUN, ')$(date -u +%Y-%m-%dT%H:%M:%SZ), $SECONDS s)"
    printf '%s\n' "${STATUS[@]}"
    cat "$OUT/summary-details.txt"
    echo "everything: $OUT"
    [ $failed = 0 ] && echo "gpu-check: PASSED" || echo "gpu-check: FAILED (see the steps above)"
} | tee "$OUT/summary.txt"
exit $failed
