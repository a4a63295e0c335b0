"""SED on CUDA against the authors' reference outputs (computed on the CPU): full and fast inference, without and
with TF32. Marked `gpu`: skipped without CUDA. Tolerances with TF32 are first estimates (no GPU has run these yet)."""

import pytest
import torch
from test_sed_parity import ATOL

pytestmark = pytest.mark.gpu


def run(parity, device, fast):
    model = parity.build(fast=fast, extra=["MODEL.DEVICE", device])
    with torch.no_grad():
        return model([parity.input()])[0]["sem_seg"].cpu()


@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
def test_inference_matches_the_reference_in_float32(parity, gpu_device, strict_fp32, fast):
    out = run(parity, gpu_device, fast)
    reference = parity["sem_seg_fast" if fast else "sem_seg"]
    if fast:  # the same classes rejected: rejection is a discrete choice, the first place a device could differ
        assert torch.equal(out.flatten(1).amax(1) == 0, reference.flatten(1).amax(1) == 0)
    torch.testing.assert_close(out, reference, atol=ATOL, rtol=0)


@pytest.mark.parametrize("fast", [False, True], ids=["full", "fast"])
def test_inference_with_tf32_stays_close(parity, gpu_device, fast):
    """TF32 products, as tools/train_net.py sets on GPUs (float32_matmul_precision "high"; cuDNN's TF32 default)."""
    saved = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.allow_tf32 = True
    try:
        out = run(parity, gpu_device, fast)
    finally:
        torch.set_float32_matmul_precision(saved[0])
        torch.backends.cudnn.allow_tf32 = saved[1]
    reference = parity["sem_seg_fast" if fast else "sem_seg"]
    torch.testing.assert_close(out, reference, atol=2e-2, rtol=0)
    agreement = (out.argmax(0) == reference.argmax(0)).float().mean().item()
    assert agreement >= 0.99, f"only {agreement:.4f} of the pixels keep their label"
