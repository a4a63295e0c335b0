"""SED's head: the CLIP model, the text embeddings, the cost map and the gradual fusion decoder.

The module tree matches the released checkpoints: `sem_seg_head.predictor.clip_model` (open_clip) and
`sem_seg_head.predictor.transformer` (the decoder).
"""

import torch
from detectron2.config import configurable
from detectron2.modeling import SEM_SEG_HEADS_REGISTRY
from torch import nn

from .clip_encoder import build_clip_model, clip_model_name, encode_image
from .cost_map import compute_cost_map
from .decoder import GradualFusionDecoder
from .losses import sem_seg_bce_losses
from .prompt_templates import get_prompt_templates
from .text_embeddings import TextEmbeddingCache

GUIDANCE_FEATURES = ("res4", "res3", "res2")


class SEDPredictor(nn.Module):
    """Images + vocabulary -> per-class logits. Owns the CLIP model (encoder and text tower) and the decoder."""

    @configurable
    def __init__(
        self,
        *,
        clip_model,
        clip_model_name,
        transformer,
        prompt_templates,
        text_cache_dir="",
        clip_finetune="full",
        gradient_checkpointing=False,
        fused_blocks=True,
    ):
        """
        Args:
            clip_model: an open_clip model with a timm ConvNeXt visual tower (see `build_clip_model`).
            clip_model_name: its open_clip name (tokenizer and cache key).
            transformer: the `GradualFusionDecoder`.
            prompt_templates: P prompt templates; P must equal the decoder's prompt channels.
            text_cache_dir: directory caching vocabulary embeddings on disk ("" = memory only).
            clip_finetune: "full" trains the image tower, "none" freezes it. The text tower is always frozen.
            gradient_checkpointing: recompute CLIP stage activations in backward to save memory.
            fused_blocks: CPU inference runs the CLIP ConvNeXt blocks with oneDNN's fused linear layers
                (see `encode_image`).
        """
        super().__init__()
        self.clip_model = clip_model
        self.transformer = transformer
        self.prompt_templates = tuple(prompt_templates)
        self.gradient_checkpointing = gradient_checkpointing
        self.fused_blocks = fused_blocks
        if clip_finetune not in ("full", "none"):
            raise ValueError(f"MODEL.SEM_SEG_HEAD.CLIP_FINETUNE={clip_finetune!r}: expected 'full' or 'none'.")
        for name, param in clip_model.named_parameters():
            param.requires_grad = name.startswith("visual.") and clip_finetune == "full"
        self.text_embeddings = TextEmbeddingCache(clip_model_name, text_cache_dir)
        # A checkpoint replaces the text tower: embeddings computed from the old weights are stale.
        self.register_load_state_dict_post_hook(lambda module, incompatible: self.text_embeddings.invalidate())

    @classmethod
    def from_config(cls, cfg):
        templates = get_prompt_templates(cfg.MODEL.PROMPT_ENSEMBLE_TYPE)
        name = clip_model_name(cfg.MODEL.ENC.CLIP_MODEL_NAME, cfg.MODEL.SEM_SEG_HEAD.CLIP_PRETRAINED)
        return {
            "clip_model": build_clip_model(
                name, cfg.MODEL.ENC.CLIP_PRETRAINED_WEIGHTS, cfg.MODEL.ENC.DROP_PATH_RATE, cfg.MODEL.ENC.HEAD_DROPOUT
            ),
            "clip_model_name": name,
            "transformer": GradualFusionDecoder(cfg, prompt_channels=len(templates)),
            "prompt_templates": templates,
            "text_cache_dir": cfg.MODEL.ENC.TEXT_EMBEDDING_CACHE_DIR,
            "clip_finetune": cfg.MODEL.SEM_SEG_HEAD.CLIP_FINETUNE,
            "gradient_checkpointing": cfg.SOLVER.CLIP_GRADIENT_CHECKPOINTING,
            "fused_blocks": cfg.MODEL.ENC.FUSED_BLOCKS,
        }

    def encode(self, clip_images, class_names):
        """Cost map (B, P, T, h, w) and appearance guidance [res4, res3, res2] of CLIP-normalised images.

        The guidance features are detached, as in the authors' code: the CLIP image tower learns only through
        the dense embedding (the cost map), never through the decoder's guidance projections.
        """
        # Channels-last: ConvNeXt's depthwise convolutions are much faster so (on CPU, in backward above all).
        clip_images = clip_images.contiguous(memory_format=torch.channels_last)
        features, dense = encode_image(
            self.clip_model.visual, clip_images, self.gradient_checkpointing, self.fused_blocks
        )
        text = self.text_embeddings.get(self.clip_model, class_names, self.prompt_templates)
        return compute_cost_map(dense, text), [features[k].detach() for k in GUIDANCE_FEATURES]

    def forward(self, clip_images, class_names, with_aux=True):
        """
        Args:
            clip_images: (B, 3, S, S) CLIP-normalised images (S = the CLIP resolution, 768 for SED-B/L).
            class_names: T names (", " separates synonyms).
        Returns:
            [final (B, T, S/4, S/4)] logits, + auxiliary logits if `with_aux` (see `GradualFusionDecoder`).
        """
        cost_map, guidance = self.encode(clip_images, class_names)
        return self.transformer(cost_map, guidance, with_aux=with_aux)

    def forward_with_rejection(self, clip_images, class_names, topk):
        """Category early rejection, decided per image. Returns per image (logits (K, S/4, S/4), kept (K,))."""
        cost_map, guidance = self.encode(clip_images, class_names)
        return [
            self.transformer.forward_with_rejection(cost_map[i : i + 1], [g[i : i + 1] for g in guidance], topk)
            for i in range(cost_map.shape[0])
        ]


@SEM_SEG_HEADS_REGISTRY.register()
class SEDHead(nn.Module):
    """Training losses and inference probabilities over a vocabulary, around `SEDPredictor`."""

    @configurable
    def __init__(self, *, predictor, ignore_value=255, loss_exclude_ignored=False):
        super().__init__()
        self.predictor = predictor
        self.ignore_value = ignore_value
        self.loss_exclude_ignored = loss_exclude_ignored

    @classmethod
    def from_config(cls, cfg, input_shape=None):
        return {
            "predictor": SEDPredictor(cfg),
            "ignore_value": cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE,
            "loss_exclude_ignored": cfg.MODEL.SEM_SEG_HEAD.LOSS_EXCLUDE_IGNORED,
        }

    def losses(self, clip_images, class_names, targets):
        """dict loss_sem_seg_0..3 (final, aux0, aux1, aux2) for targets (B, H, W)."""
        logits = self.predictor(clip_images, class_names, with_aux=True)
        return sem_seg_bce_losses(logits, targets, self.ignore_value, self.loss_exclude_ignored)

    def probabilities(self, clip_images, class_names, topk=None):
        """(B, T, S/4, S/4) float32 class probabilities (also under autocast); with `topk`, rejected classes get
        exactly 0."""
        if topk is None:
            return self.predictor(clip_images, class_names, with_aux=False)[0].float().sigmoid()
        results = self.predictor.forward_with_rejection(clip_images, class_names, topk)
        logits = results[0][0]
        probs = logits.new_zeros(len(results), len(class_names), *logits.shape[-2:])
        for i, (logits, kept) in enumerate(results):
            probs[i, kept] = logits.float().sigmoid()
        return probs
