import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]
# Outputs of the authors' implementation, their config files and class lists, released-checkpoint layouts and
# MindSpore-written files, carried by the repository (see tests/fixtures/README.md).
FIXTURES = REPO / "tests" / "fixtures"

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

# The device the tests marked `gpu` check against the CPU. SED_GPU_TEST_DEVICE=cpu runs them on the CPU instead: a
# dry run of the tests themselves on a machine without GPU (CPU against CPU proves nothing about CUDA).
GPU_TEST_DEVICE = os.environ.get("SED_GPU_TEST_DEVICE", "cuda")


def pytest_collection_modifyitems(config, items):
    if not GPU_TEST_DEVICE.startswith("cuda") or torch.cuda.is_available():
        return
    skip = pytest.mark.skip(
        reason="needs CUDA (torch.cuda.is_available() is False): run tools/gpu_check.sh on a GPU machine"
    )
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def gpu_device():
    """The device of the `gpu` tests: cuda (or SED_GPU_TEST_DEVICE)."""
    return GPU_TEST_DEVICE


@pytest.fixture
def strict_fp32():
    """Full float32 matrix products and convolutions on CUDA (no TF32) for the test, restored afterwards."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    yield
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


# Property-based fuzzing (tests/test_fuzz_readers.py): a few examples per reader in the default run (seconds);
# `--hypothesis-profile long` runs thousands. No deadline: a first example pays for imports and caches.
_FUZZ = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("default", max_examples=15, **_FUZZ)
settings.register_profile("long", max_examples=2000, **_FUZZ)
settings.load_profile("default")


@pytest.fixture(scope="session")
def repo_root():
    return REPO


def load_tool(name):
    """The module of `tools/<name>.py` (tools are scripts, not a package), loaded afresh."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"sed_tools_{name}", REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_cfg(config_file, opts=()):
    """A frozen detectron2 config from one of the project's yaml files plus overrides."""
    from sed.config import load_config

    cfg = load_config(str(REPO / "configs" / config_file), opts)
    cfg.freeze()
    return cfg


class _CreatesFile:
    """Unpickles to a call of open(path, "w"): reading it creates `path`, standing for any code a hostile file runs."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def write_hostile_checkpoint(path, marker):
    """A checkpoint file whose unpickling would create `marker` next to weights that look right: a plain pickle
    for .pkl (detectron2's Detectron format), torch.save otherwise. Returns `path`."""
    import pickle

    data = {"model": {"w": torch.zeros(2).numpy()}, "__author__": "someone", "payload": _CreatesFile(marker)}
    if str(path).endswith(".pkl"):
        with open(path, "wb") as f:
            pickle.dump(data, f)
    else:
        torch.save(data, path)
    return path


PARITY_FIXTURE = FIXTURES / "sed_parity_tiny.pt"


@pytest.fixture(scope="session")
def parity(tmp_path_factory):
    """The authors' reference outputs on a tiny CLIP (`sed.benchmark.parity_fixture`), with models built the
    public way: configs/convnextB_768.yaml + overrides, build_model, DetectionCheckpointer."""
    from sed.benchmark.parity_fixture import ParityFixture

    return ParityFixture(PARITY_FIXTURE, tmp_path_factory.mktemp("parity"))


def fill_disk(monkeypatch, limit=0, paths=""):
    """Makes the files of `sed.utils.files.atomic_write` whose path contains `paths` fail as on a disk with `limit`
    bytes left: ENOSPC once they are used (no mount needed: runs in CI as any user)."""
    import errno
    import io

    from sed.utils import files

    class FillingFile(io.FileIO):
        def write(self, data):
            if self.tell() + len(data) > limit:
                raise OSError(errno.ENOSPC, "No space left on device")
            return super().write(data)

    def fake_open(path, mode="r", *args, **kwargs):
        if "w" in mode and paths in str(path):
            return io.BufferedWriter(FillingFile(path, "w"), buffer_size=64)
        return open(path, mode, *args, **kwargs)

    monkeypatch.setattr(files, "open", fake_open, raising=False)


def miou_by_hand(model, cfg, dataset_name):
    """mIoU (%) of `model`'s predictions (argmax of its "sem_seg" scores, one image at a time through the test
    mapper) on a registered dataset, computed here from its label files, independently of the evaluators: per
    class with ground-truth pixels, TP / (ground truth + predicted - TP), the ignore label left out."""
    import numpy as np
    from detectron2.data import DatasetCatalog, MetadataCatalog
    from PIL import Image

    from sed.data.build import build_test_mapper

    metadata = MetadataCatalog.get(dataset_name)
    num_classes, ignore = len(metadata.stuff_classes), metadata.ignore_label
    mapper = build_test_mapper(cfg)
    tp, ground_truth, predicted = (np.zeros(num_classes) for _ in range(3))
    model.eval()
    for record in DatasetCatalog.get(dataset_name):
        with torch.no_grad():
            prediction = model([mapper(dict(record))])[0]["sem_seg"].argmax(0).cpu().numpy()
        labels = np.asarray(Image.open(record["sem_seg_file_name"]), dtype=np.int64)
        valid = labels != ignore
        gt, pred = labels[valid], prediction[valid]
        ground_truth += np.bincount(gt, minlength=num_classes)[:num_classes]
        predicted += np.bincount(pred, minlength=num_classes)[:num_classes]
        tp += np.bincount(gt[gt == pred], minlength=num_classes)[:num_classes]
    present = ground_truth > 0
    return 100 * float(np.mean(tp[present] / (ground_truth + predicted - tp)[present]))
