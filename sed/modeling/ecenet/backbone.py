"""Swin Transformer (timm) as a detectron2 backbone that takes images of any size."""

from typing import Sequence, Tuple

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling import BACKBONE_REGISTRY, Backbone, ShapeSpec
from timm.models.swin_transformer import SwinTransformer, SwinTransformerBlock, window_partition, window_reverse
from torch import nn

__all__ = ["TimmSwinBackbone"]


def shifted_window_mask(
    height: int, width: int, window: Tuple[int, int], shift: Tuple[int, int], device=None
) -> torch.Tensor:
    """Additive attention mask of shifted windows over a (height, width) map padded to window multiples.

    After the cyclic shift, a window at the bottom/right border holds tokens from opposite image borders; tokens
    from different regions must not attend to each other. Returns (num_windows, wh * ww, wh * ww): 0 or -100.
    """
    region = torch.zeros(1, height, width, 1, device=device)
    label = 0
    for rows in (slice(0, -window[0]), slice(-window[0], -shift[0]), slice(-shift[0], None)):
        for cols in (slice(0, -window[1]), slice(-window[1], -shift[1]), slice(-shift[1], None)):
            region[:, rows, cols, :] = label
            label += 1
    region = window_partition(region, window).flatten(1)  # (num_windows, wh * ww)
    different = region.unsqueeze(1) != region.unsqueeze(2)
    return torch.zeros_like(different, dtype=torch.float).masked_fill(different, -100.0)


def swin_block_forward(block: SwinTransformerBlock, x: torch.Tensor) -> torch.Tensor:
    """One Swin block on (B, H, W, C) of any H, W, padding to window multiples *before* the cyclic shift.

    This is the order of the original Swin segmentation code (and mmsegmentation's, which trained ECENet): the
    shifted-window mask is then built over the padded map it is applied to. timm's own dynamic-size path shifts
    before padding, so for sizes that are not window multiples its mask joins tokens from opposite borders.
    Padded tokens are zeros that keys may attend to, as in the original.
    """
    _, height, width, channels = x.shape
    window, shift = block.window_size, block.shift_size
    shortcut = x
    x = block.norm1(x)
    x = F.pad(x, (0, 0, 0, (-width) % window[1], 0, (-height) % window[0]))
    padded_h, padded_w = x.shape[1:3]
    mask = None
    if any(shift):
        x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        mask = shifted_window_mask(padded_h, padded_w, window, shift, device=x.device).to(x.dtype)
    windows = window_partition(x, window).view(-1, window[0] * window[1], channels)
    windows = block.attn(windows, mask=mask).view(-1, window[0], window[1], channels)
    x = window_reverse(windows, window, padded_h, padded_w)
    if any(shift):
        x = torch.roll(x, shifts=shift, dims=(1, 2))
    x = shortcut + block.drop_path1(x[:, :height, :width])
    return x + block.drop_path2(block.mlp(block.norm2(x)))


@BACKBONE_REGISTRY.register()
class TimmSwinBackbone(Backbone):
    """Swin Transformer stages of timm's `SwinTransformer`, returning every stage like mmsegmentation's Swin.

    Parameter names are timm's (`patch_embed.*`, `layers.<stage>.*`), so timm and converted Microsoft weights load
    directly (tools/convert_swin_to_d2.py); the classifier and final norm are dropped; each returned stage has
    its own LayerNorm `norm<stage>` (mmsegmentation's output norms, trained from their initialisation).
    MODEL.BACKBONE.NAME "TimmSwinBackbone" builds it from MODEL.ECENET.SWIN with random weights: pretrained ones
    arrive through MODEL.WEIGHTS, nothing is downloaded.
    """

    @configurable
    def __init__(
        self,
        *,
        embed_dim: int = 128,
        depths: Sequence[int] = (2, 2, 18, 2),
        num_heads: Sequence[int] = (4, 8, 16, 32),
        window_size: int = 12,
        patch_size: int = 4,
        mlp_ratio: float = 4.0,
        drop_path_rate: float = 0.3,
        out_features: Sequence[str] = ("res2", "res3", "res4", "res5"),
    ):
        """
        Args:
            embed_dim: channels of stage 1; stage i has embed_dim * 2**i.
            depths, num_heads: blocks and attention heads of each stage.
            window_size: attention window in tokens; shift = window_size // 2 on every second block.
            patch_size: stride of the patch embedding (stage 1 stride).
            mlp_ratio: MLP expansion of each block.
            drop_path_rate: stochastic depth of the last block, rising linearly from 0 over all blocks.
            out_features: stages to return, named res2.. in stage order.
        """
        super().__init__()
        swin = SwinTransformer(
            patch_size=patch_size,
            embed_dim=embed_dim,
            depths=tuple(depths),
            num_heads=tuple(num_heads),
            window_size=window_size,
            mlp_ratio=mlp_ratio,
            drop_path_rate=drop_path_rate,
            num_classes=0,
            # any input size; windows never shrink to small maps (the segmentation Swin pads them instead)
            strict_img_size=False,
            always_partition=True,
        )
        self.patch_embed = swin.patch_embed
        self.layers = swin.layers
        self.patch_size = patch_size
        names = [f"res{i + 2}" for i in range(len(depths))]
        self._out_features = list(out_features)
        self._out_feature_channels = {n: embed_dim * 2**i for i, n in enumerate(names)}
        self._out_feature_strides = {n: patch_size * 2**i for i, n in enumerate(names)}
        self._stage_names = names
        for i, name in enumerate(names):
            if name in self._out_features:
                self.add_module(f"norm{i}", nn.LayerNorm(self._out_feature_channels[name]))

    @classmethod
    def from_config(cls, cfg, input_shape=None):
        swin = cfg.MODEL.ECENET.SWIN
        return {
            "embed_dim": swin.EMBED_DIM,
            "depths": swin.DEPTHS,
            "num_heads": swin.NUM_HEADS,
            "window_size": swin.WINDOW_SIZE,
            "patch_size": swin.PATCH_SIZE,
            "mlp_ratio": swin.MLP_RATIO,
            "drop_path_rate": swin.DROP_PATH_RATE,
            "out_features": swin.OUT_FEATURES,
        }

    def forward(self, x: torch.Tensor):
        """
        Args:
            x: (B, 3, H, W) normalised images, any H, W.
        Returns:
            dict name -> (B, C_i, ceil(H / s_i), ceil(W / s_i)) for s_i = 4, 8, 16, 32 (Swin-B: C_i = 128 .. 1024).
        """
        height, width = x.shape[-2:]
        x = F.pad(x, (0, (-width) % self.patch_size, 0, (-height) % self.patch_size))
        x = self.patch_embed(x)  # (B, H / 4, W / 4, C), channels last
        outputs = {}
        for i, (name, stage) in enumerate(zip(self._stage_names, self.layers)):
            x = stage.downsample(x)  # patch merging (pads odd sizes); identity in stage 1
            for block in stage.blocks:
                x = swin_block_forward(block, x)
            if name in self._out_features:
                outputs[name] = getattr(self, f"norm{i}")(x).permute(0, 3, 1, 2).contiguous()
        return outputs

    def output_shape(self):
        return {
            name: ShapeSpec(channels=self._out_feature_channels[name], stride=self._out_feature_strides[name])
            for name in self._out_features
        }
