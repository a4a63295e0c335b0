"""The parts of tools/compare_with_authors.py and tools/compare_precision.py that do not need the authors' code or
a model: importing a checkout's decoder under its own package name, the kept-class rule, the agreement measures."""

import sys

import pytest
import torch
from conftest import load_tool


def test_authors_decoder_is_imported_without_shadowing_this_project(tmp_path):
    tool = load_tool("compare_with_authors")
    with pytest.raises(FileNotFoundError, match="checkout of https://github.com/xb534/SED"):
        tool.import_authors_decoder(tmp_path)
    directory = tmp_path / "sed" / "modeling" / "transformer"
    directory.mkdir(parents=True)
    (directory / "convnext.py").write_text("BLOCK = 'theirs'\n")
    (directory / "model.py").write_text("from .convnext import BLOCK\nclass Aggregator:\n    block = BLOCK\n")
    try:
        module = tool.import_authors_decoder(tmp_path)
        assert module.Aggregator.block == "theirs"
        import sed.modeling

        assert module.__name__ == f"{tool.PACKAGE}.model" and hasattr(sed.modeling, "__file__")
        assert "transformer" not in sed.modeling.__file__
    finally:
        for name in [n for n in sys.modules if n.startswith(tool.PACKAGE)]:
            del sys.modules[name]


def test_both_sides_keep_the_classes_of_highest_maximum():
    tool = load_tool("compare_with_authors")
    scores = torch.zeros(5, 2, 2)
    scores[3, 1, 1], scores[1, 0, 0], scores[4, 0, 1] = 5.0, 4.0, -1.0
    assert tool.top_by_maximum(scores, 2).tolist() == [False, True, False, True, False]
    assert tool.top_by_maximum(scores, 9).all()


def test_agreement_counts_changed_labels_and_kept_classes():
    tool = load_tool("compare_precision")
    reference = torch.tensor([[[0.9, 0.2]], [[0.1, 0.205]], [[0.0, 0.0]]])  # (3 classes, 1, 2): pixel 2 nearly tied
    other = torch.tensor([[[0.9, 0.21]], [[0.1, 0.2]], [[0.0, 0.0]]])
    result = tool.agreement([reference], [other])
    assert result["label_change_fraction"] == 0.5
    assert result["max_probability_difference"] == pytest.approx(0.01)
    assert result["above_margin"]["0.01"] == {"pixel_fraction": 0.5, "label_change_fraction": 0.0}
    assert result["kept_classes_equal"] and result["kept_classes"] == [[0, 1]]
    other[2, 0, 0] = 0.3
    assert not tool.agreement([reference], [other])["kept_classes_equal"]
