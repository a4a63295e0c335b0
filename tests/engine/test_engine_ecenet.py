"""ECENet through the shared engine: tools/train_net.py trains the tiny ECENet on the synthetic dataset and evaluates
it at the end, then evaluates the saved checkpoint with --eval-only, as `sh run.sh configs/ecenet/... N OUT` runs it
(then eval.sh, whose plan for every ECENet config is the config's own DATASETS.TEST). The command runs in-process
(`sed.engine.cli.run`: tools/train_net.py but the interpreter start), to keep the suite fast; the shell scripts
themselves are model-agnostic and run in tests/engine/test_engine_quickstart.py."""
import json

import pytest

from conftest import load_tool
from engine_helpers import REPO, make_synthetic, one_thread  # noqa: F401 (fixture)
from sed.engine.eval_suite import evaluation_plan
from sed.engine.cli import load_config, run

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
    [(name, opts)] = evaluation_plan(load_config(TINY))
    assert run(["--config-file", TINY, "--eval-only", "--skip-missing-datasets", *opts, "OUTPUT_DIR",
                str(out / "eval" / name), "MODEL.WEIGHTS", str(out / "model_final.pth")]) == 0
    evaluated = json.loads((out / "eval" / name / "results.json").read_text())[TEST_SET]["sem_seg"]
    assert 0 <= evaluated["mIoU"] <= 100
    # the same weights on the same images: the checkpoint was loaded, not a new initialisation
    assert evaluated["mIoU"] == pytest.approx(trained["mIoU"])


@pytest.mark.parametrize("config,test_set", [
    ("ecenet_swinB_ade20k_640.yaml", "ade20k_150_test_sem_seg"),
    ("ecenet_swinB_pc59_480.yaml", "context_59_test_sem_seg"),
    ("ecenet_swinB_cityscapes_512x1024.yaml", "cityscapes_fine_sem_seg_val"),
    ("ecenet_tiny_cpu.yaml", TEST_SET),
])
def test_eval_sh_plans_the_configs_own_test_set(config, test_set, capsys):
    path = str(REPO / "configs" / "ecenet" / config)
    assert evaluation_plan(load_config(path)) == [(test_set, ["DATASETS.TEST", f'("{test_set}",)'])]
    assert eval_plan.main(["--config-file", path]) == 0
    assert capsys.readouterr().out == f'{test_set} DATASETS.TEST ("{test_set}",)\n'
