"""Behaviours of the SED model a user relies on: batching, rejection, checkpoints, training."""

import functools
import json

import open_clip
import pytest
import torch
import torch.nn.functional as F
from conftest import FIXTURES, REPO, load_cfg
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import META_ARCH_REGISTRY, build_model

from sed.modeling.sed.decoder import GradualFusionDecoder


def _images(parity, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        parity.input(),
        {"image": torch.randint(0, 256, (3, 160, 240), generator=g).float(), "height": 100, "width": 150},
        {"image": torch.randint(0, 256, (3, 300, 200), generator=g).float()},
    ]


@pytest.mark.parametrize("fast", [False, True])
def test_batch_equals_images_one_by_one(parity, fast):
    model = parity.build(fast=fast)
    inputs = _images(parity)
    with torch.no_grad():
        batched = model(inputs)
        single = [model([x])[0] for x in inputs]
    for b, s, x in zip(batched, single, inputs):
        assert b["sem_seg"].shape == (10, x.get("height", x["image"].shape[1]), x.get("width", x["image"].shape[2]))
        torch.testing.assert_close(b["sem_seg"], s["sem_seg"], atol=1e-5, rtol=0)


@pytest.mark.slow
def test_topk_covering_all_classes_equals_full_inference(parity):
    full = parity.build(fast=False)
    fast = parity.build(fast=True, extra=["TEST.TOPK", "10"])
    inputs = _images(parity)
    with torch.no_grad():
        for a, b in zip(full(inputs), fast(inputs)):
            torch.testing.assert_close(a["sem_seg"], b["sem_seg"], atol=1e-6, rtol=0)


@pytest.mark.parametrize("config,count", [("convnextB_768.yaml", 1_376_396), ("convnextL_768.yaml", 1_473_164)])
def test_decoder_has_the_released_parameter_count(config, count):
    decoder = GradualFusionDecoder(load_cfg(config), prompt_channels=80)
    assert sum(p.numel() for p in decoder.parameters()) == count


