"""sed.data.verification on benchmarks prepared from the raw-format fixtures, intact and broken: each kind of
problem is found and named, the class table counts pixels, and the benchmark image counts are checked."""

import numpy as np
import pytest
from raw_datasets import load_script, make_ade20k_150, make_pascal_context, write_jpg, write_png

from sed.data.verification import EXPECTED_IMAGES, verify_dataset


@pytest.fixture
def ade150(tmp_path, monkeypatch):
    make_ade20k_150(tmp_path)
    load_script("prepare_ade20k_150").prepare(tmp_path)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    return tmp_path / "ADEChallengeData2016"


def test_intact_benchmark_fails_only_on_its_published_image_count(ade150):
    report = verify_dataset("ade20k_150_test_sem_seg")
    assert report.num_images == report.num_label_maps == 1
    assert len(report.problems) == 1 and "the benchmark has 2,000" in report.problems[0]
    assert not report.ok and "1 problem(s)" in report.verdict
    # prepared label map [[4, 255], [149, 0]]: one pixel each of classes 0, 4 and 149; 255 is ignored
    assert report.class_pixels.sum() == 3 and report.class_pixels[[0, 4, 149]].tolist() == [1, 1, 1]
    train = verify_dataset("ade20k_150_train_sem_seg")  # no published count for this split
    assert train.ok and train.verdict.startswith("ade20k_150_train_sem_seg: OK")


def test_broken_files_are_each_reported(ade150):
    images, labels = ade150 / "images" / "validation", ade150 / "annotations_detectron2" / "validation"
    write_jpg(images / "size.jpg", 4, 4)
    write_png(labels / "size.png", np.zeros((4, 5), np.uint8))
    write_jpg(images / "range.jpg", 2, 2)
    write_png(labels / "range.png", np.array([[0, 150], [200, 255]], np.uint8))
    write_jpg(images / "broken.jpg", 2, 2)
    (labels / "broken.png").write_bytes(b"not a png")
    write_png(labels / "orphan.png", np.zeros((2, 2), np.uint8))  # its image is missing
    report = verify_dataset("ade20k_150_test_sem_seg")
    text = "\n".join(report.problems)
    assert "1 size mismatches:" in text and "size.png: the label map is 5x4 but its image is 4x4" in text
    assert (
        "range.png: label value(s) 150, 200 are neither a class id (0..149: 150 classes) nor the ignore label 255"
    ) in text
    assert "1 unreadable label maps:" in text and "broken.png" in text
    assert "1 label maps without an image: orphan" in text
    assert report.num_label_maps == 5 and not report.ok


def test_images_without_labels_are_a_note_where_the_image_folder_holds_every_split(tmp_path, monkeypatch):
    make_pascal_context(tmp_path)
    load_script("prepare_pascal_context_59").prepare(tmp_path)
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    report = verify_dataset("context_59_test_sem_seg")
    assert any("have no label map" in n for n in report.notes)
    assert not any("without" in p for p in report.problems)
    assert EXPECTED_IMAGES["context_59_test_sem_seg"] == (5104, 5105)
