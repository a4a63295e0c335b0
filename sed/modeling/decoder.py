"""SED's gradual fusion decoder: the cost map of every class is upsampled 8x in three fusion stages.

Module names follow the released checkpoints (`...predictor.transformer.*`).
"""
from detectron2.config import configurable
from torch import nn

from .class_attention import ClassAttentionLayer
from .decoder_blocks import ConvNeXtBlock, DoubleConv
from .rejection import category_rejection


class FusionStage(nn.Module):
    """One decoder stage: ConvNeXt block, class attention, 2x upsampling fused with guidance.

    (B, T, C, H, W) class maps -> (B, T, C_out, 2H, 2W).
    """

    def __init__(self, in_channels, out_channels, guidance_channels, kernel_size=9, num_heads=4,
                 pooling_size=(2, 2)):
        super().__init__()
        self.cnext = ConvNeXtBlock(in_channels, kernel_size)
        self.attention = ClassAttentionLayer(in_channels, num_heads, pooling_size)
        self.up = nn.ConvTranspose2d(in_channels, in_channels - guidance_channels, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_channels + guidance_channels, out_channels)

    def forward(self, x, appearance_guidance, cost_guidance):
        """
        Args:
            x: (B, T, C, H, W) class maps.
            appearance_guidance: (B, g, 2H, 2W) projected image features, shared by the image's classes.
            cost_guidance: (B, T, g, 2H, 2W) upsampled cost map of each class.
        """
        b, t = x.shape[:2]
        x = self.cnext(x.flatten(0, 1)).view_as(x)
        x = self.attention(x)
        x = self.up(x.flatten(0, 1))
        x = self.conv.forward_split_input(
            [x.view(b, t, *x.shape[1:]), appearance_guidance.unsqueeze(1), cost_guidance])
        return x.view(b, t, *x.shape[1:])


def _score(head, x):
    """(N, C, H, W) -> (N, H, W) one-channel head output."""
    return head(x).squeeze(1)


