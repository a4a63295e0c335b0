"""The pixel-text cost map: cosine similarity of every pixel's CLIP embedding with every class prompt."""
import torch
import torch.nn.functional as F


def compute_cost_map(dense_embedding, text_embeddings):
    """
    Args:
        dense_embedding: (B, C, h, w) CLIP embedding per pixel.
        text_embeddings: (T, P, C) embeddings of T classes in P prompt templates.
    Returns:
        (B, P, T, h, w) cosine similarities (no logit scale).
    """
    image = F.normalize(dense_embedding, dim=1)
    text = F.normalize(text_embeddings, dim=-1)
    return torch.einsum("bchw,tpc->bpthw", image, text)
