"""The datasets/prepare_*.py scripts on tiny raw datasets in the real download formats."""

import functools
import os
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image
from raw_datasets import (
    DATASETS_DIR,
    ade_full_raw_ids,
    class_names,
    load_script,
    make_ade20k_150,
    make_ade20k_full,
    make_coco_stuff,
    make_pascal_context,
    make_voc,
    pascal_context_val_list,
    read_label,
)


def test_coco_stuff_maps_182_ids_to_171_contiguous(tmp_path):
    raw = make_coco_stuff(tmp_path)
    result = load_script("prepare_coco_stuff").prepare(tmp_path)
    assert result == {"train2017": (1, 0), "val2017": (1, 0)}
    out = tmp_path / "coco-stuff" / "annotations_detectron2"
    train = read_label(out / "train2017" / "000000000009.png")
    # person (id 1) -> 0; unused id 12 -> 255; banner (id 92) -> 80; wood (182) -> 170; 255 stays; id 91 unused
    np.testing.assert_array_equal(train, [[0, 255, 80], [170, 255, 255]])
    assert train.dtype == np.uint8 and train.shape == raw["train2017"]["000000000009"].shape
    val = read_label(out / "val2017" / "000000000139.png")
    # bicycle (2) -> 1; id 13 (stop sign) -> 11; 183 "other" -> 255; 250 -> 255; 25 (giraffe, id 25) -> 23
    np.testing.assert_array_equal(val, [[1, 11, 255], [255, 0, 23]])
    names = class_names("coco.json")
    assert [names[i] for i in (0, 11, 23, 80, 170)] == ["person", "stop sign", "giraffe", "banner", "wood"]


def test_ade20k_150_shifts_ids_and_ignores_other(tmp_path):
    make_ade20k_150(tmp_path)
    load_script("prepare_ade20k_150").prepare(tmp_path)
    out = tmp_path / "ADEChallengeData2016" / "annotations_detectron2"
    train = read_label(out / "training" / "ADE_train_00000001.png")
    np.testing.assert_array_equal(train, [[255, 0, 149], [255, 1, 255]])
    val = read_label(out / "validation" / "ADE_val_00000001.png")
    np.testing.assert_array_equal(val, [[4, 255], [149, 0]])
    assert val.dtype == np.uint8


def test_ade20k_full_maps_raw_ids_to_847_classes_as_uint16_tiff(tmp_path):
    maps = make_ade20k_full(tmp_path, big=True)
    load_script("prepare_ade20k_full").prepare(tmp_path)
    base = tmp_path / "ADE20K_2021_17_01"
    train_tif = base / "annotations_detectron2" / "training" / "ADE_train_00000001.tif"
    label = read_label(train_tif)
    assert label.dtype == np.uint16 and Image.open(train_tif).format == "TIFF"
    # wall -> 0, unlabelled -> 65535, a rare class -> 65535, building -> 1, the last class -> 846
    np.testing.assert_array_equal(label, [[0, 65535, 65535], [1, 846, 0]])
    np.testing.assert_array_equal(
        read_label(base / "annotations_detectron2" / "validation" / "ADE_val_00000001.tif"),
        [[846, 1], [65535, 65535], [0, 0]],
    )
    image = Image.open(base / "images_detectron2" / "validation" / "ADE_val_00000001.jpg")
    assert image.size == (2, 3) and image.mode == "RGB"
    # The 520x600 image has its shorter side brought to 512; nearest labels keep the class layout.
    big = read_label(base / "annotations_detectron2" / "validation" / "ADE_val_00000002.tif")
    assert big.shape == (512, 591)
    assert Image.open(base / "images_detectron2" / "validation" / "ADE_val_00000002.jpg").size == (591, 512)
    assert set(np.unique(big)) == {0, 846, 65535}
    assert (big[20:, :290] == 0).all() and (big[20:, 300:] == 846).all() and (big[:8] == 65535).all()
    assert maps[("validation", "ADE_val_00000002")].shape == (520, 600)


def test_ade20k_full_maps_through_the_authors_id_table_and_checks_it():
    module = load_script("prepare_ade20k_full")
    names = class_names("ade847.json")
    table = [{"id": raw, "trainId": label, "name": names[label]} for label, raw in ade_full_raw_ids().items()]
    lut = module.build_lut(table, names)
    assert sorted(set(lut.tolist()) - {65535}) == list(range(847))
    for entry in table[:20]:
        assert lut[entry["id"]] == entry["trainId"]
    with pytest.raises(ValueError, match="labels 0..846 once each"):
        module.build_lut(table[1:], names)
    renamed = [dict(table[0], name="not a class")] + table[1:]
    with pytest.raises(ValueError, match="names 1 labels differently from ade847.json"):
        module.build_lut(renamed, names)


