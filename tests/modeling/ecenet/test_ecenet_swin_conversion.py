"""tools/convert_swin_to_d2.py: timm and Microsoft-layout Swin weights -> a detectron2 backbone checkpoint."""

import re
import runpy

import torch
from conftest import REPO, load_cfg
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model
from safetensors.torch import save_file
from timm.models.swin_transformer import SwinTransformer

from sed.modeling.ecenet.swin_conversion import convert_swin_to_d2, swin_to_backbone_state_dict


def timm_state_dict():
    """A synthetic timm Swin with the tiny config's backbone architecture (and a classifier)."""
    swin = SwinTransformer(embed_dim=16, depths=(1, 1, 2, 1), num_heads=(1, 2, 2, 4), window_size=4, num_classes=7)
    return swin.state_dict()


def microsoft_layout(state_dict):
    """The same weights as Microsoft releases them: patch merging at the end of the previous stage, `head.*`,
    and the index / mask buffers."""
    out = {
        re.sub(r"^layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) - 1}.downsample", k): v
        for k, v in state_dict.items()
    }
    out = {k.replace("head.fc.", "head."): v for k, v in out.items()}
    out["layers.0.blocks.0.attn.relative_position_index"] = torch.zeros(16, 16, dtype=torch.long)
    out["layers.2.blocks.1.attn_mask"] = torch.zeros(4, 16, 16)
    return out


def test_timm_state_dict_round_trips_into_the_backbone():
    state_dict = timm_state_dict()
    converted = swin_to_backbone_state_dict(state_dict)
    model = build_model(load_cfg("ecenet/ecenet_tiny_cpu.yaml"))
    backbone = {k[len("backbone.") :]: v for k, v in converted.items()}
    model.backbone.load_state_dict(backbone, strict=True)  # no missing or unexpected key
    for key, value in model.backbone.state_dict().items():
        if not key.startswith("norm"):
            torch.testing.assert_close(value, state_dict[key])


def test_microsoft_layout_converts_to_the_same_checkpoint():
    state_dict = timm_state_dict()
    timm_converted = swin_to_backbone_state_dict(state_dict)
    ms_converted = swin_to_backbone_state_dict(microsoft_layout(state_dict))
    assert timm_converted.keys() == ms_converted.keys()
    for key in timm_converted:
        torch.testing.assert_close(timm_converted[key], ms_converted[key])


def test_cli_checkpoints_load_with_model_weights(tmp_path):
    state_dict = timm_state_dict()
    sources = {"timm.safetensors": None, "microsoft.pth": {"model": microsoft_layout(state_dict)}}
    save_file({k: v.contiguous() for k, v in state_dict.items()}, str(tmp_path / "timm.safetensors"))
    torch.save(sources["microsoft.pth"], tmp_path / "microsoft.pth")
    cli = runpy.run_path(str(REPO / "tools" / "convert_swin_to_d2.py"))["main"]
    for source in sources:
        output = tmp_path / f"{source}.d2.pth"
        cli([str(tmp_path / source), str(output)])
        checkpoint = torch.load(output, weights_only=True)
        assert checkpoint["matching_heuristics"] is False and "__author__" in checkpoint
        assert checkpoint["model"].keys() == convert_swin_to_d2(str(tmp_path / source))["model"].keys()

        model = build_model(load_cfg("ecenet/ecenet_tiny_cpu.yaml", ["MODEL.WEIGHTS", str(output)]))
        DetectionCheckpointer(model).load(str(output))
        missing = set(model.backbone.state_dict()) - {k[len("backbone.") :] for k in checkpoint["model"]}
        assert not missing
        torch.testing.assert_close(
            model.backbone.layers[1].downsample.reduction.weight, state_dict["layers.1.downsample.reduction.weight"]
        )
