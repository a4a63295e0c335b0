"""The CLIP model SED builds: its name from the config, as the authors' key MODEL.SEM_SEG_HEAD.CLIP_PRETRAINED
meant it, and its stochastic layers."""

import pytest

from sed.modeling.sed.clip_encoder import clip_model_name, stochastic_layer_rates


def test_authors_clip_key_must_agree_with_the_encoder_name():
    assert clip_model_name("convnext_large_d_320", "Convnext-L") == "convnext_large_d_320"
    assert clip_model_name("my_convnext", "") == "my_convnext"
    with pytest.raises(ValueError, match="selects convnext_base_w_320, but MODEL.ENC.CLIP_MODEL_NAME"):
        clip_model_name("convnext_large_d_320", "Convnext-B")
    with pytest.raises(ValueError, match="SED's encoder is a CLIP ConvNeXt"):
        clip_model_name("convnext_base_w_320", "ViT-B/16")


def test_stochastic_layers_default_to_the_authors_values():
    """open_clip 3.3.0's configs differ from the ones the authors trained with; negative config values mean
    theirs for their two models, the open_clip config's for any other."""
    assert stochastic_layer_rates("convnext_base_w_320") == (0.0, 0.0)
    assert stochastic_layer_rates("convnext_large_d_320") == (0.1, 0.1)
    assert stochastic_layer_rates("convnext_base_w_320", 0.2, 0.3) == (0.2, 0.3)
    assert stochastic_layer_rates("convnext_base", -1, -1) == (0.1, 0.0)  # open_clip's convnext_base.json
