"""Imports run one way (docs/ARCHITECTURE.md): every layer imports only the layers below it, so a change above
cannot break it and a model can be read without the engine; a model's modules are imported only inside its
package, by the registration and by the tools that are explicitly about that model."""

import ast
import subprocess
import sys

import pytest
from conftest import REPO

ALLOWED = {
    "modeling": {"modeling", "checkpoint", "model_zoo", "utils"},
    "data": {"data", "utils"},
    "evaluation": {"evaluation", "modeling", "data", "utils"},
    "checkpoint": {"checkpoint", "utils"},
    "utils": {"utils"},
    "model_zoo": {"model_zoo"},
    "config": {"config", "modeling", "data", "model_zoo", "utils"},
    "engine": {"engine", "config", "evaluation", "modeling", "data", "checkpoint", "model_zoo", "utils"},
    "predictor": {"predictor", "config", "modeling", "data", "checkpoint", "model_zoo", "utils"},
    "benchmark": {"benchmark", "engine", "config", "evaluation", "modeling", "data", "checkpoint", "utils"},
}
ENTRY_POINTS = {"__init__", "web", "export"}  # may import anything
MODELS = sorted(p.parent.name for p in (REPO / "sed" / "modeling").glob("*/__init__.py"))
# Outside a model's package, its modules are imported only by these (module: models), each for the reason given.
MODEL_SPECIFIC = {
    "sed/modeling/__init__.py": {"sed", "ecenet"},  # registration of the models
    "sed/config.py": {"sed", "ecenet"},  # registration of their config keys
    "sed/export/onnx.py": {"sed"},  # the ONNX export of SED
    "sed/benchmark/speed.py": {"sed"},  # SED-only options: --keep, --random-text-embeddings replace its functions
    "sed/benchmark/encoder_profile.py": {"sed"},  # SED's CLIP encoder by part (--encoder-profile)
    "tools/convert_swin_to_d2.py": {"ecenet"},  # ECENet's backbone weights
    "tools/convert_ecenet_mindspore.py": {"ecenet"},  # ECENet's released checkpoints
    "tools/compare_with_authors.py": {"sed"},  # SED's cost map + decoder against the authors' decoder
}


def layer_files(layer):
    package = REPO / "sed" / layer
    return sorted(package.rglob("*.py")) if package.is_dir() else [REPO / "sed" / f"{layer}.py"]


def imported_modules(path):
    """The dotted names of the `sed` modules (or their attributes) that the module at `path` imports."""
    package = list(path.relative_to(REPO).with_suffix("").parts[:-1])  # ["sed", "modeling", ...]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module or "").split(".")]).strip(".")
            found.update(f"{module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m == "sed" or m.startswith("sed.")}


def sed_imports(path):
    """The `sed` sub-packages (or top-level modules) imported by the module at `path`."""
    package = path.relative_to(REPO).with_suffix("").parts[:-1]  # ("sed", "modeling", ...)
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            parts = list(package[: len(package) - node.level + 1]) + (node.module or "").split(".")
            parts = [p for p in parts if p]
            found.add(parts[1] if len(parts) > 1 else node.names[0].name)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sed."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("sed."))
    return found


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_only_the_layers_below(layer):
    files = layer_files(layer)
    assert files
    wrong = {str(f.relative_to(REPO)): sorted(sed_imports(f) - ALLOWED[layer]) for f in files}
    assert not {f: w for f, w in wrong.items() if w}


def test_the_check_sees_imports():
    assert sed_imports(REPO / "sed" / "engine" / "trainer.py") >= {"modeling", "utils"}
    assert sed_imports(REPO / "sed" / "modeling" / "sed" / "sed_model.py") == {"checkpoint", "utils", "modeling"}


def test_every_part_of_the_package_is_a_checked_layer_or_an_entry_point():
    parts = {p.stem for p in (REPO / "sed").iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert parts == set(ALLOWED) | ENTRY_POINTS


@pytest.mark.parametrize("model", MODELS)
def test_a_models_modules_are_imported_only_inside_its_package(model):
    package = f"sed.modeling.{model}"
    files = [
        f
        for f in sorted((REPO / "sed").rglob("*.py")) + sorted((REPO / "tools").glob("*.py"))
        if not f.is_relative_to(REPO / "sed" / "modeling" / model)
    ]
    users = {
        str(f.relative_to(REPO))
        for f in files
        if any(m == package or m.startswith(package + ".") for m in imported_modules(f))
    }
    assert users == {f for f, models in MODEL_SPECIFIC.items() if model in models}


def test_the_model_check_sees_imports():
    assert imported_modules(REPO / "sed" / "export" / "onnx.py") >= {"sed.modeling.sed.sed_model.SED"}
    assert imported_modules(REPO / "tools" / "convert_swin_to_d2.py") >= {
        "sed.modeling.ecenet.swin_conversion.convert_swin_to_d2"
    }


def test_importing_the_package_leaves_the_engine_and_the_benchmarks_out():
    code = (
        "import sys, sed; "
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in (['sed', 'engine'], ['sed', 'benchmark'])))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