@pytest.mark.parametrize("config,keys", [("convnextB_768.yaml", "B"), ("convnextL_768.yaml", "L")])
def test_state_dict_has_the_released_checkpoint_layout(config, keys, monkeypatch):
    """Every key and shape of the released checkpoints, and nothing else (built on the meta device: no memory)."""
    monkeypatch.setattr(open_clip, "create_model", functools.partial(open_clip.create_model, device="meta"))
    cfg = load_cfg(config, ["MODEL.ENC.CLIP_PRETRAINED_WEIGHTS", ""])
    with torch.device("meta"):
        model = META_ARCH_REGISTRY.get("SED")(cfg)
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    released = {}
    for line in (FIXTURES / f"official_checkpoint_keys_{keys}.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, shape = line.split(" ", 1)
            released[name] = tuple(eval(shape))
    assert ours == released


def test_checkpoint_of_another_model_is_refused_with_a_clear_message(parity, tmp_path):
    model = parity.build(load=False)
    other = parity.build(load=False, extra=["MODEL.SEM_SEG_HEAD.DECODER_GUIDANCE_DIMS", "[24, 32, 48]"])
    path = tmp_path / "other.pth"
    torch.save({"model": other.state_dict()}, path)
    with pytest.raises(ValueError, match="(?s)does not fit this SED model.*decoder_guidance_projection"):
        DetectionCheckpointer(model).load(str(path))
    torch.save({"model": {"backbone.res2.weight": torch.zeros(1)}}, path)
    with pytest.raises(ValueError, match="not in this model: backbone.res2.weight"):
        DetectionCheckpointer(model).load(str(path))


def test_text_embeddings_follow_the_loaded_weights(parity):
    """Embeddings computed before MODEL.WEIGHTS is loaded must not survive the load."""
    model = parity.build(load=False)
    predictor = model.sem_seg_head.predictor
    names = parity["class_names"]
    stale = predictor.text_embeddings.get(predictor.clip_model, names, predictor.prompt_templates)
    DetectionCheckpointer(model).load(str(parity.checkpoint))
    fresh = predictor.text_embeddings.get(predictor.clip_model, names, predictor.prompt_templates)
    assert not torch.allclose(stale, fresh)
    torch.testing.assert_close(fresh, parity["text_features"], atol=1e-4, rtol=0)


VOCABULARY = ["sky", "grass", "road", "water, sea", "tree"]


def _tiny_model(tmp_path, extra=()):
    vocabulary = tmp_path / "vocabulary.json"
    vocabulary.write_text(json.dumps(VOCABULARY))
    torch.manual_seed(0)
    return build_model(
        load_cfg(
            "tiny_cpu.yaml",
            ["MODEL.SEM_SEG_HEAD.TRAIN_CLASS_JSON", str(vocabulary), "MODEL.CLIP_RESOLUTION", "(192, 192)", *extra],
        )
    )


def _fixed_batch(num_classes, size=192):
    g = torch.Generator().manual_seed(1)
    batch = []
    for _ in range(2):
        target = torch.full((size, size), 255, dtype=torch.long)
        target[: size // 2] = int(torch.randint(num_classes, (1,), generator=g))
        target[size // 2 :] = int(torch.randint(num_classes, (1,), generator=g))
        image = torch.randint(0, 256, (3, size, size), generator=g).float()
        image[:, target == target[0, 0]] *= 0.3  # the two regions look different
        batch.append({"image": image, "sem_seg": target})
    return batch


def test_training_step_lowers_the_loss_and_leaves_the_text_tower_alone(tmp_path):
    model = _tiny_model(tmp_path).train()
    batch = _fixed_batch(len(model.train_class_names))
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    losses = []
    for _ in range(3):
        loss = sum(model(batch).values())
        optimizer.zero_grad()
        loss.backward()
        if not losses:
            clip_model = model.sem_seg_head.predictor.clip_model
            for name, p in clip_model.named_parameters():
                if name.startswith("visual."):
                    assert p.grad is not None, name
                else:
                    assert p.grad is None and not p.requires_grad, f"text tower parameter {name} gets a gradient"
            assert all(p.grad is not None for p in model.sem_seg_head.predictor.transformer.parameters())
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_loss_may_exclude_ignored_pixels(tmp_path):
    """MODEL.SEM_SEG_HEAD.LOSS_EXCLUDE_IGNORED reaches the loss (whose values tests/modeling/test_losses.py checks
    by hand): the same loss as the authors' without ignored pixels, another one with them."""
    unpadded = ["INPUT.SIZE_DIVISIBILITY", "-1"]  # the tiny config pads 192 to 384 with ignored pixels
    model = _tiny_model(tmp_path, ["MODEL.SEM_SEG_HEAD.LOSS_EXCLUDE_IGNORED", "True", *unpadded]).train()
    authors = _tiny_model(tmp_path, unpadded).train()
    assert model.sem_seg_head.loss_exclude_ignored and not authors.sem_seg_head.loss_exclude_ignored
    authors.load_state_dict(model.state_dict())
    batch = _fixed_batch(len(model.train_class_names))

    def losses(m):
        torch.manual_seed(0)  # the same drop-path draws for both models
        with torch.no_grad():
            return m(batch)

    a, b = losses(authors), losses(model)
    assert all(torch.isclose(a[k], b[k], rtol=1e-6, atol=0) for k in a), (a, b)
    batch[0]["sem_seg"][:10] = 255
    a, b = losses(authors), losses(model)
    assert all(not torch.isclose(a[k], b[k]) for k in a)


def test_label_outside_the_training_vocabulary_is_reported(tmp_path):
    model = _tiny_model(tmp_path).train()
    batch = _fixed_batch(len(model.train_class_names))
    batch[0]["sem_seg"][0, 0] = 7
    with pytest.raises(ValueError, match="class id 7 but the training vocabulary has 5 classes"):
        model(batch)


def test_clip_weights_from_a_local_file(tmp_path):
    from sed.modeling.sed.clip_encoder import build_clip_model

    reference = open_clip.create_model("sed_tiny_convnext", pretrained=None)
    path = tmp_path / "open_clip_pytorch_model.bin"
    torch.save(reference.state_dict(), path)
    loaded = build_clip_model("sed_tiny_convnext", str(path))
    for (name, a), b in zip(reference.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), name
    with pytest.raises(FileNotFoundError, match="neither a file nor an open_clip pretrained tag"):
        build_clip_model("sed_tiny_convnext", str(tmp_path / "missing.bin"))
    with pytest.raises(ValueError, match="not an open_clip model"):
        build_clip_model("no_such_model", "")


def test_no_device_hard_coding_in_the_package():
    for path in (REPO / "sed").rglob("*.py"):
        text = path.read_text()
        assert ".cuda(" not in text and 'device="cuda"' not in text, path


@pytest.mark.slow
def test_sliding_window_with_one_window_covering_the_image_equals_whole_image(parity):
    whole = parity.build()
    window = parity.build(
        extra=[
            "TEST.SLIDING_WINDOW",
            "True",
            "TEST.SLIDING_WINDOW_SIZE_HW",
            "[200, 300]",
            "TEST.SLIDING_WINDOW_STRIDE_HW",
            "[100, 150]",
        ]
    )
    tiled = parity.build(
        extra=["TEST.SLIDING_WINDOW", "True", "TEST.SLIDING_WINDOW_SIZE", "128", "TEST.SLIDING_WINDOW_STRIDE", "96"]
    )
    x = parity.input(height=200, width=300)
    with torch.no_grad():
        expected = whole([x])[0]["sem_seg"]
        torch.testing.assert_close(window([x])[0]["sem_seg"], expected, atol=1e-6, rtol=0)
        out = tiled([x])[0]["sem_seg"]
    assert out.shape == expected.shape and 0 <= out.min() and out.max() <= 1


def _decoder_probabilities(model, image):
    """(T, 192, 192) probabilities of the final map for a (3, H, W) image, computed outside SED.inference."""
    clip_input = (image.float() - model.clip_pixel_mean) / model.clip_pixel_std
    clip_input = F.interpolate(clip_input[None], size=model.clip_resolution, mode="bilinear", align_corners=False)
    with torch.no_grad():
        return model.sem_seg_head.probabilities(clip_input, model.test_class_names)[0]


def test_inputs_under_192_px_are_cut_then_resized_as_the_authors_do(parity):
    """detectron2's sem_seg_postprocess, as the authors call it, cuts the (T, 192, 192) map to the input's size
    (here its 181 columns) before the resize; TEST.ALIGNED_POSTPROCESS resizes the whole map instead."""
    image = F.interpolate(parity["image"][None].float(), size=(257, 181), mode="bilinear", align_corners=False)[0]
    inputs = [{"image": image, "height": 300, "width": 200}]
    probs = _decoder_probabilities(parity.build(), image)

    with torch.no_grad():
        authors = parity.build()(inputs)[0]["sem_seg"]
        aligned = parity.build(extra=["TEST.ALIGNED_POSTPROCESS", "True"])(inputs)[0]["sem_seg"]
    cut = F.interpolate(probs[None, :, :192, :181], size=(300, 200), mode="bilinear", align_corners=False)[0]
    whole = F.interpolate(probs[None], size=(300, 200), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(authors, cut, atol=1e-5, rtol=0)
    torch.testing.assert_close(aligned, whole, atol=1e-5, rtol=0)
    assert (authors - aligned).abs().max() > 1e-3
