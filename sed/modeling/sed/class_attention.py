"""Class attention of SED: at every location, the classes of an image attend to each other.

Linear attention (Katharopoulos et al., 2020) keeps the cost linear in the number of classes T.
"""

import torch
import torch.nn.functional as F
from torch import nn


class LinearAttention(nn.Module):
    """softmax-free attention with feature map elu(x) + 1.

    q: (N, L, H, D), k: (N, S, H, D), v: (N, S, H, D) -> (N, L, H, D).
    Values are divided by S before the products and multiplied back after, which keeps fp16 in range.
    """

    def __init__(self, eps=1e-6):
        super().__init__()
        self.eps = eps

    def forward(self, q, k, v):
        q = F.elu(q) + 1
        k = F.elu(k) + 1
        length = v.shape[1]
        v = v / length
        kv = torch.einsum("nshd,nshv->nhdv", k, v)
        z = 1 / (torch.einsum("nlhd,nhd->nlh", q, k.sum(dim=1)) + self.eps)
        return torch.einsum("nlhd,nhdv,nlh->nlhv", q, kv, z) * length


class AttentionLayer(nn.Module):
    """Multi-head linear attention with q, k, v projections and no output projection: (N, L, C) -> (N, L, C)."""

    def __init__(self, dim, num_heads=4):
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.attention = LinearAttention()

    def forward(self, x):
        n, length, c = x.shape
        q, k, v = (proj(x).view(n, length, self.num_heads, c // self.num_heads) for proj in (self.q, self.k, self.v))
        return self.attention(q, k, v).reshape(n, length, c)


class ClassAttentionLayer(nn.Module):
    """Pre-norm transformer layer over the class axis, run on average-pooled maps, in three steps that
    `FusionStage` runs: `pool` and `unpool` on each class map, `transform` across the classes at each location.

    The updated pooled maps (their own residuals included) are upsampled back and added to the unpooled input,
    as the authors do: with pooling 1x1 the input counts twice.
    """

    def __init__(self, dim, num_heads=4, pooling_size=(2, 2)):
        super().__init__()
        self.pooling_size = tuple(pooling_size)
        self.attention = AttentionLayer(dim, num_heads)
        self.MLP = nn.Sequential(nn.Linear(dim, dim * 4), nn.ReLU(), nn.Linear(dim * 4, dim))
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)

    def pool(self, x):
        """(N, C, H, W) -> (N, C, H / ph, W / pw) average pooling (1x1 pooling returns `x` itself)."""
        if self.pooling_size == (1, 1):
            return x
        return F.avg_pool2d(x, self.pooling_size)

    def unpool(self, pooled, size):
        """(N, C, h, w) -> (N, C, *size) bilinear, align_corners=True (the identity when the size is unchanged)."""
        if tuple(pooled.shape[-2:]) == tuple(size):
            return pooled
        return F.interpolate(pooled, size=size, mode="bilinear", align_corners=True)

    def transform(self, seq):
        """(S, T, C) -> (S, T, C): the transformer layer on S sequences of T class vectors."""
        seq = seq + self.attention(self.norm1(seq))
        return seq + self.MLP(self.norm2(seq))