def test_ade20k_full_refuses_an_index_that_would_run_code(tmp_path):
    from conftest import write_hostile_checkpoint

    make_ade20k_full(tmp_path)
    index = tmp_path / "ADE20K_2021_17_01" / "index_ade20k.pkl"
    write_hostile_checkpoint(index, tmp_path / "CODE_RAN")
    with pytest.raises(SystemExit, match="index_ade20k.pkl is not ADE20K's index .*could run code"):
        module = load_script("prepare_ade20k_full")
        module.main_wrapper(
            module.prepare, module.make_parser(module.__doc__, module.SPLITS), ["--root", str(tmp_path)]
        )
    assert not (tmp_path / "CODE_RAN").exists()


def test_voc_writes_labels_without_and_with_background(tmp_path):
    make_voc(tmp_path)
    result = load_script("prepare_voc").prepare(tmp_path)
    assert result == {"train": (1, 0), "val": (1, 0)}
    base = tmp_path / "VOCdevkit" / "VOC2012"
    no_bg = read_label(base / "annotations_detectron2" / "train" / "2007_000032.png")
    bg = read_label(base / "annotations_detectron2_bg" / "train" / "2007_000032.png")
    # raw [[0, 1, 20], [255, 15, 0]]: background 0, aeroplane 1, tvmonitor 20, border 255, person 15
    np.testing.assert_array_equal(no_bg, [[255, 0, 19], [255, 14, 255]])
    np.testing.assert_array_equal(bg, [[20, 0, 19], [255, 14, 20]])
    np.testing.assert_array_equal(
        read_label(base / "annotations_detectron2_bg" / "val" / "2007_000033.png"), [[20, 20], [255, 6]]
    )
    assert not (base / "annotations_detectron2" / "train" / "2007_000033.png").exists()


def test_voc_uses_segmentation_class_aug_for_train_when_present(tmp_path):
    make_voc(tmp_path, aug=True)
    load_script("prepare_voc").prepare(tmp_path)
    train_dir = tmp_path / "VOCdevkit" / "VOC2012" / "annotations_detectron2" / "train"
    # train_aug = everything SegmentationClassAug labels, minus the val images
    assert sorted(p.name for p in train_dir.iterdir()) == ["2007_000032.png", "2008_000002.png"]
    np.testing.assert_array_equal(read_label(train_dir / "2008_000002.png"), [[2, 255], [255, 19]])


def test_pascal_context_459_is_uint16_with_ignore_459(tmp_path):
    make_pascal_context(tmp_path)
    load_script("prepare_pascal_context_459").prepare(tmp_path, val_list=pascal_context_val_list(tmp_path))
    out = tmp_path / "VOCdevkit" / "VOC2010" / "annotations_detectron2"
    train = read_label(out / "pc459_train" / "2008_000002.tif")
    assert train.dtype == np.uint16
    np.testing.assert_array_equal(train, [[459, 1, 396], [0, 458, 457]])
    np.testing.assert_array_equal(read_label(out / "pc459_val" / "2008_000003.tif"), [[258, 459], [1, 299]])


def test_pascal_context_459_validation_is_the_authors_5104_images():
    ids = load_script("pascal_context_raw").AUTHORS_PC459_VAL_LIST.read_text().split()
    assert len(ids) == len(set(ids)) == 5104 and ids[:2] == ["2008_000002", "2008_000003"]


def test_pascal_context_59_keeps_the_59_classes(tmp_path):
    make_pascal_context(tmp_path)
    load_script("prepare_pascal_context_59").prepare(tmp_path)
    out = tmp_path / "VOCdevkit" / "VOC2010" / "annotations_detectron2"
    names = class_names("pc59.json")
    train = read_label(out / "pc59_train" / "2008_000002.png")
    assert train.dtype == np.uint8
    # raw [[0, 2 aeroplane, 397 table], [1 accordion, 459 wool, 458 wood]]
    assert (names[0], names[49], names[58]) == ("aeroplane", "diningtable", "wood")
    np.testing.assert_array_equal(train, [[255, 0, 49], [255, 255, 58]])
    # raw [[259 mountain, 0], [2 aeroplane, 300 (not in PC-59)]]
    assert names[34] == "mountain"
    np.testing.assert_array_equal(read_label(out / "pc59_val" / "2008_000003.png"), [[34, 255], [0, 255]])


def test_pascal_context_59_ids_are_the_standard_subset():
    lut = load_script("prepare_pascal_context_59").build_lut(
        {i + 1: name for i, name in enumerate(class_names("pc459.json"))}
    )
    ids = np.flatnonzero(lut != 255)
    assert len(ids) == 59 and (lut[ids] == np.arange(59)).all()
    assert list(ids[:10]) == [2, 9, 18, 19, 22, 23, 25, 31, 33, 34] and list(ids[-3:]) == [445, 454, 458]


