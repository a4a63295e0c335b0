"""The ECENet head: FR -> laterals -> ECE -> three SAU stages top-down -> aggregation -> prediction."""

from typing import Dict, Sequence

import torch
from detectron2.config import configurable
from detectron2.layers import Conv2d, ShapeSpec
from detectron2.modeling import SEM_SEG_HEADS_REGISTRY
from torch import nn

from .aggregation import FusionProjection, GhostUpsampler, resize
from .class_extraction import ClassMaskLearner, ClassTokenEmbedding, class_pool_size
from .feature_reconstruction import FeatureReconstruction
from .semantic_attention import GatedTokenUpdater, SemanticAttention

__all__ = ["ECENetHead"]


@SEM_SEG_HEADS_REGISTRY.register()
class ECENetHead(nn.Module):
    """Explicit class embeddings: extracted from the deepest level's class masks, refined as each shallower level
    attends to them, each attention map being the class masks of its stage.

    Attribute names are the released code's (layer_slcts, laterals, learner, token_emb, transfer, gated_tokens,
    ghost_up_layers, proj, conv_seg, trans). Indexing: layer_slcts, laterals and token_emb by level, finest first;
    transfer and gated_tokens by stage in execution order (levels 3, 2, 1); ghost_up_layers by level 2, 3, 4.
    """

    @configurable
    def __init__(
        self,
        input_shape: Dict[str, ShapeSpec],
        *,
        num_classes: int,
        channels: int = 256,
        num_heads: int = 4,
        pool_sizes: Sequence[int] = (1, 2, 3, 6),
        pool_ratio: float = 1.0,
        learner_groups: int = 4,
        ffn_ratio: int = 4,
        inverted_attention: bool = True,
        dropout: float = 0.1,
        sau_dropout: float = 0.0,
        norm: str = "SyncBN",
    ):
        """
        Args:
            input_shape: the backbone levels used, e.g. res2..res5 (strides 4..32); each stride a power-of-2
                multiple of the finest (the ghost upsampling factors).
            num_classes: K.
            channels: C, head channels.
            num_heads: attention heads of the SAU blocks.
            pool_sizes: fixed pyramid-pooling sizes of the class embeddings; class_pool_size(K, pool_ratio) is
                appended.
            learner_groups: groups of the first conv of the mask predictor.
            ffn_ratio: Mix-FFN expansion of the SAU blocks.
            inverted_attention: see SemanticAttention.
            dropout: Dropout2d before conv_seg.
            sau_dropout: dropout inside the SAU blocks.
            norm: detectron2 norm name of the head's batch norms.
        """
        super().__init__()
        levels = sorted(input_shape.items(), key=lambda item: item[1].stride)
        self.in_features = [name for name, _ in levels]
        strides = [shape.stride for _, shape in levels]
        in_channels = [shape.channels for _, shape in levels]
        num_levels = len(levels)

        self.layer_slcts = nn.ModuleList([FeatureReconstruction(c, norm) for c in in_channels])
        self.laterals = nn.ModuleList([Conv2d(c, channels, 1, bias=False) for c in in_channels])
        self.learner = ClassMaskLearner(channels, num_classes, learner_groups)
        token_pool_sizes = (*pool_sizes, class_pool_size(num_classes, pool_ratio))
        self.token_emb = nn.ModuleList([ClassTokenEmbedding(channels, token_pool_sizes) for _ in range(num_levels)])
        self.transfer = nn.ModuleList(
            [
                SemanticAttention(channels, num_heads, ffn_ratio, sau_dropout, inverted_attention)
                for _ in range(num_levels - 1)
            ]
        )
        self.gated_tokens = nn.ModuleList([GatedTokenUpdater(channels) for _ in range(num_levels - 1)])
        self.ghost_up_layers = nn.ModuleList([GhostUpsampler(channels, s // strides[0], norm) for s in strides[1:]])
        self.proj = FusionProjection(num_levels, channels, norm)
        self.dropout = nn.Dropout2d(dropout)
        self.conv_seg = Conv2d(channels, num_classes, 1)
        self.trans = nn.Linear(channels, num_classes)

    @classmethod
    def from_config(cls, cfg, input_shape: Dict[str, ShapeSpec]):
        ece = cfg.MODEL.ECENET
        return {
            "input_shape": {name: input_shape[name] for name in ece.IN_FEATURES},
            "num_classes": cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES,
            "channels": ece.CHANNELS,
            "num_heads": ece.NUM_HEADS,
            "pool_sizes": ece.POOL_SIZES,
            "pool_ratio": ece.POOL_RATIO,
            "learner_groups": ece.LEARNER_GROUPS,
            "ffn_ratio": ece.FFN_RATIO,
            "inverted_attention": ece.INVERTED_ATTENTION,
            "dropout": ece.DROPOUT,
            "sau_dropout": ece.SAU_DROPOUT,
            "norm": ece.NORM,
        }

    def forward(self, features: Dict[str, torch.Tensor]) -> Dict[str, object]:
        """
        Args:
            features: backbone levels, (B, c_l, h_l, w_l) at strides s_1 < ... < s_L (4, 8, 16, 32).
        Returns:
            dict with, at the finest level's size (h_1, w_1):
            "logits": (B, K, h_1, w_1) segmentation logits;
            "aux_masks": (B, K, h_1, w_1) sum of the class masks of all but the finest level (M4 + M3 + M2);
            "diverse": list of (B, c_l / 2, h_l, w_l) re-weighted FR diverse halves, finest first.
        """
        reconstructed, diverse = zip(*(fr(features[f]) for fr, f in zip(self.layer_slcts, self.in_features)))
        laterals = [lateral(x) for lateral, x in zip(self.laterals, reconstructed)]
        size = laterals[0].shape[-2:]

        masks = self.learner(laterals[-1])
        tokens = self.token_emb[-1](masks)
        aux_masks = resize(masks, size)
        outputs = [laterals[-1]]
        for stage, level in enumerate(reversed(range(len(laterals) - 1))):
            x, masks = self.transfer[stage](laterals[level], tokens)
            tokens = self.gated_tokens[stage](self.token_emb[level](masks), tokens)
            outputs.insert(0, x)
            if level > 0:
                aux_masks = aux_masks + resize(masks, size)
        total_masks = aux_masks + masks  # + the finest stage's masks, already at (h_1, w_1)

        fused = self.proj([outputs[0]] + [up(x) for up, x in zip(self.ghost_up_layers, outputs[1:])])
        # w_k: how surely embedding k classifies as class k (diagonal of a softmax over classes)
        class_weights = self.trans(tokens).softmax(dim=-1).diagonal(dim1=-2, dim2=-1)  # (B, K)
        logits = self.conv_seg(self.dropout(fused)) + class_weights[:, :, None, None] * total_masks.sigmoid()
        return {"logits": logits, "aux_masks": aux_masks, "diverse": list(diverse)}
