"""The quickstart learns: `sh run.sh configs/quickstart.yaml 1 OUT` (here shortened: 150 iterations on 64 px crops,
a 96 px CLIP input)
generates the synthetic dataset, trains the tiny CPU SED from random weights, evaluates it with eval.sh and
prints the table; the mIoU ends well above chance.

Chance level: the synthetic test set has K = 8 classes of about equal area; a prediction that does not depend on
the image (uniformly random labels) has expected IoU 1 / (2K - 1) = 6.7 % per class, and predicting one class
everywhere gives mIoU <= 1 / K^2 = 1.6 %. The test requires 20 %, three times the chance level."""

import json
import subprocess

import pytest
from engine_helpers import REPO, subprocess_env

CHANCE_MIOU = 100 / (2 * 8 - 1)


@pytest.mark.slow
def test_quickstart_learns(tmp_path):
    datasets = tmp_path / "datasets"
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            "sh",
            str(REPO / "run.sh"),
            str(REPO / "configs" / "quickstart.yaml"),
            "1",
            str(out),
            "MODEL.CLIP_RESOLUTION",
            "(96, 96)",
            "INPUT.MIN_SIZE_TRAIN",
            "(64,)",
            "INPUT.CROP.SIZE",
            "(64, 64)",
            "INPUT.MIN_SIZE_TEST",
            "96",
            "SOLVER.MAX_ITER",
            "150",
            "SOLVER.CHECKPOINT_PERIOD",
            "1000",
            "TEST.EVAL_PERIOD",
            "0",
            "MODEL.SEM_SEG_HEAD.TEST_CLASS_JSON",
            "",
        ],
        capture_output=True,
        text=True,
        env=subprocess_env(DETECTRON2_DATASETS=str(datasets)),
        cwd=str(tmp_path),
        timeout=900,
    )
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    assert (datasets / "synthetic" / "classes.json").is_file(), "run.sh generates the missing synthetic dataset"
    assert (out / "model_final.pth").is_file()
    results = json.loads((out / "eval" / "synthetic_test_sem_seg" / "results.json").read_text())
    miou = results["synthetic_test_sem_seg"]["sem_seg"]["mIoU"]
    print(f"quickstart test: mIoU {miou:.2f} (chance {CHANCE_MIOU:.2f})")
    assert miou > 3 * CHANCE_MIOU, f"mIoU {miou:.1f} after 150 iterations (chance {CHANCE_MIOU:.1f})"
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| synthetic_test_sem_seg")]
    assert rows and f"{miou:.2f}" in rows[-1], proc.stdout[-3000:]
