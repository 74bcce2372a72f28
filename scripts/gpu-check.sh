#!/usr/bin/env bash
# Does this GPU machine run ridgebench right? One command, at most 8 minutes on one H100/H200 (the budget
# holds by construction: see --plan), no network needed when the packages are installed. Everything goes
# to one directory, named at the start and at the end:
#
#   scripts/gpu-check.sh [--dry-run] [--out DIR] [--plan]
#
# Steps, each time-boxed (`timeout -s INT`, then KILL: pytest still writes its reports), the next one
# running whatever the last one did:
#   0. set-up (scripts/env.sh): a hard floor pip cannot meet stops here, named in the summary
#   1. versions and device properties (versions.json), the GPU tool's snapshot before (smi-before.txt:
#      nvidia-smi -q; on ROCm amd-smi static or rocm-smi --showallinfo);
#      clocks, temperature, power and throttle reasons sampled every second meanwhile (clocks.csv)
#   2. the compiled tests, a fixed subset, each launcher on its first shipped config (no autotuning;
#      compiled-tests.log, .xml)
#   3. the timing-method cross-check and 1 GiB read/write/copy bandwidth (crosscheck/)
#   4. the quick sweep: ONE `pytest --benchmark` run, each kernel family in its own subprocess
#      (--isolate=on), the ceilings measured once; no autotuning (first surviving config) to fit the box
#   5. its roofline plots, claims and report.html (also from a run that step 4 cut short)
#   6. the snapshot after (smi-after.txt); summary.txt, with each step's measured time, printed last
# --dry-run: the same plumbing on a CPU (the GPU hidden): the same single run in the same per-family
# layout, tests under the interpreter, the smoke sweep, tiny sizes, no nvidia-smi. CI runs it.
# --plan: print the budget and every step's time box, check they fit, and exit (nothing runs).
#
# Exit status: 0 when every step passed, 1 otherwise (summary.txt says which), 2 on a bad argument.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DRY=0
OUT=
PLAN=0
while [ $# -gt 0 ]; do
    case "$1" in
        --dry-run) DRY=1 ;;
        --plan) PLAN=1 ;;
        --out) OUT=${2:?--out needs a directory}; shift ;;
        --out=*) OUT=${1#--out=} ;;
        -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
        *) echo "gpu-check: unknown argument $1 (expected --dry-run, --plan, --out DIR)" >&2; exit 2 ;;
    esac
    shift
done

# The time boxes, in seconds: one table per mode, in step order. RESERVE is kept for the summary, GRACE
# for the KILL after a step's INT. By construction sum(boxes) + GRACE + RESERVE <= BUDGET (--plan checks
# it, and so does tests/test_gpu_check.py); at run time each box is also cut to what is left.
STEPS=(setup versions smi-before compiled-tests timing-crosscheck sweep report smi-after)
if [ $DRY = 1 ]; then
    BUDGET=1500; RESERVE=20; GRACE=10
    BOXES=(240 60 10 300 240 420 150 10)
else
    BUDGET=480; RESERVE=20; GRACE=10  # the 8 minutes, all steps together
    BOXES=(40 10 10 100 55 195 25 15)  # set-up: a venv and a few installs on a networked box
fi
box_total=0
for b in "${BOXES[@]}"; do box_total=$((box_total + b)); done
# The GPU's own tool for the before/after snapshots and the clocks: nvidia-smi; on ROCm amd-smi (ROCm 6+)
# or rocm-smi (older), as bench/rocm.py picks it; none: those steps are skipped, with the reason.
SMI=
for tool in nvidia-smi amd-smi rocm-smi; do command -v "$tool" >/dev/null && { SMI=$tool; break; }; done
smi_why=${SMI:+"$SMI found on PATH"}
smi_why=${smi_why:-"none of nvidia-smi, amd-smi, rocm-smi on PATH: snapshots and clocks skipped"}
case $SMI in  # the device snapshot before and after, and what samples the clocks every second on ROCm
    nvidia-smi) snapshot=(nvidia-smi -q) ;;
    amd-smi) snapshot=(amd-smi static); clocks=(amd-smi metric) ;;
    rocm-smi) snapshot=(rocm-smi --showallinfo); clocks=(rocm-smi --showclocks --showtemp --showpower) ;;
