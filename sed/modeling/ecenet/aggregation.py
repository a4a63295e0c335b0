"""Aggregation: learned (ghost) upsampling of the coarse levels to stride 4, and their fusion `proj`."""

from typing import List

import torch
import torch.nn.functional as F
from detectron2.layers import Conv2d, get_norm
from torch import nn

__all__ = ["resize", "GhostUpsampler", "FusionProjection"]


def resize(x: torch.Tensor, size) -> torch.Tensor:
    """Bilinear (align_corners False) resize of (B, C, h, w) to size (H, W); a no-op at that size."""
    return x if tuple(x.shape[-2:]) == tuple(size) else F.interpolate(x, size, mode="bilinear", align_corners=False)


class _GhostUpStep(nn.Module):
    """x2 upsampling: 1x1 conv C -> 2C and a depthwise 3x3 conv on it (each + BN + ReLU) give 4C channels that
    pixel_shuffle(2) rearranges into C channels at twice the resolution."""

    def __init__(self, channels: int, norm: str):
        super().__init__()
        wide = 2 * channels
        self.primary = Conv2d(channels, wide, 1, bias=False, norm=get_norm(norm, wide), activation=F.relu)
        self.cheap = Conv2d(
            wide, wide, 3, padding=1, groups=wide, bias=False, norm=get_norm(norm, wide), activation=F.relu
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, C, 2h, 2w)."""
        primary = self.primary(x)
        return F.pixel_shuffle(torch.cat([primary, self.cheap(primary)], dim=1), 2)


class GhostUpsampler(nn.Sequential):
    """`ghost_up_layers[i]`: log2(factor) ghost x2 steps, (B, C, h, w) -> (B, C, factor * h, factor * w)."""

    def __init__(self, channels: int, factor: int, norm: str = "BN"):
        steps = factor.bit_length() - 1
        if factor != 2**steps or steps < 1:
            raise ValueError(f"factor must be a power of 2 >= 2, got {factor}")
        super().__init__(*[_GhostUpStep(channels, norm) for _ in range(steps)])


class FusionProjection(Conv2d):
    """`proj`: resizes the levels to the first one's size (bilinear), concatenates them and fuses them by a 3x3
    conv + BN + ReLU."""

    def __init__(self, num_levels: int, channels: int, norm: str = "BN"):
        super().__init__(
            num_levels * channels, channels, 3, padding=1, bias=False, norm=get_norm(norm, channels), activation=F.relu
        )

    def forward(self, levels: List[torch.Tensor]) -> torch.Tensor:
        """num_levels maps (B, C, h_i, w_i) -> (B, C, h_0, w_0)."""
        size = levels[0].shape[-2:]
        return super().forward(torch.cat([resize(x, size) for x in levels], dim=1))
