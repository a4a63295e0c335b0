"""ECENet training losses: cross-entropy, class-wise focal and dice mask losses, FR diversity loss."""

from typing import Dict, List

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.utils import comm
from fvcore.nn import sigmoid_focal_loss
from torch import nn

from .aggregation import resize

__all__ = ["focal_loss", "dice_loss", "diversity_loss", "ECENetCriterion"]


def focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, num_masks: float, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Sigmoid focal loss of N masks: mean over the P pixels of each, summed over masks, divided by num_masks.

    Args:
        logits, targets: (N, P) mask logits and binary targets.
    """
    return sigmoid_focal_loss(logits, targets, alpha, gamma, reduction="none").mean(1).sum() / num_masks


def dice_loss(logits: torch.Tensor, targets: torch.Tensor, num_masks: float) -> torch.Tensor:
    """Dice loss 1 - (2 |p t| + 1) / (|p| + |t| + 1) of N masks (p = sigmoid), summed and divided by num_masks.

    Args:
        logits, targets: (N, P) mask logits and binary targets.
    """
    probs = logits.sigmoid()
    dice = (2 * (probs * targets).sum(-1) + 1) / (probs.sum(-1) + targets.sum(-1) + 1)
    return (1 - dice).sum() / num_masks


def diversity_loss(diverse: List[torch.Tensor]) -> torch.Tensor:
    """1 - (sum over positions of the max over channels of each channel's spatial softmax) / channels, averaged
    over images and levels: 0 when every channel peaks at its own position, ~1 when all peak at the same one.

    Args:
        diverse: per level, (B, c, h, w) re-weighted FR diverse halves.
    """
    per_level = [1 - x.flatten(2).softmax(dim=-1).amax(dim=1).sum(dim=-1) / x.shape[1] for x in diverse]
    return torch.stack([loss.mean() for loss in per_level]).mean()


def _num_masks_per_gpu(num_masks: int, device) -> float:
    """The mean over GPUs of the number of target masks (at least 1), so every GPU divides by the same value."""
    total = torch.as_tensor([float(num_masks)], device=device)
    if comm.get_world_size() > 1:
        torch.distributed.all_reduce(total)
    return max(total.item() / comm.get_world_size(), 1.0)


class ECENetCriterion(nn.Module):
    """The weighted ECENet losses, from the head's outputs and the semantic labels."""

    @configurable
    def __init__(
        self,
        *,
        ce_weight: float = 1.0,
        mask_weight: float = 5.0,
        dice_weight: float = 2.0,
        div_weight: float = 0.2,
        focal_alpha: float = 0.25,
        focal_gamma: float = 2.0,
        ignore_value: int = 255,
    ):
        super().__init__()
        self.ce_weight = ce_weight
        self.mask_weight = mask_weight
        self.dice_weight = dice_weight
        self.div_weight = div_weight
        self.focal_alpha = focal_alpha
        self.focal_gamma = focal_gamma
        self.ignore_value = ignore_value

    @classmethod
    def from_config(cls, cfg):
        ece = cfg.MODEL.ECENET
        return {
            "ce_weight": ece.CE_WEIGHT,
            "mask_weight": ece.MASK_WEIGHT,
            "dice_weight": ece.DICE_WEIGHT,
            "div_weight": ece.DIV_WEIGHT,
            "focal_alpha": ece.FOCAL_ALPHA,
            "focal_gamma": ece.FOCAL_GAMMA,
            "ignore_value": cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE,
        }

    def forward(self, outputs: Dict[str, object], targets: torch.Tensor) -> Dict[str, torch.Tensor]:
        """
        Args:
            outputs: ECENetHead outputs ("logits", "aux_masks", "diverse").
            targets: (B, H, W) long labels, ignore_value where unlabelled; logits and masks are resized to (H, W).
        Returns:
            {"loss_ce", "loss_mask", "loss_dice", "loss_div"}, each already multiplied by its weight.
        """
        size = targets.shape[-2:]
        logits = resize(outputs["logits"], size)
        labelled = (targets != self.ignore_value).sum()
        loss_ce = F.cross_entropy(logits, targets, ignore_index=self.ignore_value, reduction="sum")
        loss_ce = loss_ce / labelled.clamp(min=1)

        # one binary target per class present in each image; ignored pixels are negatives of every class
        mask_logits, mask_targets = [], []
        for masks, labels in zip(outputs["aux_masks"], targets):
            classes = labels.unique()
            classes = classes[classes != self.ignore_value]
            if len(classes):
                mask_logits.append(resize(masks[classes][None], size)[0].flatten(1))
                mask_targets.append((labels[None] == classes[:, None, None]).flatten(1).to(mask_logits[-1].dtype))
        num_masks = _num_masks_per_gpu(sum(len(t) for t in mask_targets), targets.device)
        if mask_targets:
            mask_logits, mask_targets = torch.cat(mask_logits), torch.cat(mask_targets)
            loss_mask = focal_loss(mask_logits, mask_targets, num_masks, self.focal_alpha, self.focal_gamma)
            loss_dice = dice_loss(mask_logits, mask_targets, num_masks)
        else:  # nothing labelled in the batch
            loss_mask = loss_dice = outputs["aux_masks"].new_zeros(())

        return {
            "loss_ce": self.ce_weight * loss_ce,
            "loss_mask": self.mask_weight * loss_mask,
            "loss_dice": self.dice_weight * loss_dice,
            "loss_div": self.div_weight * diversity_loss(outputs["diverse"]),
        }
