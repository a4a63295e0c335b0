"""Imports run one way (docs/ARCHITECTURE.md): models, data, evaluation and checkpoint formats import only the
layers below them, so a change above them cannot break them and a model can be read without the engine."""
import ast

import pytest

from conftest import REPO

ALLOWED = {"modeling": {"modeling", "checkpoint", "model_zoo", "utils"}, "data": {"data", "utils"},
           "evaluation": {"evaluation", "modeling", "data", "utils"}, "checkpoint": {"checkpoint"},
           "model_zoo": {"model_zoo"}, "utils": {"utils"}}


def sed_imports(path):
    """The `sed` sub-packages (or top-level modules) imported by the module at `path`."""
    package = path.relative_to(REPO).with_suffix("").parts[:-1]  # ("sed", "modeling", ...)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            parts = list(package[:len(package) - node.level + 1]) + (node.module or "").split(".")
            parts = [p for p in parts if p]
            found.add(parts[1] if len(parts) > 1 else node.names[0].name)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sed."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("sed."))
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_the_layers_below(layer):
    files = sorted((REPO / "sed" / layer).rglob("*.py"))
    assert files
    wrong = {str(f.relative_to(REPO)): sorted(sed_imports(f) - ALLOWED[layer]) for f in files}
    assert not {f: w for f, w in wrong.items() if w}


def test_the_check_sees_imports():
    assert sed_imports(REPO / "sed" / "engine" / "trainer.py") >= {"modeling", "utils"}
    assert sed_imports(REPO / "sed" / "modeling" / "sed_model.py") == {"checkpoint", "utils", "modeling"}
