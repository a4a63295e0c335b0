"""Feature Reconstruction (FR): rebuilds a backbone level from an intrinsic and a diverse half."""

from typing import Tuple

import torch
from detectron2.layers import Conv2d, get_norm
from detectron2.layers.batch_norm import LayerNorm
from torch import nn

__all__ = ["FeatureReconstruction"]


class FeatureReconstruction(nn.Module):
    """One FR module (`layer_slcts[l]` of the head) for a level with c channels.

    intrinsic: 1x1 conv c -> c/2 + BN; diverse: depthwise 3x3 conv + BN on it, re-weighted channel-wise by an
    MLP of its global average (no sigmoid, as released); output: 1x1 conv over [diverse, intrinsic] + LayerNorm.
    The re-weighted diverse half also feeds the diversity loss, which pushes its channels to peak at different
    positions.
    """

    def __init__(self, channels: int, norm: str = "BN"):
        """
        Args:
            channels: c, channels in and out (even; c/4 is the hidden width of the re-weighting MLP).
            norm: detectron2 norm name of the two batch norms.
        """
        super().__init__()
        half = channels // 2
        self.intrinsic = Conv2d(channels, half, 1, bias=False, norm=get_norm(norm, half))
        self.diverse = Conv2d(half, half, 3, padding=1, groups=half, bias=True, norm=get_norm(norm, half))
        self.reweight = nn.Sequential(
            nn.Linear(half, channels // 4, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(channels // 4, half, bias=False),
        )
        self.fuse = Conv2d(channels, channels, 1, bias=False)
        self.norm = LayerNorm(channels, eps=1e-5)

    def forward(self, x: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x: (B, c, h, w) backbone level.
        Returns:
            (B, c, h, w) reconstructed level, and (B, c/2, h, w) the re-weighted diverse half.
        """
        intrinsic = self.intrinsic(x)
        diverse = self.diverse(intrinsic)
        diverse = diverse * self.reweight(diverse.mean(dim=(2, 3)))[:, :, None, None]
        return self.norm(self.fuse(torch.cat([diverse, intrinsic], dim=1))), diverse
