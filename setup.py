"""Installs the `sed` package: SED (CVPR 2024) and ECENet (ICCV 2023) on detectron2.

detectron2 itself is not on PyPI under its own name; `tools/setup_env.sh` installs it first (see INSTALL.md).
"""

from setuptools import find_packages, setup

setup(
    name="sed",
    version="0.1.0",
    description="SED: a simple encoder-decoder for open-vocabulary semantic segmentation, on detectron2",
    python_requires=">=3.9",
    packages=find_packages(include=["sed", "sed.*"]),
    package_data={"sed": ["model_configs/*.json"]},
    install_requires=[
        "torch>=2.0",
        "torchvision",
        # detectron2 is installed by tools/setup_env.sh (upstream source or the registry build); see INSTALL.md.
        "open_clip_torch>=2.23",
        "timm>=0.9",
        "fvcore",
        "pycocotools",
        # detectron2's SemSegEvaluator and its Python code predate numpy 2.
        "numpy<2",
        # 4.11 is the first opencv release built against numpy 2 only.
        "opencv-python-headless<4.11",
        "einops",
        "scipy",
        "tqdm",
        "Pillow",
        "tensorboard",
    ],
    extras_require={
        # hypothesis: property-based fuzzing of the readers of outside files (tests/test_fuzz_readers.py).
        "test": ["pytest>=7", "hypothesis>=6.100"],
        # The linter and formatter .ci/run checks (pinned: another ruff version formats differently), and the
        # pre-commit hooks that run the same checks on each commit (.pre-commit-config.yaml).
        "lint": ["ruff==0.17.6", "pre-commit>=3"],
        # tools/export_model.py: ONNX export and its onnxruntime check.
        "export": ["onnx>=1.16", "onnxruntime>=1.18"],
        # tools/web_demo.py (Gradio page) and its browser test (selenium drives Debian's chromium-driver).
        "web": ["gradio>=6", "selenium>=4.10"],
        # tools/slurm_train.py: SLURM jobs (and local test jobs) through submitit.
        "slurm": ["submitit>=1.5"],
        # Model-zoo downloads from Google Drive, where the authors host the SED checkpoints (MODEL_ZOO.md).
        "zoo": ["gdown>=5"],
        # tools/convert_ecenet_mindspore.py reads MindSpore .ckpt files without MindSpore.
        "mindspore": ["protobuf>=4.21"],
    },
)
