"""One training step against the authors' code (tests/fixtures/sed_train_step_tiny.pt): losses, every gradient,
which parameters are frozen, the optimizer's parameter groups, and the parameters after one full-model-clipped
AdamW step, through the public contract (configs + build_model + DetectionCheckpointer + Trainer.build_optimizer).
Tolerances: losses 1e-4; each gradient tensor within 2e-3 of its own largest reference value plus 1e-6 of the
largest reference gradient of all (the CLIP image tower's gradients are all below 1.2e-4, so one absolute tolerance
for every tensor would not see them); parameters after the step 1e-6.
"""

import pytest
import torch
from conftest import FIXTURES, load_cfg

IMAGE_TOWER = "sem_seg_head.predictor.clip_model.visual."


def gradient_mismatches(grads, reference):
    """Names of the gradients that differ from the reference by more than 2e-3 of the tensor's own largest
    reference value plus 1e-6 of the largest reference gradient of all. grads, reference: {name: tensor}."""
    largest = max(g.abs().max().item() for g in reference.values())
    return [
        name
        for name, ref in reference.items()
        if (grads[name] - ref).abs().max().item() > 2e-3 * ref.abs().max().item() + 1e-6 * largest
    ]


def training_step(parity, device="cpu"):
    """One training step of the fixture's model on `device`: (reference, {name: parameter}, losses,
    {name: gradient before the step}, {name: (lr, weight decay)})."""
    from sed.engine import Trainer

    reference = torch.load(FIXTURES / "sed_train_step_tiny.pt", weights_only=True)
    assert reference["source_fixture"] == "sed_parity_tiny.pt"
    torch.manual_seed(0)
    model = parity.build(extra=["MODEL.DEVICE", device]).train()
    losses = model(
        [
            {
                "image": reference["train_image"].clone(),
                "sem_seg": reference["train_target"].long(),
                "height": 768,
                "width": 768,
            }
        ]
    )
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
    assert gradient_mismatches(grads, reference["grads"]) == []
    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads.values()]))
    assert total.item() == pytest.approx(reference["grad_norm"], rel=1e-4)


@pytest.mark.parametrize("change", [lambda g: torch.zeros_like(g), lambda g: 2 * g], ids=["zeroed", "doubled"])
def test_gradient_check_sees_a_wrong_image_tower_gradient(one_step, change):
    """The comparison above fails when the CLIP image tower's gradient (all of it below 1.2e-4) is zeroed or
    doubled. It names image-tower tensors only, and every one whose reference gradient reaches 2e-6 of the
    largest of all (89 of the 100; 6 lie below the 1e-6 floor)."""
    reference, _, _, grads, _ = one_step
    tower = {n for n in grads if n.startswith(IMAGE_TOWER)}
    assert len(tower) == 100
    largest = max(g.abs().max().item() for g in reference["grads"].values())
    above_floor = {n for n in tower if reference["grads"][n].abs().max().item() > 2e-6 * largest}
    assert len(above_floor) == 89
    wrong = {n: change(g) if n in tower else g for n, g in grads.items()}
    assert above_floor <= set(gradient_mismatches(wrong, reference["grads"])) <= tower


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
