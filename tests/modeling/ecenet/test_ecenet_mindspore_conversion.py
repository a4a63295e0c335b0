"""tools/convert_ecenet_mindspore.py: a checkpoint in the released format (MindSpore .ckpt, mmsegmentation's
names) written from a random tiny ECENet converts back exactly, and the model's outputs are equal."""

import copy
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import FIXTURES, load_cfg, load_tool
from detectron2.modeling import build_model
from torch import nn

from sed.checkpoint.mindspore_format import write_mindspore_checkpoint
from sed.predictor import load_checkpoint

CONFIG = "configs/ecenet/ecenet_tiny_cpu.yaml"
NORM_NAMES = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
SWIN_NAMES = [
    (r"^backbone\.layers\.(\d+)\.downsample\.", lambda m: f"backbone.stages.{int(m.group(1)) - 1}.downsample."),
    (r"^backbone\.layers\.", "backbone.stages."),
    (r"^backbone\.patch_embed\.proj\.", "backbone.patch_embed.projection."),
    (r"\.attn\.", ".attn.w_msa."),
    (r"\.mlp\.fc1\.", ".ffn.layers.0.0."),
    (r"\.mlp\.fc2\.", ".ffn.layers.1."),
]


def unfold_columns(merge):
    """For timm's patch merging `merge` (norm and reduction removed), the timm column of each nn.Unfold column,
    found by merging a 2x2 patch whose entries are their own (channel, position) ids."""
    channels = merge.reduction.in_features // 4
    ids = torch.arange(4 * channels, dtype=torch.float64).reshape(channels, 2, 2)  # (C, row, col)
    plain = copy.deepcopy(merge)
    plain.norm, plain.reduction = nn.Identity(), nn.Identity()
    timm_order = plain(ids.permute(1, 2, 0)[None].float()).flatten().long()  # (4C,) ids, timm's order
    unfold_order = F.unfold(ids[None], kernel_size=2, stride=2).flatten().long()  # (4C,) ids, mmseg's order
    position = {int(i): c for c, i in enumerate(timm_order)}
    return [position[int(i)] for i in unfold_order]


def released_checkpoint(model):
    """{tag: array} as the release names and lays out the model's tensors (MindSpore norms, mmseg's Swin)."""
    norms = {
        name
        for name, m in model.named_modules()
        if isinstance(m, (nn.LayerNorm, nn.modules.batchnorm._NormBase)) or type(m).__name__ == "LayerNorm"
    }
    merges = {name: unfold_columns(m) for name, m in model.named_modules() if hasattr(m, "reduction")}
    released = {}
    for name, tensor in model.state_dict().items():
        module, _, parameter = name.rpartition(".")
        if parameter == "num_batches_tracked":
            continue
        value = tensor.numpy()
        merge = module.rpartition(".")[0]
        if merge in merges and module.endswith((".reduction", ".norm")):  # timm's column order -> unfold's
            value = value[..., merges[merge]]
        tag = f"{module}.{NORM_NAMES[parameter]}" if module in norms and parameter in NORM_NAMES else name
        if tag.startswith("sem_seg_head."):
            tag = "decode_head." + tag[len("sem_seg_head.") :]
        for pattern, replacement in SWIN_NAMES:
            tag = re.sub(pattern, replacement, tag)
        released[tag] = np.ascontiguousarray(value)
    return released


@pytest.fixture(scope="module")
def converter():
    return load_tool("convert_ecenet_mindspore").main


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    model = build_model(load_cfg("ecenet/ecenet_tiny_cpu.yaml")).eval()
    for module in model.modules():  # non-trivial norm statistics, so that their renaming is checked too
        if isinstance(module, nn.modules.batchnorm._NormBase):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
    return model


