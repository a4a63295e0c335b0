import pytest

from sed.data.vocabulary import VocabularyError, benchmark_vocabularies, parse_vocabulary
from sed.utils.class_names import load_class_names


def test_typed_classes_and_synonyms():
    assert parse_vocabulary("cat, dog ,grass / lawn") == ["cat", "dog", "grass, lawn"]
    # lists hold one class per entry; synonyms as in the JSON files (", ") or typed ("/")
    assert parse_vocabulary(["cat", "grass, lawn", "sky/heaven"]) == ["cat", "grass, lawn", "sky, heaven"]
    assert parse_vocabulary(("dog",)) == ["dog"]


@pytest.mark.parametrize("name", ["ade150", "ade847", "coco", "pc59", "pc459", "voc20", "voc20b"])
def test_benchmark_names_load_their_class_files(name):
    assert name in benchmark_vocabularies()
    assert parse_vocabulary(name) == load_class_names(f"datasets/{name}.json")


def test_json_files_load(tmp_path):
    (tmp_path / "mine.json").write_text('["road", "car, automobile"]')
    assert parse_vocabulary(str(tmp_path / "mine.json")) == ["road", "car, automobile"]
    with pytest.raises(VocabularyError, match="not found"):
        parse_vocabulary(str(tmp_path / "missing.json"))


@pytest.mark.parametrize(
    "vocabulary,message",
    [
        ("", "The vocabulary is empty"),
        ([], "The vocabulary is empty"),
        ("cat,, dog", "the class at position 2 is empty"),
        ("cat, dog,", "the class at position 3 is empty"),
        (["cat", " "], "the class at position 2 is empty"),
        ("cat, /lawn", "the class at position 2 ('/lawn') has an empty synonym"),
        ("cat, dog, CAT", "'CAT' is listed twice (positions 1 and 3)"),
        (["grass, lawn", "grass/lawn"], "listed twice"),
        ("cat; dog; grass", "';' is not a separator"),
        ("cat | dog", "'|' is not a separator"),
        ("ade15", "neither a benchmark vocabulary"),
        ("cat", "a single class makes no segmentation"),
    ],
)
def test_bad_vocabularies_are_rejected_with_the_reason(vocabulary, message):
    with pytest.raises(VocabularyError) as error:
        parse_vocabulary(vocabulary)
    assert message in str(error.value)


def test_non_strings_are_type_errors():
    with pytest.raises(TypeError, match="not a class name"):
        parse_vocabulary(["cat", 3])
    with pytest.raises(TypeError):
        parse_vocabulary(None)
