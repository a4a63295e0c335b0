"""One training step on CUDA: against the authors' step (tests/fixtures/sed_train_step_tiny.pt, computed on the CPU)
in float32, and float16 (GradScaler) and bfloat16 autocast steps through the trainer's StepTrainer against the
float32 step. Marked `gpu`: skipped without CUDA. AMP tolerances are first estimates (no GPU has run these yet)."""

import itertools

import pytest
import torch
from conftest import FIXTURES, load_cfg
from detectron2.utils.events import EventStorage
from test_train_step_parity import gradient_mismatches, training_step

pytestmark = pytest.mark.gpu


def test_float32_step_matches_the_reference(parity, gpu_device, strict_fp32):
    reference, params, losses, grads, _ = training_step(parity, gpu_device)
    for name, value in reference["losses"].items():
        assert losses[name] == pytest.approx(value, abs=1e-4), name
    assert sorted(grads) == sorted(reference["grads"])
    assert gradient_mismatches({n: g.cpu() for n, g in grads.items()}, reference["grads"]) == []
    for name, value in reference["params_after_step"].items():
        assert (params[name].detach().cpu() - value).abs().max().item() <= 1e-6, name


def trainer_step(parity, device, amp_dtype):
    """One optimizer step of StepTrainer (as training runs it) from the fixture's weights: (losses, flat gradient
    after unscaling and clipping, parameters, skipped steps before it). A float16 step that overflows is skipped
    by the GradScaler, which lowers its scale; the next try is the step compared."""
    from sed.engine import Trainer
    from sed.engine.train_step import StepTrainer

    reference = torch.load(FIXTURES / "sed_train_step_tiny.pt", weights_only=False)
    torch.manual_seed(0)
    model = parity.build(extra=["MODEL.DEVICE", device]).train()
    optimizer = Trainer.build_optimizer(load_cfg("convnextB_768.yaml", parity.opts()), model)
    batch = [
        {
            "image": reference["train_image"].clone(),
            "sem_seg": reference["train_target"].long(),
            "height": 768,
            "width": 768,
        }
    ]
    trainer = StepTrainer(
        model, itertools.repeat(batch), optimizer, amp_dtype=amp_dtype, device_type=torch.device(device).type
    )
    with EventStorage(0) as storage:
        for trainer.iter in range(5):
            skipped = trainer.skipped_steps
            trainer.run_step()
            if trainer.skipped_steps == skipped:
                break
        losses = {k: v[0] for k, v in storage.latest().items() if k.startswith("loss")}
    grads = torch.cat([p.grad.detach().float().flatten().cpu() for p in model.parameters() if p.grad is not None])
    return losses, grads, {n: p.detach().cpu() for n, p in model.named_parameters()}, trainer.skipped_steps


@pytest.mark.parametrize(
    "dtype,loss_rtol,min_cosine", [(torch.float16, 1e-2, 0.99), (torch.bfloat16, 5e-2, 0.98)], ids=["fp16", "bf16"]
)
def test_mixed_precision_step_is_finite_and_close_to_float32(
    parity, gpu_device, strict_fp32, dtype, loss_rtol, min_cosine
):
    fp32_losses, fp32_grads, _, _ = trainer_step(parity, gpu_device, None)
    losses, grads, params, skipped = trainer_step(parity, gpu_device, dtype)
    assert skipped < 5, "every float16 step overflowed"
    assert all(torch.isfinite(p).all() for p in params.values())
    assert sorted(losses) == sorted(fp32_losses)
    for name, value in fp32_losses.items():
        assert losses[name] == pytest.approx(value, rel=loss_rtol), name
    cosine = torch.nn.functional.cosine_similarity(grads.double(), fp32_grads.double(), dim=0).item()
    assert cosine >= min_cosine