def test_released_checkpoint_converts_back_exactly(tmp_path, model, converter):
    released = released_checkpoint(model)
    assert any(".w_msa." in t for t in released) and any(t.endswith(".moving_variance") for t in released)
    released.update(
        {
            "moments.decode_head.conv_seg.weight": np.zeros(1, np.float32),
            "global_step": np.array([160000], np.int32),
            "backbone.stages.0.blocks.0.attn.w_msa.relative_position_index": np.zeros((16, 16), np.int64),
        }
    )
    write_mindspore_checkpoint(tmp_path / "release.ckpt", released)
    assert converter([str(tmp_path / "release.ckpt"), str(tmp_path / "converted.pth"), "--config-file", CONFIG]) == 0

    converted = torch.load(tmp_path / "converted.pth", weights_only=True)["model"]
    assert converted.keys() == model.state_dict().keys()
    for name, tensor in model.state_dict().items():
        assert torch.equal(converted[name], tensor), name

    reloaded = build_model(load_cfg("ecenet/ecenet_tiny_cpu.yaml")).eval()
    load_checkpoint(reloaded, str(tmp_path / "converted.pth"))  # strict: raises on any unmatched tensor
    image = torch.randint(0, 256, (3, 72, 88), dtype=torch.uint8)
    with torch.no_grad():
        expected = model([{"image": image}])[0]["sem_seg"]
        assert torch.equal(reloaded([{"image": image}])[0]["sem_seg"], expected)


def test_unknown_and_missing_tensors_are_listed_and_nothing_is_written(tmp_path, model, converter, capsys):
    released = released_checkpoint(model)
    del released["decode_head.conv_seg.bias"]
    released["decode_head.extra_classifier.weight"] = np.zeros((8, 32), np.float32)
    write_mindspore_checkpoint(tmp_path / "odd.ckpt", released)
    assert converter([str(tmp_path / "odd.ckpt"), str(tmp_path / "out.pth"), "--config-file", CONFIG]) == 2
    error = capsys.readouterr().err
    assert "decode_head.extra_classifier.weight" in error and "sem_seg_head.conv_seg.bias" in error
    assert not (tmp_path / "out.pth").exists()


def test_a_file_that_is_not_a_mindspore_checkpoint_is_named(tmp_path, converter, capsys):
    torch.save({"model": {}}, tmp_path / "model.pth")
    assert converter([str(tmp_path / "model.pth"), str(tmp_path / "out.pth"), "--config-file", CONFIG]) == 2
    assert "not a MindSpore checkpoint" in capsys.readouterr().err


def test_a_checkpoint_written_by_mindspore_converts(tmp_path, converter, caplog):
    """tests/fixtures/mindspore/ecenet_tiny_release.ckpt: the tiny ECENet's tensors under the released names, saved
    by MindSpore 2.10 with crc_check=True and append_dict entries (tests/fixtures/make_mindspore_fixtures.py).
    Every tensor converts to the value the fixture script gave it; the step counter and the string are reported."""
    import importlib.util
    import logging

    spec = importlib.util.spec_from_file_location("make_mindspore_fixtures", FIXTURES / "make_mindspore_fixtures.py")
    fixtures = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(fixtures)
    with caplog.at_level(logging.INFO):
        assert (
            converter(
                [
                    str(FIXTURES / "mindspore" / "ecenet_tiny_release.ckpt"),
                    str(tmp_path / "converted.pth"),
                    "--config-file",
                    CONFIG,
                ]
            )
            == 0
        )
    assert "1 optimizer / training-loop tensors, not converted (e.g. global_step)" in caplog.text
    assert (
        "1 entries that are not tensors (append_dict strings), not converted (e.g. note (string 'ECENet tiny"
        in caplog.text
    )
    converted = torch.load(tmp_path / "converted.pth", weights_only=True)["model"]
    state = build_model(load_cfg("ecenet/ecenet_tiny_cpu.yaml")).state_dict()
    assert converted.keys() == state.keys()
    for name, tensor in state.items():
        if name.endswith("num_batches_tracked"):
            assert torch.equal(converted[name], tensor), name
        else:
            expected = torch.from_numpy(fixtures.tensor_values(name, tuple(tensor.shape)))
            assert torch.equal(converted[name], expected), name
