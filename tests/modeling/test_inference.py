"""The generic sliding-window and multi-scale/flip inference of sed/modeling/inference.py."""

import math

import pytest
import torch

from sed.modeling.inference import multi_scale_inference, sliding_window_inference


def pointwise(images):
    """A per-pixel model: any window layout gives the whole-image result."""
    return torch.stack([images.sum(1), images[:, 0] * 2, -images[:, 1]], dim=1)


def global_mean(images):
    """A model whose every output pixel sees the whole window (like ECENet's pooling and attention)."""
    return images.mean(dim=(1, 2, 3), keepdim=True).expand(-1, 2, *images.shape[-2:])


def test_one_window_covering_the_image_is_whole_image_inference():
    image = torch.randn(3, 8, 10)
    out = sliding_window_inference(global_mean, image, crop_size=(8, 10), stride=(6, 7))
    torch.testing.assert_close(out, global_mean(image[None])[0])


def test_larger_image_windows_and_overlap_average():
    """5x7 image, 3x4 windows, stride 2x3: rows start at 0, 2 and columns at 0, 3 (last window at the border)."""
    image = torch.arange(35.0).view(1, 5, 7).expand(3, -1, -1).contiguous()
    calls = []

    def logits_fn(images):
        calls.append(images.shape[-2:])
        return torch.full((1, 1, *images.shape[-2:]), float(len(calls)))

    out = sliding_window_inference(logits_fn, image, crop_size=(3, 4), stride=(2, 3))
    assert calls == [(3, 4)] * 4 and out.shape == (1, 5, 7)
    # windows 1: rows 0-2 cols 0-3, 2: rows 0-2 cols 3-6, 3: rows 2-4 cols 0-3, 4: rows 2-4 cols 3-6
    expected = torch.zeros(5, 7)
    count = torch.zeros(5, 7)
    for value, (y, x) in enumerate([(0, 0), (0, 3), (2, 0), (2, 3)], start=1):
        expected[y : y + 3, x : x + 4] += value
        count[y : y + 3, x : x + 4] += 1
    torch.testing.assert_close(out[0], expected / count)
    torch.testing.assert_close(sliding_window_inference(pointwise, image, (3, 4), (2, 3)), pointwise(image[None])[0])


def test_image_smaller_than_the_window_is_padded_and_cropped_back():
    image = torch.randn(3, 5, 6)
    out = sliding_window_inference(global_mean, image, crop_size=(8, 8), stride=(4, 4))
    padded = torch.zeros(3, 8, 8)
    padded[:, :5, :6] = image
    assert out.shape == (2, 5, 6)
    torch.testing.assert_close(out, global_mean(padded[None])[0, :, :5, :6])
    # smaller in one dimension only: padded there, windows slide along the other
    wide = torch.randn(3, 5, 20)
    torch.testing.assert_close(sliding_window_inference(pointwise, wide, (8, 8), (4, 6)), pointwise(wide[None])[0])


def test_stride_larger_than_the_window_is_rejected():
    with pytest.raises(ValueError):
        sliding_window_inference(pointwise, torch.randn(3, 8, 8), (4, 4), (5, 4))


def test_single_scale_is_the_activation_of_the_resized_logits():
    image = torch.randn(3, 6, 8)

    def predict(img):
        return pointwise(img[None])[0]

    torch.testing.assert_close(multi_scale_inference(predict, image), predict(image).softmax(0))
    torch.testing.assert_close(multi_scale_inference(predict, image, activation="sigmoid"), predict(image).sigmoid())
    resized = torch.nn.functional.interpolate(predict(image)[None], (12, 16), mode="bilinear", align_corners=False)
    torch.testing.assert_close(multi_scale_inference(predict, image, output_size=(12, 16)), resized[0].softmax(0))


def test_flip_and_scales_average_scores():
    image = torch.randn(3, 4, 6)
    sizes = []

    def ramp(img):  # not flip-equivariant: a horizontal ramp, whatever the image
        sizes.append(tuple(img.shape[-2:]))
        ramp = torch.linspace(0, 1, img.shape[-1]).expand(img.shape[-2], -1)
        return torch.stack([ramp, -ramp])

    flipped = multi_scale_inference(ramp, image, flip=True)
    plain = ramp(image).softmax(0)
    torch.testing.assert_close(flipped, (plain + plain.flip(-1)) / 2)
    sizes.clear()
    out = multi_scale_inference(ramp, image, scales=(0.5, 1.0, 1.5))
    assert sizes == [(2, 3), (4, 6), (6, 9)] and out.shape == (2, 4, 6)

    def by_width(img):  # logits (width / 3, 0) everywhere: the softmax of a copy is (sigmoid(width / 3), ...)
        return torch.stack([torch.full(img.shape[-2:], img.shape[-1] / 3), torch.zeros(img.shape[-2:])])

    out = multi_scale_inference(by_width, image, scales=(0.5, 1.0, 1.5))  # widths 3, 6, 9
    expected = sum(1 / (1 + math.exp(-a)) for a in (1, 2, 3)) / 3
    torch.testing.assert_close(out[0], torch.full((4, 6), expected))
    torch.testing.assert_close(out[1], torch.full((4, 6), 1 - expected))
