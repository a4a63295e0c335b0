"""MODEL.ENC.FUSED_BLOCKS (default on): CPU inference of the CLIP ConvNeXt blocks with oneDNN's fused linear
layers gives timm's outputs to float32 rounding, and everything else (training, gradients, tracing, a PyTorch
without the op) runs timm's forward exactly."""

import pytest
import torch

from sed.modeling.sed import fused_convnext
from sed.modeling.sed.clip_encoder import STAGE_NAMES, build_clip_model, encode_image

pytestmark = pytest.mark.skipif(fused_convnext._LINEAR is None, reason="this PyTorch has no oneDNN fused linear")

# Fused against timm's forward, relative to the largest |value| of each output: measured up to 3e-7 on the tiny
# CLIP here and 1.5e-6 on SED-B at 768 px with layer scales up to 1 (tools/benchmark.py --encoder-profile).
FP32_TOLERANCE = 2e-6
# bf16 against fp32, relative to the largest |value|: measured 6e-3 on both forwards (bound with margin).
BF16_TOLERANCE = 3e-2


@pytest.fixture(scope="module")
def visual():
    """The tiny CLIP's image tower, layer scales drawn in [0, 1) as trained ones (init: 1e-6, which would hide the
    MLP branch behind the residual)."""
    torch.manual_seed(0)
    visual = build_clip_model("sed_tiny_convnext").visual
    with torch.no_grad():
        for name, p in visual.trunk.named_parameters():
            if name.endswith("gamma"):
                p.copy_(torch.rand(p.shape))
    return visual


@pytest.fixture
def images():
    g = torch.Generator().manual_seed(1)
    return torch.randn(2, 3, 96, 128, generator=g).contiguous(memory_format=torch.channels_last)


@pytest.fixture
def calls(monkeypatch):
    """Counts the fused linear layers run."""
    count = []
    original = fused_convnext._LINEAR
    monkeypatch.setattr(fused_convnext, "_LINEAR", lambda *a: count.append(1) or original(*a))
    return count


class _Fused(torch.nn.Module):
    def __init__(self, visual):
        super().__init__()
        self.visual = visual

    def forward(self, images):
        return tuple(_outputs(self.visual, images, True))


def _outputs(visual, images, fused):
    features, dense = encode_image(visual, images, fused_blocks=fused)
    return [dense] + [features[k] for k in STAGE_NAMES]


def _assert_close(outputs, reference, tolerance):
    for a, b in zip(outputs, reference):
        assert a.shape == b.shape
        assert (a.float() - b.float()).abs().max() <= tolerance * b.float().abs().max()


def test_fused_blocks_give_timm_outputs_to_float32_rounding(visual, images, calls):
    visual.eval()
    with torch.no_grad():
        reference = _outputs(visual, images, fused=False)
        assert not calls
        fused = _outputs(visual, images, fused=True)
    blocks = sum(len(stage.blocks) for stage in visual.trunk.stages)
    assert len(calls) == 2 * blocks  # fc1 and fc2 of every block ran fused
    assert [a.dtype for a in fused] == [torch.float32] * len(reference)
    _assert_close(fused, reference, FP32_TOLERANCE)
    assert fused[-1].is_contiguous(memory_format=torch.channels_last)


def test_fused_blocks_in_bf16_stay_as_close_to_fp32_as_timm(visual, images, calls):
    visual.eval()
    with torch.no_grad():
        reference = _outputs(visual, images, fused=False)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            timm_bf16 = _outputs(visual, images, fused=False)
            fused_bf16 = _outputs(visual, images, fused=True)
    assert calls
    assert [a.dtype for a in fused_bf16] == [a.dtype for a in timm_bf16]
    _assert_close(timm_bf16, reference, BF16_TOLERANCE)
    _assert_close(fused_bf16, reference, BF16_TOLERANCE)


def test_training_and_gradients_run_timm_forward_exactly(visual, images, calls):
    """Training mode, or gradients recorded in eval mode: the flag changes nothing, outputs nor gradients."""
    results = []
    for train in (True, False):
        visual.train(train)
        for fused in (False, True):
            visual.zero_grad()
            outputs = _outputs(visual, images, fused)
            sum(o.square().mean() for o in outputs).backward()
            results.append((outputs, [p.grad.clone() for p in visual.trunk.parameters()]))
    visual.eval()
    assert not calls
    for (a_out, a_grad), (b_out, b_grad) in (results[0:2], results[2:4]):
        assert all(torch.equal(a, b) for a, b in zip(a_out, b_out))
        assert all(torch.equal(a, b) for a, b in zip(a_grad, b_grad))


def test_without_the_op_or_with_fp16_autocast_or_tracing_timm_forward_runs(visual, images, monkeypatch, calls):
    visual.eval()
    with torch.no_grad():
        traced = torch.jit.trace(_Fused(visual), images, check_trace=False)  # as fvcore's FLOP count and exports
        assert all(torch.equal(a, b) for a, b in zip(traced(images), _outputs(visual, images, False)))
        with torch.autocast("cpu", dtype=torch.float16):
            assert all(
                torch.equal(a, b) for a, b in zip(_outputs(visual, images, True), _outputs(visual, images, False))
            )
        assert not calls
        monkeypatch.setattr(fused_convnext, "_LINEAR", None)
        assert all(torch.equal(a, b) for a, b in zip(_outputs(visual, images, True), _outputs(visual, images, False)))


def test_config_key_reaches_the_model_and_probabilities_stay_within_1e6(parity, monkeypatch):
    """On by default; the parity model's probabilities then differ from timm's forward (the key off) by float32
    rounding only (measured 1.2e-7). (The decoder's own ConvNeXt blocks use the fused linear layers either way.)"""
    blocks = []
    original = fused_convnext.fused_block
    monkeypatch.setattr(fused_convnext, "fused_block", lambda *a: blocks.append(1) or original(*a))
    fused = parity.build()
    assert fused.sem_seg_head.predictor.fused_blocks is True
    model = parity.build(extra=["MODEL.ENC.FUSED_BLOCKS", "False"])
    assert model.sem_seg_head.predictor.fused_blocks is False
    with torch.no_grad():
        reference = model([parity.input()])[0]["sem_seg"]
        assert not blocks
        probabilities = fused([parity.input()])[0]["sem_seg"]
    assert blocks
    assert 0 < (probabilities - reference).abs().max() <= 1e-6
