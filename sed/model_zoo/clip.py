"""The CLIP weights of the zoo (`clip-b`, `clip-l`): fetched by open_clip's own download function into the
Hugging Face hub cache, which open_clip reads when it builds the model with the same pretrained tag."""

import os

from .download import WeightsUnavailableError, format_size, short_reason
from .entries import MODEL_ZOO, ClipWeights

__all__ = ["clip_unavailable_message", "fetch_clip", "hub_cache_dir"]


def hub_cache_dir():
    """The Hugging Face hub cache open_clip downloads into (HF_HUB_CACHE, else HF_HOME/hub)."""
    try:
        from huggingface_hub import constants

        return constants.HF_HUB_CACHE
    except ImportError:
        return os.path.join(os.path.expanduser(os.environ.get("HF_HOME", "~/.cache/huggingface")), "hub")


def _entry(clip_model, tag):
    return next(
        (e for e in MODEL_ZOO.values() if isinstance(e, ClipWeights) and (e.clip_model, e.tag) == (clip_model, tag)),
        None,
    )


def clip_unavailable_message(clip_model, tag, error):
    """One line: open_clip could not get `clip_model`/`tag` (`error`: the exception, or a reason); what the file is
    and how to get it there by hand."""
    entry = _entry(clip_model, tag)
    what = (
        f"open_clip_pytorch_model.bin of https://huggingface.co/{entry.hf_repo} (about "
        f"{format_size(entry.approx_size)})"
        if entry
        else "the weights file"
    )
    fetch = f"python tools/download.py {entry.name}" if entry else "open_clip.download_pretrained"
    return (
        f"Could not get the CLIP weights {clip_model}/{tag} through open_clip ({short_reason(error)}): they "
        f"are {what}, cached by the Hugging Face hub in {hub_cache_dir()} (HF_HOME / HF_HUB_CACHE move it). "
        f"Pre-fetch them where there is network ({fetch}) and copy that cache, or download the file by hand and set "
        "MODEL.ENC.CLIP_PRETRAINED_WEIGHTS /path/to/open_clip_pytorch_model.bin; or use "
        'MODEL.ENC.CLIP_PRETRAINED_WEIGHTS "" when MODEL.WEIGHTS carries CLIP (the released SED checkpoints '
        "do). See MODEL_ZOO.md, 'CLIP weights'."
    )


def fetch_clip(name):
    """Downloads the CLIP weights of zoo entry `name` with open_clip into the hub cache; returns the file's path."""
    import open_clip

    entry = MODEL_ZOO[name]
    try:
        path = open_clip.download_pretrained(open_clip.get_pretrained_cfg(entry.clip_model, entry.tag))
    except Exception as e:  # the hub client fails with many types; each means "not downloaded"
        raise WeightsUnavailableError(clip_unavailable_message(entry.clip_model, entry.tag, e)) from e
    if not path:
        raise WeightsUnavailableError(clip_unavailable_message(entry.clip_model, entry.tag, "no download source"))
    return path
