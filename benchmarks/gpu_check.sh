#!/usr/bin/env bash
# Issue 15: the GPU check of pytest-modgap, in one call of the device tool.
#
# On the GPU machine, from the repository root (the device tool sets $OUT; give it timeout_s 540):
#     bash benchmarks/gpu_check.sh
# On a CPU, the same steps at toy sizes on the cpu device (checks the script; measures nothing):
#     GPU_CHECK_DRY_RUN=1 OUT=/tmp/gpu_check_out bash benchmarks/gpu_check.sh
#
# Steps, in this order; each runs under `timeout` and is recorded, and a failing step does not stop
# the ones after it:
#   install        pip install --no-deps --no-build-isolation --no-index -e . (the working tree; the
#                  GPU image has every dependency). If it fails, PYTHONPATH=. and `-p` load the plugin.
#   env            versions, GPU, where pytest_modgap imports from; fails without a CUDA device
#   cuda_tests     tests/embedding/test_pipeline.py, test_gpu_preprocess.py and test_cuda_modes.py
#                  (nvJPEG: every EXIF orientation; 16-bit, float, alpha, CMYK against the CPU path),
#                  -m "not slow"; fails if a test is still skipped with "needs a CUDA device"
#   metrics_exact  every metric computed on CUDA (float32 inputs with intervals; bfloat16 inputs with
#                  groups) against the float64 transcription, N = 4,000, d = 1,024, README tolerance
#   measure        `modgap measure --device cuda` (README: the main job), report as JSON
#   quickstart_1-3 README "Quick start" with --modgap-device=cuda: 1 records the baseline, 2 passes,
#                  3 (the regressed model) must fail (exit 1), paired with the baseline's snapshot
#   bench_encode   ViT-B/32-shaped random-init CLIP in bfloat16 on 4,096 JPEGs: pipeline images/s
#                  against the raw forward pass of the same batches (target >= 0.80)
#   bench_metrics  N = 262,144, d = 1,024: all-pairs pass pairs/s against a bf16 matmul of the same
#                  shapes (target >= 0.50); bf16 against fp32 inputs at N = 65,536 (reported)
#   quickstart_cpu the baseline recorded on the device, checked on the CPU: must pass
#   devices        benchmarks/gpu_compare_devices.py: every metric (retrieval and zero-shot too) in
#                  float32 on the device against the CPU (1e-3; one pair in N for ranks), bfloat16
#                  reported, and a CPU baseline checked paired on the device in bfloat16 (must pass)
#
# Results under $OUT (the device tool brings back at most 8 files; this writes 8):
#   gpu_check.json      per-step status, seconds and note; the targets and their verdicts; the key
#                       numbers of every step; "overall" pass / fail
#   gpu_check.log       every step's full output
#   metrics_exact.json  bench_encode.json  bench_metrics.json  modgap_measure.json  devices.json
# Both gpu_check files are rewritten after every step: a run killed early still leaves them.
# Exit status 0 when every step passed and every target was met (a dry run: every step passed).
#
# Environment: GPU_CHECK_DEADLINE_S (default 450): no step starts, or runs, past that many seconds
# from the start; GPU_CHECK_INSTALL (1 on the GPU, 0 in a dry run); GPU_CHECK_PYTHONPATH=1 runs from
# the working tree on PYTHONPATH even when the package is installed; PYTHON (default python3).

set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 2
PY=${PYTHON:-python3}
DRY=${GPU_CHECK_DRY_RUN:-0}
DEADLINE_S=${GPU_CHECK_DEADLINE_S:-450}
OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT" || exit 2
WORK=$(mktemp -d "${TMPDIR:-/tmp}/gpu_check.XXXXXX") || exit 2
START=$(date +%s)
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# A fresh embedding cache: every step measures, none reads an old machine's results.
export MODGAP_CACHE_DIR="$WORK/cache"

if [ "$DRY" = 1 ]; then
    DEVICE=cpu
    INSTALL=${GPU_CHECK_INSTALL:-0}
    ENCODE_ARGS=(--arch tiny --images 64 --batch-size 16 --dtype float32)
    METRICS_ARGS=(--n 4096 --d 256 --precision-n 1024)
    EXACT_ARGS=(--exact-n 500 --d 64)
