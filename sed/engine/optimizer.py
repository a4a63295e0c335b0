"""Optimizer and learning-rate schedule of the training recipe (SED spec, section 3), for any model.

Parameter groups follow the authors' `build_optimizer`:
- parameters with `requires_grad=False` (SED's CLIP text tower) are left out;
- lr = SOLVER.BASE_LR x the model's `lr_multiplier(param_name)` (the model protocol, sed/modeling/protocol.py:
  SED puts its CLIP image tower at SOLVER.CLIP_MULTIPLIER, ECENet its head at MODEL.ECENET.HEAD_LR_MULTIPLIER
  and its backbone at SOLVER.BACKBONE_MULTIPLIER; models without the protocol: 1);
- weight decay = SOLVER.WEIGHT_DECAY, except SOLVER.WEIGHT_DECAY_NORM for the parameters of normalisation
  layers (BatchNorm, GroupNorm, LayerNorm, ... and their subclasses such as timm's LayerNorm2d; a module's
  `is_normalization` attribute, where set, decides instead of its class: SED's decoder sets it to False on
  its ConvNeXt blocks' LayerNorm, which the authors' rule missed),
  SOLVER.WEIGHT_DECAY_EMBED for `nn.Embedding`s, and 0 for `relative_position_bias_table` /
  `absolute_pos_embed` (Swin). Other parameters (biases, layer-scale `gamma`s) keep SOLVER.WEIGHT_DECAY, as
  in the authors' code.
Gradient clipping: SOLVER.CLIP_GRADIENTS with CLIP_TYPE "full_model" clips the L2 norm over all trained
parameters together (the authors' `FullModelGradientClippingOptimizer`); "value" / "norm" are detectron2's
per-parameter clipping.
"""

import itertools
import logging
from collections import defaultdict

import torch
from detectron2.layers.batch_norm import LayerNorm as D2LayerNorm
from detectron2.solver import build_lr_scheduler as d2_build_lr_scheduler
from detectron2.solver.build import maybe_add_gradient_clipping, reduce_param_groups
from torch import nn

from ..modeling.protocol import SegmentationModel, unwrap_model

logger = logging.getLogger(__name__)

NORM_MODULE_TYPES = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.SyncBatchNorm,
    nn.GroupNorm,
    nn.InstanceNorm1d,
    nn.InstanceNorm2d,
    nn.InstanceNorm3d,
    nn.LayerNorm,
    nn.LocalResponseNorm,
    D2LayerNorm,  # subclasses count too (timm's LayerNorm2d, d2's BNs)
)
NO_DECAY_PARAM_NAMES = ("relative_position_bias_table", "absolute_pos_embed")


def get_param_groups(cfg, model):
    """Optimizer parameter groups (dicts with "params", "lr", "weight_decay") following the rules above."""
    model = unwrap_model(model)
    solver = cfg.SOLVER
    lr_multiplier = model.lr_multiplier if isinstance(model, SegmentationModel) else SegmentationModel().lr_multiplier
    groups, memo = [], set()
    for module_name, module in model.named_modules():
        for param_name, param in module.named_parameters(recurse=False):
            if not param.requires_grad or param in memo:
                continue
            memo.add(param)
            full_name = f"{module_name}.{param_name}" if module_name else param_name
            lr, weight_decay = solver.BASE_LR * float(lr_multiplier(full_name)), solver.WEIGHT_DECAY
            if param_name in NO_DECAY_PARAM_NAMES:
                weight_decay = 0.0
            if getattr(module, "is_normalization", isinstance(module, NORM_MODULE_TYPES)):
                weight_decay = solver.WEIGHT_DECAY_NORM
            if isinstance(module, nn.Embedding):
                weight_decay = solver.WEIGHT_DECAY_EMBED
            groups.append({"params": [param], "lr": lr, "weight_decay": weight_decay, "name": full_name})
    return groups