@pytest.mark.parametrize(
    "script,make,outputs",
    [
        ("prepare_coco_stuff", make_coco_stuff, "coco-stuff/annotations_detectron2/train2017/000000000009.png"),
        ("prepare_voc", make_voc, "VOCdevkit/VOC2012/annotations_detectron2_bg/val/2007_000033.png"),
        (
            "prepare_pascal_context_459",
            make_pascal_context,
            "VOCdevkit/VOC2010/annotations_detectron2/pc459_val/2008_000003.tif",
        ),
    ],
)
def test_a_second_run_skips_what_exists_and_redoes_what_is_missing(tmp_path, script, make, outputs):
    make(tmp_path)
    module = load_script(script)
    if script == "prepare_pascal_context_459":  # the test tree's own validation list, not the authors' 5,104
        module = SimpleNamespace(prepare=functools.partial(module.prepare, val_list=pascal_context_val_list(tmp_path)))
    module.prepare(tmp_path)
    done = tmp_path / outputs
    mtime = done.stat().st_mtime_ns
    second = module.prepare(tmp_path)
    assert all(written == 0 and skipped == 1 for written, skipped in second.values())
    assert done.stat().st_mtime_ns == mtime
    done.unlink()
    third = module.prepare(tmp_path)
    assert sorted(third.values()) == [(0, 1), (1, 0)]
    assert done.exists() and not list(tmp_path.rglob("*.tmp"))


def test_ade20k_full_resumes_only_when_image_and_labels_exist(tmp_path):
    make_ade20k_full(tmp_path)
    module = load_script("prepare_ade20k_full")
    module.prepare(tmp_path, splits=["validation"])
    assert not (tmp_path / "ADE20K_2021_17_01" / "annotations_detectron2" / "training").exists()
    (tmp_path / "ADE20K_2021_17_01" / "images_detectron2" / "validation" / "ADE_val_00000001.jpg").unlink()
    assert module.prepare(tmp_path) == {"training": (1, 0), "validation": (1, 0)}


@pytest.mark.parametrize(
    "script,missing",
    [
        ("prepare_coco_stuff", "coco-stuff/annotations/train2017"),
        ("prepare_ade20k_150", "ADEChallengeData2016/annotations/training"),
        ("prepare_ade20k_full", "ADE20K_2021_17_01"),
        ("prepare_voc", "VOCdevkit/VOC2012/JPEGImages"),
        ("prepare_pascal_context_59", "VOCdevkit/VOC2010/JPEGImages"),
        ("prepare_pascal_context_459", "VOCdevkit/VOC2010/JPEGImages"),
    ],
)
def test_missing_raw_folder_is_named_with_where_to_download_it(tmp_path, script, missing):
    with pytest.raises(FileNotFoundError) as info:
        load_script(script).prepare(tmp_path)
    message = str(info.value)
    assert str(tmp_path / missing) in message and "Download" in message and "datasets/README.md" in message


def test_missing_mat_files_of_pascal_context_are_named(tmp_path):
    make_pascal_context(tmp_path)
    for mat in (tmp_path / "VOCdevkit" / "VOC2010" / "trainval").iterdir():
        mat.unlink()
    (tmp_path / "VOCdevkit" / "VOC2010" / "trainval").rmdir()
    with pytest.raises(FileNotFoundError, match="trainval.tar.gz"):
        load_script("prepare_pascal_context_459").prepare(tmp_path)


def test_command_line_with_worker_processes_and_env_root(tmp_path):
    make_ade20k_150(tmp_path)
    raw_val = tmp_path / "ADEChallengeData2016" / "annotations" / "validation"
    for i in range(2, 5):  # enough jobs for the worker pool
        (raw_val / f"ADE_val_0000000{i}.png").write_bytes((raw_val / "ADE_val_00000001.png").read_bytes())
    env = dict(os.environ, DETECTRON2_DATASETS=str(tmp_path))
    cmd = [sys.executable, str(DATASETS_DIR / "prepare_ade20k_150.py"), "--workers", "2"]
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "ADE20K-150 validation: wrote 4, skipped 0" in run.stdout
    out = tmp_path / "ADEChallengeData2016" / "annotations_detectron2" / "validation"
    for i in range(1, 5):
        np.testing.assert_array_equal(read_label(out / f"ADE_val_0000000{i}.png"), [[4, 255], [149, 0]])
    # A missing raw folder is a one-line error, not a traceback.
    run = subprocess.run(cmd + ["--root", str(tmp_path / "nowhere")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 1 and run.stderr.startswith("error: raw input") and "Traceback" not in run.stderr