else
    DEVICE=cuda
    INSTALL=${GPU_CHECK_INSTALL:-1}
    ENCODE_ARGS=(--arch vit-b32 --images 4096 --batch-size 256 --dtype bfloat16)
    METRICS_ARGS=(--n 262144 --d 1024 --precision-n 65536)
    EXACT_ARGS=(--exact-n 4000 --d 1024)
fi

summarize() {
    "$PY" "$ROOT/benchmarks/gpu_check_summary.py" summarize --work "$WORK" --out "$OUT" \
        --dry-run "$DRY" --deadline "$DEADLINE_S" --started "$START" "$@" \
        || echo "gpu_check: the summary could not be written (see above)"
    : >"$OUT/gpu_check.log"
    cut -f1 "$WORK/steps.tsv" 2>/dev/null | while read -r step; do
        tail -c 2000000 "$WORK/$step.log" >>"$OUT/gpu_check.log" 2>/dev/null
    done
}

# run_step NAME LIMIT_S [--expect-rc N] [--want REGEX] [--forbid REGEX] [--cwd DIR] -- COMMAND...
# Passes when COMMAND exits with N (default 0), its output matches --want and not --forbid.
run_step() {
    local name=$1 budget=$2
    shift 2
    local expect_rc=0 want="" forbid="" dir=$ROOT
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do
        case $1 in
            --expect-rc) expect_rc=$2 ;;
            --want) want=$2 ;;
            --forbid) forbid=$2 ;;
            --cwd) dir=$2 ;;
            *) echo "run_step: unknown option $1" >&2; return 2 ;;
        esac
        shift 2
    done
    shift
    local log="$WORK/$name.log"
    local left=$((DEADLINE_S - ($(date +%s) - START)))
    if [ "$left" -lt 15 ]; then
        printf '%s\tskipped\t\t\t%s\tnot started: %s s left of the %s s deadline\n' \
            "$name" "$budget" "$left" "$DEADLINE_S" >>"$WORK/steps.tsv"
        echo "== $name: skipped ($left s left)" | tee "$log"
        summarize
        return
    fi
    local limit=$((budget < left ? budget : left))
    echo "== $name (limit $limit s, in $dir): $*" | tee "$log"
    local t0 t1 rc
    t0=$(date +%s.%N)
    (cd "$dir" && timeout --kill-after=10 "$limit" "$@") >>"$log" 2>&1
    rc=$?
    t1=$(date +%s.%N)
    local seconds status=pass note=""
    seconds=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
    if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        status=timeout
        note="killed at its $limit s limit"
    elif [ "$rc" -ne "$expect_rc" ]; then
        status=fail
        note="exit status $rc, expected $expect_rc"
    elif [ -n "$want" ] && ! grep -qE -- "$want" "$log"; then
        status=fail
        note="output lacks /$want/"
    elif [ -n "$forbid" ] && grep -qE -- "$forbid" "$log"; then
        status=fail
        note="output has /$forbid/"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$status" "$rc" "$seconds" "$limit" "$note" \
        >>"$WORK/steps.tsv"
    echo "== $name: $status (exit $rc, $seconds s) $note" | tee -a "$log"
    if [ "$status" != pass ]; then
        tail -n 20 "$log" | sed 's/^/    /'
    fi
    summarize
}

echo "gpu_check: dry run $DRY, device $DEVICE, deadline $DEADLINE_S s, OUT=$OUT, work $WORK"

# --- install: the working tree, editable, nothing from an index (the machine has no network) ---
if [ "$INSTALL" = 1 ]; then
    run_step install 90 -- "$PY" -m pip install --no-deps --no-build-isolation --no-index \
        --disable-pip-version-check -q -e .
fi
# Without the install (it failed, or GPU_CHECK_PYTHONPATH=1), the working tree goes on PYTHONPATH and
# pytest loads the plugin by module (`-p no:modgap` first: a second registration is an error).
PYTEST_PLUGIN=()
if [ "${GPU_CHECK_PYTHONPATH:-0}" != 1 ] && "$PY" -c "import importlib.metadata as m, sys; sys.exit(not any(e.name == 'modgap' for e in m.entry_points(group='pytest11')))" 2>/dev/null; then
    echo "gpu_check: pytest-modgap is installed (pytest11 entry point 'modgap')"
else
    echo "gpu_check: PYTHONPATH=$ROOT, -p pytest_modgap.gate.plugin, python -m pytest_modgap.cli"
    export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
    PYTEST_PLUGIN=(-p no:modgap -p pytest_modgap.gate.plugin)
