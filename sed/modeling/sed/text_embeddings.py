"""CLIP text embeddings of a vocabulary: every class name in every prompt template, cached.

A class name holding ", " lists synonyms ("sky, heaven"): each template is encoded with each synonym, the
normalised embeddings are averaged over synonyms and normalised again.

Embeddings depend only on the text tower's weights, which SED never trains, so they are computed once per
(weights, vocabulary, templates) and kept in memory; with a cache directory they are also kept on disk, keyed
by a digest of the text-tower weights, so that a 847-class vocabulary costs its minutes once per machine.
"""

import hashlib
import logging
import os

import open_clip
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from ...checkpoint.safe_load import torch_load
from ...utils.files import atomic_write
from .clip_encoder import text_tower_parameters

logger = logging.getLogger(__name__)


def _truncatable(clip_model):
    """Whether `clip_model`'s text tower is CLIP's: causal attention and pooling at the end-of-text token (the
    largest token id), so that the tokens after a sentence's end never reach its embedding."""
    return (
        all(
            hasattr(clip_model, a)
            for a in ("token_embedding", "positional_embedding", "transformer", "ln_final", "text_projection")
        )
        and getattr(clip_model, "attn_mask", None) is not None
        and getattr(clip_model, "text_pool_type", None) == "argmax"
    )


def encode_tokens(clip_model, tokens):
    """`clip_model.encode_text(tokens)` computed only up to the batch's last end-of-text token.

    CLIP pads every sentence to 77 tokens, but its causal mask keeps the end-of-text token, whose output is the
    embedding, from attending to the padding after it: dropping the padding that no sentence of the batch needs
    gives the same embeddings (to float rounding) at a fraction of the cost. Text towers of other kinds run
    padded.
    Args:
        tokens: (N, context_length) token ids of the model's tokenizer.
    Returns:
        (N, C) text embeddings (not normalised).
    """
    if not _truncatable(clip_model):
        return clip_model.encode_text(tokens)
    length = int(tokens.argmax(dim=-1).max()) + 1  # end-of-text has the largest id: argmax is its position
    tokens = tokens[:, :length]
    cast_dtype = clip_model.transformer.get_cast_dtype()
    x = clip_model.token_embedding(tokens).to(cast_dtype) + clip_model.positional_embedding[:length].to(cast_dtype)
    x = clip_model.transformer(x, attn_mask=clip_model.attn_mask[:length, :length])
    x = clip_model.ln_final(x)
    x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
    if isinstance(clip_model.text_projection, nn.Linear):
        return clip_model.text_projection(x)
    return x if clip_model.text_projection is None else x @ clip_model.text_projection


@torch.no_grad()
def encode_vocabulary(clip_model, tokenizer, class_names, templates, batch_size=1024):
    """Text embeddings of every class in every template.

    Sentences are encoded in batches of similar length (shortest first), each only as long as its longest
    sentence (see `encode_tokens`).
    Args:
        clip_model: an open_clip model (only its text tower is used).
        tokenizer: `open_clip.get_tokenizer(model_name)`.
        class_names: T names; ", " separates synonyms.
        templates: P strings, each with one "{}".
        batch_size: sentences encoded at a time.
    Returns:
        (T, P, C) L2-normalised embeddings, float32, on the model's device.
    """
    device = next(clip_model.parameters()).device
    sentences, owners = [], []  # owners[i]: (class index, template index) of sentence i
    for t, name in enumerate(class_names):
        for p, template in enumerate(templates):
            for synonym in name.split(", "):
                sentences.append(template.format(synonym))
                owners.append(t * len(templates) + p)
    tokens = tokenizer(sentences)
    order = tokens.argmax(dim=-1).argsort(stable=True)  # by length (the end-of-text position)
    embeddings = None
    # Embeddings are cached and reused by every later forward: compute them in full precision even under AMP.
    with torch.autocast(device.type, enabled=False):
        for batch in tqdm(
            order.split(batch_size), desc="text embeddings", unit="batch", leave=False, disable=len(order) <= batch_size
        ):
            encoded = F.normalize(encode_tokens(clip_model, tokens[batch].to(device)).float(), dim=-1)
            if embeddings is None:
                embeddings = encoded.new_empty(len(sentences), encoded.shape[1])
            embeddings[batch.to(device)] = encoded
    owners = torch.as_tensor(owners, device=device)
    # Average the synonyms of each (class, template), then normalise again.
    summed = torch.zeros(len(class_names) * len(templates), embeddings.shape[1], device=device)
    summed.index_add_(0, owners, embeddings)
    counts = torch.bincount(owners, minlength=summed.shape[0]).unsqueeze(1)
    averaged = summed / counts
    has_synonyms = counts.squeeze(1) > 1
    averaged[has_synonyms] = F.normalize(averaged[has_synonyms], dim=-1)
    return averaged.view(len(class_names), len(templates), -1)


