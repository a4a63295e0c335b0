"""Optimizer of the recipe: parameter groups, lr multipliers, weight decay exceptions, full-model clipping,
schedules. Model-agnostic: a toy model stands in for SED where the rule is generic."""

import pytest
import torch
from conftest import load_cfg
from engine_helpers import quickstart_cfg
from torch import nn

from sed.engine.optimizer import build_lr_scheduler, build_optimizer, get_param_groups
from sed.modeling.protocol import SegmentationModel


@pytest.fixture(scope="module")
def tiny_sed():
    from detectron2.modeling import build_model

    cfg = quickstart_cfg("SOLVER.CLIP_MULTIPLIER", "0.01")
    return cfg, build_model(cfg)


class Toy(SegmentationModel, nn.Module):
    """Module names as in SED (clip_model, text tower frozen) and a detectron2-style backbone; the lr multipliers
    are the model's (the model protocol), the engine names no module."""

    def __init__(self, with_hook=False):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.clip_model = nn.ModuleDict(
            {"visual": nn.Linear(4, 4), "text": nn.Linear(4, 4), "token_embedding": nn.Embedding(10, 4)}
        )
        for p in self.clip_model["text"].parameters():
            p.requires_grad = False
        self.head = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4), nn.GroupNorm(2, 4))
        self.gamma = nn.Parameter(torch.ones(4))
        self.relative_position_bias_table = nn.Parameter(torch.zeros(3))
        self.with_hook = with_hook

    def lr_multiplier(self, name):
        return 10.0 if self.with_hook and name.startswith("head.") else 1.0


class Plain(nn.Module):
    """A model without the protocol: every parameter at the base lr, whatever its module is called."""

    def __init__(self):
        super().__init__()
        self.backbone, self.clip_model = nn.Linear(2, 2), nn.Linear(2, 2)


def _cfg(*opts):
    return load_cfg("convnextB_768.yaml", ["SOLVER.BACKBONE_MULTIPLIER", "0.5", *opts])


def _by_name(groups):
    return {g["name"]: g for g in groups}


def test_param_groups_follow_the_authors_rules():
    cfg = _cfg("SOLVER.WEIGHT_DECAY_EMBED", "0.0", "SOLVER.WEIGHT_DECAY_NORM", "0.0")
    groups = _by_name(get_param_groups(cfg, Toy()))
    lr, wd = cfg.SOLVER.BASE_LR, cfg.SOLVER.WEIGHT_DECAY
    assert not any(n.startswith("clip_model.text") for n in groups), "frozen parameters are left out"
    assert groups["clip_model.token_embedding.weight"]["weight_decay"] == 0.0  # WEIGHT_DECAY_EMBED
    assert groups["backbone.1.weight"]["weight_decay"] == 0.0  # a norm
    assert groups["head.1.weight"]["weight_decay"] == 0.0 and groups["head.2.bias"]["weight_decay"] == 0.0
    assert groups["head.0.weight"] == {**groups["head.0.weight"], "lr": lr, "weight_decay": wd}
    assert groups["head.0.bias"]["weight_decay"] == wd  # biases decay, as in the authors' code
    assert groups["gamma"]["weight_decay"] == wd  # so do layer scales
    assert groups["relative_position_bias_table"]["weight_decay"] == 0.0


def test_model_hook_scales_lr():
    groups = _by_name(get_param_groups(_cfg(), Toy(with_hook=True)))
    assert groups["head.0.weight"]["lr"] == pytest.approx(10 * groups["gamma"]["lr"])
    assert groups["clip_model.visual.weight"]["lr"] == groups["backbone.0.weight"]["lr"] == groups["gamma"]["lr"]
    plain = get_param_groups(_cfg(), Plain())
    assert {g["lr"] for g in plain} == {_cfg().SOLVER.BASE_LR}


def test_sed_clip_image_tower_gets_the_clip_multiplier(tiny_sed):
    cfg, model = tiny_sed
    groups = _by_name(get_param_groups(cfg, model))
    visual = [g for n, g in groups.items() if ".clip_model.visual." in n]
    decoder = [g for n, g in groups.items() if ".transformer." in n]
    assert visual and decoder
    assert all(g["lr"] == pytest.approx(cfg.SOLVER.BASE_LR * cfg.SOLVER.CLIP_MULTIPLIER) for g in visual)
    assert all(g["lr"] == pytest.approx(cfg.SOLVER.BASE_LR) for g in decoder)
    trained = {id(p) for g in groups.values() for p in g["params"]}
    text = [p for n, p in model.named_parameters() if ".clip_model." in n and ".visual." not in n]
    assert text and not any(id(p) in trained for p in text), "the CLIP text tower is not optimised"


def test_full_model_gradient_clipping_clips_the_global_norm():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 8), nn.Linear(8, 8))
    cfg = _cfg(
        "SOLVER.BASE_LR",
        "0.1",
        "SOLVER.WEIGHT_DECAY",
        "0.0",
        "SOLVER.OPTIMIZER",
        "SGD",
        "SOLVER.MOMENTUM",
        "0.0",
        "SOLVER.CLIP_GRADIENTS.CLIP_VALUE",
        "0.01",
    )
    optimizer = build_optimizer(cfg, model)
    assert "FullModelGradientClipping" in type(optimizer).__name__
    before = [p.detach().clone() for p in model.parameters()]
    model(torch.randn(4, 8)).pow(2).sum().mul(100).backward()
    optimizer.step()
    grads = torch.cat([p.grad.flatten() for p in model.parameters()])
    assert grads.norm() == pytest.approx(0.01, rel=1e-4)  # one norm over all parameters together
    step = torch.cat([(b - p.detach()).flatten() for b, p in zip(before, model.parameters())])
    assert step.norm() == pytest.approx(0.1 * 0.01, rel=1e-4)


def test_adamw_and_unknown_optimizer():
    model = nn.Linear(2, 2)
    assert isinstance(build_optimizer(_cfg(), model), torch.optim.AdamW)
    with pytest.raises(ValueError, match="ADAMW"):
        build_optimizer(_cfg("SOLVER.OPTIMIZER", "LION"), model)


def test_cosine_schedule_without_warmup_and_poly():
    model = nn.Linear(2, 2)
    cfg = _cfg("SOLVER.MAX_ITER", "10")
    optimizer = build_optimizer(cfg, model)
    scheduler = build_lr_scheduler(cfg, optimizer)
    lrs = []
    for _ in range(10):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(cfg.SOLVER.BASE_LR)  # WARMUP_ITERS 0: full lr at once
    assert all(a > b for a, b in zip(lrs, lrs[1:])) and lrs[-1] < 0.05 * lrs[0]
    cfg = _cfg("SOLVER.MAX_ITER", "10", "SOLVER.LR_SCHEDULER_NAME", "WarmupPolyLR")
    optimizer = build_optimizer(cfg, model)
    scheduler = build_lr_scheduler(cfg, optimizer)
    for _ in range(5):
        optimizer.step()
        scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(cfg.SOLVER.BASE_LR * 0.5**0.9, rel=1e-3)