fi
if command -v modgap >/dev/null 2>&1 && [ ${#PYTEST_PLUGIN[@]} -eq 0 ]; then
    MODGAP=(modgap)
else
    MODGAP=("$PY" -m pytest_modgap.cli)
fi

run_step env 60 -- "$PY" benchmarks/gpu_check_summary.py probe "$WORK/env.json" --device "$DEVICE"

# --- the CUDA tests: the two files whose CUDA tests skip without a GPU -------------------------
CUDA_SKIP=()
if [ "$DRY" != 1 ]; then CUDA_SKIP=(--forbid "needs a CUDA device"); fi
run_step cuda_tests 100 "${CUDA_SKIP[@]}" -- "$PY" -m pytest -q -m "not slow" -p no:cacheprovider \
    -rs --junitxml="$WORK/cuda_tests.xml" \
    tests/embedding/test_pipeline.py tests/embedding/test_gpu_preprocess.py \
    tests/embedding/test_cuda_modes.py

# --- the metric engine on the device against the float64 transcription ----------------------------
run_step metrics_exact 60 -- "$PY" benchmarks/bench_metrics.py --device "$DEVICE" --n 0 \
    "${EXACT_ARGS[@]}" --json "$OUT/metrics_exact.json"

# --- the main job: modgap measure on the shipped reference model --------------------------------
run_step measure 90 -- "${MODGAP[@]}" measure --device "$DEVICE" --json "$OUT/modgap_measure.json"

# --- README quick start: record, pass, and a regressed release that fails ---------------------
GATE="$WORK/gate"
mkdir -p "$GATE"
MODELS=$("$PY" -c "import pytest_modgap.reference as r; print(r.reference_model_dir().parent)" 2>&1)
echo "gpu_check: reference models in $MODELS"
cat >"$GATE/test_gap.py" <<'PY'
import pytest

@pytest.mark.modgap(dataset="shapes", samples=500)
def test_no_gap_regression(modgap):
    report = modgap.measure()                       # embeds once per model, every metric, 95% CIs
    modgap.check(report, baseline="release-3")       # baselines/release-3.yaml
    assert report["alignment"] >= 0.6, report.table()  # an absolute floor, baseline or not
PY
GATE_ARGS=(-p no:cacheprovider "${PYTEST_PLUGIN[@]}" "--modgap-device=$DEVICE")
run_step quickstart_1 75 --cwd "$GATE" --want "1 passed" -- \
    "$PY" -m pytest "--modgap-model=$MODELS/reference" --modgap-update "${GATE_ARGS[@]}"
run_step quickstart_2 75 --cwd "$GATE" --want "1 passed" -- \
    "$PY" -m pytest "--modgap-model=$MODELS/reference" "${GATE_ARGS[@]}"
run_step quickstart_3 75 --cwd "$GATE" --expect-rc 1 --want "change \(paired CI\)" -- \
    "$PY" -m pytest "--modgap-model=$MODELS/regressed" "${GATE_ARGS[@]}"

# --- the benchmarks ------------------------------------------------------------------------
run_step bench_encode 120 -- "$PY" benchmarks/bench_encode.py --device "$DEVICE" \
    "${ENCODE_ARGS[@]}" --json "$OUT/bench_encode.json"
run_step bench_metrics 170 -- "$PY" benchmarks/bench_metrics.py --device "$DEVICE" --exact-n 0 \
    "${METRICS_ARGS[@]}" --json "$OUT/bench_metrics.json"

# --- after the benchmarks (they hold the targets): the baseline recorded on the device checked on
# the CPU, and every metric (retrieval, zero-shot) on the device against the CPU, paired check too
run_step quickstart_cpu 75 --cwd "$GATE" --want "1 passed" -- \
    "$PY" -m pytest "--modgap-model=$MODELS/reference" -p no:cacheprovider "${PYTEST_PLUGIN[@]}" \
    --modgap-device=cpu
run_step devices 150 --want "devices: all match" -- "$PY" benchmarks/gpu_compare_devices.py \
    --device "$DEVICE" --json "$OUT/devices.json"

summarize --print
"$PY" benchmarks/gpu_check_summary.py verdict "$OUT/gpu_check.json"
status=$?
echo "gpu_check: done in $(($(date +%s) - START)) s; results in $OUT"
exit "$status"
