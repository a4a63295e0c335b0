"""The pixel-text cost map: cosine similarity of every pixel's CLIP embedding with every class prompt."""
import torch
import torch.nn.functional as F


def compute_cost_map(dense_embedding, text_embeddings):
    """
    Args:
        dense_embedding: (B, C, h, w) CLIP embedding per pixel.
        text_embeddings: (T, P, C) embeddings of T classes in P prompt templates.
    Returns:
        (B, P, T, h, w) cosine similarities (no logit scale), stored class-major: a (B, T, P, h, w) tensor
        transposed, so that the decoder's (B*T, P, h, w) maps, one per class, are a view rather than a copy.
    """
    image = F.normalize(dense_embedding, dim=1)
    text = F.normalize(text_embeddings, dim=-1)
    b, c, h, w = image.shape
    t, p = text.shape[:2]
    # One (T*P, C) x (C, h*w) product per image: the same sums as an einsum to (B, P, T, h, w), without its copy.
    cost = torch.matmul(text.reshape(t * p, c), image.flatten(2))
    return cost.view(b, t, p, h, w).transpose(1, 2)
