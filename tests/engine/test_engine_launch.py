"""Two CPU processes (gloo) train the tiny model under DistributedDataParallel and end with identical weights."""

import os

import pytest
import torch
from detectron2.utils import comm
from detectron2.utils.env import seed_all_rng
from engine_helpers import quickstart_cfg, synthetic_root  # noqa: F401 (fixture)

from sed.engine import Trainer, launch
from sed.modeling.protocol import unwrap_model


def _worker(output_dir, datasets_root):
    os.environ["DETECTRON2_DATASETS"] = datasets_root
    cfg = quickstart_cfg(
        "MODEL.DEVICE",
        "cpu",
        "SOLVER.IMS_PER_BATCH",
        "4",
        "SOLVER.MAX_ITER",
        "2",
        "DATASETS.TEST",
        "()",
        "OUTPUT_DIR",
        output_dir,
    )
    seed_all_rng(100 + comm.get_rank())  # different initial weights per rank: DDP must broadcast rank 0's
    trainer = Trainer(cfg)
    assert comm.get_world_size() == 2 and torch.distributed.get_backend() == "gloo"
    assert len(next(iter(trainer.data_loader))) == 2, "per-process batch = IMS_PER_BATCH / world size"
    trainer.resume_or_load(resume=False)
    trainer.train()
    torch.save(unwrap_model(trainer.model).state_dict(), os.path.join(output_dir, f"rank{comm.get_rank()}.pth"))


@pytest.mark.slow
def test_two_cpu_processes_hold_identical_weights(tmp_path, synthetic_root):  # noqa: F811
    launch(_worker, 2, dist_url="auto", args=(str(tmp_path), str(synthetic_root)), use_gpu=False)
    rank0 = torch.load(tmp_path / "rank0.pth")
    rank1 = torch.load(tmp_path / "rank1.pth")
    assert rank0.keys() == rank1.keys()
    different = [k for k in rank0 if not torch.equal(rank0[k], rank1[k])]
    assert not different, f"ranks differ: {different[:5]}"
    assert (tmp_path / "model_final.pth").is_file()  # rank 0 checkpoints


def _free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_rank_0_names_the_missing_ranks_and_gives_up_at_the_timeout(caplog):
    """In-process: rank 0 of 3 alone at the address logs what it waits for, then ends with one line."""
    from datetime import timedelta

    from sed.engine.launch import DistributedStartError, _rendezvous

    url = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(DistributedStartError) as error:
        _rendezvous(url, 3, 0, timedelta(seconds=2))
    assert str(error.value).startswith(f"only 1 of 3 processes joined {url} within 2 s (missing ranks 1-2): ")
    assert "--dist-timeout" in str(error.value) and "\n" not in str(error.value)
    assert f"Waiting at {url} for 3 processes: 1 joined, missing ranks 1-2" in caplog.text


def test_a_rank_without_rank_0_gives_up_at_the_timeout():
    from datetime import timedelta

    from sed.engine.launch import DistributedStartError, _rendezvous

    url = f"tcp://127.0.0.1:{_free_port()}"
    with pytest.raises(
        DistributedStartError, match=f"rank 1 could not reach rank 0 at {url} within 2 s: start machine 0"
    ):
        _rendezvous(url, 2, 1, timedelta(seconds=2))


def _run_train_net(args, tmp_path, datasets_root, **popen):
    import subprocess
    import sys

    from engine_helpers import FAST_OPTS, REPO, subprocess_env

    return subprocess.Popen(
        [
            sys.executable,
            str(REPO / "tools" / "train_net.py"),
            "--config-file",
            "configs/quickstart.yaml",
            *args,
            *FAST_OPTS,
            "MODEL.DEVICE",
            "cpu",
            "DATASETS.TEST",
            "()",
            "OUTPUT_DIR",
            str(tmp_path / "out"),
        ],
        cwd=REPO,
        env=subprocess_env(DETECTRON2_DATASETS=str(datasets_root)),
        text=True,
        **popen,
    )


@pytest.mark.slow
def test_a_machine_that_never_starts_ends_the_run_in_one_line(tmp_path, synthetic_root):  # noqa: F811
    import subprocess

    url = f"tcp://127.0.0.1:{_free_port()}"
    proc = _run_train_net(
        ["--num-machines", "2", "--machine-rank", "0", "--dist-url", url, "--dist-timeout", "5"],
        tmp_path,
        synthetic_root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, stderr = proc.communicate(timeout=300)
    errors = [line for line in stderr.splitlines() if ": error: " in line]
    assert proc.returncode == 2 and "Traceback" not in stderr, stderr[-3000:]
    assert errors == [
        f"train_net.py: error: only 1 of 2 processes joined {url} within 5 s (missing ranks 1): start "
        "them with the same --dist-url and --num-machines (each machine its --machine-rank), or "
        "raise --dist-timeout"
    ]
    assert f"Waiting at {url} for 2 processes: 1 joined, missing ranks 1" in stderr
    assert not (tmp_path / "out").exists()


def _children(pid):
    """The pids of the live processes whose parent is `pid` (from /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                found.append(int(entry))
    return found


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow
def test_kill_term_of_the_launcher_stops_its_workers_with_a_checkpoint(tmp_path, synthetic_root):  # noqa: F811
    import signal
    import subprocess
    import time

    log = open(tmp_path / "log.txt", "w")
    proc = _run_train_net(
        [
            "--num-gpus",
            "2",
            "SOLVER.MAX_ITER",
            "100000",
            "SOLVER.CHECKPOINT_PERIOD",
            "100000",
            "SOLVER.IMS_PER_BATCH",
            "2",
        ],
        tmp_path,
        synthetic_root,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 240
    while "Starting training from iteration" not in (tmp_path / "log.txt").read_text():
        assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "log.txt").read_text()[-3000:]
        time.sleep(1)
    workers = _children(proc.pid)
    assert len(workers) >= 2
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 128 + signal.SIGTERM
    time.sleep(1)
    assert not [pid for pid in workers if _alive(pid)], "a worker outlived the launcher"
    text = (tmp_path / "log.txt").read_text()
    assert "SIGTERM received: passing it to the 2 worker process(es)" in text
    stopped = [line for line in text.splitlines() if line.startswith("train_net.py: stopped by SIGTERM after")]
    assert len(stopped) == 1 and "Traceback" not in text, text[-3000:]
    name = (tmp_path / "out" / "last_checkpoint").read_text()
    assert stopped[0].endswith(f"saved {tmp_path / 'out' / name}; run the same command with --resume to continue")
