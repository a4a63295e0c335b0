"""The synthetic quickstart dataset: COCO-Stuff layout, deterministic, registered lazily, clear when missing."""

import json

import numpy as np
import pytest
from conftest import REPO
from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image

from sed.data.synthetic import IGNORE_LABEL, SYNTHETIC_CLASSES, generate_synthetic_dataset


def make_synthetic(datasets_root, num_train, num_val):
    return generate_synthetic_dataset(str(datasets_root / "synthetic"), num_train, num_val, (64, 64), 0)


def test_layout_labels_and_class_names(tmp_path):
    root = tmp_path / "synthetic"
    make_synthetic(tmp_path, num_train=3, num_val=2)
    for split, count in (("train2017", 3), ("val2017", 2)):
        images = sorted((root / "images" / split).glob("*.jpg"))
        labels = sorted((root / "annotations_detectron2" / split).glob("*.png"))
        assert len(images) == len(labels) == count
        assert [p.stem for p in images] == [p.stem for p in labels]
        label = np.asarray(Image.open(labels[0]))
        assert label.dtype == np.uint8 and label.shape == (64, 64)
        assert set(np.unique(label)) <= set(range(len(SYNTHETIC_CLASSES))) | {IGNORE_LABEL}
        assert (label == IGNORE_LABEL).any(), "region borders are ignored"
        assert Image.open(images[0]).mode == "RGB"
    assert json.loads((root / "classes.json").read_text()) == SYNTHETIC_CLASSES
    assert json.loads((REPO / "datasets" / "synthetic.json").read_text()) == SYNTHETIC_CLASSES


def test_generation_is_deterministic(tmp_path):
    make_synthetic(tmp_path / "a", num_train=2, num_val=1)
    make_synthetic(tmp_path / "b", num_train=2, num_val=1)
    for rel in ("annotations_detectron2/train2017/000001.png", "images/val2017/000000.jpg"):
        assert (tmp_path / "a" / "synthetic" / rel).read_bytes() == (tmp_path / "b" / "synthetic" / rel).read_bytes()


def test_registration_reads_the_root_lazily(tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="python datasets/prepare_synthetic.py"):
        DatasetCatalog.get("synthetic_train_sem_seg")
    make_synthetic(tmp_path, num_train=2, num_val=1)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    records = DatasetCatalog.get("synthetic_test_sem_seg")
    assert len(records) == 1 and records[0]["sem_seg_file_name"].startswith(str(tmp_path))
    meta = MetadataCatalog.get("synthetic_train_sem_seg")
    assert meta.stuff_classes == SYNTHETIC_CLASSES and meta.ignore_label == IGNORE_LABEL
    assert meta.sem_seg_root.startswith(str(tmp_path))


def test_config_uses_synthetic_reads_the_yaml_chain_and_overrides(tmp_path):
    from sed.data.synthetic import config_uses_synthetic

    configs = REPO / "configs"
    assert config_uses_synthetic(str(configs / "quickstart.yaml"))
    assert not config_uses_synthetic(str(configs / "tiny_cpu.yaml"))
    assert config_uses_synthetic(str(configs / "tiny_cpu.yaml"), ["DATASETS.TEST", '("synthetic_test_sem_seg",)'])
    assert not config_uses_synthetic(
        str(configs / "quickstart.yaml"),
        ["DATASETS.TRAIN", '("coco_2017_train_stuff_all_sem_seg",)', "DATASETS.TEST", "()"],
    )
    child = tmp_path / "child.yaml"
    child.write_text(f"_BASE_: {configs / 'quickstart.yaml'}\nSOLVER:\n  MAX_ITER: 1\n")
    assert config_uses_synthetic(str(child))
    assert not config_uses_synthetic(str(tmp_path / "missing.yaml"))
    (tmp_path / "loop.yaml").write_text("_BASE_: loop.yaml\n")  # train_net.py names the loop; this only says no
    assert not config_uses_synthetic(str(tmp_path / "loop.yaml"))
