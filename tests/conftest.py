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


class ParityFixture:
    """The authors' reference outputs on a tiny CLIP, ready to check the project against.

    Registers the fixture's open_clip config, writes its vocabulary and released-format checkpoint to a temp
    dir, and builds models the public way: configs/convnextB_768.yaml + overrides, build_model, and
    DetectionCheckpointer.
    """

    def __init__(self, tmp_dir):
        import json

        import open_clip

        if not PARITY_FIXTURE.is_file():
            raise FileNotFoundError(f"{PARITY_FIXTURE} is missing: the repository carries it (git checkout it).")
        self.data = torch.load(PARITY_FIXTURE, weights_only=True)
        with open(tmp_dir / f"{self.data['open_clip_model_name']}.json", "w") as f:
            json.dump(self.data["open_clip_model_config"], f)
        open_clip.add_model_config(tmp_dir)
        self.vocabulary = tmp_dir / "vocab.json"
        self.vocabulary.write_text(json.dumps(self.data["class_names"]))
        self.checkpoint = tmp_dir / "official.pth"
        torch.save(self.data["checkpoint"], self.checkpoint)

    def __getitem__(self, key):
        return self.data[key]

    def opts(self, fast=False, extra=()):
        opts = []
        for k, v in self.data["config_overrides"].items():
            opts += [k, v if isinstance(v, str) else str(v)]
        return opts + [
            "MODEL.SEM_SEG_HEAD.TEST_CLASS_JSON",
            str(self.vocabulary),
            "MODEL.SEM_SEG_HEAD.TRAIN_CLASS_JSON",
            str(self.vocabulary),
            "MODEL.DEVICE",
            "cpu",
            "MODEL.ENC.TEXT_EMBEDDING_CACHE_DIR",
            "",
            "TEST.FAST_INFERENCE",
            str(fast),
            *extra,
        ]

    def build(self, fast=False, extra=(), load=True):
        from detectron2.checkpoint import DetectionCheckpointer
        from detectron2.modeling import build_model

        model = build_model(load_cfg("convnextB_768.yaml", self.opts(fast, extra)))
        if load:
            DetectionCheckpointer(model).load(str(self.checkpoint))
        return model.eval()

    def input(self, **kwargs):
        return {
            "image": self.data["image"].clone(),
            "height": self.data["height"],
            "width": self.data["width"],
            **kwargs,
        }


@pytest.fixture(scope="session")
def parity(tmp_path_factory):
    return ParityFixture(tmp_path_factory.mktemp("parity"))


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