class TextEmbeddingCache:
    """Vocabulary embeddings of one CLIP model, computed once and reused (memory, optionally disk).

    Call `invalidate()` whenever the text tower's weights change (SED does so after every state-dict load).
    """

    def __init__(self, model_name, cache_dir=""):
        self.model_name = model_name
        self.tokenizer = open_clip.get_tokenizer(model_name)
        self.cache_dir = os.path.expanduser(cache_dir) if cache_dir else ""
        self.invalidate()

    def invalidate(self):
        self._memory = {}
        self._weights_digest = None

    def _digest_weights(self, clip_model):
        if self._weights_digest is None:
            h = hashlib.sha1(self.model_name.encode())
            for name, param in text_tower_parameters(clip_model):
                h.update(name.encode())
                h.update(param.detach().float().cpu().contiguous().numpy().tobytes())
            self._weights_digest = h.hexdigest()
        return self._weights_digest

    @staticmethod
    def _read_cached(path, num_classes, num_templates):
        """The (T, P, C) embeddings cached in `path`, or None (with a warning) when the file is not such a tensor:
        truncated by a full disk, corrupt, or written by something else. It is then recomputed and rewritten."""
        try:
            embeddings = torch_load(path)
            if not (
                isinstance(embeddings, torch.Tensor)
                and embeddings.is_floating_point()
                and embeddings.shape[:2] == (num_classes, num_templates)
                and embeddings.dim() == 3
                and bool(torch.isfinite(embeddings).all())
            ):
                raise ValueError("not a finite (classes, templates, channels) tensor of this vocabulary")
            return embeddings
        except Exception as e:  # any failure to read a cache file means the same: recompute it
            logger.warning(
                "Text-embedding cache file %s cannot be used (%s: %s); recomputing it.",
                path,
                type(e).__name__,
                " ".join(str(e).split())[:200],
            )
            return None

    def get(self, clip_model, class_names, templates):
        """(T, P, C) embeddings of `class_names` on `clip_model`'s device."""
        key = (tuple(class_names), tuple(templates))
        device = next(clip_model.parameters()).device
        if key in self._memory:
            return self._memory[key].to(device)
        path = None
        if self.cache_dir:
            h = hashlib.sha1(self._digest_weights(clip_model).encode())
            h.update(repr(key).encode())
            path = os.path.join(self.cache_dir, f"{self.model_name}-{h.hexdigest()[:20]}.pt")
            embeddings = self._read_cached(path, len(class_names), len(templates)) if os.path.isfile(path) else None
            if embeddings is not None:
                self._memory[key] = embeddings
                return embeddings.to(device)
        logger.info(
            f"Encoding {len(class_names)} class names x {len(templates)} templates with CLIP {self.model_name} ..."
        )
        embeddings = encode_vocabulary(clip_model, self.tokenizer, class_names, templates)
        self._memory[key] = embeddings
        if path is not None:
            try:
                os.makedirs(self.cache_dir, exist_ok=True)
                # atomic: workers never read half a file
                atomic_write(path, lambda f: torch.save(embeddings.cpu(), f), "text-embedding cache")
            except OSError as e:  # a full disk or a read-only cache costs the cache only, not the run
                logger.warning("Text embeddings not cached (%s); they are recomputed next time.", e)
        return embeddings
