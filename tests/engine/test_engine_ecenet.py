"""ECENet through the shared engine: tools/train_net.py trains the tiny ECENet on the synthetic dataset and evaluates
it at the end, then evaluates the saved checkpoint with --eval-only, as `sh run.sh configs/ecenet/... N OUT` runs it
(then eval.sh, whose plan for every ECENet config is the config's own DATASETS.TEST). The command runs in-process
(`sed.engine.cli.run`: tools/train_net.py but the interpreter start), to keep the suite fast; the shell scripts
themselves are model-agnostic and run in tests/engine/test_engine_quickstart.py."""

import json

import pytest
import torch
from conftest import load_tool, miou_by_hand
from detectron2.modeling import build_model
from engine_helpers import REPO, make_synthetic, one_thread  # noqa: F401 (fixture)

from sed.engine import Trainer
from sed.engine.cli import load_config, run
from sed.engine.eval_suite import config_words, evaluation_plan

TINY = str(REPO / "configs" / "ecenet" / "ecenet_tiny_cpu.yaml")
TEST_SET = "synthetic_test_sem_seg"

eval_plan = load_tool("eval_plan")  # what eval.sh runs


def test_train_then_evaluate_the_checkpoint(tmp_path, monkeypatch, one_thread):  # noqa: F811
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path / "datasets"))
    make_synthetic(tmp_path / "datasets")
    out = tmp_path / "out"
    assert run(["--config-file", TINY, "OUTPUT_DIR", str(out), "SOLVER.MAX_ITER", "4", "SOLVER.WARMUP_ITERS", "2"]) == 0
    assert (out / "model_final.pth").is_file()
    trained = json.loads((out / "results.json").read_text())[TEST_SET]["sem_seg"]
    # what eval.sh runs for this config: its plan's overrides, the checkpoint, a folder per evaluation
    [(name, settings)] = evaluation_plan(load_config(TINY))
    evaluated_models = []
    test = Trainer.test.__func__

    def recording_test(cls, cfg, model, *args, **kwargs):
        evaluated_models.append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return test(cls, cfg, model, *args, **kwargs)

    monkeypatch.setattr(Trainer, "test", classmethod(recording_test))
    assert (
        run(
            [
                "--config-file",
                TINY,
                "--eval-only",
                "--skip-missing-datasets",
                *config_words(settings),
                "OUTPUT_DIR",
                str(out / "eval" / name),
                "MODEL.WEIGHTS",
                str(out / "model_final.pth"),
            ]
        )
        == 0
    )
    evaluated = json.loads((out / "eval" / name / "results.json").read_text())[TEST_SET]["sem_seg"]
    # --eval-only evaluated the checkpoint's weights, every tensor of them
    saved = torch.load(out / "model_final.pth", weights_only=False)["model"]
    [weights] = evaluated_models
    assert weights.keys() == saved.keys() and all(torch.equal(weights[k], saved[k]) for k in saved)
    # both evaluations score those weights' predictions, as recomputed here from the label files
    cfg = load_config(TINY, ["MODEL.DEVICE", "cpu"])
    model = build_model(cfg)
    model.load_state_dict(saved)
    expected = miou_by_hand(model, cfg, TEST_SET)
    assert evaluated["mIoU"] == pytest.approx(expected, abs=1e-9)
    assert trained["mIoU"] == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    "config,test_set",
    [
        ("ecenet_swinB_ade20k_640.yaml", "ade20k_150_test_sem_seg"),
        ("ecenet_swinB_pc59_480.yaml", "context_59_test_sem_seg"),
        ("ecenet_swinB_cityscapes_512x1024.yaml", "cityscapes_fine_sem_seg_val"),
        ("ecenet_tiny_cpu.yaml", TEST_SET),
    ],
)
def test_eval_sh_plans_the_configs_own_test_set(config, test_set, capsys):
    path = str(REPO / "configs" / "ecenet" / config)
    assert evaluation_plan(load_config(path)) == [(test_set, {"DATASETS.TEST": (test_set,)})]
    assert eval_plan.main(["--config-file", path]) == 0
    assert capsys.readouterr().out == f"{test_set} DATASETS.TEST '(\"{test_set}\",)'\n"  # quoted for a shell
