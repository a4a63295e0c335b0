"""CLIP weights that open_clip cannot download: one line with the file, its size, the cache and the fixes."""

import open_clip
import pytest

from sed.model_zoo import WeightsUnavailableError, fetch_clip, hub_cache_dir
from sed.modeling.sed.clip_encoder import build_clip_model


def offline(*args, **kwargs):
    raise OSError("[Errno -2] Name or service not known\n(while requesting huggingface.co)")


def check_message(message):
    assert "\n" not in message and "Traceback" not in message
    for part in [
        "convnext_base_w_320/laion_aesthetic_s13b_b82k",
        "Name or service not known",
        "huggingface.co/laion/CLIP-convnext_base_w_320-laion_aesthetic-s13B-b82K",
        "0.72 GB",
        hub_cache_dir(),
        "python tools/download.py clip-b",
        "MODEL.ENC.CLIP_PRETRAINED_WEIGHTS /path/to/",
    ]:
        assert part in message


def test_prefetch_failure_is_one_line(monkeypatch):
    monkeypatch.setattr(open_clip, "download_pretrained", offline)
    with pytest.raises(WeightsUnavailableError) as error:
        fetch_clip("clip-b")
    check_message(str(error.value))


def test_model_build_failure_is_the_same_line(monkeypatch):
    monkeypatch.setattr(open_clip, "create_model", offline)
    with pytest.raises(WeightsUnavailableError) as error:
        build_clip_model("convnext_base_w_320", "laion_aesthetic_s13b_b82k")
    check_message(str(error.value))


def test_prefetch_goes_through_open_clip_with_the_zoo_tag(monkeypatch):
    asked = []
    monkeypatch.setattr(open_clip, "download_pretrained", lambda cfg: asked.append(cfg) or "/cache/file.bin")
    assert fetch_clip("clip-l") == "/cache/file.bin"
    assert asked == [open_clip.get_pretrained_cfg("convnext_large_d_320", "laion2b_s29b_b131k_ft_soup")]