def _log_groups(groups, model):
    summary = defaultdict(lambda: [0, 0])
    for g in groups:
        key = (g["lr"], g["weight_decay"])
        summary[key][0] += 1
        summary[key][1] += sum(p.numel() for p in g["params"])
    frozen = sum(p.numel() for p in unwrap_model(model).parameters() if not p.requires_grad)
    lines = [
        f"  lr {lr:.3g}, weight decay {wd:.3g}: {n} tensors, {numel / 1e6:.2f} M values"
        for (lr, wd), (n, numel) in sorted(summary.items(), key=lambda kv: -kv[1][1])
    ]
    logger.info(
        "Optimizer parameter groups (frozen, not optimised: %.2f M values):\n%s", frozen / 1e6, "\n".join(lines)
    )
    if any(lr == 0 for lr, _ in summary):
        logger.warning(
            "Some trained parameters have lr 0 (the model's lr multiplier of them is 0, e.g. "
            "SOLVER.BACKBONE_MULTIPLIER or SOLVER.CLIP_MULTIPLIER): they will not change."
        )


def full_model_gradient_clipping(optimizer_class, clip_value, norm_type=2.0):
    """A subclass of `optimizer_class` whose step() first clips the gradient norm over all its parameters."""

    class FullModelGradientClippingOptimizer(optimizer_class):
        def step(self, closure=None):
            all_params = itertools.chain(*[g["params"] for g in self.param_groups])
            torch.nn.utils.clip_grad_norm_(all_params, clip_value, norm_type)
            return super().step(closure=closure)

    FullModelGradientClippingOptimizer.__name__ = f"FullModelGradientClipping{optimizer_class.__name__}"
    return FullModelGradientClippingOptimizer


def build_optimizer(cfg, model):
    """AdamW (SOLVER.OPTIMIZER "ADAMW") or SGD over `get_param_groups`, with SOLVER.CLIP_GRADIENTS."""
    groups = get_param_groups(cfg, model)
    if not groups:
        raise ValueError("The model has no trainable parameters (all have requires_grad=False): nothing to train.")
    _log_groups(groups, model)
    for g in groups:
        g.pop("name")
    groups = reduce_param_groups(groups)
    name = cfg.SOLVER.OPTIMIZER.upper()
    if name == "ADAMW":
        optimizer_class, kwargs = torch.optim.AdamW, {}
    elif name == "SGD":
        optimizer_class, kwargs = torch.optim.SGD, {"momentum": cfg.SOLVER.MOMENTUM, "nesterov": cfg.SOLVER.NESTEROV}
    else:
        raise ValueError(f'SOLVER.OPTIMIZER={cfg.SOLVER.OPTIMIZER!r}: use "ADAMW" or "SGD".')
    clip = cfg.SOLVER.CLIP_GRADIENTS
    if clip.ENABLED and clip.CLIP_TYPE == "full_model":
        if clip.CLIP_VALUE > 0:
            optimizer_class = full_model_gradient_clipping(optimizer_class, clip.CLIP_VALUE, clip.NORM_TYPE)
        return optimizer_class(groups, lr=cfg.SOLVER.BASE_LR, **kwargs)
    optimizer_class = maybe_add_gradient_clipping(cfg, optimizer_class)  # "value" / "norm", per parameter
    return optimizer_class(groups, lr=cfg.SOLVER.BASE_LR, **kwargs)


def build_lr_scheduler(cfg, optimizer):
    """detectron2's schedulers (WarmupCosineLR, WarmupMultiStepLR, WarmupStepWithFixedGammaLR), plus
    "WarmupPolyLR" (detectron2's DeepLab project; SOLVER.POLY_LR_POWER, SOLVER.POLY_LR_CONSTANT_ENDING where the
    config declares them, else 0.9 and 0)."""
    if cfg.SOLVER.LR_SCHEDULER_NAME == "WarmupPolyLR":
        from detectron2.projects.deeplab.lr_scheduler import WarmupPolyLR

        return WarmupPolyLR(
            optimizer,
            cfg.SOLVER.MAX_ITER,
            warmup_factor=cfg.SOLVER.WARMUP_FACTOR,
            warmup_iters=cfg.SOLVER.WARMUP_ITERS,
            warmup_method=cfg.SOLVER.WARMUP_METHOD,
            power=cfg.SOLVER.get("POLY_LR_POWER", 0.9),
            constant_ending=cfg.SOLVER.get("POLY_LR_CONSTANT_ENDING", 0.0),
        )
    return d2_build_lr_scheduler(cfg, optimizer)
