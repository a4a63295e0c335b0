"""The ECENet meta-architecture built from the configs: training losses, inference, batching, test modes."""

import pytest
import torch
from conftest import load_cfg
from detectron2.modeling import build_model


def tiny(opts=()):
    torch.manual_seed(0)
    return build_model(load_cfg("ecenet/ecenet_tiny_cpu.yaml", opts))


def synthetic_batch(n=2, size=(32, 32)):
    """Images whose left half is dark (class 1) and right half bright (class 3), top rows unlabelled."""
    batch = []
    for _ in range(n):
        image = torch.randint(0, 60, (3, *size), dtype=torch.uint8)
        image[:, :, size[1] // 2 :] += 180
        labels = torch.full(size, 1, dtype=torch.long)
        labels[:, size[1] // 2 :] = 3
        labels[:2] = 255
        batch.append({"image": image, "sem_seg": labels})
    return batch


def test_training_returns_the_four_weighted_losses():
    model = tiny().train()
    losses = model(synthetic_batch())
    assert set(losses) == {"loss_ce", "loss_mask", "loss_dice", "loss_div"}
    assert all(v.ndim == 0 and torch.isfinite(v) for v in losses.values())


def test_training_pads_images_of_different_sizes():
    model = tiny().train()
    batch = synthetic_batch(1, (32, 32)) + synthetic_batch(1, (24, 40))
    assert all(torch.isfinite(v) for v in model(batch).values())


@pytest.mark.slow
def test_a_few_training_iterations_lower_the_loss():
    model = tiny().train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = synthetic_batch()
    totals = []
    for _ in range(6):
        loss = sum(model(batch).values())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        totals.append(loss.item())
    assert totals[-1] < 0.8 * totals[0], totals


def test_inference_returns_class_probabilities_at_the_requested_size():
    model = tiny().eval()
    with torch.no_grad():
        out = model(
            [
                {"image": torch.randint(0, 255, (3, 60, 90), dtype=torch.uint8), "height": 30, "width": 45},
                {"image": torch.randint(0, 255, (3, 40, 40), dtype=torch.uint8)},
            ]
        )
    assert out[0]["sem_seg"].shape == (8, 30, 45) and out[1]["sem_seg"].shape == (8, 40, 40)
    torch.testing.assert_close(out[0]["sem_seg"].sum(0), torch.ones(30, 45))


@pytest.mark.parametrize("sliding", [False, True])
def test_a_batch_equals_its_images_one_by_one(sliding):
    model = tiny(["TEST.SLIDING_WINDOW", str(sliding)]).eval()
    torch.manual_seed(1)
    inputs = [
        {"image": torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8), "height": 64, "width": 64},
        {"image": torch.randint(0, 255, (3, 48, 80), dtype=torch.uint8), "height": 96, "width": 160},
        {"image": torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8).float(), "height": 32, "width": 32},
    ]
    with torch.no_grad():
        batched = model(inputs)
        single = [model([x])[0] for x in inputs]
    for b, s in zip(batched, single):
        torch.testing.assert_close(b["sem_seg"], s["sem_seg"], atol=1e-5, rtol=1e-4)


def test_sliding_window_with_one_window_equals_whole_image():
    whole = tiny().eval()
    sliding = tiny(["TEST.SLIDING_WINDOW", "True", "TEST.SLIDING_WINDOW_SIZE", "64"]).eval()
    sliding.load_state_dict(whole.state_dict())
    inputs = [{"image": torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8), "height": 32, "width": 32}]
    with torch.no_grad():
        torch.testing.assert_close(sliding(inputs)[0]["sem_seg"], whole(inputs)[0]["sem_seg"])


def test_sliding_window_sizes_from_config():
    assert tiny(["TEST.SLIDING_WINDOW", "True"]).sliding_window == ((64, 64), (48, 48))
    assert tiny().sliding_window is None  # the tiny config tests whole images
    hw = tiny(
        [
            "TEST.SLIDING_WINDOW",
            "True",
            "TEST.SLIDING_WINDOW_SIZE_HW",
            "[32, 64]",
            "TEST.SLIDING_WINDOW_STRIDE_HW",
            "[21, 43]",
        ]
    )
    assert hw.sliding_window == ((32, 64), (21, 43))


def test_sliding_windows_average_the_logits_of_each_window():
    """A 50x100 image, 32x64 windows, stride 21x43: windows at rows 0, 18 and columns 0, 36 (the last of each
    aligned to the border); the probabilities are the softmax of the logits averaged where windows overlap."""
    model = tiny(
        [
            "TEST.SLIDING_WINDOW",
            "True",
            "TEST.SLIDING_WINDOW_SIZE_HW",
            "[32, 64]",
            "TEST.SLIDING_WINDOW_STRIDE_HW",
            "[21, 43]",
        ]
    ).eval()
    image = torch.randint(0, 255, (3, 50, 100), dtype=torch.uint8)
    normalised = (image.float() - model.pixel_mean) / model.pixel_std
    logits, count = torch.zeros(8, 50, 100), torch.zeros(50, 100)
    with torch.no_grad():
        for y in (0, 18):
            for x in (0, 36):
                logits[:, y : y + 32, x : x + 64] += model.segment(normalised[None, :, y : y + 32, x : x + 64])[0]
                count[y : y + 32, x : x + 64] += 1
        out = model([{"image": image}])[0]["sem_seg"]
    assert count.min() == 1 and count.max() == 4
    torch.testing.assert_close(out, (logits / count).softmax(0), atol=1e-6, rtol=1e-5)


def test_multi_scale_flip_test_from_config():
    """Scales 0.5 and 1 with flips: the average of the single-scale model's probabilities on the image, its mirror
    (mirrored back), and both resized to 32x32 with their logits resized back to 64x64 (height/width 64)."""
    plain = tiny().eval()
    augmented = tiny(["TEST.AUG.ENABLED", "True", "TEST.AUG.SCALES", "[0.5, 1.0]", "TEST.AUG.FLIP", "True"]).eval()
    augmented.load_state_dict(plain.state_dict())
    assert augmented.test_scales == (0.5, 1.0) and augmented.test_flip and plain.test_scales == (1.0,)
    image = torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8).float()
    small = torch.nn.functional.interpolate(image[None], (32, 32), mode="bilinear", align_corners=False)[0]
    with torch.no_grad():
        out = augmented([{"image": image}])[0]["sem_seg"]
        copies = [plain([{"image": copy, "height": 64, "width": 64}])[0]["sem_seg"] for copy in (image, small)]
        mirrored = [
            plain([{"image": copy.flip(-1), "height": 64, "width": 64}])[0]["sem_seg"].flip(-1)
            for copy in (image, small)
        ]
    expected = sum(copies + mirrored) / 4
    assert not torch.allclose(expected, copies[0], atol=1e-3)  # each copy counts
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)


def test_full_swin_b_ade20k_config_builds_on_cpu():
    cfg = load_cfg("ecenet/ecenet_swinB_ade20k_640.yaml", ["MODEL.DEVICE", "cpu"])
    model = build_model(cfg)
    assert sum(p.numel() for p in model.sem_seg_head.parameters()) == 9_888_428  # spec: ~9.89 M
    assert sum(p.numel() for p in model.backbone.parameters()) == 86_880_376  # timm Swin-B, less classifier/norm
    assert model.sliding_window == ((640, 640), (608, 608))
    assert model.backbone.layers[3].blocks[1].drop_path1.drop_prob == pytest.approx(0.3)