esac
fits=$([ $((box_total + GRACE + RESERVE)) -le $BUDGET ] && echo yes || echo no)
if [ $PLAN = 1 ]; then
    echo "mode: $([ $DRY = 1 ] && echo dry-run || echo gpu)"
    echo "budget: ${BUDGET}s (reserve ${RESERVE}s for the summary, grace ${GRACE}s for a KILL)"
    for i in "${!STEPS[@]}"; do printf 'step %-20s %4ss\n' "${STEPS[$i]}" "${BOXES[$i]}"; done
    echo "boxes: ${box_total}s; fits: $fits"
    echo "smi: ${SMI:-none} ($smi_why)"
    [ "$fits" = yes ] && exit 0 || exit 1
fi
[ "$fits" = yes ] || { echo "gpu-check: the time boxes (${box_total}s) do not fit the budget" >&2; exit 1; }
box() {  # box STEP: that step's time box
    local i
    for i in "${!STEPS[@]}"; do [ "${STEPS[$i]}" = "$1" ] && { echo "${BOXES[$i]}"; return; }; done
    echo 0
}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
OUT=${OUT:-$ROOT/results/gpu-check/$(hostname -s 2>/dev/null || echo host)-$stamp$([ $DRY = 1 ] && echo -dry)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
echo "gpu-check: writing everything to $OUT"
exec > >(tee -a "$OUT/gpu-check.log") 2>&1
cd "$ROOT"
export PYTHONDONTWRITEBYTECODE=1
STATUS=()   # one line per step for the summary
failed=0

step() {  # step NAME CMD...: run within its box (cut to what is left), record status and time
    local name=$1; shift
    local limit remaining
    limit=$(box "$name")
    remaining=$((BUDGET - SECONDS - RESERVE - GRACE))
    if [ $remaining -lt 5 ]; then
        STATUS+=("$(printf '%-22s %-26s' "$name" "SKIPPED (budget spent)")"); failed=1
        return 0
    fi
    [ "$limit" -gt $remaining ] && limit=$remaining
    echo; echo "=== gpu-check: $name (time box ${limit}s)"
    local t0=$SECONDS rc
    timeout -s INT --kill-after=$GRACE "$limit" "$@"
    rc=$?
    local took=$((SECONDS - t0)) verdict=ok
    if [ $rc = 124 ] || [ $rc = 137 ]; then verdict="TIMEOUT after ${limit}s"; failed=1
    elif [ $rc != 0 ]; then verdict="FAILED (exit $rc)"; failed=1; fi
    STATUS+=("$(printf '%-22s %-26s %4ss' "$name" "$verdict" "$took")")
    return 0
}

summary() {  # the summary, last; its details come from the files the steps left
    local details=""
    if [ -n "${PY:-}" ]; then
        details=$("$PY" scripts/gpu_check_summary.py "$OUT" "$DRY" 2>&1)
    fi
    {
        echo
        echo "=== gpu-check summary ($([ $DRY = 1 ] && echo 'DRY RUN, ')$(date -u +%Y-%m-%dT%H:%M:%SZ), ${SECONDS}s of ${BUDGET}s)"
        printf '%s\n' "${STATUS[@]}"
        [ -n "$details" ] && echo "$details"
        echo "everything: $OUT"
        [ $failed = 0 ] && echo "gpu-check: PASSED" || echo "gpu-check: FAILED (see the steps above)"
    } | tee "$OUT/summary.txt"
}

# 0. set-up: in a child shell, so a hard floor it cannot meet is a failed step, not the end of the script
t0=$SECONDS
PY=$(timeout -s INT "$(box setup)" bash -c 'source "$1/scripts/env.sh" >&2 && echo "$PY"' _ "$ROOT" \
     2> >(tee "$OUT/setup.log" >&2) | tail -n 1)
setup_rc=$?
sleep 0.2  # let tee finish setup.log
if [ -z "$PY" ] || [ ! -x "$PY" ]; then
    why=$(grep -E '^ridgebench: set-up stopped' "$OUT/setup.log" | head -n 3)
    [ $setup_rc = 124 ] && why="set-up ran past its $(box setup)s box (installing?): run ./scripts/test.sh once, then this"
    STATUS+=("$(printf '%-22s %-26s %4ss' setup "FAILED" $((SECONDS - t0)))")
    [ -n "$why" ] && STATUS+=("  $why")
    failed=1; PY=
    summary
    exit 1
fi
STATUS+=("$(printf '%-22s %-26s %4ss' setup ok $((SECONDS - t0)))")
soft=$(grep -E '^ridgebench: warning, going on' "$OUT/setup.log" || true)
[ -n "$soft" ] && STATUS+=("  $soft")
RIDGEBENCH_SOFT_FLOORS=$("$PY" scripts/deps.py check 2>/dev/null || true)
export PY RIDGEBENCH_SOFT_FLOORS

if [ $DRY = 1 ]; then
    export CUDA_VISIBLE_DEVICES=""  # the plumbing on the CPU, also on a GPU machine
    DEVICE=cpu; SWEEP=smoke; BENCH_OPTS=(--benchmark-max-time=0.02 --ceilings-budget=0.05)
    select=(-k "shipped_configs_cover or triton_compat or device_option")
else
    DEVICE=cuda; SWEEP=quick; BENCH_OPTS=(--benchmark-max-time=0.1 --ceilings-budget=0.3)
    # every GPU-only kind of test, and the shipped configs of the tensor-core kernels in bf16 only
    # (pytest --device cuda runs all of them: ~170 compiles, more than this box)
    select=(-k "not test_every_shipped_config or (bfloat16 and (qkv or attention or gemv))")
fi
export RIDGEBENCH_AUTOTUNE=0  # each launcher's first surviving config: no autotuning inside a box

# 1. versions, device properties, the GPU tool's snapshot before, clocks during
step versions "$PY" scripts/gpu_check_summary.py --versions "$OUT/versions.json"
SMI_PID=
if [ $DRY = 0 ] && [ "$SMI" = nvidia-smi ]; then
    step smi-before bash -c "$(printf '%q ' "${snapshot[@]}")> '$OUT/smi-before.txt'"
    fields=timestamp,index,clocks.sm,clocks.mem,temperature.gpu,power.draw,utilization.gpu
    for reasons in clocks_event_reasons.active clocks_throttle_reasons.active; do  # new name, then old
        if nvidia-smi --query-gpu="$reasons" --format=csv,noheader -i 0 >/dev/null 2>&1; then
            fields=$fields,$reasons; break
        fi
    done
    nvidia-smi --query-gpu="$fields" --format=csv -lms 1000 > "$OUT/clocks.csv" 2>&1 &
    SMI_PID=$!
elif [ $DRY = 0 ] && [ -n "$SMI" ]; then  # ROCm (never run on one yet: simulated by tests/test_rocm.py)
    step smi-before bash -c "$(printf '%q ' "${snapshot[@]}")> '$OUT/smi-before.txt'"
    ( while :; do date -u +%FT%TZ; "${clocks[@]}"; sleep 1; done ) > "$OUT/clocks.txt" 2>&1 &
    SMI_PID=$!
elif [ $DRY = 0 ]; then
    STATUS+=("$(printf '%-22s %-26s' smi "SKIPPED ($smi_why)")")
fi
[ -n "$SMI_PID" ] && trap 'kill "$SMI_PID" 2>/dev/null' EXIT  # also when this script is interrupted

# 2. the compiled tests: the GPU-only tests and the --device plumbing; --device cpu in the dry run
step compiled-tests "$PY" -m pytest --device "$DEVICE" -p no:cacheprovider -q -rs \
    tests/test_compiled.py tests/test_device_option.py tests/test_triton_compat.py "${select[@]}" \
    --junitxml="$OUT/compiled-tests.xml"

# 3. timing-method cross-check and bandwidth
xargs_dry=(); [ $DRY = 1 ] && xargs_dry=(--dry-run)
step timing-crosscheck "$PY" scripts/timing_crosscheck.py --out "$OUT/crosscheck" \
    --budget $(($(box timing-crosscheck) - 15)) "${xargs_dry[@]}"  # it stops starting cases in time

# 4. the sweep: one run, one subprocess per kernel family (a sticky CUDA error loses one family)
step sweep "$PY" -m pytest --benchmark --sweep "$SWEEP" --isolate=on --results-root="$OUT/bench" \
    --no-report -p no:cacheprovider -q "${BENCH_OPTS[@]}"

# 5. its roofline and claims, from the run directory (a run cut short is read from its parts)
step report "$PY" scripts/gpu_check_summary.py --report "$OUT/bench"

# 6. the GPU tool's snapshot after, the summary
if [ -n "$SMI_PID" ]; then
    kill "$SMI_PID" 2>/dev/null; wait "$SMI_PID" 2>/dev/null
    step smi-after bash -c "$(printf '%q ' "${snapshot[@]}")> '$OUT/smi-after.txt'"
fi
summary
exit $failed
