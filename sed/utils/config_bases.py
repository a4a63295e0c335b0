"""The `_BASE_` chain of a detectron2 yaml config, read with the rules of fvcore's `load_yaml_with_base` (a base
path is relative to the file naming it; "~" is expanded; a list names several bases), but checked: a chain that
leads back to one of its own files, or to a missing file, is one line naming the files instead of a
RecursionError or a bare FileNotFoundError. Reads yaml only (no detectron2), so that shell helpers can use it
cheaply."""

import os

import yaml

__all__ = ["ConfigLoopError", "config_chain"]


class ConfigLoopError(ValueError):
    """The `_BASE_` chain of a config leads back to one of its own files."""


def _base_path(base, naming_file):
    base = os.path.expanduser(str(base))
    if base.startswith(("/", "https://", "http://")):
        return base
    return os.path.join(os.path.dirname(naming_file), base)


def config_chain(config_file):
    """The yaml mappings of `config_file` and of its bases, bases first (each once per time it is named).

    Raises:
        ConfigLoopError: the chain loops; the message names its files in order, e.g. a.yaml -> b.yaml -> a.yaml.
        FileNotFoundError: a `_BASE_` names a missing file (the message says which config names it).
        yaml.YAMLError: a file is not valid yaml.
    """
    chain = []

    def visit(path, trail):
        key = os.path.realpath(path)
        if key in [k for k, _ in trail]:
            files = [p for k, p in trail[[k for k, _ in trail].index(key) :]] + [path]
            raise ConfigLoopError(
                "the _BASE_ chain of the config loops: "
                + " -> ".join(files)
                + ": remove or change the _BASE_ line that leads back"
            )
        if not os.path.isfile(path):
            if trail:
                raise FileNotFoundError(
                    f"config file {path!r} not found (the _BASE_ of {trail[-1][1]}): fix "
                    "that _BASE_ line (a relative path is relative to the file naming it)"
                )
            raise FileNotFoundError(f"config file {path!r} not found")
        with open(path) as f:
            data = yaml.safe_load(f) or {}
        if not isinstance(data, dict):
            raise yaml.YAMLError(f"{path} holds a {type(data).__name__}, not a mapping of config keys")
        bases = data.get("_BASE_") or []
        for base in bases if isinstance(bases, list) else [bases]:
            visit(_base_path(base, path), trail + [(key, path)])
        chain.append(data)

    visit(config_file, [])
    return chain
