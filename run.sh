#!/bin/sh
# Trains a model, then evaluates the final one with eval.sh (as the authors' run.sh).
#
#   sh run.sh CONFIG NUM_GPUS OUTPUT_DIR [KEY VALUE ...]
#   sh run.sh configs/convnextB_768.yaml 4 output/sed_b
#   sh run.sh configs/quickstart.yaml 1 output/quickstart        # CPU, a few minutes, no download
#
# Training resumes from OUTPUT_DIR/last_checkpoint when there is one (--resume). A config that trains or tests
# on the synthetic dataset gets it generated first when it is missing. KEY VALUE options go to both training
# and evaluation. Python: $PYTHON, else .venv/bin/python, else python3.
set -u
set -f
if [ $# -lt 3 ]; then
    echo "usage: sh run.sh CONFIG NUM_GPUS OUTPUT_DIR [KEY VALUE ...]" >&2
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

"$PY" "$ROOT/datasets/prepare_synthetic.py" --if-missing --for-config "$CONFIG" "$@" || exit $?
"$PY" "$ROOT/tools/train_net.py" --config-file "$CONFIG" --num-gpus "$GPUS" --dist-url auto --resume \
    OUTPUT_DIR "$OUT" "$@" || exit $?
# The trained model is evaluated whatever MODEL.WEIGHTS (the initialisation) the options named.
export PYTHON="$PY"
exec sh "$ROOT/eval.sh" "$CONFIG" "$GPUS" "$OUT" "$@" MODEL.WEIGHTS "$OUT/model_final.pth"
