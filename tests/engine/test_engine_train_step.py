"""The training iteration (sed/engine/train_step.py): one step accumulated over micro-batches equals one step on
the full batch (SED, with the recipe's full-model gradient clipping); non-finite steps are skipped, counted and
stop the run when too many come in a row; the Trainer wires SOLVER.ACCUMULATE_STEPS and
SOLVER.REFERENCE_WORLD_SIZE (detectron2's linear scaling rule)."""

import copy
import itertools
import logging

import pytest
import torch
from detectron2.data import DatasetCatalog
from detectron2.modeling import build_model
from detectron2.utils.env import seed_all_rng
from detectron2.utils.events import EventStorage
from engine_helpers import one_thread, quickstart_cfg, synthetic_root  # noqa: F401 (fixtures)
from torch import nn

from sed.data.build import build_train_mapper
from sed.engine import Trainer, build_optimizer
from sed.engine.train_step import NonFiniteTrainingError, StepTrainer, micro_batch_size


def _one_step(model, optimizer, batches, accumulate_steps):
    trainer = StepTrainer(model, itertools.cycle(batches), optimizer, accumulate_steps=accumulate_steps)
    with EventStorage(0) as storage:
        trainer.iter = 0
        trainer.run_step()
    return storage


@pytest.mark.parametrize("clip", [True, False])
def test_accumulated_step_equals_full_batch_step(synthetic_root, one_thread, clip):  # noqa: F811
    cfg = quickstart_cfg(
        "SOLVER.OPTIMIZER",
        "SGD",
        "SOLVER.BASE_LR",
        "1.0",
        "SOLVER.IMS_PER_BATCH",
        "4",
        "SOLVER.CLIP_GRADIENTS.ENABLED",
        str(clip),
    )
    assert cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE == "full_model"  # the recipe's clipping, when enabled
    seed_all_rng(0)
    mapper = build_train_mapper(cfg)
    images = [mapper(r) for r in DatasetCatalog.get("synthetic_train_sem_seg")[:4]]  # crops of one size
    full = build_model(cfg).train()
    accumulated = copy.deepcopy(full)
    storage = _one_step(full, build_optimizer(cfg, full), [images], accumulate_steps=1)
    _one_step(
        accumulated,
        build_optimizer(cfg, accumulated),
        [images[:1], images[1:2], images[2:3], images[3:]],
        accumulate_steps=4,
    )
    grads = [
        (n, p.grad, q.grad)
        for (n, p), q in zip(full.named_parameters(), accumulated.parameters())
        if p.grad is not None
    ]
    assert grads and all(torch.allclose(a, b, rtol=1e-4, atol=1e-8) for _, a, b in grads), max(
        grads, key=lambda g: (g[1] - g[2]).abs().max()
    )[0]
    # clipping at 0.01 acted on the accumulated gradient (without it, the norm is the loss's own)
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for _, g, _ in grads]))
    assert (norm == pytest.approx(0.01, rel=1e-3)) == clip
    for (name, p), q in zip(full.named_parameters(), accumulated.parameters()):
        assert torch.allclose(p, q, rtol=1e-4, atol=1e-6), name
    assert storage.history("skipped_steps").latest() == 0


class Toy(nn.Module):
    """A loss that is NaN when the batch says so."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(3))

    def forward(self, batch):
        return {"loss": (self.weight * batch[0]).sum()}


def test_non_finite_steps_are_skipped_counted_and_stop_the_run(caplog):
    model = Toy()
    nan, ok = [torch.tensor([float("nan"), 1.0, 1.0])], [torch.ones(3)]
    data = iter([nan, ok, nan, nan, nan, nan])
    trainer = StepTrainer(model, data, torch.optim.SGD(model.parameters(), lr=0.1), max_consecutive_nonfinite=2)
    with EventStorage(0) as storage, caplog.at_level(logging.WARNING, logger="sed.engine.train_step"):
        for trainer.iter in range(2):
            trainer.run_step()
        assert torch.equal(model.weight.detach(), torch.full((3,), 0.9))  # only the finite step was taken
        assert "Iteration 0: non-finite loss or gradient" in caplog.text and "1 in a row, 1 in all" in caplog.text
        trainer.iter = 2
        trainer.run_step()
        trainer.iter = 3
        trainer.run_step()
        trainer.iter = 4
        with pytest.raises(NonFiniteTrainingError, match="3 steps in a row .* SOLVER.MAX_CONSECUTIVE_NONFINITE"):
            trainer.run_step()
    assert storage.history("skipped_steps").latest() == 4
    assert torch.isfinite(model.weight).all()


def test_trainer_accumulates_and_scales_to_the_reference_world_size(tmp_path, synthetic_root, one_thread):  # noqa: F811
    cfg = quickstart_cfg(
        "SOLVER.ACCUMULATE_STEPS",
        "2",
        "SOLVER.REFERENCE_WORLD_SIZE",
        "2",
        "SOLVER.IMS_PER_BATCH",
        "8",
        "SOLVER.MAX_ITER",
        "1",
        "DATASETS.TEST",
        "()",
        "OUTPUT_DIR",
        str(tmp_path),
    )
    trainer = Trainer(cfg)
    # one process for a reference of 2: half the batch and the lr, twice the iterations (detectron2's rule)
    assert trainer.cfg.SOLVER.IMS_PER_BATCH == 4 and trainer.max_iter == 2
    assert trainer.cfg.SOLVER.BASE_LR == pytest.approx(cfg.SOLVER.BASE_LR / 2)
    assert isinstance(trainer._trainer, StepTrainer) and trainer._trainer.accumulate_steps == 2
    assert len(next(trainer._trainer._data_loader_iter)) == 2  # micro-batches of 4 / 2 images
    with pytest.raises(
        ValueError,
        match="IMS_PER_BATCH 6 does not split evenly over 2 processes x SOLVER.ACCUMULATE_STEPS 2: use a multiple of 4",
    ):
        micro_batch_size(quickstart_cfg("SOLVER.IMS_PER_BATCH", "6", "SOLVER.ACCUMULATE_STEPS", "2"), 2)
