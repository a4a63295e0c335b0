"""SED's training loss: per-class binary cross-entropy on every decoder output."""

import torch.nn.functional as F


def sem_seg_bce_losses(logits, targets, ignore_value=255, exclude_ignored=False):
    """Binary cross-entropy of each output against one-hot targets.

    Args:
        logits: list of (B, T, h_i, w_i) logits; output i gives `loss_sem_seg_i`. Each is upsampled (bilinear)
            to the targets' size.
        targets: (B, H, W) class ids in [0, T) or `ignore_value`.
        exclude_ignored: False (authors): ignored pixels get an all-zero target and stay in the mean over
            B*H*W*T entries. True: they are left out of the mean.
    Returns:
        dict loss_sem_seg_i -> scalar.
    """
    num_classes = logits[0].shape[1]
    valid = targets != ignore_value
    if valid.any() and int(targets[valid].max()) >= num_classes:
        raise ValueError(
            f"Ground truth holds class id {int(targets[valid].max())} but the training vocabulary has "
            f"{num_classes} classes: MODEL.SEM_SEG_HEAD.TRAIN_CLASS_JSON must list the dataset's classes in "
            f"label order (ignore value {ignore_value})."
        )
    one_hot = F.one_hot(targets.masked_fill(~valid, num_classes), num_classes + 1)[..., :num_classes]
    one_hot = one_hot.permute(0, 3, 1, 2).to(logits[0].dtype)
    weight = valid.unsqueeze(1).to(logits[0].dtype).expand_as(one_hot) if exclude_ignored else None
    losses = {}
    for i, x in enumerate(logits):
        x = F.interpolate(x, size=targets.shape[-2:], mode="bilinear", align_corners=False)
        if weight is None:
            losses[f"loss_sem_seg_{i}"] = F.binary_cross_entropy_with_logits(x, one_hot)
        else:
            total = F.binary_cross_entropy_with_logits(x, one_hot, weight=weight, reduction="sum")
            losses[f"loss_sem_seg_{i}"] = total / weight.sum().clamp(min=1)
    return losses
