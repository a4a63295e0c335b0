"""Label maps on CUDA: exactly argmax(resize(scores)) on the device, the CPU's labels but where CUDA's fused
multiply-adds round a near-tie the other way, and SED's label outputs equal the argmax of its probabilities.
Marked `gpu`: skipped without CUDA."""

import pytest
import torch
from test_postprocess import _reference, _smooth

from sed.modeling.postprocess import LABELS_KEY, label_outputs, resized_labels

pytestmark = pytest.mark.gpu


@pytest.mark.parametrize("size", [(37, 53), (101, 17), (640, 853)])
@pytest.mark.parametrize("num_classes", [7, 150])
def test_equals_argmax_of_resized_scores_on_the_device(gpu_device, size, num_classes):
    for scores in [
        torch.rand(num_classes, 24, 19, generator=torch.Generator().manual_seed(0)),
        _smooth(num_classes, 24, 19, 1),
    ]:
        on_device = scores.to(gpu_device)
        labels = resized_labels(on_device, size)
        assert torch.equal(labels.cpu(), _reference(on_device, size).cpu())
        agreement = (labels.cpu() == _reference(scores, size)).float().mean().item()
        assert agreement >= 0.999, f"CUDA and CPU labels agree on only {agreement:.5f} of the pixels"


@pytest.mark.parametrize("fast", [False, True])
def test_sed_label_outputs_equal_the_argmax_of_its_probabilities(parity, gpu_device, fast):
    model = parity.build(fast=fast, extra=["TEST.TOPK", "2", "MODEL.DEVICE", gpu_device])
    inputs = [
        parity.input(),
        {
            "image": torch.randint(0, 256, (3, 61, 97), generator=torch.Generator().manual_seed(0)).float(),
            "height": 45,
            "width": 133,
        },
    ]
    with torch.no_grad():
        scores = model(inputs)
        with label_outputs(model):
            labels = model(inputs)
    for s, label in zip(scores, labels):
        assert torch.equal(label[LABELS_KEY].cpu(), s["sem_seg"].argmax(0).cpu())
