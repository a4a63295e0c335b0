"""SED's per-class binary cross-entropy (sed/modeling/sed/losses.py) against a hand computation."""

import math

import pytest
import torch

from sed.modeling.sed.losses import sem_seg_bce_losses


def softplus(x):
    return math.log1p(math.exp(x))


@pytest.mark.parametrize("exclude_ignored", [False, True])
def test_bce_of_one_labelled_and_one_ignored_pixel(exclude_ignored):
    """Two classes, pixels (class 0, ignored), logits (2, -1) and (0.5, 3); BCE(x, t) = softplus(x) - t * x.
    The authors' loss averages the 4 entries (the ignored pixel's target is all zero); with exclude_ignored only
    the labelled pixel's 2 entries count."""
    logits = torch.tensor([[[[2.0, 0.5]], [[-1.0, 3.0]]]], dtype=torch.float64)  # (B=1, T=2, H=1, W=2)
    targets = torch.tensor([[[0, 255]]])
    labelled = softplus(2.0) - 2.0 + softplus(-1.0)
    expected = labelled / 2 if exclude_ignored else (labelled + softplus(0.5) + softplus(3.0)) / 4
    losses = sem_seg_bce_losses(
        [logits, logits[..., :1].expand(-1, -1, -1, 2)], targets, exclude_ignored=exclude_ignored
    )
    assert losses["loss_sem_seg_0"].item() == pytest.approx(expected, rel=1e-12)
    # a second output of another value: one loss per output
    second = softplus(2.0) - 2.0 + softplus(-1.0)
    second = second / 2 if exclude_ignored else (second + softplus(2.0) + softplus(-1.0)) / 4
    assert losses["loss_sem_seg_1"].item() == pytest.approx(second, rel=1e-12)


def test_only_ignored_pixels_give_zero_when_excluded():
    logits = torch.randn(1, 3, 2, 2)
    targets = torch.full((1, 2, 2), 255)
    assert sem_seg_bce_losses([logits], targets, exclude_ignored=True)["loss_sem_seg_0"].item() == 0
