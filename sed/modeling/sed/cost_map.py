"""The pixel-text cost map: cosine similarity of every pixel's CLIP embedding with every class prompt."""

import torch
import torch.nn.functional as F

from ..chunks import chunk_slices

# Inference normalises and multiplies the text embeddings of this many classes at a time (SED-B: 13 MiB), so that
# a normalised copy of a large vocabulary's embeddings (A-847: 173 MiB) never exists whole.
TEXT_CHUNK_CLASSES = 64


def compute_cost_map(dense_embedding, text_embeddings):
    """
    Args:
        dense_embedding: (B, C, h, w) CLIP embedding per pixel.
        text_embeddings: (T, P, C) embeddings of T classes in P prompt templates.
    Both are normalised in float32 whatever their dtype (under autocast the dense embedding is bf16/fp16); the
    product then runs in autocast's dtype if one is active.
    Returns:
        (B, P, T, h, w) cosine similarities (no logit scale), stored class-major: a (B, T, P, h, w) tensor
        transposed, so that the decoder's (B*T, P, h, w) maps, one per class, are a view rather than a copy.
    """
    b, c, h, w = dense_embedding.shape
    t, p = text_embeddings.shape[:2]
    image = F.normalize(dense_embedding.float(), dim=1).flatten(2)  # (B, C, h*w)
    text_embeddings = text_embeddings.float()
    # One (T*P, C) x (C, h*w) product per image: the same sums as an einsum to (B, P, T, h, w), without its copy.
    if torch.is_grad_enabled() or t <= TEXT_CHUNK_CLASSES:
        cost = torch.matmul(F.normalize(text_embeddings, dim=-1).reshape(t * p, c), image)
    else:
        cost = None
        for classes in chunk_slices(t, TEXT_CHUNK_CLASSES):
            part = torch.matmul(F.normalize(text_embeddings[classes], dim=-1).reshape(-1, c), image)
            if cost is None:
                cost = part.new_empty(b, t * p, h * w)
            cost[:, classes.start * p : classes.stop * p] = part
    return cost.view(b, t, p, h, w).transpose(1, 2)
