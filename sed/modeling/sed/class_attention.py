"""Class attention of SED: at every location, the classes of an image attend to each other.

Linear attention (Katharopoulos et al., 2020) keeps the cost linear in the number of classes T.
`ClassAttentionLayer.transform` is the layer as trained; `transform_` and `add_transformed_` compute the same
numbers for inference with fewer passes over memory (see `transform_`).
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

    @staticmethod
    def feature_map_(x):
        """elu(x) + 1 in place, as exp(min(x, 0)) + max(x, 0): for x >= 0 both are x + 1 exactly, for x < 0
        exp(x) is the exact value of elu(x) + 1 = (exp(x) - 1) + 1, which rounds twice (differences up to 6e-8,
        half a float32 step at 1). torch's exp is several times faster than its elu (expm1) on the CPU."""
        negative = x.clamp(max=0).exp_()
        return x.clamp_(min=0).add_(negative)

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

    def inference_projection(self, length):
        """The q, k, v projections as one (3C + H + pad, C) weight and its bias, for `ClassAttentionLayer.transform_`
        on sequences of `length` classes. Output columns: q (C), k (C), then per head its D value columns divided
        by `length` (as `LinearAttention` divides v) followed by a column of ones (zero weight, bias 1), whose
        products with k and q give k's sum over the sequence and q's dot product with it (the normalizer) in the
        same matrix products as the values; zero columns pad the width to a multiple of 8, which MKL's sgemm runs
        up to twice as fast (measured at C = 32: width 100 at 9.5 GMAC/s, 104 at 18.9, 1 thread)."""
        c, heads = self.q.in_features, self.num_heads
        value_weight = torch.cat([(self.v.weight / length).view(heads, -1, c), self.v.weight.new_zeros(heads, 1, c)], 1)
        value_bias = torch.cat([(self.v.bias / length).view(heads, -1), self.v.bias.new_ones(heads, 1)], 1)
        pad = -(3 * c + heads) % 8
        weight = torch.cat([self.q.weight, self.k.weight, value_weight.view(-1, c), self.q.weight.new_zeros(pad, c)])
        bias = torch.cat([self.q.bias, self.k.bias, value_bias.view(-1), self.q.bias.new_zeros(pad)])
        return weight, bias


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

    @torch.no_grad()
    def transform_(self, seq):
        """`transform` for inference, in place on a contiguous (S, T, C) `seq`, which it returns.

        The same operations in fewer passes over memory: q, k, v in one matrix product (`inference_projection`),
        whose extra columns give the linear attention's normalizer within its two batched products per head; the
        feature map, ReLU and residual additions in place; 1/T folded into the value weights and T into the
        normalizer. Equal to `transform` up to float rounding (~1e-7 relative, tests/modeling/sed/
        test_class_attention_inference.py).
        """
        s, t, c = seq.shape
        heads = self.attention.num_heads
        d = c // heads
        flat = seq.view(-1, c)
        qkv = F.linear(self.norm1(flat), *self.attention.inference_projection(t))
        self.attention.attention.feature_map_(qkv[:, : 2 * c])
        qkv = qkv.view(s, t, -1)
        by_head = seq.view(s, t, heads, d)
        for head in range(heads):
            q = qkv[:, :, head * d : (head + 1) * d]
            k = qkv[:, :, c + head * d : c + (head + 1) * d]
            values = qkv[:, :, 2 * c + head * (d + 1) : 2 * c + (head + 1) * (d + 1)]  # v / T and a column of 1
            out = torch.bmm(q, torch.bmm(k.transpose(1, 2), values))  # (S, T, D + 1): q kv and q . sum(k)
            scale = out[:, :, d:].add_(self.attention.attention.eps).reciprocal_().mul_(t)
            by_head[:, :, head].addcmul_(out[:, :, :d], scale)
        del qkv  # freed before the MLP's hidden layer is allocated
        hidden = F.relu(self.MLP[0](self.norm2(flat)), inplace=True)  # MLP[1], in place
        mlp_out = self.MLP[2]
        if hidden.dtype == flat.dtype == mlp_out.weight.dtype:
            flat.addmm_(hidden, mlp_out.weight.t()).add_(mlp_out.bias)
        else:  # autocast: the product runs in its lower precision, which the in-place addmm_ does not convert to
            flat.add_(mlp_out(hidden))
        return seq

    @torch.no_grad()
    def add_transformed_(self, maps):
        """Inference with 1x1 pooling: maps (T, C, L), a view of class maps at L locations, +=
        transform(maps.permute(2, 0, 1)).permute(1, 2, 0), in place (the input counts twice, see the class).

        The layout changes (T, C, L) <-> (L, T, C) run as 2-D transpositions of contiguous copies, which torch
        copies in cache blocks; permuting the strided view directly reads one element per row of the maps, 2-9x
        slower at SED-B's stages (measured, 1 thread).
        """
        t, c, length = maps.shape
        seq = maps.new_empty(length, t * c)
        seq.copy_(maps.contiguous().view(t * c, length).t())
        seq = self.transform_(seq.view(length, t, c))
        maps.add_(seq.view(length, t * c).t().contiguous().view(t, c, length))
