"""Convolutional blocks of SED's gradual fusion decoder (per-class maps, classes folded into the batch)."""
import torch
import torch.nn.functional as F
from torch import nn


class ConvNeXtBlock(nn.Module):
    """ConvNeXt block: depthwise conv, LayerNorm, MLP (x4, GELU), layer scale, residual.

    (N, C, H, W) -> (N, C, H, W). `gamma` starts at 1.0 (the authors' initialisation, not ConvNeXt's 1e-6).
    The depthwise convolution runs channels-last: on CPU its backward is an order of magnitude faster so.
    """

    def __init__(self, dim, kernel_size=9, layer_scale_init=1.0):
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.act = nn.GELU()
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), float(layer_scale_init)))

    def forward(self, x):
        y = self.dwconv(x.contiguous(memory_format=torch.channels_last)).permute(0, 2, 3, 1)
        y = self.pwconv2(self.act(self.pwconv1(self.norm(y))))
        return x + (self.gamma * y).permute(0, 3, 1, 2)


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

    def forward_split_input(self, parts):
        """The block on the channel concatenation of `parts`, without materialising it.

        The first convolution is linear and bias-free, so conv(cat(a, b, c)) = conv_a(a) + conv_b(b) + conv_c(c)
        with its weight split along input channels. A part shared by all classes of an image (size 1 in
        dim 1) is convolved once and broadcast, instead of being copied for every class.
        Args:
            parts: tensors (B, T or 1, C_i, H, W) with sum(C_i) == in_channels, in concatenation order.
        Returns:
            (B * T, C_out, H, W).
        """
        weight = self.double_conv[0].weight
        out, start = None, 0
        for part in parts:
            b, t, c, h, w = part.shape
            response = F.conv2d(part.reshape(b * t, c, h, w), weight[:, start:start + c], padding=1)
            start += c
            response = response.view(b, t, -1, h, w)
            out = response if out is None else out + response
        return self.double_conv[1:](out.flatten(0, 1))
