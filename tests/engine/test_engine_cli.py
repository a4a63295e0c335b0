"""tools/train_net.py fails early with exit code 2 and ONE line saying what to do, for each user mistake.

The cases run `sed.engine.cli.run` (the whole of tools/train_net.py but the interpreter start) in-process, to keep
the suite fast; one case runs the script in a subprocess to check the wiring (exit code, one line, no traceback).
"""

import json
import shutil
import subprocess
import sys

import torch
from engine_helpers import FAST_OPTS, REPO, subprocess_env, synthetic_root  # noqa: F401 (fixture)

from sed.engine.cli import run

QUICKSTART = str(REPO / "configs" / "quickstart.yaml")
PAPER = str(REPO / "configs" / "convnextB_768.yaml")


def _run(capfd, *argv):
    code = run([str(a) for a in argv])
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    return code, lines


def _one_error_line(lines):
    assert len(lines) == 1, lines
    assert "error:" in lines[0] and "Traceback" not in lines[0]
    return lines[0]


def test_missing_training_dataset(capfd, tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path / "nothing"))
    code, lines = _run(capfd, "--config-file", QUICKSTART, "OUTPUT_DIR", tmp_path / "out")
    assert code == 2
    assert "python datasets/prepare_synthetic.py" in _one_error_line(lines)


def test_missing_test_dataset_fails_or_is_skipped(capfd, tmp_path, synthetic_root):  # noqa: F811
    shutil.rmtree(synthetic_root / "synthetic" / "images" / "val2017")  # the training split stays
    opts = ["OUTPUT_DIR", tmp_path / "out", *FAST_OPTS]
    code, lines = _run(capfd, "--config-file", QUICKSTART, "--eval-only", *opts)
    assert code == 2 and "dataset 'synthetic_test_sem_seg' needs" in _one_error_line(lines)
    code, lines = _run(capfd, "--config-file", QUICKSTART, "--eval-only", "--skip-missing-datasets", *opts)
    assert code == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert "prepare_synthetic.py" in results["synthetic_test_sem_seg"]["skipped"]
    # Training checks its test sets before it starts, not after hours of training.
    code, lines = _run(capfd, "--config-file", QUICKSTART, *opts)
    assert code == 2 and 'DATASETS.TEST "()"' in _one_error_line(lines)


def test_unregistered_dataset(capfd, tmp_path):
    code, lines = _run(
        capfd,
        "--config-file",
        QUICKSTART,
        "--eval-only",
        "--skip-missing-datasets",
        "OUTPUT_DIR",
        tmp_path,
        "DATASETS.TEST",
        '("no_such_dataset",)',
    )
    assert code == 2 and "'no_such_dataset' (DATASETS.TEST) is not registered" in _one_error_line(lines)


def test_output_dir_not_writable(capfd, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    code, lines = _run(capfd, "--config-file", QUICKSTART, "OUTPUT_DIR", blocker / "out")
    assert code == 2
    assert "OUTPUT_DIR" in _one_error_line(lines) and "cannot be written" in lines[0]


def test_nonexistent_config_key(capfd, tmp_path):
    code, lines = _run(capfd, "--config-file", QUICKSTART, "OUTPUT_DIR", tmp_path, "SOLVER.NOT_A_KEY", "1")
    assert code == 2 and "SOLVER.NOT_A_KEY does not exist" in _one_error_line(lines)
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"_BASE_: {QUICKSTART}\nMODEL:\n  ENC:\n    CLIP_MODEL_NAMES: x\n")
    code, lines = _run(capfd, "--config-file", bad, "OUTPUT_DIR", tmp_path)
    assert code == 2 and "MODEL.ENC.CLIP_MODEL_NAMES does not exist" in _one_error_line(lines)
    code, lines = _run(capfd, "--config-file", tmp_path / "missing.yaml")
    assert code == 2 and "not found" in _one_error_line(lines)


def test_more_gpus_than_present(capfd, tmp_path, monkeypatch):
    out = ["OUTPUT_DIR", tmp_path]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    code, lines = _run(capfd, "--config-file", PAPER, "--num-gpus", "2", *out)
    assert code == 2 and "add MODEL.DEVICE cpu" in _one_error_line(lines) and "no GPU" in lines[0]
    code, lines = _run(capfd, "--config-file", PAPER, *out)
    assert code == 2 and "add MODEL.DEVICE cpu" in _one_error_line(lines)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    code, lines = _run(capfd, "--config-file", PAPER, "--num-gpus", "4", *out)
    assert code == 2 and "--num-gpus 4 but this machine has 1 GPU(s)" in _one_error_line(lines)


def test_batch_must_split_over_processes(capfd, tmp_path, synthetic_root):  # noqa: F811
    code, lines = _run(
        capfd,
        "--config-file",
        QUICKSTART,
        "--num-gpus",
        "3",
        "OUTPUT_DIR",
        tmp_path,
        "MODEL.DEVICE",
        "cpu",
        "SOLVER.IMS_PER_BATCH",
        "4",
    )
    assert code == 2 and "SOLVER.IMS_PER_BATCH 4 does not split evenly over 3 processes" in _one_error_line(lines)


def test_missing_weights_file(capfd, tmp_path, synthetic_root):  # noqa: F811
    code, lines = _run(
        capfd,
        "--config-file",
        QUICKSTART,
        "--eval-only",
        "OUTPUT_DIR",
        tmp_path,
        "MODEL.WEIGHTS",
        tmp_path / "nope.pth",
    )
    assert code == 2 and "nope.pth" in _one_error_line(lines) and "no such file" in lines[0]


def test_script_prints_one_line_without_traceback(tmp_path):
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "train_net.py"),
            "--config-file",
            QUICKSTART,
            "OUTPUT_DIR",
            str(tmp_path),
            "MODEL.SEM_SEG_HEAD.NOT_A_KEY",
            "1",
        ],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        cwd=str(tmp_path),
        timeout=300,
    )
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [
        "train_net.py: error: config key MODEL.SEM_SEG_HEAD.NOT_A_KEY does not exist: check its "
        "spelling (the project's keys are in sed/config.py, the others are detectron2's defaults)"
    ]
