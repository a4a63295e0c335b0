"""The authors' released ECENet checkpoint (MindSpore `.ckpt`, Swin-B ADE20K) -> a detectron2 checkpoint.

The release is MindSpore's port of the mmsegmentation model, so its tags are mmsegmentation's module names with
MindSpore's parameter names. Converting it is a rename plus one reordering:

* norms: MindSpore's `gamma`, `beta`, `moving_mean`, `moving_variance` are PyTorch's `weight`, `bias`,
  `running_mean`, `running_var` (BatchNorm's `num_batches_tracked` counter does not exist there; it is written
  as the model's initial value, and reported);
* head: `decode_head.<module>` -> `sem_seg_head.<module>`; the spec's module names (`layer_slcts`, `laterals`,
  `learner`, `token_emb`, `transfer`, `gated_tokens`, `ghost_up_layers`, `proj`, `conv_seg`, `trans`) are the
  released ones. Below them the released names are not documented: this code's sub-module names are assumed,
  and any tensor that does not fit is listed, never dropped silently;
* backbone: mmsegmentation's Swin (`stages.<i>`, `attn.w_msa.*`, `ffn.layers.*`, `patch_embed.projection`)
  -> timm's (`layers.<i>`, `attn.*`, `mlp.fc*`, `patch_embed.proj`). Patch merging sits at the end of stage i
  there and at the start of stage i + 1 here, and mmsegmentation merges the 2x2 patches with `nn.Unfold`, whose
  channel order (channel-major: c * 4 + position, positions (0,0), (0,1), (1,0), (1,1) in (row, col)) differs
  from timm's (position-major: position * C + c, positions (0,0), (1,0), (0,1), (1,1)): the reduction's input
  columns and the merge norm's entries are reordered back.

Optimizer state saved with the weights (`moments.*`, `global_step`, ...) is not converted, nor are the strings
MindSpore's `append_dict` saves; both are reported.
"""

import logging
import re
from pathlib import Path
from typing import Dict, List, Tuple

import torch

from ...checkpoint.mindspore_format import read_mindspore_checkpoint

__all__ = [
    "ConversionError",
    "released_to_d2_name",
    "unfold_to_timm_order",
    "convert_released_state_dict",
    "convert_released_ecenet",
]

logger = logging.getLogger(__name__)

_NORM_PARAMETERS = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
# (released pattern, our replacement) for the backbone, applied in order after the norm renames.
_SWIN_RENAMES = [
    (r"^backbone\.patch_embed\.projection\.", "backbone.patch_embed.proj."),
    (r"^backbone\.stages\.(\d+)\.downsample\.", lambda m: f"backbone.layers.{int(m.group(1)) + 1}.downsample."),
    (r"^backbone\.stages\.", "backbone.layers."),
    (r"\.attn\.w_msa\.", ".attn."),
    (r"\.ffn\.layers\.0\.0\.", ".mlp.fc1."),
    (r"\.ffn\.layers\.1\.", ".mlp.fc2."),
]
# Tensors of the training run, not of the model: MindSpore's optimizers and training loop save them too.
_TRAINING_STATE_PREFIXES = ("moments.", "adam_m.", "adam_v.", "accum.", "momentum.")
_TRAINING_STATE_NAMES = {
    "global_step",
    "learning_rate",
    "beta1_power",
    "beta2_power",
    "scale_sense",
    "epoch_num",
    "step_num",
    "current_iterator_step",
    "last_overflow_iterator_step",
}
# Buffers that the model computes itself (mmsegmentation keeps Swin's index table in its state dict).
_COMPUTED_BUFFERS = ("relative_position_index",)


class ConversionError(ValueError):
    """The released checkpoint does not fit the model; the message lists the tensors that do not."""


def released_to_d2_name(tag: str) -> str:
    """Our parameter name of a released (MindSpore / mmsegmentation) tag, e.g.
    "backbone.stages.0.downsample.norm.gamma" -> "backbone.layers.1.downsample.norm.weight",
    "decode_head.proj.norm.moving_mean" -> "sem_seg_head.proj.norm.running_mean"."""
    module, _, parameter = tag.rpartition(".")
    name = f"{module}.{_NORM_PARAMETERS.get(parameter, parameter)}"
    if name.startswith("decode_head."):
        return "sem_seg_head." + name[len("decode_head.") :]
    for pattern, replacement in _SWIN_RENAMES:
        name = re.sub(pattern, replacement, name)
    return name


