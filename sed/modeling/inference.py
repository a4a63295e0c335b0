"""Test-time inference of any semantic-segmentation model here: sliding windows, multi-scale and flip."""

from typing import Callable, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F

__all__ = ["sliding_window_from_config", "sliding_window_inference", "multi_scale_inference"]


def sliding_window_from_config(cfg) -> Optional[Tuple[Tuple[int, int], Tuple[int, int]]]:
    """((h, w) window, (h, w) stride) of TEST.SLIDING_WINDOW*, or None when sliding windows are off."""
    test = cfg.TEST
    if not test.SLIDING_WINDOW:
        return None
    return (
        tuple(test.SLIDING_WINDOW_SIZE_HW) or (test.SLIDING_WINDOW_SIZE,) * 2,
        tuple(test.SLIDING_WINDOW_STRIDE_HW) or (test.SLIDING_WINDOW_STRIDE,) * 2,
    )


def _window_starts(length: int, crop: int, stride: int) -> List[int]:
    """Starts of the windows along one axis (length >= crop): every stride, the last one aligned to the end."""
    return [min(i * stride, length - crop) for i in range(max(length - crop + stride - 1, 0) // stride + 1)]


def sliding_window_inference(
    logits_fn: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    crop_size: Tuple[int, int],
    stride: Tuple[int, int],
) -> torch.Tensor:
    """Logits of an image from fixed-size windows, averaged where windows overlap.

    Args:
        logits_fn: (B, 3, h, w) float images -> (B, K, h, w) logits.
        image: (3, H, W) float image, as logits_fn takes it (e.g. normalised).
        crop_size: window (h, w). An image smaller than it is zero-padded at the bottom/right up to it and the
            pad is cropped off the result.
        stride: (h, w) steps between windows, at most crop_size; the last window of each row/column is aligned
            to the image border.
    Returns:
        (K, H, W) logits.
    """
    (crop_h, crop_w), (stride_h, stride_w) = crop_size, stride
    if stride_h > crop_h or stride_w > crop_w:
        raise ValueError(f"stride {stride} is larger than the window {crop_size}: windows would leave gaps")
    height, width = image.shape[-2:]
    image = F.pad(image, (0, max(crop_w - width, 0), 0, max(crop_h - height, 0)))
    padded_h, padded_w = image.shape[-2:]
    logits, count = None, image.new_zeros(1, padded_h, padded_w)
    for y in _window_starts(padded_h, crop_h, stride_h):
        for x in _window_starts(padded_w, crop_w, stride_w):
            window = logits_fn(image[None, :, y : y + crop_h, x : x + crop_w])[0]
            if logits is None:
                logits = window.new_zeros(window.shape[0], padded_h, padded_w)
            logits[:, y : y + crop_h, x : x + crop_w] += window
            count[:, y : y + crop_h, x : x + crop_w] += 1
    return (logits / count)[:, :height, :width]


def multi_scale_inference(
    predict_fn: Callable[[torch.Tensor], torch.Tensor],
    image: torch.Tensor,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    output_size: Optional[Tuple[int, int]] = None,
    activation: str = "softmax",
) -> torch.Tensor:
    """Scores averaged over rescaled (and horizontally flipped) copies of an image.

    Each copy's logits are resized to output_size before the activation, so with scales (1.0,) and no flip the
    result is the activation of the resized logits (mmsegmentation's single-scale test).

    Args:
        predict_fn: (3, h, w) float image -> (K, h, w) logits, e.g. whole-image or sliding-window inference.
        image: (3, H, W) float image.
        scales: factors of H, W (rounded to the nearest pixel).
        flip: also predict each scale's left-right mirror, flipped back.
        output_size: (h, w) of the result; default (H, W).
        activation: "softmax" (over classes) or "sigmoid" (per class).
    Returns:
        (K, *output_size) scores.
    """
    if activation not in ("softmax", "sigmoid"):
        raise ValueError(f"activation must be 'softmax' or 'sigmoid', got {activation!r}")
    height, width = image.shape[-2:]
    output_size = tuple(output_size or (height, width))
    scores = 0
    for scale in scales:
        size = (int(height * scale + 0.5), int(width * scale + 0.5))
        scaled = (
            image
            if size == (height, width)
            else F.interpolate(image[None], size, mode="bilinear", align_corners=False)[0]
        )
        for flipped in (False, True) if flip else (False,):
            logits = predict_fn(scaled.flip(-1) if flipped else scaled)
            logits = logits.flip(-1) if flipped else logits
            if tuple(logits.shape[-2:]) != output_size:
                logits = F.interpolate(logits[None], output_size, mode="bilinear", align_corners=False)[0]
            scores = scores + (logits.softmax(dim=0) if activation == "softmax" else logits.sigmoid())
    return scores / (len(scales) * (2 if flip else 1))
