"""Class-name vocabularies: JSON lists of class names in label order, such as `datasets/coco.json`.

A name may list synonyms separated by ", " ("building, edifice"); that is the text encoder's business, here a
name is just a non-empty string.
"""

import json
import os
from collections import Counter
from pathlib import Path
from typing import List, Union

# The checkout's root (the parent of the `sed` package): configs name class files relative to it
# ("datasets/coco.json"), so they work whatever the current directory is.
REPO_ROOT = Path(__file__).resolve().parents[2]


def resolve_class_json(path: Union[str, Path]) -> Path:
    """
    Finds a class-name JSON file.

    Args:
        path: an absolute path, or a relative one, tried against the current directory first and then
            against the repository root.

    Returns:
        Path: the existing file.

    Raises:
        FileNotFoundError: naming every place that was tried.
    """
    path = Path(os.path.expanduser(path))  # unlike Path.expanduser, leaves "~x" of no user x as it is
    candidates = [path] if path.is_absolute() else [Path.cwd() / path, REPO_ROOT / path]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    tried = ", ".join(str(c) for c in candidates)
    raise FileNotFoundError(f"class-name JSON '{path}' not found (tried {tried})")


def load_class_names(path: Union[str, Path]) -> List[str]:
    """
    Reads and validates a class-name JSON file (see :func:`resolve_class_json` for how `path` is found).

    Returns:
        list[str]: the class names; index i is the name of label i.

    Raises:
        ValueError: naming the file and the problem, if it is not a non-empty JSON list of non-empty,
            distinct strings.
    """
    file = resolve_class_json(path)
    try:
        names = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"class-name JSON {file} is not valid JSON: {e}") from e
    if not isinstance(names, list) or not names:
        raise ValueError(
            f"class-name JSON {file} must hold a non-empty list of names, got {type(names).__name__}"
            f"{'' if names else ' (empty)'}"
        )
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"class-name JSON {file}: entry {i} ({name!r}) is not a non-empty string")
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise ValueError(f"class-name JSON {file}: duplicate names {duplicates}")
    return names


def test_vocabulary(cfg, dataset_name):
    """The class names an open-vocabulary model is given to segment `dataset_name`.

    MODEL.SEM_SEG_HEAD.TEST_CLASS_JSON if set; else the dataset's metadata `class_json`, else its
    `stuff_classes`. They can differ: PAS-20b is scored on 21 classes but segmented with the 59-name
    voc20b.json vocabulary.
    """
    json_path = cfg.MODEL.SEM_SEG_HEAD.get("TEST_CLASS_JSON", "")
    if json_path:
        return load_class_names(json_path)
    return dataset_vocabulary(dataset_name)


def dataset_vocabulary(dataset_name):
    """The class names that segment the registered dataset `dataset_name`: its metadata's `class_json`, else
    its `stuff_classes`."""
    from detectron2.data import MetadataCatalog

    metadata = MetadataCatalog.get(dataset_name)
    class_json = metadata.get("class_json", None)
    return load_class_names(class_json) if class_json else list(metadata.stuff_classes)