def unfold_to_timm_order(tensor: torch.Tensor) -> torch.Tensor:
    """A patch-merging reduction weight (out, 4C) or norm vector (4C) from nn.Unfold's channel order to timm's.

    Unfold column c * 4 + p has positions p = (0,0), (0,1), (1,0), (1,1); timm's column q * C + c has
    q = (0,0), (1,0), (0,1), (1,1): unfold's p = 0, 2, 1, 3 in that order.
    """
    columns = tensor.shape[-1]
    reordered = tensor.reshape(*tensor.shape[:-1], columns // 4, 4)[..., [0, 2, 1, 3]]
    return reordered.transpose(-1, -2).reshape(tensor.shape)


def _is_training_state(tag: str) -> bool:
    return tag in _TRAINING_STATE_NAMES or tag.startswith(_TRAINING_STATE_PREFIXES)


def _examples(names: List[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def convert_released_state_dict(
    released: Dict[str, "object"], model_state: Dict[str, torch.Tensor]
) -> Tuple[Dict[str, torch.Tensor], Dict[str, List[str]]]:
    """Renames and reorders released tensors into the keys of `model_state` (the target model's state dict).

    Args:
        released: {tag: array or tensor} of the MindSpore checkpoint.
        model_state: the target ECENet's state dict (names, shapes, dtypes; values of the filled counters).
    Returns:
        (our state dict, report {"training_state": tags, "computed_buffers": tags, "filled": our names}).
    Raises:
        ConversionError: tags that map to no tensor of the model, tensors of the model that no tag gives, or
            shapes that differ, all listed.
    """
    converted, report = {}, {"training_state": [], "computed_buffers": [], "filled": []}
    unknown, shapes = [], []
    for tag, value in released.items():
        if _is_training_state(tag):
            report["training_state"].append(tag)
            continue
        if tag.endswith(_COMPUTED_BUFFERS):
            report["computed_buffers"].append(tag)
            continue
        name = released_to_d2_name(tag)
        if name not in model_state:
            unknown.append(f"{tag} (as {name})")
            continue
        tensor = torch.as_tensor(value)
        if tuple(tensor.shape) != tuple(model_state[name].shape):
            shapes.append(f"{tag} {list(tensor.shape)} vs {name} {list(model_state[name].shape)}")
            continue
        if re.match(r"backbone\.layers\.\d+\.downsample\.(reduction\.weight|norm\.weight|norm\.bias)$", name):
            tensor = unfold_to_timm_order(tensor)
        converted[name] = tensor.to(model_state[name].dtype).clone()
    missing = []
    for name, tensor in model_state.items():
        if name in converted:
            continue
        if name.endswith(".num_batches_tracked"):  # BatchNorm's step counter: MindSpore has none
            converted[name] = tensor.clone()
            report["filled"].append(name)
        else:
            missing.append(name)
    if unknown or missing or shapes:
        problems = (
            [f"{len(unknown)} released tensors have no place in the model: {_examples(unknown)}"] if unknown else []
        )
        problems += [f"{len(missing)} model tensors are not in the checkpoint: {_examples(missing)}"] if missing else []
        problems += [f"{len(shapes)} tensors differ in shape: {_examples(shapes)}"] if shapes else []
        raise ConversionError(
            "The checkpoint does not fit the model of the config (check that it is the Swin-B "
            "ADE20K release and the config ecenet_swinB_ade20k_640.yaml):\n" + "\n".join(problems)
        )
    return {name: converted[name] for name in model_state}, report


def convert_released_ecenet(path: str, model_state: Dict[str, torch.Tensor]) -> Tuple[dict, Dict[str, List[str]]]:
    """A released MindSpore `.ckpt` -> (a detectron2 checkpoint dict to torch.save and load as MODEL.WEIGHTS,
    the report of `convert_released_state_dict` plus "skipped": the file's entries that are not tensors)."""
    released, skipped = read_mindspore_checkpoint(path)
    logger.info("read %d tensors from %s", len(released), path)
    state_dict, report = convert_released_state_dict(released, model_state)
    report["skipped"] = [f"{tag} ({what})" for tag, what in skipped.items()]
    checkpoint = {
        "model": state_dict,
        "__author__": f"ECENet release {Path(path).name}, converted by tools/convert_ecenet_mindspore.py",
        "matching_heuristics": False,
    }
    return checkpoint, report
