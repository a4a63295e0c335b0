"""Label maps without the resized scores: exactly argmax(resize(scores)), ties included."""

import pytest
import torch
import torch.nn.functional as F

from sed.modeling import postprocess
from sed.modeling.postprocess import LABELS_KEY, label_outputs, resized_labels
from sed.modeling.protocol import SegmentationModel


def _reference(scores, size):
    return F.interpolate(scores[None], size=size, mode="bilinear", align_corners=False)[0].argmax(0)


def _smooth(num_classes, h, w, seed):
    """Scores that vary smoothly (as a decoder's do), so that many cells have a single possible winner."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(1, num_classes, h // 4 + 2, w // 4 + 2, generator=g)
    return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0].sigmoid()


@pytest.mark.parametrize("size", [(37, 53), (64, 48), (5, 3), (1, 1), (101, 17), (72, 57), (120, 95)])
@pytest.mark.parametrize("num_classes", [1, 7, 60])
def test_equals_argmax_of_resized_scores_at_odd_sizes(size, num_classes):
    for seed, scores in enumerate([torch.rand(num_classes, 24, 19), _smooth(num_classes, 24, 19, 1)]):
        assert torch.equal(resized_labels(scores, size), _reference(scores, size)), (size, num_classes, seed)


def test_ties_go_to_the_lowest_class_like_argmax():
    g = torch.Generator().manual_seed(0)
    scores = (torch.rand(12, 9, 11, generator=g) * 4).round() / 4  # few distinct values: ties everywhere
    scores[7] = scores[2]  # identical classes tie at every pixel
    scores[:, 4:6, 3:8] = 0.5  # a region where every class ties
    for size in [(9, 11), (23, 31), (4, 6)]:
        labels = resized_labels(scores, size)
        assert torch.equal(labels, _reference(scores, size))
        assert not (labels == 7).any()


def test_fast_inference_maps_with_rejected_classes():
    """Rejected classes are exactly 0; kept ones are probabilities (here some pixels are 0 in every class)."""
    scores = torch.zeros(300, 20, 26)
    kept = torch.tensor([3, 17, 150, 299])
    scores[kept] = _smooth(4, 20, 26, 2)
    scores[:, :3, :4] = 0  # every class ties at 0: class 0 wins, as in argmax
    for size in [(61, 79), (13, 17)]:
        assert torch.equal(resized_labels(scores, size), _reference(scores, size))


def test_non_finite_scores_follow_argmax():
    scores = torch.rand(5, 6, 7)
    scores[3, 2, 2] = float("nan")
    scores[1, 4, 4] = float("inf")
    assert torch.equal(resized_labels(scores, (13, 9)), _reference(scores, (13, 9)))


def test_double_precision_scores_at_an_odd_integer_factor():
    scores = _smooth(20, 16, 16, 4).double()  # 3x: source coordinates fall on integers
    assert torch.equal(resized_labels(scores, (48, 48)), _reference(scores, (48, 48)))


def test_half_precision_scores():
    scores = _smooth(20, 16, 16, 3).to(torch.bfloat16)
    assert torch.equal(resized_labels(scores, (50, 41)), _reference(scores, (50, 41)))


def test_never_resizes_more_than_a_chunk_of_classes(monkeypatch):
    monkeypatch.setattr(postprocess, "EXACT_CHUNK_ELEMENTS", 8 * 40 * 40)
    scores = torch.rand(100, 12, 12)
    expected = _reference(scores, (40, 40))
    resized = []
    interpolate = F.interpolate

    def recording(x, *args, **kwargs):
        resized.append(x.shape[1])
        return interpolate(x, *args, **kwargs)

    monkeypatch.setattr(postprocess.F, "interpolate", recording)
    assert torch.equal(resized_labels(scores, (40, 40)), expected)
    assert resized and max(resized) <= postprocess.exact_chunk_classes((40, 40)) < 100


def test_no_classes_is_an_error():
    with pytest.raises(ValueError, match="no classes"):
        resized_labels(torch.zeros(0, 4, 4), (8, 8))


def test_label_outputs_switches_only_models_that_can():
    class Model(SegmentationModel, torch.nn.Module):
        supports_label_maps = True
        labels_only = False

    model, other = Model(), torch.nn.Linear(1, 1)
    with label_outputs(model), label_outputs(other):
        assert model.labels_only and not hasattr(other, "labels_only")
    assert not model.labels_only
    with label_outputs(model, enabled=False):
        assert not model.labels_only


@pytest.mark.parametrize("fast", [False, True])
def test_sed_label_outputs_equal_the_argmax_of_its_probabilities(parity, fast):
    model = parity.build(fast=fast, extra=["TEST.TOPK", "2"])
    g = torch.Generator().manual_seed(0)
    inputs = [
        parity.input(),
        {"image": torch.randint(0, 256, (3, 61, 97), generator=g).float(), "height": 45, "width": 133},
    ]
    with torch.no_grad():
        scores = model(inputs)
        with label_outputs(model):
            labels = model(inputs)
    for s, label in zip(scores, labels):
        assert "sem_seg" not in label and label["num_classes"] == s["sem_seg"].shape[0]
        assert torch.equal(label[LABELS_KEY], s["sem_seg"].argmax(0))
