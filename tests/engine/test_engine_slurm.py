"""tools/slurm_train.py without a cluster: submitit's local executor runs the job's 2 tasks as CPU processes,
and the trained model equals that of `tools/train_net.py --num-gpus 2 MODEL.DEVICE cpu` on the same settings."""

import pytest
import torch
from engine_helpers import FAST_OPTS, REPO, synthetic_root  # noqa: F401 (fixture)

from sed.engine.cli import run as train_net
from sed.engine.slurm import main as slurm_train

pytestmark = pytest.mark.slow  # end to end: `python -m pytest -q -m slow`

pytest.importorskip("submitit", reason="cluster training needs the slurm extra: pip install -e .[slurm]")

CONFIG = str(REPO / "configs" / "quickstart.yaml")
OPTS = [
    *FAST_OPTS,
    "MODEL.DEVICE",
    "cpu",
    "SOLVER.MAX_ITER",
    "3",
    "SOLVER.CHECKPOINT_PERIOD",
    "2",
    "DATASETS.TEST",
    "()",
]


def test_local_submitit_job_trains_as_train_net_does(tmp_path, synthetic_root):  # noqa: F811
    assert (
        train_net(
            [
                "--config-file",
                CONFIG,
                "--num-gpus",
                "2",
                "--dist-url",
                "auto",
                "--resume",
                "OUTPUT_DIR",
                str(tmp_path / "train_net"),
                *OPTS,
            ]
        )
        == 0
    )
    assert (
        slurm_train(
            [
                "--cluster",
                "local",
                "--wait",
                "--job-dir",
                str(tmp_path / "jobs"),
                CONFIG,
                "2",
                str(tmp_path / "slurm"),
                *OPTS,
            ]
        )
        == 0
    )
    expected = torch.load(tmp_path / "train_net" / "model_final.pth", weights_only=True)
    trained = torch.load(tmp_path / "slurm" / "model_final.pth", weights_only=True)
    assert trained["iteration"] == expected["iteration"] == 2
    assert trained["model"].keys() == expected["model"].keys()
    different = [k for k in expected["model"] if not torch.equal(trained["model"][k], expected["model"][k])]
    assert not different, f"weights differ: {different[:5]}"
    assert len(list((tmp_path / "jobs").glob("*_1_log.out"))) == 1  # the job's second task ran too


def test_mistakes_are_reported_before_submitting(tmp_path, synthetic_root, capsys):  # noqa: F811
    code = slurm_train(
        [
            "--cluster",
            "local",
            "--job-dir",
            str(tmp_path / "jobs"),
            CONFIG,
            "2",
            str(tmp_path / "out"),
            *OPTS,
            "SOLVER.IMS_PER_BATCH",
            "3",
        ]
    )
    assert code == 2
    assert "SOLVER.IMS_PER_BATCH 3 does not split evenly over 2 processes" in capsys.readouterr().out
    assert not (tmp_path / "jobs").exists()
