"""Converts ImageNet Swin Transformer weights (timm or Microsoft release) into a detectron2 checkpoint of
TimmSwinBackbone, for MODEL.WEIGHTS."""

import logging
import re
from pathlib import Path
from typing import Dict

import torch

from ...checkpoint.safe_load import torch_load

__all__ = ["load_swin_state_dict", "swin_to_backbone_state_dict", "convert_swin_to_d2"]

logger = logging.getLogger(__name__)


def load_swin_state_dict(path: str) -> Dict[str, torch.Tensor]:
    """Tensors of a local .safetensors or .pth/.pt/.bin file, unwrapped from a "model" or "state_dict" entry.

    .pth files are read with `sed.checkpoint.safe_load.torch_load`: plain tensors only, no pickled code (a file
    naming anything else raises `UnsafeCheckpointError`).
    """
    if Path(path).suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(path)
    state_dict = torch_load(path)
    for key in ("model", "state_dict"):
        state_dict = state_dict.get(key, state_dict)
    return state_dict


def swin_to_backbone_state_dict(state_dict: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """timm or Microsoft Swin ImageNet weights -> TimmSwinBackbone weights, keys prefixed "backbone.".

    Microsoft's release merges patches at the end of stage i, timm at the start of stage i + 1: its
    `layers.<i>.downsample` keys move to stage i + 1. The classifier, the final norm and the index/mask buffers
    are dropped. The backbone's per-stage output norms (norm0..norm3) are not in ImageNet weights; they are
    written at their initialisation (weight 1, bias 0), so the checkpoint covers every backbone key.
    """
    microsoft_layout = "layers.0.downsample.reduction.weight" in state_dict
    backbone = {}
    for key, value in state_dict.items():
        if not key.startswith(("patch_embed.", "layers.")) or key.endswith(("relative_position_index", "attn_mask")):
            logger.info("dropped %s", key)
            continue
        if microsoft_layout:
            key = re.sub(r"^layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) + 1}.downsample", key)
        backbone["backbone." + key] = value
    stage = 0
    while f"backbone.layers.{stage}.blocks.0.norm1.weight" in backbone:
        channels = backbone[f"backbone.layers.{stage}.blocks.0.norm1.weight"].shape[0]
        backbone[f"backbone.norm{stage}.weight"] = torch.ones(channels)
        backbone[f"backbone.norm{stage}.bias"] = torch.zeros(channels)
        stage += 1
    return backbone


def convert_swin_to_d2(path: str) -> dict:
    """A local Swin ImageNet weights file -> a detectron2 checkpoint dict to torch.save and use as MODEL.WEIGHTS."""
    return {
        "model": swin_to_backbone_state_dict(load_swin_state_dict(path)),
        "__author__": f"Swin ImageNet weights {Path(path).name}, converted by tools/convert_swin_to_d2.py",
        "matching_heuristics": False,
    }
