"""What a redirected training run (`sh run.sh ... > file`, OUTPUT_DIR/log.txt) leaves to read: the log says what
happened, without colour codes (the output is not a terminal) and without library lines that are untrue here."""

import importlib.util
import subprocess
import sys

from engine_helpers import FAST_OPTS, REPO, quickstart_cfg, subprocess_env, synthetic_root  # noqa: F401 (fixture)

NOISE = {
    "colour codes": "\x1b[",
    "detectron2's alarm about compiled ops this project does not use": "not built correctly",
    "torch's CUDA toolkit lookup on a machine without GPU": "No CUDA runtime is found",
    "open_clip's warning, untrue when a checkpoint replaces the weights": "Model initialized randomly",
}


def test_redirected_training_log_says_what_happened(tmp_path, synthetic_root):  # noqa: F811
    import torch
    from detectron2.modeling import build_model

    weights = tmp_path / "start.pth"  # a checkpoint to start from: CLIP's random weights are replaced
    torch.save({"model": build_model(quickstart_cfg()).state_dict()}, weights)
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools" / "train_net.py"),
            "--config-file",
            str(REPO / "configs" / "quickstart.yaml"),
            *FAST_OPTS,
            "SOLVER.MAX_ITER",
            "2",
            "DATASETS.TEST",
            "()",
            "MODEL.WEIGHTS",
            str(weights),
            "OUTPUT_DIR",
            str(out),
        ],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        cwd=str(tmp_path),
        timeout=600,
    )
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    log = (out / "log.txt").read_text()
    for where, text in {"stdout": proc.stdout, "stderr": proc.stderr, "log.txt": log}.items():
        for what, line in NOISE.items():
            assert line not in text, f"{where} has {what}"
    # Instead: where the CLIP weights come from, and the checkpoint that replaces them.
    assert "random initial weights (MODEL.ENC.CLIP_PRETRAINED_WEIGHTS is empty)" in log
    assert f"Loading from {weights}" in log
    if importlib.util.find_spec("detectron2._C") is None:  # the registry build of detectron2 has no compiled ops
        assert "not built (compiled ops, unused by this project)" in log
