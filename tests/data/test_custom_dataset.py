"""A folder dataset registered from a YAML spec: records, 1-based label maps rewritten, metadata as the built-in
datasets', its vocabulary by name, DATASETS.CUSTOM in the config, and one-line errors for bad specs."""

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image

from sed.data.datasets import register_custom_dataset
from sed.data.vocabulary import parse_vocabulary
from sed.utils.class_names import REPO_ROOT as REPO

SPEC = """
name: pets_test
root: pets
classes: [cat, dog, grass/lawn]
ignore_label: 255
label_offset: 1
mask_suffix: _mask
splits:
  train: {images: images/train, masks: masks/train}
  val: {images: images/val, masks: masks/val}
"""


def make_pets(root):
    """Two images per split; masks count classes from 1 (0 = unlabelled); one train image has no mask."""
    masks = {}
    for split in ("train", "val"):
        for i in range(2):
            (root / "pets" / "images" / split).mkdir(parents=True, exist_ok=True)
            (root / "pets" / "masks" / split).mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((4, 6, 3), 40 * i, np.uint8)).save(root / "pets" / "images" / split / f"p{i}.jpg")
            mask = np.array([[0, 1, 2, 3, 255, 1]] * 4, np.uint8)
            Image.fromarray(mask).save(root / "pets" / "masks" / split / f"p{i}_mask.png")
            masks[split, i] = mask
    Image.fromarray(np.zeros((4, 6, 3), np.uint8)).save(root / "pets" / "images" / "train" / "unlabelled.jpg")
    return masks


@pytest.fixture
def pets(tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path / "data"))
    make_pets(tmp_path / "data")
    spec = tmp_path / "pets.yaml"
    spec.write_text(SPEC)
    yield spec
    for name in ("pets_test_train", "pets_test_val"):  # the catalogs are global: leave them as they were
        if name in DatasetCatalog.list():
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)


def test_spec_registers_each_split_with_remapped_labels(pets, tmp_path):
    assert register_custom_dataset(str(pets)) == ["pets_test_train", "pets_test_val"]
    records = DatasetCatalog.get("pets_test_train")
    assert [r["file_name"].rsplit("/", 1)[1] for r in records] == ["p0.jpg", "p1.jpg"]  # unlabelled.jpg left out
    label = np.asarray(Image.open(records[0]["sem_seg_file_name"]))
    np.testing.assert_array_equal(label[0], [255, 0, 1, 2, 255, 0])  # 1-based -> 0-based, 0 -> ignore
    assert "annotations_detectron2" in records[0]["sem_seg_file_name"]
    meta = MetadataCatalog.get("pets_test_val")
    assert meta.stuff_classes == ["cat", "dog", "grass, lawn"] and meta.ignore_label == 255
    assert meta.evaluator_type == "sem_seg" and meta.image_root == str(tmp_path / "data" / "pets" / "images" / "val")
    assert parse_vocabulary("pets_test_val") == ["cat", "dog", "grass, lawn"]  # demo --dataset, segment(vocabulary=)
    assert register_custom_dataset(str(pets)) == ["pets_test_train", "pets_test_val"]  # again: replaced


def test_config_key_registers_specs(pets):
    from sed.engine.cli import UsageError, load_config

    cfg = load_config(
        str(REPO / "configs" / "quickstart.yaml"),
        ["DATASETS.CUSTOM", f'("{pets}",)', "DATASETS.TEST", '("pets_test_val",)'],
    )
    assert "pets_test_val" in DatasetCatalog.list() and len(DatasetCatalog.get(cfg.DATASETS.TEST[0])) == 2
    with pytest.raises(UsageError, match="not found"):
        load_config(str(REPO / "configs" / "quickstart.yaml"), ["DATASETS.CUSTOM", '("no_such.yaml",)'])


@pytest.mark.parametrize(
    "change, message",
    [
        (("classes: [cat, dog, grass/lawn]", "classes: [cat, cat]"), "listed twice"),
        (("ignore_label: 255", "ignore_label: 1"), "ignore_label 1 is a class id"),
        (("mask_suffix", "mask_sufix"), "unknown field"),
        (("name: pets_test", "name: ade20k_150_test\nx: 1"), "unknown field"),
        (("  val: {images: images/val, masks: masks/val}", "  val: images/val"), "'splits' must map"),
        (("  train: {", "  train_sem_seg: {"), r"already registered \(a built-in dataset\)"),
    ],
)
def test_bad_spec_is_one_line_naming_the_field(pets, change, message):
    spec = SPEC.replace(*change)
    if "train_sem_seg" in spec:
        spec = spec.replace("name: pets_test", "name: ade20k_150")
    pets.write_text(spec)
    with pytest.raises(ValueError, match=message) as info:
        register_custom_dataset(str(pets))
    assert str(pets) in str(info.value) and "\n" not in str(info.value)


def test_missing_folder_says_to_check_the_spec(pets, tmp_path, monkeypatch):
    register_custom_dataset(str(pets))
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match="Check 'root' and 'splits' in"):
        DatasetCatalog.get("pets_test_val")
