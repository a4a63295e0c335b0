"""Stopping training on SIGTERM / SIGINT with a checkpoint that resumes exactly.

Preemptible clusters send SIGTERM some time before they kill a job; Ctrl-C sends SIGINT. During training
`StopOnSignalHook` turns either into a request: the current iteration finishes, a checkpoint of it is saved
(model_NNNNNNN.pth, named by last_checkpoint) together with the random generators' states, and `TrainingStopped`
ends the run. `--resume` then restores those states, so that, with DATALOADER.NUM_WORKERS 0, the resumed run
ends bit-identical to one never stopped. A second signal while the first is being handled stops at once (as
without this hook). In several processes every rank stops after the same iteration (the request is shared
each step); rank 0 writes the checkpoint.
"""

import logging
import random
import signal
import threading

import numpy as np
import torch
from detectron2.engine import HookBase
from detectron2.utils import comm

__all__ = ["StopOnSignalHook", "TrainingStopped", "rng_state", "set_rng_state"]

logger = logging.getLogger(__name__)

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class TrainingStopped(BaseException):
    """Training stopped on a signal after saving a checkpoint. A BaseException, like KeyboardInterrupt: it ends the
    run without detectron2 logging it as a failure.

    Attributes: signal_name ("SIGTERM"), iteration (the last one done), checkpoint (its path), exit_code
    (128 + the signal number, the shell's convention for a process ended by a signal).
    """

    def __init__(self, signum, iteration, checkpoint):
        self.signal_name = signal.Signals(signum).name
        self.iteration, self.checkpoint, self.exit_code = iteration, checkpoint, 128 + signum
        super().__init__(
            f"stopped by {self.signal_name} after iteration {iteration}: saved {checkpoint}; run the "
            "same command with --resume to continue"
        )


def rng_state():
    """The states of python's, numpy's and torch's global generators, as tensors, lists and numbers only (what a
    checkpoint may hold)."""
    version, internal, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "python": [version, list(internal), gauss],
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    """Restores the generators' states saved by `rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class StopOnSignalHook(HookBase):
    """Saves a checkpoint and raises `TrainingStopped` after the iteration during which SIGTERM or SIGINT came.
    Register it after every hook that changes state in `after_step` (scheduler, re-seeding), so that the
    checkpoint holds the state the next iteration starts from."""

    def __init__(self):
        self._requested = None
        self._previous = {}

    def _handle(self, signum, frame):
        if self._requested is not None:  # a second signal: stop now, as without this hook
            self._restore()
            signal.raise_signal(signum)
            return
        self._requested = signum
        logger.warning(
            "%s received: stopping after iteration %d, once its checkpoint is saved (send it again to stop at once).",
            signal.Signals(signum).name,
            self.trainer.iter,
        )

    def _restore(self):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def before_train(self):
        if threading.current_thread() is threading.main_thread():  # only the main thread may set handlers
            self._previous = {signum: signal.signal(signum, self._handle) for signum in SIGNALS}

    def after_train(self):
        self._restore()

    def _shared_request(self):
        """The signal any rank received this step (0: none): every rank stops after the same iteration."""
        requested = self._requested or 0
        if comm.get_world_size() > 1:
            requested = max(comm.all_gather(requested))
        return requested

    def after_step(self):
        signum = self._shared_request()
        if not signum:
            return
        iteration = self.trainer.iter
        name = f"model_{iteration:07d}"
        states = comm.all_gather(rng_state())  # one per rank, in rank order
        self.trainer.checkpointer.save(name, iteration=iteration, rng_state=states)
        checkpoint = f"{self.trainer.checkpointer.save_dir}/{name}.pth"
        logger.warning(
            "Stopped by %s after iteration %d: saved %s; resume with --resume.",
            signal.Signals(signum).name,
            iteration,
            checkpoint,
        )
        comm.synchronize()  # rank 0's checkpoint is complete before any rank ends
        raise TrainingStopped(signum, iteration, checkpoint)
