"""Convolutional blocks of SED's gradual fusion decoder (per-class maps, classes folded into the batch)."""

import torch
import torch.nn.functional as F
from torch import nn

from .fused_convnext import fused_mlp, fused_mlp_supported


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block: depthwise conv, LayerNorm, MLP (x4, GELU), layer scale, residual.

    (N, C, H, W) -> (N, C, H, W). `gamma` starts at 1.0 (the authors' initialisation, not ConvNeXt's 1e-6).
    In training the depthwise convolution runs channels-last: its backward is ~10x faster so on the CPU.
    With `norm_weight_decay` (the authors'), the optimizer gives the LayerNorm the ordinary weight decay: the
    authors' block uses a LayerNorm class of their own, which their rule for normalisation layers misses.
    """

    def __init__(self, dim, kernel_size=9, layer_scale_init=1.0, norm_weight_decay=True):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        # Read by sed.engine.optimizer: False makes it a plain weight there.
        self.norm.is_normalization = not norm_weight_decay
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale_init)))

    def residual(self, x):
        """The block's branch, which `forward` adds to `x`."""
        if torch.is_grad_enabled():
            x = x.contiguous(memory_format=torch.channels_last)  # depthwise backward: ~10x faster on CPU
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return (self.gamma * y).permute(0, 3, 1, 2)

    def forward(self, x):
        return x + self.residual(x)

    @torch.no_grad()
    def add_residual_(self, x):
        """Inference: `x` (N, C, H, W) += the block's branch, in place; returns `x`.

        On the CPU the MLP runs as oneDNN's fused linear layers (`fused_convnext.fused_mlp`: no separate GELU and
        bias passes) and layer scale + residual as one `addcmul_`: float32 rounding differences from `forward`.
        """
        y = self.norm(self.dwconv(x).permute(0, 2, 3, 1))
        if fused_mlp_supported(y) and self.act.approximate in ("none", "tanh"):
            y = fused_mlp(y, self.pwconv1, self.pwconv2, self.act.approximate)
        else:
            y = self.pwconv2(self.act(self.pwconv1(y)))
        x.permute(0, 2, 3, 1).addcmul_(y, self.gamma)
        return x


class DoubleConv(nn.Module):
    """(Conv3x3 without bias, GroupNorm(out/16), ReLU) x 2: (N, C_in, H, W) -> (N, C_out, H, W)."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.double_conv = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.GroupNorm(out_channels // 16, out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.GroupNorm(out_channels // 16, out_channels),
            nn.ReLU(inplace=True),
        )

    def forward(self, x):
        return self.double_conv(x)

    def split_weight(self, channels):
        """The first convolution's weight split along input channels into parts of `channels` channels: the
        convolution of a channel concatenation is the sum of each part's (see `FusionStage.appearance_response`)."""
        return self.double_conv[0].weight.split(list(channels), dim=1)

    @staticmethod
    def first_conv(x, weight):
        """The first (bias-free) convolution with one part of its weight (see `split_weight`)."""
        return F.conv2d(x, weight, padding=1)

    def rest(self, x):
        """Everything after the first convolution: GroupNorm, ReLU, Conv, GroupNorm, ReLU."""
        return self.double_conv[1:](x)
