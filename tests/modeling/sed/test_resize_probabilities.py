import torch
import torch.nn.functional as F

from sed.modeling.sed.sed_model import resize_probabilities


def test_rejected_classes_stay_zero_and_others_resize_as_before():
    prob = torch.rand(6, 12, 10)
    prob[[1, 4]] = 0  # rejected by category early rejection
    expected = F.interpolate(prob[None], size=(31, 17), mode="bilinear", align_corners=False)[0]
    assert torch.equal(resize_probabilities(prob, (31, 17)), expected)
    full = torch.rand(3, 5, 5)
    assert torch.equal(
        resize_probabilities(full, (9, 9)),
        F.interpolate(full[None], size=(9, 9), mode="bilinear", align_corners=False)[0],
    )
