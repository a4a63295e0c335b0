"""The model against the authors' reference outputs (tests/fixtures/sed_parity_tiny.pt), at every level they provide."""

import pytest
import torch
import torch.nn.functional as F

from sed.modeling.sed.clip_encoder import encode_image
from sed.modeling.sed.losses import sem_seg_bce_losses
from sed.modeling.sed.prompt_templates import IMAGENET_TEMPLATES

ATOL = 1e-4


def _clip_input(model, parity):
    image = (parity["image"] - model.clip_pixel_mean) / model.clip_pixel_std
    return F.interpolate(image[None], size=(768, 768), mode="bilinear", align_corners=False)


@pytest.fixture(scope="module")
def model(parity):
    """SED-B config + fixture overrides, built and loaded the public way (build_model, DetectionCheckpointer)."""
    return parity.build(fast=False)


def test_prompt_templates_are_the_authors(parity, model):
    assert list(IMAGENET_TEMPLATES) == list(parity["prompt_templates"])
    assert model.sem_seg_head.predictor.prompt_templates == IMAGENET_TEMPLATES


def test_text_embeddings_match(parity, model):
    predictor = model.sem_seg_head.predictor
    text = predictor.text_embeddings.get(predictor.clip_model, parity["class_names"], predictor.prompt_templates)
    assert text.shape == parity["text_features"].shape
    torch.testing.assert_close(text, parity["text_features"], atol=ATOL, rtol=0)


def test_dense_embedding_and_stage_features_match(parity, model):
    with torch.no_grad():
        features, dense = encode_image(model.sem_seg_head.predictor.clip_model.visual, _clip_input(model, parity))
    torch.testing.assert_close(dense, parity["clip_vis_dense"], atol=ATOL, rtol=0)
    assert {k: list(v.shape) for k, v in features.items()} == parity["clip_stage_shapes"]


def test_decoder_logits_match_in_training_order(parity, model):
    with torch.no_grad():
        logits = model.sem_seg_head.predictor(_clip_input(model, parity), parity["class_names"], with_aux=True)
    assert len(logits) == len(parity["decoder_logits"]) == 4
    for ours, ref in zip(logits, parity["decoder_logits"]):
        torch.testing.assert_close(ours, ref, atol=ATOL, rtol=0)


def test_sem_seg_full_inference_matches(parity, model):
    with torch.no_grad():
        out = model([parity.input()])[0]["sem_seg"]
    assert out.shape == parity["sem_seg"].shape
    torch.testing.assert_close(out, parity["sem_seg"], atol=ATOL, rtol=0)


def test_sem_seg_fast_inference_matches_including_rejected_classes(parity):
    model = parity.build(fast=True)
    with torch.no_grad():
        out = model([parity.input()])[0]["sem_seg"]
    rejected = parity["sem_seg_fast"].flatten(1).amax(1) == 0
    assert 0 < int(rejected.sum()) < len(rejected), "the fixture rejects some classes"
    assert torch.equal(out.flatten(1).amax(1) == 0, rejected)
    torch.testing.assert_close(out, parity["sem_seg_fast"], atol=ATOL, rtol=0)


def test_training_losses_match(parity, model):
    ref = parity["train_losses"]
    from_reference_logits = sem_seg_bce_losses(parity["decoder_logits"], parity["train_target"].long()[None])
    with torch.no_grad():
        logits = model.sem_seg_head.predictor(_clip_input(model, parity), parity["class_names"], with_aux=True)
    from_our_logits = sem_seg_bce_losses(logits, parity["train_target"].long()[None])
    for losses in (from_reference_logits, from_our_logits):
        assert sorted(losses) == sorted(ref)
        for name, value in ref.items():
            assert abs(losses[name].item() - value) < ATOL, name
