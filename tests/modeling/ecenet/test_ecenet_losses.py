"""ECENet losses against hand-computed values on tiny tensors."""

import math

import pytest
import torch
import torch.nn.functional as F

from sed.modeling.ecenet.losses import ECENetCriterion, dice_loss, diversity_loss, focal_loss


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def test_focal_loss_by_hand():
    logits, targets = torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 0.0]])
    # positive pixel: p = 0.5, alpha 0.25, (1 - p_t)^2 = 0.25, ce = log 2
    positive = 0.25 * 0.25 * math.log(2)
    # negative pixel: p = sigmoid(2), weight 1 - alpha = 0.75, (1 - p_t)^2 = p^2, ce = -log(1 - p)
    p = sigmoid(2.0)
    negative = 0.75 * p**2 * -math.log(1 - p)
    assert focal_loss(logits, targets, num_masks=1).item() == pytest.approx((positive + negative) / 2, rel=1e-6)
    # two masks: per-mask pixel means, summed, divided by num_masks
    both = focal_loss(torch.cat([logits, logits]), torch.cat([targets, targets]), num_masks=4)
    assert both.item() == pytest.approx((positive + negative) / 4, rel=1e-6)


def test_dice_loss_by_hand():
    logits, targets = torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 0.0]])
    p0, p1 = 0.5, sigmoid(2.0)
    expected = 1 - (2 * p0 + 1) / (p0 + p1 + 1 + 1)
    assert dice_loss(logits, targets, num_masks=1).item() == pytest.approx(expected, rel=1e-6)
    assert dice_loss(logits, targets, num_masks=2).item() == pytest.approx(expected / 2, rel=1e-6)


def test_diversity_loss_by_hand():
    # level 1 (2 channels, 2 positions): spatial softmaxes (0.5, 0.5) and (0.75, 0.25); max 0.75 + 0.5 = 1.25
    level1 = torch.tensor([[0.0, 0.0], [math.log(3), 0.0]]).view(1, 2, 1, 2)
    # level 2: each channel peaks at its own position: max 1 + 1 = 2 -> loss 0
    level2 = torch.tensor([[100.0, 0.0], [0.0, 100.0]]).view(1, 2, 2, 1)
    assert diversity_loss([level1]).item() == pytest.approx(1 - 1.25 / 2)
    assert diversity_loss([level1, level2]).item() == pytest.approx((1 - 1.25 / 2) / 2)
    # images are averaged: a second image where all channels coincide (max 0.5 + 0.5 = 1 -> 1 - 1/2)
    same = torch.zeros(1, 2, 1, 2)
    assert diversity_loss([torch.cat([level1, same])]).item() == pytest.approx(((1 - 1.25 / 2) + 0.5) / 2)


def test_criterion_combines_weighted_losses_over_present_classes():
    torch.manual_seed(0)
    criterion = ECENetCriterion(ce_weight=1.0, mask_weight=5.0, dice_weight=2.0, div_weight=0.2)
    logits, aux = torch.randn(1, 3, 2, 2), torch.randn(1, 3, 2, 2)
    diverse = [torch.randn(1, 4, 2, 2)]
    labels = torch.tensor([[[0, 255], [2, 2]]])
    losses = criterion({"logits": logits, "aux_masks": aux, "diverse": diverse}, labels)

    pixels = logits[0].flatten(1).T[[0, 2, 3]]  # the labelled pixels
    assert losses["loss_ce"].item() == pytest.approx(F.cross_entropy(pixels, torch.tensor([0, 2, 2])).item())
    # classes 0 and 2 are present; the ignored pixel is a negative of both
    masks, targets = aux[0, [0, 2]].flatten(1), torch.tensor([[1.0, 0, 0, 0], [0, 0, 1, 1]])
    assert losses["loss_mask"].item() == pytest.approx(5 * focal_loss(masks, targets, 2).item())
    assert losses["loss_dice"].item() == pytest.approx(2 * dice_loss(masks, targets, 2).item())
    assert losses["loss_div"].item() == pytest.approx(0.2 * diversity_loss(diverse).item())


def test_criterion_resizes_predictions_to_the_labels_and_handles_unlabelled_batches():
    criterion = ECENetCriterion()
    outputs = {
        "logits": torch.randn(2, 3, 2, 2),
        "aux_masks": torch.randn(2, 3, 2, 2),
        "diverse": [torch.randn(2, 4, 2, 2)],
    }
    losses = criterion(outputs, torch.randint(0, 3, (2, 8, 8)))
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    losses = criterion(outputs, torch.full((2, 8, 8), 255))
    assert losses["loss_ce"].item() == losses["loss_mask"].item() == losses["loss_dice"].item() == 0
