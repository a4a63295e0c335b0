"""ECENet's optimizer through the engine: head lr x MODEL.ECENET.HEAD_LR_MULTIPLIER and backbone lr x
SOLVER.BACKBONE_MULTIPLIER (the model's `lr_multiplier`, the model protocol), no weight decay on norms and Swin's
relative-position tables, the recipe's AdamW with full-model clipping."""

import pytest
import torch
from conftest import load_cfg
from detectron2.modeling import build_model

from sed.engine.optimizer import build_lr_scheduler, build_optimizer, get_param_groups


@pytest.fixture(scope="module")
def tiny():
    cfg = load_cfg("ecenet/ecenet_tiny_cpu.yaml")
    return cfg, build_model(cfg)


def _norm_parameter_names(model):
    """Names of the parameters owned by a normalisation layer, found by class name (independent of the engine's
    own list of norm types): BatchNorm2d, LayerNorm (torch's and detectron2's channels-first one)."""
    return {
        f"{module_name}.{name}"
        for module_name, module in model.named_modules()
        if "Norm" in type(module).__name__
        for name, _ in module.named_parameters(recurse=False)
    }


def test_head_lr_is_ten_times_and_norms_and_tables_do_not_decay(tiny):
    cfg, model = tiny
    assert cfg.MODEL.ECENET.HEAD_LR_MULTIPLIER == 10.0 and cfg.SOLVER.BACKBONE_MULTIPLIER == 1.0
    groups = {g["name"]: g for g in get_param_groups(cfg, model)}
    assert set(groups) == {name for name, _ in model.named_parameters()}, "every parameter, once"
    norms = _norm_parameter_names(model)
    tables = {name for name in groups if name.endswith("relative_position_bias_table")}
    head = {name for name in groups if name.startswith("sem_seg_head.")}
    # each kind is present in the tiny model: Swin norms and tables, head batch norms and layer norms
    assert tables and norms - head and norms & head
    assert {"BatchNorm2d", "LayerNorm"} <= {type(m).__name__ for m in model.sem_seg_head.modules()}
    base = cfg.SOLVER.BASE_LR
    for name, group in groups.items():
        assert group["lr"] == pytest.approx(base * (10.0 if name in head else 1.0)), name
        no_decay = name in norms or name in tables
        assert group["weight_decay"] == (0.0 if no_decay else cfg.SOLVER.WEIGHT_DECAY), name


def test_backbone_lr_follows_the_backbone_multiplier():
    cfg = load_cfg("ecenet/ecenet_tiny_cpu.yaml", ["SOLVER.BACKBONE_MULTIPLIER", "0.5"])
    model = build_model(cfg)
    groups = {g["name"]: g["lr"] for g in get_param_groups(cfg, model)}
    base = cfg.SOLVER.BASE_LR
    backbone = [lr for name, lr in groups.items() if name.startswith("backbone.")]
    head = [lr for name, lr in groups.items() if name.startswith("sem_seg_head.")]
    assert backbone and head and len(backbone) + len(head) == len(groups)
    assert backbone == pytest.approx([0.5 * base] * len(backbone)) and head == pytest.approx([10 * base] * len(head))


def test_adamw_groups_keep_the_ratio_through_the_poly_schedule(tiny):
    cfg, model = tiny
    optimizer = build_optimizer(cfg, model)
    assert isinstance(optimizer, torch.optim.AdamW) and "FullModelGradientClipping" in type(optimizer).__name__
    base = cfg.SOLVER.BASE_LR
    settings = sorted((g["lr"], g["weight_decay"]) for g in optimizer.param_groups)
    assert [lr for lr, _ in settings] == pytest.approx([base, base, 10 * base, 10 * base])
    assert [wd for _, wd in settings] == [0.0, 0.01, 0.0, 0.01]
    scheduler = build_lr_scheduler(cfg, optimizer)
    for _ in range(cfg.SOLVER.WARMUP_ITERS + 5):  # through warm-up into the poly decay
        optimizer.step()
        scheduler.step()
    lrs = sorted({g["lr"] for g in optimizer.param_groups})
    assert len(lrs) == 2 and lrs[1] == pytest.approx(10 * lrs[0]) and lrs[1] < 10 * base
