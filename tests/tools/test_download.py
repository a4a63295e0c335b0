"""tools/download.py: fetch zoo weights by name (a local HTTP server stands for the hosting), and offline lines."""

import os
import subprocess
import sys

import pytest
from conftest import REPO, load_tool
from zoo_server import ZooServer

from sed.model_zoo import MODEL_ZOO

download = load_tool("download")


def test_fetches_names_into_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SED_HOME", str(tmp_path))
    server = ZooServer(b"weights" * 1000)
    monkeypatch.setitem(MODEL_ZOO, "tiny-test", server.entry())
    try:
        assert download.main(["tiny-test"]) == 0
    finally:
        server.stop()
    assert f"tiny-test: {tmp_path / 'checkpoints' / 'tiny-test.pth'}" in capsys.readouterr().out
    assert download.main(["tiny-test"]) == 0  # cached: no server needed


def test_list_names_every_entry_and_its_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SED_HOME", str(tmp_path))
    assert download.main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in ["sed-b", "sed-l", "clip-b", "clip-l", str(tmp_path / "checkpoints"), "laion_aesthetic_s13b_b82k"]:
        assert name in out


def test_unknown_names_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        download.main(["sed-b", "sed-xl"])
    assert exit_.value.code == 2 and "not in the model zoo: sed-xl" in capsys.readouterr().err


def test_offline_clip_prefetch_is_one_line(tmp_path):
    """open_clip's own download on a machine with an offline hub (HF_HUB_OFFLINE=1, as on compute nodes)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PYTHONPATH": str(REPO)}
    run = subprocess.run(
        [sys.executable, str(REPO / "tools" / "download.py"), "clip-b"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 1
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr
    assert lines[0].startswith("download.py: error: Could not get the CLIP weights convnext_base_w_320/")
    assert str(tmp_path / "hf" / "hub") in lines[0] and "0.72 GB" in lines[0]
