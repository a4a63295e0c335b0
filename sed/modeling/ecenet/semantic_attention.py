"""Semantics Attention & Updater (SAU): pixels attend to class embeddings; the attention scores are new class
masks, whose embeddings update the class embeddings through a gate."""

from typing import Tuple

import torch
import torch.nn.functional as F
from detectron2.layers import Conv2d
from detectron2.layers.batch_norm import LayerNorm
from torch import nn

__all__ = ["SemanticAttention", "GatedTokenUpdater"]


class SemanticAttention(nn.Module):
    """One attention block `transfer[i]`: queries from a lateral level, keys and values from class embeddings.

    The scores S = q k^T / sqrt(head dim), averaged over heads before any softmax, are this stage's class mask.
    The pixel output is a residual attention (softmax over classes) followed by a residual Mix-FFN.
    """

    def __init__(
        self,
        channels: int,
        num_heads: int = 4,
        ffn_ratio: int = 4,
        dropout: float = 0.0,
        inverted_attention: bool = True,
    ):
        """
        Args:
            channels: C, of pixels and embeddings (divisible by num_heads).
            num_heads: attention heads.
            ffn_ratio: Mix-FFN hidden channels / C.
            dropout: after the attention projection and inside the Mix-FFN.
            inverted_attention: True (released): weights = softmax(rowmax(S) - S); False: softmax(S).
        """
        super().__init__()
        self.num_heads = num_heads
        self.inverted_attention = inverted_attention
        self.query_norm = LayerNorm(channels, eps=1e-5)
        # depthwise-separable 3x3 projection: the query of a pixel sees its neighbourhood
        self.query = nn.Sequential(
            Conv2d(channels, channels, 3, padding=1, groups=channels), Conv2d(channels, channels, 1)
        )
        self.token_norm = nn.LayerNorm(channels)
        self.key_value = nn.Linear(channels, 2 * channels, bias=False)
        self.out = Conv2d(channels, channels, 1)
        self.dropout = nn.Dropout(dropout)
        hidden = ffn_ratio * channels
        self.ffn_norm = LayerNorm(channels, eps=1e-5)
        self.ffn = nn.Sequential(
            Conv2d(channels, hidden, 1),
            Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
            nn.GELU(),
            nn.Dropout(dropout),
            Conv2d(hidden, channels, 1),
            nn.Dropout(dropout),
        )

    def scores(self, x: torch.Tensor, tokens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x: (B, C, h, w) lateral level; tokens: (B, K, C) class embeddings.
        Returns:
            S (B, heads, h*w, K) scaled scores and the values (B, heads, K, C / heads).
        """
        batch, channels = x.shape[:2]
        q = self.query(self.query_norm(x)).flatten(2).transpose(1, 2)  # (B, hw, C)
        k, v = self.key_value(self.token_norm(tokens)).chunk(2, dim=-1)  # (B, K, C) each
        q, k, v = (t.reshape(batch, t.shape[1], self.num_heads, -1).transpose(1, 2) for t in (q, k, v))
        return q @ k.transpose(-2, -1) * (channels // self.num_heads) ** -0.5, v

    def attention_weights(self, scores: torch.Tensor) -> torch.Tensor:
        """(..., K) scores -> attention weights over the K classes."""
        # softmax(rowmax(S) - S) as released is softmax(-S): each pixel leans on the classes it matches least
        return (-scores if self.inverted_attention else scores).softmax(dim=-1)

    def forward(self, x: torch.Tensor, tokens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """
        Args:
            x: (B, C, h, w) lateral level; tokens: (B, K, C) class embeddings.
        Returns:
            (B, C, h, w) refined level and (B, K, h, w) this stage's class mask logits.
        """
        batch, channels, height, width = x.shape
        scores, v = self.scores(x, tokens)
        masks = scores.mean(dim=1).transpose(1, 2).reshape(batch, -1, height, width)
        attended = (self.attention_weights(scores) @ v).transpose(1, 2).reshape(batch, height, width, channels)
        x = x + self.dropout(self.out(attended.permute(0, 3, 1, 2)))
        return x + self.ffn(self.ffn_norm(x)), masks


class GatedTokenUpdater(nn.Module):
    """One updater `gated_tokens[i]` (K-Net-style gate): merges the embeddings U of a stage's masks into E.

    [P_in, P_out] = Linear(U); g = sigmoid(LN(Linear(Linear(E) * P_in))); E <- ReLU(LN(Linear(g * LN(P_out) + E))).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.update_proj = nn.Linear(channels, 2 * channels)
        self.token_proj = nn.Linear(channels, channels)
        self.gate = nn.Linear(channels, channels)
        self.gate_norm = nn.LayerNorm(channels)
        self.update_norm = nn.LayerNorm(channels)
        self.fc = nn.Linear(channels, channels)
        self.fc_norm = nn.LayerNorm(channels)

    def forward(self, update: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """(B, K, C) embeddings U of the new masks and (B, K, C) current E -> (B, K, C) updated E."""
        p_in, p_out = self.update_proj(update).chunk(2, dim=-1)
        gate = self.gate_norm(self.gate(self.token_proj(tokens) * p_in)).sigmoid()
        return F.relu(self.fc_norm(self.fc(gate * self.update_norm(p_out) + tokens)))
