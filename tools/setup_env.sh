#!/usr/bin/env bash
# Sets up everything SED needs in a virtual environment inside the checkout (.venv):
# torch + torchvision, detectron2, and this package in editable mode with its extras: test, lint (ruff,
# pre-commit), export (ONNX), web (browser demo), slurm (cluster launch), mindspore (the released-ECENet converter) and zoo (gdown: the
# released SED checkpoints on Google Drive). The browser test also
# needs Debian's chromium and chromium-driver (apt; .ci/run installs them).
# Idempotent: a second run checks each step and skips what is already in place.
#
# Environment variables:
#   PYTHON              interpreter used to create .venv (default: python3)
#   VENV                where the environment goes (default: <checkout>/.venv)
#   TORCH_SPEC          pip requirement(s) for torch (default: "torch==2.14.1 torchvision==0.29.1")
#   TORCH_INDEX_URL     extra index for a specific CUDA build of torch (optional, see INSTALL.md)
#   DETECTRON2_SOURCE   a path or git URL of detectron2's sources to build from instead of the registry build
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
VENV="${VENV:-$ROOT/.venv}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.14.1 torchvision==0.29.1}"
D2_REGISTRY_VERSION="0.7.2"

step() { printf '\n==> %s\n' "$*"; }
fail() { printf '\nsetup_env.sh: FAILED at step "%s".\n%s\n' "$CURRENT_STEP" "${1:-}" >&2; exit 1; }
trap 'fail "A command above exited with an error; its output says why."' ERR
CURRENT_STEP="start"

CURRENT_STEP="create the virtual environment"
if [ ! -x "$VENV/bin/python" ]; then
    step "Creating $VENV with $PYTHON"
    command -v "$PYTHON" >/dev/null || fail "'$PYTHON' not found: install Python 3.10-3.12 or set PYTHON=/path/to/python3."
    "$PYTHON" -m venv "$VENV" || fail "python -m venv failed: on Debian/Ubuntu install the python3-venv package."
else
    step "Using existing $VENV"
fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip --disable-pip-version-check)
"$PY" -c 'import sys; assert (3, 9) <= sys.version_info[:2] < (3, 13), sys.version' \
    || fail "Python $("$PY" -V) in $VENV is not supported: use 3.9-3.12 (PYTHON=python3.11 and remove $VENV)."

CURRENT_STEP="install torch"
if "$PY" -c 'import torch, torchvision' 2>/dev/null; then
    step "torch $("$PY" -c 'import torch; print(torch.__version__)') already installed"
else
    step "Installing $TORCH_SPEC"
    # shellcheck disable=SC2086
    "${PIP[@]}" install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} $TORCH_SPEC
fi

# detectron2's Python code uses pkg_resources (removed in setuptools 81) and numpy 1 APIs.
CURRENT_STEP="install build prerequisites"
step "Pinning setuptools<81 and numpy<2 for detectron2"
"${PIP[@]}" install -q "setuptools<81" "numpy<2" wheel

CURRENT_STEP="install detectron2"
if "$PY" -c 'import detectron2' 2>/dev/null; then
    step "detectron2 $("$PY" -c 'import detectron2; print(detectron2.__version__)') already installed"
elif [ -n "${DETECTRON2_SOURCE:-}" ]; then
    step "Building detectron2 from source: $DETECTRON2_SOURCE"
    src="$DETECTRON2_SOURCE"
    case "$src" in http*|git@*) src="git+$src" ;; esac
    "${PIP[@]}" install --no-build-isolation "$src" \
        || fail "Building detectron2 from $DETECTRON2_SOURCE failed: see its INSTALL.md (needs a C++ compiler, and nvcc for CUDA ops), or unset DETECTRON2_SOURCE to use the registry build."
else
    # The registry carries upstream detectron2 as `sal-detectron2`, one wheel tagged for CPython 3.10.
    # Its Python code runs on 3.9-3.12; only its compiled ops (unused by semantic segmentation) need 3.10,
    # so the wheel is re-tagged as pure Python before installing.
    step "Installing detectron2 $D2_REGISTRY_VERSION from the registry build (sal-detectron2)"
    wheels="$VENV/wheels"
    mkdir -p "$wheels"
    generic="$wheels/sal_detectron2-$D2_REGISTRY_VERSION-py3-none-any.whl"
    if [ ! -f "$generic" ]; then
        "${PIP[@]}" download -q --no-deps --python-version 3.10 --only-binary=:all: -d "$wheels" \
            "sal-detectron2==$D2_REGISTRY_VERSION" \
            || fail "Could not download sal-detectron2==$D2_REGISTRY_VERSION: check access to the package registry, or set DETECTRON2_SOURCE to detectron2's sources."
        mv "$wheels"/sal_detectron2-"$D2_REGISTRY_VERSION"-cp310-*.whl "$generic"
    fi
    "${PIP[@]}" install "$generic"
fi

CURRENT_STEP="install the sed package"
stamp="$VENV/.sed_installed"
# The install mode is part of the stamp, so that an environment installed in another mode is reinstalled.
want="$( (cat "$ROOT/setup.py"; echo "editable_mode=compat") | "$PY" -c 'import hashlib, sys; print(hashlib.sha1(sys.stdin.buffer.read()).hexdigest())')"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && "$PY" -c 'import sed' 2>/dev/null; then
    step "sed already installed (editable) and setup.py unchanged"
else
    step "Installing sed (editable) with its test, lint, export, web, slurm, mindspore and zoo extras"
    # numpy<2 again: the extras' dependencies (gradio's pandas) would otherwise upgrade it.
    # compat mode puts the checkout on sys.path: Python then finds the package whatever the current folder holds,
    # while the default editable finder loses to a folder named sed beside a script (the checkout's parent).
    "${PIP[@]}" install -e "$ROOT[test,lint,export,web,slurm,mindspore,zoo]" "setuptools<81" "numpy<2" \
        --use-pep517 --config-settings editable_mode=compat
    echo "$want" > "$stamp"
fi

CURRENT_STEP="check the installation"
step "Checking imports"
"$PY" - <<'EOF'
import torch, detectron2, open_clip, sed
from detectron2.config import get_cfg
from sed import add_sed_config
cfg = get_cfg(); add_sed_config(cfg)
print(f"torch {torch.__version__} (CUDA available: {torch.cuda.is_available()}), "
      f"detectron2 {detectron2.__version__}, open_clip {open_clip.__version__}: OK")
EOF
printf '\nDone. Run the tests with: %s -m pytest -q\n' "$VENV/bin/python"
