"""Explicit Class Extraction (ECE): class masks from features, class embeddings from class masks."""

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from detectron2.layers import Conv2d
from torch import nn

__all__ = ["class_pool_size", "ClassMaskLearner", "ClassTokenEmbedding"]


def class_pool_size(num_classes: int, ratio: float = 1.0) -> int:
    """The class-count pooling size s = int(sqrt(K) * ratio), made odd (K=150 -> 13, 59 -> 7, 19 -> 5)."""
    size = int(math.sqrt(num_classes) * ratio)
    return size + 1 if size % 2 == 0 else size


class ClassMaskLearner(nn.Module):
    """The mask predictor `learner`: grouped 1x1 conv C -> C, then 1x1 conv C -> K, both without bias."""

    def __init__(self, channels: int, num_classes: int, groups: int = 4):
        super().__init__()
        self.mix = Conv2d(channels, channels, 1, groups=groups, bias=False)
        self.classify = Conv2d(channels, num_classes, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) deepest lateral -> (B, K, h, w) mask logits M4."""
        return self.classify(self.mix(x))


class ClassTokenEmbedding(nn.Module):
    """One class-embedding extractor `token_emb[l]`: pyramid pooling of each class mask, then a Linear.

    Each class's mask logits (no sigmoid) are average-pooled adaptively to every size in `pool_sizes`; the pooled
    maps are flattened and concatenated in that order (sum of size**2 values) and projected to C.
    """

    def __init__(self, channels: int, pool_sizes: Sequence[int]):
        """
        Args:
            channels: C, the embedding width.
            pool_sizes: adaptive pooling output sizes, e.g. (1, 2, 3, 6, class_pool_size(K)).
        """
        super().__init__()
        self.pool_sizes = tuple(pool_sizes)
        self.proj = nn.Linear(sum(s * s for s in self.pool_sizes), channels)

    def pool(self, masks: torch.Tensor) -> torch.Tensor:
        """(B, K, h, w) mask logits -> (B, K, sum of size**2) pyramid-pooled values."""
        return torch.cat([F.adaptive_avg_pool2d(masks, s).flatten(2) for s in self.pool_sizes], dim=2)

    def forward(self, masks: torch.Tensor) -> torch.Tensor:
        """(B, K, h, w) mask logits -> (B, K, C) class embeddings."""
        return self.proj(self.pool(masks))
