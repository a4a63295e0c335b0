"""The CLIP ConvNeXt encoder of SED: one open_clip model gives hierarchical features and a dense embedding.

The visual tower is an open_clip `TimmModel` wrapping a timm ConvNeXt (`trunk`) and a projection (`head`).
Its four stages give res2..res5; the dense embedding applies, at every pixel of res5, what CLIP applies to the
pooled vector (the trunk head's LayerNorm, then the projection): the CLIP embedding of that pixel.
"""

import logging
import os
import pickle

import open_clip
import torch
from torch.utils.checkpoint import checkpoint

from ...checkpoint.safe_load import refusal
from ...model_zoo import WeightsUnavailableError, clip_unavailable_message
from ...utils.logs import hidden_log_lines
from .fused_convnext import fused_blocks_supported, run_stage

logger = logging.getLogger(__name__)

STAGE_NAMES = ("res2", "res3", "res4", "res5")

# (drop path rate, head dropout) of the image tower in the open_clip model configs the authors trained with.
# Today's open_clip configs differ (3.3.0: convnext_base_w_320 0.1 drop path, convnext_large_d_320 no dropout).
AUTHORS_STOCHASTIC_DEPTH = {"convnext_base_w_320": (0.0, 0.0), "convnext_large_d_320": (0.1, 0.1)}

# The authors' values of MODEL.SEM_SEG_HEAD.CLIP_PRETRAINED and the open_clip models they select: their code
# builds its CLIP from that key (MODEL.ENC.CLIP_MODEL_NAME only named a backbone it deleted unused).
AUTHORS_CLIP_NAMES = {"Convnext-B": "convnext_base_w_320", "Convnext-L": "convnext_large_d_320"}


def clip_model_name(enc_model_name, authors_clip_pretrained=""):
    """The open_clip model to build: MODEL.ENC.CLIP_MODEL_NAME, checked against the authors' key
    MODEL.SEM_SEG_HEAD.CLIP_PRETRAINED where a config (one of theirs) sets it."""
    if not authors_clip_pretrained:
        return enc_model_name
    named = AUTHORS_CLIP_NAMES.get(authors_clip_pretrained)
    if named is None:
        raise ValueError(
            f"MODEL.SEM_SEG_HEAD.CLIP_PRETRAINED={authors_clip_pretrained!r}: SED's encoder is a CLIP ConvNeXt; "
            f'this key takes {sorted(AUTHORS_CLIP_NAMES)} (the authors\' values) or "" to use '
            "MODEL.ENC.CLIP_MODEL_NAME."
        )
    if named != enc_model_name:
        raise ValueError(
            f"MODEL.SEM_SEG_HEAD.CLIP_PRETRAINED={authors_clip_pretrained!r} selects {named}, but "
            f'MODEL.ENC.CLIP_MODEL_NAME is {enc_model_name!r}: set CLIP_PRETRAINED to "" to use '
            "MODEL.ENC.CLIP_MODEL_NAME, or make them agree."
        )
    return named


def stochastic_layer_rates(model_name, drop_path_rate=-1.0, head_dropout=-1.0):
    """(drop path rate, head dropout) of the image tower: the given values, where negative the authors' for
    their two models (`AUTHORS_STOCHASTIC_DEPTH`), else those of the open_clip model config."""
    vision_cfg = open_clip.get_model_config(model_name)["vision_cfg"]
    authors = AUTHORS_STOCHASTIC_DEPTH.get(model_name)
    defaults = authors or (vision_cfg.get("timm_drop_path") or 0.0, vision_cfg.get("timm_drop", 0.0))
    return (
        float(drop_path_rate) if drop_path_rate >= 0 else defaults[0],
        float(head_dropout) if head_dropout >= 0 else defaults[1],
    )


