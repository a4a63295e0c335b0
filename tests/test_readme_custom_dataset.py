"""README.md "Your own dataset": the worked example runs as written (from an empty folder with the quickstart
checkpoint in place), registers, verifies, evaluates zero-shot and fine-tuned, and segments images."""

import os
import re
import subprocess
import sys

import pytest
import torch
from conftest import REPO


def readme_example():
    text = (REPO / "README.md").read_text()
    return re.search(r"<!-- custom-dataset-example -->\n```bash\n(.*?)```", text, re.S).group(1)


@pytest.mark.slow
def test_readme_custom_dataset_example(tmp_path):
    from detectron2.modeling import build_model

    from sed.engine.cli import load_config

    for name in ("configs", "tools", "sed", "run.sh", "eval.sh"):
        (tmp_path / name).symlink_to(REPO / name)
    (tmp_path / "datasets").mkdir()
    for file in (REPO / "datasets").iterdir():
        (tmp_path / "datasets" / file.name).symlink_to(file)
    # the quickstart checkpoint the example starts from (untrained weights: the commands are what is tested)
    (tmp_path / "output" / "quickstart").mkdir(parents=True)
    model = build_model(load_config(str(REPO / "configs" / "quickstart.yaml")))
    torch.save({"model": model.state_dict()}, tmp_path / "output" / "quickstart" / "model_final.pth")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "python").write_text(f'#!/bin/sh\nexec "{sys.executable}" "$@"\n')  # keeps the venv
    (tmp_path / "bin" / "python").chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "DETECTRON2_DATASETS"}
    env.update(
        PATH=f"{tmp_path / 'bin'}{os.pathsep}{env['PATH']}",
        PYTHON=sys.executable,
        OMP_NUM_THREADS="1",
        PYTHONPATH=str(REPO),
    )
    proc = subprocess.run(
        ["bash", "-e", "-c", readme_example()], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert proc.returncode == 0, (proc.stdout[-3000:], proc.stderr[-3000:])
    assert "my_data_val: OK, 4 images, 8 classes" in proc.stdout
    results = proc.stdout.split("==> eval.sh: results")[1:]  # eval.sh's tables (the logs hold tables too)
    tables = [line for part in results for line in part.splitlines()[:4] if line.startswith("| my_data_val | ")]
    assert len(tables) == 2 and all(line.endswith("| ok       |") for line in tables), tables  # zero-shot, fine-tuned
    assert (tmp_path / "output" / "my_data" / "model_final.pth").is_file()
    assert len(list((tmp_path / "output" / "my_data" / "demo").glob("*_overlay.png"))) == 4
