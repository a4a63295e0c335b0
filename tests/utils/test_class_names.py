"""The benchmark vocabularies, and how class-name files are found and checked."""

import json

import pytest
from conftest import FIXTURES, REPO

from sed.utils.class_names import load_class_names, resolve_class_json

SIZES = {
    "coco.json": 171,
    "ade150.json": 150,
    "ade847.json": 847,
    "pc59.json": 59,
    "pc459.json": 459,
    "voc20.json": 20,
    "voc20b.json": 59,
}


@pytest.mark.parametrize("filename,size", sorted(SIZES.items()))
def test_benchmark_vocabularies_are_the_authors(filename, size):
    """datasets/*.json hold the authors' class names, in their order (tests/fixtures/authors_class_names)."""
    names = load_class_names(f"datasets/{filename}")
    assert len(names) == size
    assert names == json.loads((FIXTURES / "authors_class_names" / filename).read_text())


def test_voc20b_is_voc20_then_the_other_pc59_classes():
    voc20b, voc20, pc59 = (load_class_names(f"datasets/{n}.json") for n in ("voc20b", "voc20", "pc59"))
    assert voc20b[:20] == voc20 and sorted(voc20b) == sorted(pc59)


def test_relative_paths_try_the_cwd_then_the_repository_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert resolve_class_json("datasets/coco.json") == REPO / "datasets" / "coco.json"
    (tmp_path / "datasets").mkdir()
    (tmp_path / "datasets" / "coco.json").write_text('["a", "b"]')
    assert resolve_class_json("datasets/coco.json") == tmp_path / "datasets" / "coco.json"
    assert load_class_names("datasets/coco.json") == ["a", "b"]
    assert resolve_class_json(REPO / "datasets" / "pc59.json") == REPO / "datasets" / "pc59.json"


def test_missing_file_names_the_places_tried(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="'datasets/nope.json' not found") as info:
        load_class_names("datasets/nope.json")
    assert str(tmp_path / "datasets" / "nope.json") in str(info.value)
    assert str(REPO / "datasets" / "nope.json") in str(info.value)


@pytest.mark.parametrize(
    "content,problem",
    [
        ("{not json", "is not valid JSON"),
        ('{"a": 1}', "must hold a non-empty list of names, got dict"),
        ("[]", r"got list \(empty\)"),
        ('["a", 3]', r"entry 1 \(3\) is not a non-empty string"),
        ('["a", " "]', r"entry 1 \(' '\) is not a non-empty string"),
        ('["a", "b", "a"]', r"duplicate names \['a'\]"),
    ],
)
def test_invalid_files_are_rejected_naming_file_and_problem(tmp_path, content, problem):
    path = tmp_path / "names.json"
    path.write_text(content)
    with pytest.raises(ValueError, match=problem) as info:
        load_class_names(path)
    assert str(path) in str(info.value)


def test_test_vocabulary_prefers_the_config_then_the_dataset_class_json():
    from conftest import load_cfg

    from sed.utils.class_names import test_vocabulary

    cfg = load_cfg("convnextB_768.yaml", ["MODEL.SEM_SEG_HEAD.TEST_CLASS_JSON", ""])
    # PAS-20b is scored on 21 classes but segmented with the 59 names of voc20b.json
    assert len(test_vocabulary(cfg, "voc_2012_test_background_sem_seg")) == 59
    assert len(test_vocabulary(cfg, "ade20k_150_test_sem_seg")) == 150
    cfg = load_cfg("convnextB_768.yaml", ["MODEL.SEM_SEG_HEAD.TEST_CLASS_JSON", "datasets/pc59.json"])
    assert len(test_vocabulary(cfg, "ade20k_150_test_sem_seg")) == 59
