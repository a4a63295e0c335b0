"""Registered datasets: metadata, and loading prepared tiny datasets through DatasetCatalog."""

import os

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from raw_datasets import (
    load_script,
    make_ade20k_150,
    make_ade20k_full,
    make_coco_stuff,
    make_pascal_context,
    make_voc,
    pascal_context_val_list,
)

import sed  # noqa: F401  registers the datasets
from sed.utils.class_names import load_class_names

# name: (number of classes, ignore label, evaluator type, class JSON)
BENCHMARKS = {
    "coco_2017_train_stuff_all_sem_seg": (171, 255, "sem_seg", "datasets/coco.json"),
    "coco_2017_test_stuff_all_sem_seg": (171, 255, "sem_seg", "datasets/coco.json"),
    "ade20k_150_train_sem_seg": (150, 255, "sem_seg", "datasets/ade150.json"),
    "ade20k_150_test_sem_seg": (150, 255, "sem_seg", "datasets/ade150.json"),
    "ade20k_full_sem_seg_freq_val_all": (847, 65535, "sem_seg", "datasets/ade847.json"),
    "context_59_train_sem_seg": (59, 255, "sem_seg", "datasets/pc59.json"),
    "context_59_test_sem_seg": (59, 255, "sem_seg", "datasets/pc59.json"),
    "context_459_test_sem_seg": (459, 459, "sem_seg", "datasets/pc459.json"),
    "voc_2012_test_sem_seg": (20, 255, "sem_seg", "datasets/voc20.json"),
    "voc_2012_test_background_sem_seg": (21, 255, "sem_seg_background", "datasets/voc20b.json"),
}


@pytest.mark.parametrize("name", sorted(BENCHMARKS))
def test_metadata(name):
    num_classes, ignore, evaluator_type, class_json = BENCHMARKS[name]
    meta = MetadataCatalog.get(name)
    assert len(meta.stuff_classes) == num_classes and meta.ignore_label == ignore
    assert meta.evaluator_type == evaluator_type and meta.class_json == class_json
    assert len(meta.stuff_colors) == num_classes and all(
        len(c) == 3 and 0 <= min(c) <= max(c) < 256 for c in meta.stuff_colors
    )
    if evaluator_type == "sem_seg":
        assert meta.stuff_classes == load_class_names(class_json)
    else:
        assert meta.stuff_classes == load_class_names("datasets/voc20.json") + ["background"]
        assert len(load_class_names(class_json)) == 59


def test_colours_are_per_class_name_and_stable():
    ade, pc = MetadataCatalog.get("ade20k_150_test_sem_seg"), MetadataCatalog.get("context_59_test_sem_seg")
    assert ade.stuff_colors[ade.stuff_classes.index("sky")] == pc.stuff_colors[pc.stuff_classes.index("sky")]
    assert ade.stuff_colors[0] == [45, 134, 189]  # the first bytes of md5("wall")


def _records(name):
    return sorted(
        (os.path.basename(r["file_name"]), os.path.basename(r["sem_seg_file_name"])) for r in DatasetCatalog.get(name)
    )


def test_prepared_datasets_load_from_the_root_set_after_import(tmp_path, monkeypatch):
    make_coco_stuff(tmp_path)
    make_ade20k_150(tmp_path)
    make_ade20k_full(tmp_path)
    make_voc(tmp_path)
    make_pascal_context(tmp_path)
    for script in (
        "prepare_coco_stuff",
        "prepare_ade20k_150",
        "prepare_ade20k_full",
        "prepare_voc",
        "prepare_pascal_context_59",
    ):
        load_script(script).prepare(tmp_path)
    load_script("prepare_pascal_context_459").prepare(tmp_path, val_list=pascal_context_val_list(tmp_path))
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))

    expected = {
        "coco_2017_train_stuff_all_sem_seg": [("000000000009.jpg", "000000000009.png")],
        "coco_2017_test_stuff_all_sem_seg": [("000000000139.jpg", "000000000139.png")],
        "ade20k_150_train_sem_seg": [("ADE_train_00000001.jpg", "ADE_train_00000001.png")],
        "ade20k_150_test_sem_seg": [("ADE_val_00000001.jpg", "ADE_val_00000001.png")],
        "ade20k_full_sem_seg_freq_val_all": [("ADE_val_00000001.jpg", "ADE_val_00000001.tif")],
        # The VOC2010 / VOC2012 image folders hold every split; only the labelled images are records.
        "context_59_train_sem_seg": [("2008_000002.jpg", "2008_000002.png")],
        "context_59_test_sem_seg": [("2008_000003.jpg", "2008_000003.png")],
        "context_459_test_sem_seg": [("2008_000003.jpg", "2008_000003.tif")],
        "voc_2012_test_sem_seg": [("2007_000033.jpg", "2007_000033.png")],
        "voc_2012_test_background_sem_seg": [("2007_000033.jpg", "2007_000033.png")],
    }
    assert set(expected) == set(BENCHMARKS)
    for name, records in expected.items():
        assert _records(name) == records, name
        meta = MetadataCatalog.get(name)
        record = DatasetCatalog.get(name)[0]
        assert record["file_name"].startswith(meta.image_root) and meta.image_root.startswith(str(tmp_path))
        assert record["sem_seg_file_name"].startswith(meta.sem_seg_root)
    bg_root = MetadataCatalog.get("voc_2012_test_background_sem_seg").sem_seg_root
    assert bg_root.endswith("annotations_detectron2_bg/val")


def test_missing_dataset_folder_names_it_and_the_prepare_script(tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    with pytest.raises(FileNotFoundError) as info:
        DatasetCatalog.get("context_459_test_sem_seg")
    message = str(info.value)
    assert str(tmp_path / "VOCdevkit" / "VOC2010" / "JPEGImages") in message
    assert "datasets/prepare_pascal_context_459.py" in message and "datasets/README.md" in message

    (tmp_path / "VOCdevkit" / "VOC2010" / "JPEGImages").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="annotations_detectron2/pc459_val"):
        DatasetCatalog.get("context_459_test_sem_seg")


def test_default_root_is_datasets_relative_to_the_cwd(monkeypatch):
    monkeypatch.delenv("DETECTRON2_DATASETS", raising=False)
    assert MetadataCatalog.get("ade20k_150_test_sem_seg").image_root == os.path.join(
        "datasets", "ADEChallengeData2016", "images", "validation"
    )
