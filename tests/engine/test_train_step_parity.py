"""One training step against the authors' code (tests/fixtures/sed_train_step_tiny.pt): losses, every gradient,
which parameters are frozen, the optimizer's parameter groups, and the parameters after one full-model-clipped
AdamW step, through the public contract (configs + build_model + DetectionCheckpointer + Trainer.build_optimizer).
Tolerances are the fixture's (its README): losses 1e-4, gradients 3e-4 absolute, parameters after the step 1e-6.
"""
import pytest
import torch

from conftest import FIXTURES, load_cfg


def training_step(parity, device="cpu"):
    """One training step of the fixture's model on `device`: (reference, {name: parameter}, losses,
    {name: gradient before the step}, {name: (lr, weight decay)})."""
    from sed.engine import Trainer

    reference = torch.load(FIXTURES / "sed_train_step_tiny.pt", weights_only=True)
    assert reference["source_fixture"] == "sed_parity_tiny.pt"
    torch.manual_seed(0)
    model = parity.build(extra=["MODEL.DEVICE", device]).train()
    losses = model([{"image": reference["train_image"].clone(), "sem_seg": reference["train_target"].long(),
                     "height": 768, "width": 768}])
    optimizer = Trainer.build_optimizer(load_cfg("convnextB_768.yaml", parity.opts()), model)
    optimizer.zero_grad()
    sum(losses.values()).backward()
    params = dict(model.named_parameters())
    grads = {n: p.grad.clone() for n, p in params.items() if p.grad is not None}
    names = {id(p): n for n, p in params.items()}
    groups = {names[id(p)]: (g["lr"], g["weight_decay"]) for g in optimizer.param_groups for p in g["params"]}
    optimizer.step()
    return reference, params, {k: v.item() for k, v in losses.items()}, grads, groups


@pytest.fixture(scope="module")
def one_step(parity):
    return training_step(parity)


def test_losses_match(one_step):
    reference, _, losses, _, _ = one_step
    assert sorted(losses) == sorted(reference["losses"])
    for name, value in reference["losses"].items():
        assert losses[name] == pytest.approx(value, abs=1e-4), name


def test_gradients_match_and_the_frozen_parameters_get_none(one_step):
    """The guidance features are detached (the CLIP image tower learns through the cost map only) and the text
    tower is frozen: exactly the reference's parameters get gradients, and the same ones."""
    reference, params, _, grads, _ = one_step
    assert sorted(grads) == sorted(reference["grads"])
    assert not set(grads) & set(reference["no_grad_params"])
    worst = max(reference["grads"], key=lambda n: (grads[n] - reference["grads"][n]).abs().max().item())
    assert (grads[worst] - reference["grads"][worst]).abs().max().item() <= 3e-4, worst
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads.values()]))
    assert total.item() == pytest.approx(reference["grad_norm"], rel=1e-4)


def test_parameter_groups_match(one_step):
    """Every trained parameter's lr and weight decay, including the decayed LayerNorm of the decoder's blocks."""
    reference, _, _, _, groups = one_step
    assert sorted(groups) == sorted(reference["param_groups"])
    for name, (lr, weight_decay) in reference["param_groups"].items():
        assert groups[name] == pytest.approx((lr, weight_decay), abs=1e-12), name


def test_parameters_after_one_clipped_adamw_step_match(one_step):
    reference, params, _, _, _ = one_step
    for name, value in reference["params_after_step"].items():
        assert (params[name].detach() - value).abs().max().item() <= 1e-6, name
