#!/bin/sh
# Evaluates a model on the benchmarks of its config, one by one, then prints one table of results.
#
#   sh eval.sh CONFIG NUM_GPUS OUTPUT_DIR [KEY VALUE ...]
#   sh eval.sh configs/convnextB_768.yaml 1 output/sed_b MODEL.WEIGHTS sed_b.pth TEST.FAST_INFERENCE True TEST.TOPK 8
#
# SED configs: the six open-vocabulary benchmarks (A-847, PC-459, A-150, PC-59, PAS-20, PAS-20b) with the authors'
# settings (the benchmark's class-name JSON, class-attention pooling [1,1]); other models (ECENet, ...): each
# dataset of the config's DATASETS.TEST (tools/eval_plan.py prints the plan; sed/engine/eval_suite.py decides).
# The loop is tools/eval_suite.py's: each evaluation's settings travel as Python values, never as shell words.
# Weights: OUTPUT_DIR/model_final.pth when it exists (as after run.sh); KEY VALUE options come last and win, so
# MODEL.WEIGHTS among them picks another checkpoint. Results: OUTPUT_DIR/eval/<benchmark>/results.json.
# A benchmark whose dataset is missing is reported as skipped. Exit status: 0 if every benchmark was evaluated or
# skipped and at least one evaluated, else 1 (the table is printed either way). Python: $PYTHON, else
# .venv/bin/python, else python3.
set -u
if [ $# -lt 3 ]; then
    echo "usage: sh eval.sh CONFIG NUM_GPUS OUTPUT_DIR [KEY VALUE ...]" >&2
    exit 2
fi
CONFIG=$1
GPUS=$2
OUT=$3
shift 3
ROOT=$(cd "$(dirname "$0")" && pwd)
if [ -n "${PYTHON:-}" ]; then
    PY=$PYTHON
elif [ -x "$ROOT/.venv/bin/python" ]; then
    PY=$ROOT/.venv/bin/python
else
    PY=python3
fi

exec "$PY" "$ROOT/tools/eval_suite.py" "$CONFIG" "$GPUS" "$OUT" "$@"
