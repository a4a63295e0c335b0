"""tools/profile_ops.py and sed/benchmark/op_profile.py: the time of each operation, attributed to the model's
parts, and its multiply-adds counted right (what its GMAC/s and share of the peak are computed from)."""

import json

import torch
from conftest import REPO, load_tool
from torch import nn

from sed.benchmark.op_profile import operation_table, profile_operations


class TwoParts(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.up = nn.ConvTranspose2d(8, 6, 2, stride=2)
        self.linear = nn.Linear(6, 5)

    def first(self, x):
        return self.conv(x)

    def second(self, x):
        return self.linear(self.up(x).permute(0, 2, 3, 1))


def test_multiply_adds_are_counted_per_operation_and_part():
    model = TwoParts()
    x = torch.randn(2, 4, 10, 12)
    parts = {"first": (model, ["first"]), "second": (model, ["second"])}
    with torch.no_grad():
        groups = profile_operations(lambda: model.second(model.first(x)).sum(), parts)
    macs = {(part, name): group[2] for (part, name, _), group in groups.items()}
    assert macs["first", "aten::conv2d"] == 2 * 10 * 12 * 8 * 4 * 9
    assert macs["second", "aten::conv_transpose2d"] == 2 * 10 * 12 * 8 * 6 * 4  # each input pixel: 8x6x2x2
    assert macs["second", "aten::linear"] == 2 * 20 * 24 * 6 * 5
    assert ("other", "aten::sum") in macs  # outside the parts
    rows, summary = operation_table(groups, {("conv", "fp32"): 10.0, ("matmul", "fp32"): 10.0})
    conv = next(row for row in rows if row["operation"] == "aten::conv2d")
    assert conv["kind"] == "conv" and conv["gmac_per_s"] > 0
    assert abs(conv["share_of_peak"] - conv["gmac_per_s"] / 10.0) < 1e-9
    for part in ("first", "second"):
        assert abs(sum(row["share_of_part"] for row in rows if row["part"] == part) - 1) < 1e-9
    assert abs(sum(row["ms"] for row in rows) - sum(row["ms"] for row in summary)) < 1e-6


def test_profile_ops_tiny_config_writes_json(tmp_path, capsys):
    out = tmp_path / "ops.json"
    argv = ["--config-file", str(REPO / "configs/tiny_cpu.yaml"), "--vocabulary", "5", "--threads", "1"]
    assert load_tool("profile_ops").main([*argv, "--fast", "--rows", "5", "--output", str(out)]) == 0
    result = json.loads(out.read_text())
    assert {"conv_fp32", "matmul_fp32"} <= set(result["peaks_gmac_per_s"])
    assert {row["part"] for row in result["summary"]} >= {"encoder", "decoder", "other"}
    decoder_conv = next(r for r in result["summary"] if r["part"] == "decoder" and r["kind"] == "conv")
    assert decoder_conv["gmac_per_s"] > 0 and decoder_conv["share_of_peak"] > 0
    assert "decoder" in capsys.readouterr().out


def test_profile_ops_names_ecenet_parts(tmp_path):
    out = tmp_path / "ops.json"
    argv = ["--config-file", str(REPO / "configs/ecenet/ecenet_tiny_cpu.yaml"), "--threads", "1", "--output", str(out)]
    assert load_tool("profile_ops").main([*argv, "--image-size", "64", "64"]) == 0
    assert {"backbone", "head"} <= {row["part"] for row in json.loads(out.read_text())["summary"]}
