#!/usr/bin/env bash
# The CUDA checks of the project in one command, for the first machine with a GPU:
#
#   bash tools/gpu_check.sh [OUT_DIR]          # default output/gpu_check
#
# 1. the tests marked `gpu` (CUDA against the CPU references: parity full/fast, the training step, fp16/bf16 steps,
#    chunked decoder, label maps, ONNX on CUDA): OUT_DIR/tests.xml and tests.txt;
# 2. tools/benchmark.py on SED-B and SED-L at 768x768 px: latency by part, full and fast, 150 and 847 classes,
#    fp32 and bf16, batch 1 up to the largest of BATCH_SIZES that fits, peak memory (one JSON per run in
#    OUT_DIR/runs); training steps at batch 4 (fp32 and fp16, without and with CLIP gradient checkpointing);
# 3. tools/collect_benchmarks.py: one JSON (OUT_DIR/gpu_check.json) and one table (OUT_DIR/gpu_check.txt, printed).
#
# Designed to take under 10 minutes on one H100 (an estimate: it has not run on a GPU yet); runs that would start
# after BUDGET_S seconds are skipped and listed. Random weights unless WEIGHTS_B / WEIGHTS_L name checkpoints (a
# path or a zoo name already in the cache); with random weights fast inference keeps KEEP classes per stage
# (benchmark.py --keep) and the text embeddings are random (speed does not depend on them).
# Settings (environment): PYTHON, DEVICE (cuda), MODELS ("b=configs/convnextB_768.yaml l=configs/convnextL_768.yaml"),
# VOCABULARIES ("ade150 ade847"), MODES ("full fast"), PRECISIONS ("fp32 bf16"), BATCH_SIZES ("1 4 16 64"),
# ITERS (5), WARMUP (2), KEEP (32), TRAIN_PRECISIONS ("fp32 fp16"; "" for none), TRAIN_BATCH (4), BUDGET_S (540),
# RUN_TIMEOUT_S (240), SKIP_TESTS (0). Exit status: 1 if a test failed or a run failed, else 0.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:-output/gpu_check}
if [ -n "${PYTHON:-}" ]; then
    PY=$PYTHON
elif [ -x "$ROOT/.venv/bin/python" ]; then
    PY=$ROOT/.venv/bin/python
else
    PY=python3
fi
DEVICE=${DEVICE:-cuda}
MODELS=${MODELS:-"b=configs/convnextB_768.yaml l=configs/convnextL_768.yaml"}
VOCABULARIES=${VOCABULARIES:-"ade150 ade847"}
MODES=${MODES:-"full fast"}
PRECISIONS=${PRECISIONS:-"fp32 bf16"}
BATCH_SIZES=${BATCH_SIZES:-"1 4 16 64"}
ITERS=${ITERS:-5}
WARMUP=${WARMUP:-2}
KEEP=${KEEP:-32}
TRAIN_PRECISIONS=${TRAIN_PRECISIONS-"fp32 fp16"}  # empty: no training runs
TRAIN_BATCH=${TRAIN_BATCH:-4}
BUDGET_S=${BUDGET_S:-540}
RUN_TIMEOUT_S=${RUN_TIMEOUT_S:-240}
SKIP_TESTS=${SKIP_TESTS:-0}

mkdir -p "$OUT/runs" || exit 2
rm -f "$OUT"/runs/*.json
START=$(date +%s)
FAILED=0
SKIPPED_RUNS=""
cd "$ROOT" || exit 2

if [ "$SKIP_TESTS" != "1" ]; then
    echo "== tests marked gpu"
    timeout "$BUDGET_S" "$PY" -m pytest -q -m gpu -rs --junitxml "$OUT/tests.xml" tests 2>&1 | tee "$OUT/tests.txt"
    [ "${PIPESTATUS[0]}" = 0 ] || FAILED=1
fi

# run NAME ARGS...: one benchmark run within the time budget, its JSON in OUT/runs/NAME.json.
run() {
    local name=$1
    shift
    if [ $(( $(date +%s) - START )) -ge "$BUDGET_S" ]; then
        SKIPPED_RUNS="$SKIPPED_RUNS $name"
        return
    fi
    echo "== $name"
    if ! timeout "$RUN_TIMEOUT_S" "$PY" tools/benchmark.py --device "$DEVICE" --output "$OUT/runs/$name.json" "$@" \
            > "$OUT/runs/$name.txt" 2>&1; then
        echo "   failed (see $OUT/runs/$name.txt)"
        FAILED=1
    fi
}

for model in $MODELS; do
    key=${model%%=*}
    config=${model#*=}
    weights_var="WEIGHTS_$(echo "$key" | tr '[:lower:]' '[:upper:]')"
    weights=${!weights_var:-}
    for precision in $TRAIN_PRECISIONS; do
        run "train_${key}_${precision}" --train --config-file "$config" --batch-sizes "$TRAIN_BATCH" --iters 3 \
            --warmup 1 --precision "$precision" --opts MODEL.ENC.CLIP_PRETRAINED_WEIGHTS ""
    done
    for vocabulary in $VOCABULARIES; do
        for mode in $MODES; do
            for precision in $PRECISIONS; do
                flags=()
                if [ -n "$weights" ]; then
                    opts=(MODEL.WEIGHTS "$weights")
                    [ "$mode" = fast ] && flags+=(--fast)
                else
                    opts=()
                    flags+=(--random-text-embeddings)
                    [ "$mode" = fast ] && flags+=(--keep "$KEEP")
                fi
                # shellcheck disable=SC2086  # BATCH_SIZES is a list of numbers
                run "infer_${key}_${vocabulary}_${mode}_${precision}" --config-file "$config" \
                    --vocabulary "$vocabulary" --precision "$precision" --batch-sizes $BATCH_SIZES --iters "$ITERS" --warmup "$WARMUP" \
                    --image-size 768 768 --skip-startup --skip-flops "${flags[@]}" \
                    --opts MODEL.ENC.CLIP_PRETRAINED_WEIGHTS "" "${opts[@]}"
            done
        done
    done
done

echo "== summary ($(( $(date +%s) - START )) s)"
TESTS_ARG=()
[ -f "$OUT/tests.xml" ] && TESTS_ARG=(--tests "$OUT/tests.xml")
"$PY" tools/collect_benchmarks.py "$OUT/runs" "${TESTS_ARG[@]}" --output "$OUT/gpu_check.json" \
    | tee "$OUT/gpu_check.txt"
if [ -n "$SKIPPED_RUNS" ]; then
    echo "not run (over BUDGET_S=$BUDGET_S s):$SKIPPED_RUNS" | tee -a "$OUT/gpu_check.txt"
fi
exit "$FAILED"
