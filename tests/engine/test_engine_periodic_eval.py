"""Training's periodic evaluation uses eval.sh's settings for the same dataset: on the quickstart, the last
periodic number equals eval.sh's evaluation (the plan's overrides through tools/train_net.py) of model_final.pth;
for SED on a benchmark the settings are the benchmark's."""

import json

import pytest
from engine_helpers import FAST_OPTS, REPO, one_thread, quickstart_cfg, synthetic_root  # noqa: F401 (fixtures)

from sed.engine import Trainer
from sed.engine.cli import load_config, run
from sed.engine.eval_suite import config_words, evaluation_config, evaluation_plan


def test_last_periodic_evaluation_equals_eval_sh(tmp_path, synthetic_root, one_thread):  # noqa: F811
    out = tmp_path / "train"
    cfg = quickstart_cfg(
        "SOLVER.MAX_ITER", "2", "TEST.EVAL_PERIOD", "1", "OUTPUT_DIR", str(out), "SOLVER.CHECKPOINT_PERIOD", "100"
    )
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    periodic = trainer._last_eval_results  # the evaluation at the last iteration
    assert set(periodic) == {"sem_seg"}
    [(name, settings)] = evaluation_plan(cfg)
    eval_dir = tmp_path / "eval" / name
    argv = [
        "--config-file",
        str(REPO / "configs" / "quickstart.yaml"),
        "--eval-only",
        "--skip-missing-datasets",
        *config_words(settings),
        "OUTPUT_DIR",
        str(eval_dir),
        *FAST_OPTS,
        "MODEL.WEIGHTS",
        str(out / "model_final.pth"),
    ]
    assert run(argv) == 0
    final = json.loads((eval_dir / "results.json").read_text())["synthetic_test_sem_seg"]["sem_seg"]
    for key in ("mIoU", "fwIoU", "pACC"):
        assert periodic["sem_seg"][key] == pytest.approx(final[key], abs=1e-9), key


def test_sed_on_a_benchmark_is_evaluated_with_the_benchmarks_settings():
    cfg = load_config(str(REPO / "configs" / "tiny_cpu.yaml"), ["DATASETS.TEST", '("ade20k_150_test_sem_seg",)'])
    eval_cfg = evaluation_config(cfg, "ade20k_150_test_sem_seg")
    assert list(eval_cfg.MODEL.SEM_SEG_HEAD.POOLING_SIZES) == [1, 1] != list(cfg.MODEL.SEM_SEG_HEAD.POOLING_SIZES)
    assert eval_cfg.MODEL.SEM_SEG_HEAD.TEST_CLASS_JSON == "datasets/ade150.json"
    own = evaluation_config(cfg, "coco_2017_test_stuff_all_sem_seg")  # not a benchmark: the config's settings
    assert own.MODEL.SEM_SEG_HEAD.POOLING_SIZES == cfg.MODEL.SEM_SEG_HEAD.POOLING_SIZES
    assert own.MODEL.SEM_SEG_HEAD.TEST_CLASS_JSON == "" and list(own.DATASETS.TEST) == [
        "coco_2017_test_stuff_all_sem_seg"
    ]
