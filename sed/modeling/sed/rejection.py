"""Category early rejection: after each decoder stage, keep only the classes that can still win somewhere."""

import torch


def category_rejection(logits, topk):
    """Indices of the classes ranked in the top-k at one or more pixels.

    Args:
        logits: (T, H, W) class scores of one image (any monotonic score: logits or probabilities).
        topk: classes kept per pixel.
    Returns:
        (K,) ascending class indices, K <= T; all T classes when topk >= T.
    """
    num_classes = logits.shape[0]
    if topk >= num_classes:
        return torch.arange(num_classes, device=logits.device)
    top = logits.topk(topk, dim=0).indices.flatten()
    kept = torch.zeros(num_classes, dtype=torch.bool, device=logits.device)
    kept[top] = True
    return kept.nonzero().squeeze(1)
