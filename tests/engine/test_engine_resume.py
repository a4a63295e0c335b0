"""--resume continues exactly: N iterations straight equal N/2, an interruption, then a resume for the rest
(same weights, optimizer state and learning rate), on CPU with a fixed seed; also after SIGTERM / SIGINT at any
iteration."""

import os
import signal

import pytest
import torch
from detectron2.engine import HookBase
from detectron2.utils.env import seed_all_rng
from engine_helpers import one_thread, quickstart_cfg, synthetic_root  # noqa: F401 (fixtures)

from sed.checkpoint.loading import SafeCheckpointer
from sed.engine import Trainer
from sed.engine.stop_signals import TrainingStopped


class _Interrupted(Exception):
    pass


class _InterruptAfter(HookBase):
    def __init__(self, iteration):
        self.iteration = iteration

    def after_step(self):
        if self.trainer.iter == self.iteration:
            raise _Interrupted()


def _trainer(output_dir):
    # SEED 3 (not the config's): resume must restore the run's seeds, not rely on a default.
    cfg = quickstart_cfg(
        "SOLVER.MAX_ITER",
        "4",
        "SOLVER.CHECKPOINT_PERIOD",
        "2",
        "DATASETS.TEST",
        "()",
        "SEED",
        "3",
        "OUTPUT_DIR",
        str(output_dir),
    )
    seed_all_rng(cfg.SEED)  # what default_setup does in tools/train_net.py
    return Trainer(cfg)


def test_resume_continues_exactly(tmp_path, synthetic_root, one_thread):  # noqa: F811
    straight = _trainer(tmp_path / "straight")
    straight.resume_or_load(resume=False)
    initial = {k: v.clone() for k, v in straight.model.state_dict().items()}
    straight.train()

    interrupted = _trainer(tmp_path / "resumed")
    interrupted.resume_or_load(resume=False)
    interrupted.register_hooks([_InterruptAfter(1)])  # after the checkpoint of iteration 1 (period 2)
    with pytest.raises(_Interrupted):
        interrupted.train()
    del interrupted
    seed_all_rng(12345)  # a different process state: the resume must not depend on it
    resumed = _trainer(tmp_path / "resumed")
    resumed.resume_or_load(resume=True)
    assert resumed.start_iter == 2
    resumed.train()

    a, b = straight.model.state_dict(), resumed.model.state_dict()
    assert any(not torch.equal(a[k], initial[k]) for k in a), "training changed nothing"
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"weights differ after resume: {different[:5]}"
    assert straight.optimizer.param_groups[0]["lr"] == resumed.optimizer.param_groups[0]["lr"]
    sa, sb = straight.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)


def test_resume_falls_back_past_a_truncated_checkpoint(tmp_path, synthetic_root, one_thread, caplog):  # noqa: F811
    straight = _trainer(tmp_path / "run")
    straight.resume_or_load(resume=False)
    straight.train()  # checkpoints model_0000001.pth, model_0000003.pth and model_final.pth
    final = {k: v.clone() for k, v in straight.model.state_dict().items()}
    run = tmp_path / "run"
    assert (run / "last_checkpoint").read_text() == "model_final.pth"
    assert not list(run.glob("*.tmp"))  # written through temporary files, renamed into place
    # What a crash while writing model_0000003.pth leaves with in-place writes: a truncated file, already named.
    (run / "model_final.pth").unlink()
    newest = run / "model_0000003.pth"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    (run / "last_checkpoint").write_text("model_0000003.pth")
    del straight

    resumed = _trainer(tmp_path / "run")
    resumed.resume_or_load(resume=True)
    assert resumed.start_iter == 2  # from model_0000001.pth
    assert "the newer model_0000003.pth could not be read" in caplog.text
    resumed.train()
    different = [k for k, v in resumed.model.state_dict().items() if not torch.equal(v, final[k])]
    assert not different, f"weights differ from the uninterrupted run: {different[:5]}"


def test_a_failed_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    checkpointer = SafeCheckpointer(torch.nn.Linear(2, 2), str(tmp_path))
    checkpointer.save("model_0000001")
    before = (tmp_path / "model_0000001.pth").read_bytes()

    def fail_midway(obj, f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", fail_midway)
    with pytest.raises(OSError, match="No space left"):
        checkpointer.save("model_0000001")
    assert (tmp_path / "model_0000001.pth").read_bytes() == before
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint", "model_0000001.pth"]


class _SignalAt(HookBase):
    """Sends `signum` to this process during iteration `iteration` (as a cluster's SIGTERM would arrive)."""

    def __init__(self, iteration, signum):
        self.iteration, self.signum = iteration, signum

    def before_step(self):
        if self.trainer.iter == self.iteration:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_saves_the_iteration_and_resume_ends_bit_identical(signum, tmp_path, synthetic_root, one_thread):  # noqa: F811
    """Stopped in iteration 2 of 5 (checkpoints every 2: between two re-seedings), --resume ends exactly as the
    uninterrupted run: weights, optimizer state and learning rate."""

    def trainer(output_dir):
        cfg = quickstart_cfg(
            "SOLVER.MAX_ITER",
            "5",
            "SOLVER.CHECKPOINT_PERIOD",
            "2",
            "DATASETS.TEST",
            "()",
            "SEED",
            "3",
            "OUTPUT_DIR",
            str(output_dir),
            "DATALOADER.NUM_WORKERS",
            "0",
            "MODEL.ENC.DROP_PATH_RATE",
            "0.2",
        )  # drop path: the torch generator matters too
        seed_all_rng(cfg.SEED)
        return Trainer(cfg)

    straight = trainer(tmp_path / "straight")
    straight.resume_or_load(resume=False)
    straight.train()

    stopped = trainer(tmp_path / "stopped")
    stopped.resume_or_load(resume=False)
    stopped.register_hooks([_SignalAt(2, signum)])
    stopped._hooks.insert(0, stopped._hooks.pop())  # before the stop hook, which acts at the end of the step
    # What the process had before (a shell's background job inherits SIGINT ignored, not Python's default).
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    with pytest.raises(TrainingStopped) as stop:
        stopped.train()
    assert stop.value.iteration == 2 and stop.value.exit_code == 128 + signum
    assert (tmp_path / "stopped" / "last_checkpoint").read_text() == "model_0000002.pth"
    assert {s: signal.getsignal(s) for s in handlers} == handlers  # the handlers are restored
    del stopped
    seed_all_rng(12345)  # a different process state: the resume must not depend on it
    resumed = trainer(tmp_path / "stopped")
    resumed.resume_or_load(resume=True)
    assert resumed.start_iter == 3
    resumed.train()

    a, b = straight.model.state_dict(), resumed.model.state_dict()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"weights differ after a stop and resume: {different[:5]}"
    assert straight.optimizer.param_groups[0]["lr"] == resumed.optimizer.param_groups[0]["lr"]
    sa, sb = straight.optimizer.state_dict()["state"], resumed.optimizer.state_dict()["state"]
    assert all(torch.equal(sa[i]["exp_avg"], sb[i]["exp_avg"]) for i in sa)
