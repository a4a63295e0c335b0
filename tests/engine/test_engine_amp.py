"""SOLVER.AMP.ENABLED on CPU trains under bfloat16 autocast (with a log line saying so),
SOLVER.CLIP_GRADIENT_CHECKPOINTING trains too, and the logged lr is the base lr (not the CLIP tower's)."""

import logging

import torch
from detectron2.utils.env import seed_all_rng
from engine_helpers import one_thread, quickstart_cfg, synthetic_root  # noqa: F401 (fixtures)

from sed.engine import Trainer
from sed.engine.train_step import StepTrainer


def test_amp_on_cpu_uses_bfloat16_autocast(tmp_path, synthetic_root, one_thread, caplog):  # noqa: F811
    cfg = quickstart_cfg(
        "SOLVER.AMP.ENABLED",
        "True",
        "SOLVER.CLIP_GRADIENT_CHECKPOINTING",
        "True",
        "SOLVER.MAX_ITER",
        "2",
        "DATASETS.TEST",
        "()",
        "OUTPUT_DIR",
        str(tmp_path),
        "SOLVER.CLIP_MULTIPLIER",
        "0.01",
    )
    seed_all_rng(0)
    with caplog.at_level(logging.INFO, logger="sed.engine.trainer"):
        trainer = Trainer(cfg)
    assert isinstance(trainer._trainer, StepTrainer) and trainer._trainer.amp_dtype == torch.bfloat16
    assert any("bfloat16 autocast" in r.getMessage() for r in caplog.records)
    assert trainer.model.sem_seg_head.predictor.gradient_checkpointing
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.resume_or_load(resume=False)
    trainer.train()
    after = trainer.model.state_dict()
    assert all(v.dtype == before[k].dtype for k, v in after.items()), "weights stay float32"
    assert any(not torch.equal(before[k], after[k]) for k in after)
    assert all(torch.isfinite(v).all() for v in after.values() if v.is_floating_point())
    assert trainer.storage.history("lr").values()[0][0] == cfg.SOLVER.BASE_LR