class GradualFusionDecoder(nn.Module):
    """Cost map (B, P, T, h, w) + encoder features -> per-class logits at 8x the cost map's resolution.

    Training outputs [final (B, T, 8h, 8w), aux0 (B, T, h, w), aux1 (2h), aux2 (4h)]: aux heads score the
    detached cost embedding and stage outputs, so they learn to rank classes without steering the main path.
    """

    @configurable
    def __init__(self, *, prompt_channels=80, hidden_dim=128, decoder_dims=(64, 32, 16),
                 guidance_dims=(512, 256, 128), guidance_proj_dims=(32, 16, 8), kernel_size=9, num_heads=4,
                 pooling_size=(2, 2)):
        """
        Args:
            prompt_channels: P, prompt templates per class (channels of the cost map).
            hidden_dim: channels of the cost embedding.
            decoder_dims: output channels of the three stages.
            guidance_dims: channels of the encoder features used as appearance guidance (res4, res3, res2).
            guidance_proj_dims: appearance and cost guidance channels of the three stages.
            kernel_size: depthwise kernel of the ConvNeXt blocks.
            num_heads: heads of the class attention.
            pooling_size: average pooling before class attention.
        """
        super().__init__()
        self.conv1 = nn.Conv2d(prompt_channels, hidden_dim, kernel_size=7, padding=3)
        self.decoder_guidance_projection = nn.ModuleList(
            nn.Sequential(nn.Conv2d(d, g, kernel_size=3, padding=1), nn.ReLU())
            for d, g in zip(guidance_dims, guidance_proj_dims))
        cost_dims = [prompt_channels, *guidance_proj_dims]
        self.decoder_corr_guidance_projection = nn.ModuleList(
            nn.Sequential(nn.ConvTranspose2d(cost_dims[i], cost_dims[i + 1], kernel_size=2, stride=2), nn.ReLU())
            for i in range(len(guidance_proj_dims)))
        stage_dims = [hidden_dim, *decoder_dims]
        for i, g in enumerate(guidance_proj_dims):
            self.add_module(f"decoder{i + 1}", FusionStage(
                stage_dims[i], stage_dims[i + 1], g, kernel_size, num_heads, pooling_size))
        for i, d in enumerate(stage_dims[:-1]):
            self.add_module(f"head{i}", nn.Conv2d(d, 1, kernel_size=3, padding=1))
        self.head = nn.Conv2d(decoder_dims[-1], 1, kernel_size=3, padding=1)

    @classmethod
    def from_config(cls, cfg):
        head = cfg.MODEL.SEM_SEG_HEAD
        return {
            "hidden_dim": head.HIDDEN_DIMS,
            "decoder_dims": tuple(head.DECODER_DIMS),
            "guidance_dims": tuple(head.DECODER_GUIDANCE_DIMS),
            "guidance_proj_dims": tuple(head.DECODER_GUIDANCE_PROJ_DIMS),
            "kernel_size": head.KERNEL_SIZE,
            "num_heads": head.NUM_HEADS,
            "pooling_size": tuple(head.POOLING_SIZES),
        }

    @property
    def stages(self):
        return [self.decoder1, self.decoder2, self.decoder3]

    @property
    def aux_heads(self):
        return [self.head0, self.head1, self.head2]

    def forward(self, cost_map, guidance_features, with_aux=True):
        """
        Args:
            cost_map: (B, P, T, h, w) cosine similarities of pixel and text embeddings.
            guidance_features: [res4 (B, C4, 2h, 2w), res3 (4h), res2 (8h)] encoder features.
            with_aux: also return the auxiliary heads' logits (needed for the training losses).
        Returns:
            [final (B, T, 8h, 8w)] + ([aux0 (B, T, h, w), aux1 (2h), aux2 (4h)] if with_aux).
        """
        b, _, t = cost_map.shape[:3]
        cost = cost_map.transpose(1, 2).flatten(0, 1)  # (B*T, P, h, w)
        x = self.conv1(cost)
        aux = [_score(self.head0, x.detach())] if with_aux else []
        x = x.view(b, t, *x.shape[1:])
        for i, stage in enumerate(self.stages):
            cost = self.decoder_corr_guidance_projection[i](cost)
            appearance = self.decoder_guidance_projection[i](guidance_features[i])
            x = stage(x, appearance, cost.view(b, t, *cost.shape[1:]))
            if with_aux and i + 1 < len(self.stages):
                aux.append(_score(self.aux_heads[i + 1], x.flatten(0, 1).detach()))
        final = _score(self.head, x.flatten(0, 1))
        return [y.view(b, t, *y.shape[1:]) for y in [final, *aux]]

    def forward_with_rejection(self, cost_map, guidance_features, topk):
        """Inference with category early rejection, for one image.

        After the cost embedding and after stages 1 and 2, the classes outside the top-k of the auxiliary head
        at every pixel are dropped; later stages (and their class attention) see only the kept classes.
        Args:
            cost_map: (1, P, T, h, w); guidance_features: as in `forward`, batch 1.
            topk: classes kept per pixel.
        Returns:
            logits: (K, 8h, 8w) final logits of the kept classes.
            kept: (K,) their indices among the T classes, ascending.
        """
        cost = cost_map[0].transpose(0, 1)  # (T, P, h, w)
        x = self.conv1(cost)
        kept = category_rejection(_score(self.head0, x), topk)
        x, cost = x[kept], cost[kept]
        for i, stage in enumerate(self.stages):
            cost = self.decoder_corr_guidance_projection[i](cost)
            appearance = self.decoder_guidance_projection[i](guidance_features[i])
            x = stage(x.unsqueeze(0), appearance, cost.unsqueeze(0))[0]
            if i + 1 < len(self.stages):
                keep = category_rejection(_score(self.aux_heads[i + 1], x), topk)
                x, cost, kept = x[keep], cost[keep], kept[keep]
        return _score(self.head, x), kept
