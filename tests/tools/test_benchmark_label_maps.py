"""tools/benchmark_label_maps.py: every synthetic map kind runs and the two label maps agree (no speed asserted)."""

import json

import pytest
from conftest import load_tool

from sed.benchmark.label_maps import MAP_KINDS, synthetic_scores


def test_every_map_kind_gives_equal_labels_and_json(tmp_path, capsys):
    out = tmp_path / "label_maps.json"
    status = load_tool("benchmark_label_maps").main(
        [
            "--classes",
            "40",
            "--size",
            "24",
            "19",
            "--out-size",
            "83",
            "61",
            "--kept",
            "4",
            "--threads",
            "1",
            "--output",
            str(out),
        ]
    )
    assert status == 0
    rows = json.loads(out.read_text())["rows"]
    assert [r["kind"] for r in rows] == list(MAP_KINDS)
    assert all(r["equal"] and r["before_s"] > 0 and r["after_s"] > 0 for r in rows)
    assert "speed-up" in capsys.readouterr().out


def test_synthetic_maps_have_the_described_structure():
    kept = synthetic_scores("kept", 50, (16, 16), kept=6)
    assert int((kept.flatten(1).amax(1) > 0).sum()) == 6
    segments = synthetic_scores("segments", 50, (96, 96))
    assert segments.min() >= 0 and segments.max() <= 1
    # one class clearly ahead at most pixels: the top score well above the second
    top2 = segments.topk(2, dim=0).values
    assert float(((top2[0] - top2[1]) > 0.1).float().mean()) > 0.75
    with pytest.raises(ValueError, match="unknown map kind"):
        synthetic_scores("striped", 5, (4, 4))
