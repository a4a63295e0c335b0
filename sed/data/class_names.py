"""Class-name JSON files: the vocabularies of training and test (one name per class, in label order)."""
import json
import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def resolve_class_json(path):
    """A relative path is looked up in the working directory, then in the repository root."""
    candidates = [Path(path).expanduser()]
    if not candidates[0].is_absolute():
        candidates.append(REPO_ROOT / path)
    for candidate in candidates:
        if candidate.is_file():
            return str(candidate)
    raise FileNotFoundError(f"Class-name file {path!r} not found (looked in {[str(c) for c in candidates]}).")


def load_class_names(path):
    """The list of class names in a JSON file; ", " inside a name separates synonyms."""
    path = resolve_class_json(path)
    with open(path) as f:
        names = json.load(f)
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n.strip() for n in names):
        raise ValueError(f"{path}: expected a non-empty JSON list of non-empty class names.")
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicated class names.")
    return names