def build_clip_model(model_name, pretrained_weights="", drop_path_rate=-1.0, head_dropout=-1.0):
    """Builds an open_clip model whose visual tower is a timm ConvNeXt.

    Args:
        model_name: an open_clip model name, e.g. "convnext_base_w_320" (or one added with
            `open_clip.add_model_config`).
        pretrained_weights: an open_clip pretrained tag (downloaded by open_clip where the network allows),
            a path to a local open_clip weights file, or "" for random initialisation.
        drop_path_rate, head_dropout: stochastic depth of the ConvNeXt trunk and dropout of the projection
            head in training; negative: see `stochastic_layer_rates`.
    """
    if model_name not in open_clip.list_models():
        raise ValueError(
            f"MODEL.ENC.CLIP_MODEL_NAME={model_name!r} is not an open_clip model. Use one of open_clip's "
            "ConvNeXt models (e.g. convnext_base_w_320, convnext_large_d_320) or register a model config "
            "first with open_clip.add_model_config(dir_with_NAME.json)."
        )
    drop_path_rate, head_dropout = stochastic_layer_rates(model_name, drop_path_rate, head_dropout)
    # open_clip applies keyword arguments over its model config, a whole sub-config at a time.
    vision_cfg = dict(
        open_clip.get_model_config(model_name)["vision_cfg"], timm_drop_path=drop_path_rate, timm_drop=head_dropout
    )
    if not pretrained_weights:
        # open_clip warns "Model initialized randomly" as if that were the end of it; SED's checkpoints carry the
        # CLIP weights, so mostly a checkpoint replaces them right after building.
        with hidden_log_lines("Model initialized randomly"):
            model = open_clip.create_model(model_name, pretrained=None, vision_cfg=vision_cfg)
        logger.info(
            "CLIP %s: random initial weights (MODEL.ENC.CLIP_PRETRAINED_WEIGHTS is empty); a checkpoint "
            "loaded into the model (MODEL.WEIGHTS, --resume) replaces them.",
            model_name,
        )
    elif os.path.isfile(os.path.expanduser(pretrained_weights)):
        path = os.path.expanduser(pretrained_weights)
        try:  # open_clip reads it with torch.load(weights_only=True): no code runs, but torch's error is a page
            model = open_clip.create_model(model_name, pretrained=path, vision_cfg=vision_cfg)
        except pickle.UnpicklingError as e:
            raise refusal(e, path) or ValueError(
                f"MODEL.ENC.CLIP_PRETRAINED_WEIGHTS={pretrained_weights!r} is not a readable checkpoint "
                f"({' '.join(str(e).split())[:200]}): download open_clip_pytorch_model.bin again"
            ) from e
    else:
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        if pretrained_weights not in tags:
            raise FileNotFoundError(
                f"MODEL.ENC.CLIP_PRETRAINED_WEIGHTS={pretrained_weights!r} is neither a file nor an open_clip "
                f"pretrained tag of {model_name} (tags: {tags}). Pass a tag, the path of a downloaded "
                "open_clip_pytorch_model.bin, or \"\" for random weights (see INSTALL.md, 'CLIP weights')."
            )
        try:
            model = open_clip.create_model(model_name, pretrained=pretrained_weights, vision_cfg=vision_cfg)
        except Exception as e:  # network or hub failures surface as many exception types
            raise WeightsUnavailableError(clip_unavailable_message(model_name, pretrained_weights, e)) from e
    trunk = getattr(model.visual, "trunk", None)
    if trunk is None or not all(hasattr(trunk, a) for a in ("stem", "stages", "norm_pre", "head")):
        raise ValueError(f"open_clip model {model_name!r} has no timm ConvNeXt visual tower; SED needs one.")
    return model


def text_tower_parameters(clip_model):
    """(name, parameter) pairs of the CLIP text tower: everything outside the visual tower and the logit scale."""
    return [
        (n, p)
        for n, p in clip_model.named_parameters()
        if not n.startswith("visual.") and n not in ("logit_scale", "logit_bias")
    ]


def encode_image(visual, images, gradient_checkpointing=False, fused_blocks=False):
    """Stage features and the dense CLIP embedding of images.

    Args:
        visual: `clip_model.visual`, an open_clip TimmModel with a ConvNeXt trunk.
        images: (B, 3, H, W) CLIP-normalised images.
        gradient_checkpointing: recompute each stage's activations in backward (training memory).
        fused_blocks: in CPU inference, run the ConvNeXt blocks with oneDNN's fused linear layers
            (`sed.modeling.sed.fused_convnext`: faster, equal to float32 rounding); ignored where it does not
            apply (training, gradients, CUDA).
    Returns:
        features: dict res2..res5 of (B, C_l, H / 2**(l+1), W / 2**(l+1)) tensors.
        dense: (B, C, H/32, W/32) CLIP image embedding of every res5 pixel (not normalised).
    """
    trunk = visual.trunk
    x = trunk.stem(images)
    fused = fused_blocks and fused_blocks_supported(trunk, x)
    features = {}
    for name, stage in zip(STAGE_NAMES, trunk.stages):
        if gradient_checkpointing and torch.is_grad_enabled() and x.requires_grad:
            x = checkpoint(stage, x, use_reentrant=False)
        else:
            x = run_stage(stage, x, fused)
        features[name] = x
    x = trunk.norm_pre(x)
    x = trunk.head.norm(x)  # LayerNorm2d: the pooled-vector norm, applied per pixel
    dense = visual.head(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
    return features, dense
