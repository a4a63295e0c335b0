"""Shared helpers of the engine tests (a module with a unique name: the tests tree has no __init__ files)."""

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# The quickstart model at 64 px: the engine tests' model (fast on 2 CPU cores).
FAST_OPTS = [
    "MODEL.CLIP_RESOLUTION",
    "(64, 64)",
    "INPUT.MIN_SIZE_TRAIN",
    "(64,)",
    "INPUT.CROP.SIZE",
    "(64, 64)",
    "INPUT.MIN_SIZE_TEST",
    "64",
    "SOLVER.IMS_PER_BATCH",
    "2",
]


@pytest.fixture
def one_thread():
    """Training tests run torch on one thread: on a shared 2-core machine two threads per process oversubscribe
    the cores and are many times slower."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def make_synthetic(datasets_root, num_train=16, num_val=6, size=(64, 64), seed=0):
    from sed.data.synthetic import generate_synthetic_dataset

    return generate_synthetic_dataset(os.path.join(str(datasets_root), "synthetic"), num_train, num_val, size, seed)


@pytest.fixture
def synthetic_root(tmp_path, monkeypatch):
    """$DETECTRON2_DATASETS with a small synthetic dataset (64 px)."""
    root = tmp_path / "datasets"
    make_synthetic(root)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(root))
    return root


def quickstart_cfg(*opts):
    from sed.engine.cli import load_config

    cfg = load_config(str(REPO / "configs" / "quickstart.yaml"), [*FAST_OPTS, *opts])
    cfg.freeze()
    return cfg


def subprocess_env(**extra):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHON"] = sys.executable
    env.setdefault("OMP_NUM_THREADS", "1")
    env.update(extra)
    return env
