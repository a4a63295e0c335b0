"""Vocabularies as users give them: benchmark names, class-name JSON files, or typed class lists.

One convention for the Python API (`OpenVocabSegmenter.segment`) and `tools/demo.py --vocabulary`:

* a string without commas names a benchmark vocabulary (`"ade150"`: `datasets/ade150.json`, see
  `benchmark_vocabularies()`), a class-name JSON file (`"my_classes.json"`) or a registered dataset
  (`"pets_val"`, e.g. one of your own, see sed/data/datasets/register_custom.py: its classes);
* any other string lists classes separated by commas, and synonyms of one class by "/":
  `"cat, dog, grass/lawn"` is 3 classes, the last one named by "grass" or "lawn";
* a list (or tuple) of strings holds one class per entry; synonyms may be separated by "/" or by ", " as in
  the JSON files: `["cat", "dog", "grass, lawn"]` equals the string above.

Classes come out in the given order (label i is class i), each in the text encoder's form (synonyms joined by
", "). An empty class, an empty synonym or a class listed twice (ignoring case and spacing) is rejected, as are
";" and "|" in a typed string, which would otherwise silently change what is one class.
"""

import os
from pathlib import Path

from detectron2.data import DatasetCatalog

from ..utils.class_names import REPO_ROOT, dataset_vocabulary, load_class_names

SYNONYM_SEPARATOR = "/"


class VocabularyError(ValueError):
    """A vocabulary that cannot be used as given; the message says why and how to write it."""


def benchmark_vocabularies():
    """Names of the benchmark vocabularies, i.e. of the class-name JSON files in the repository's datasets/."""
    return sorted(p.stem for p in (Path(REPO_ROOT) / "datasets").glob("*.json"))


def parse_vocabulary(vocabulary):
    """The list of T class names described by `vocabulary` (see the module docstring for the forms).

    Raises:
        VocabularyError: naming the offending entry.
        TypeError: for anything but a string or a sequence of strings.
    """
    if isinstance(vocabulary, str):
        return _parse_string(vocabulary)
    if not isinstance(vocabulary, (list, tuple)):
        raise TypeError(f"A vocabulary is a string or a list of class names, not {type(vocabulary).__name__}.")
    if not vocabulary:
        raise VocabularyError("The vocabulary is empty: give at least one class name.")
    for i, entry in enumerate(vocabulary):
        if not isinstance(entry, str):
            raise TypeError(
                f"The vocabulary list holds a {type(entry).__name__} at position {i + 1}, not a class name: {entry!r}."
            )
    where = "The vocabulary list"
    return _check_duplicates(
        [_class_name(entry.replace(",", SYNONYM_SEPARATOR), i, where) for i, entry in enumerate(vocabulary)], where
    )


def _parse_string(text):
    if not text.strip():
        raise VocabularyError(
            'The vocabulary is empty: give class names ("cat, dog, grass/lawn") or a benchmark name ("ade150").'
        )
    for separator in ";|":
        if separator in text:
            raise VocabularyError(
                f"Vocabulary {text!r}: {separator!r} is not a separator. Separate classes with commas and the "
                f"synonyms of one class with '{SYNONYM_SEPARATOR}', e.g. \"cat, dog, grass/lawn\"."
            )
    if "," in text:
        where = f"Vocabulary {text!r}"
        return _check_duplicates([_class_name(entry, i, where) for i, entry in enumerate(text.split(","))], where)
    name = text.strip()
    benchmarks = benchmark_vocabularies()
    if name.endswith(".json") or os.path.isfile(os.path.expanduser(name)):  # ("~x" of no user x stays as it is)
        return _check_duplicates(_load_json(name), f"Vocabulary {name!r}")
    if name in benchmarks:
        return _check_duplicates(_load_json(f"datasets/{name}.json"), f"Vocabulary {name!r}")
    if name in DatasetCatalog.list():
        return _check_duplicates(dataset_vocabulary(name), f"Vocabulary {name!r}")
    raise VocabularyError(
        f"Vocabulary {text!r} is neither a benchmark vocabulary ({', '.join(benchmarks)}), a class-name JSON "
        'file nor a registered dataset. To type classes, separate them with commas ("cat, dog, grass/lawn"); '
        "a single class makes no "
        "segmentation (every pixel would get it), in Python pass a list to force one."
    )


def _load_json(path):
    try:
        return load_class_names(path)
    except (OSError, ValueError) as e:  # a missing file, invalid JSON or an invalid list: all the user's input
        raise VocabularyError(str(e)) from e


def _class_name(entry, index, where):
    """Canonical form of one typed class ("grass / lawn" -> "grass, lawn"); `where` starts error messages."""
    synonyms = [s.strip() for s in entry.split(SYNONYM_SEPARATOR)]
    if not any(synonyms):
        raise VocabularyError(
            f"{where}: the class at position {index + 1} is empty (an empty entry, or a doubled or trailing comma)."
        )
    if not all(synonyms):
        raise VocabularyError(f"{where}: the class at position {index + 1} ({entry.strip()!r}) has an empty synonym.")
    return ", ".join(synonyms)


def _check_duplicates(names, where):
    first_index = {}
    for i, name in enumerate(names):
        key = " ".join(name.lower().split())
        if key in first_index:
            raise VocabularyError(
                f"{where}: {name!r} is listed twice (positions {first_index[key] + 1} "
                f"and {i + 1}); list every class once."
            )
        first_index[key] = i
    return names
