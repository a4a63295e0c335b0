"""One training iteration: gradient accumulation, mixed precision, and skipping of non-finite steps.

- SOLVER.ACCUMULATE_STEPS = A: an iteration runs A micro-batches of SOLVER.IMS_PER_BATCH / (A x processes)
  images each and makes ONE optimizer step on the sum of their gradients, each micro-batch loss divided by A.
  SED's losses are means over the batch (BCE averaged over images and pixels of equal size after the crop), so
  this gradient equals the gradient of one batch of IMS_PER_BATCH images: one accumulated step is one full-batch
  step, on a GPU that holds only the micro-batch. SOLVER.CLIP_GRADIENTS clips inside `optimizer.step()`, so it
  sees the accumulated gradient; under DistributedDataParallel only the last micro-batch all-reduces.
- SOLVER.AMP.ENABLED: float16 autocast with gradient scaling on GPUs (as detectron2's AMPTrainer; the gradients
  are unscaled before the step so that clipping sees their true norm), bfloat16 autocast on CPU (same range as
  float32, no scaling).
- A step whose loss or gradient is not finite (float16 overflow, a diverging run) is skipped, with a log line
  and the `skipped_steps` metric, instead of writing NaN into the weights; more than
  SOLVER.MAX_CONSECUTIVE_NONFINITE_STEPS skipped steps in a row stop the training with `NonFiniteTrainingError`.
"""

import contextlib
import logging
import time

import torch
from detectron2.engine import SimpleTrainer
from detectron2.utils import comm
from detectron2.utils.events import get_event_storage
from torch.nn.parallel import DistributedDataParallel

__all__ = ["NonFiniteTrainingError", "StepTrainer", "micro_batch_size"]

logger = logging.getLogger(__name__)


class NonFiniteTrainingError(FloatingPointError):
    """Too many steps in a row had a non-finite loss or gradient."""


def micro_batch_size(cfg, world_size):
    """Images per process in one micro-batch: SOLVER.IMS_PER_BATCH / (world_size x SOLVER.ACCUMULATE_STEPS).

    Raises:
        ValueError: saying which values to change, when the batch does not split evenly.
    """
    batch, steps = cfg.SOLVER.IMS_PER_BATCH, cfg.SOLVER.get("ACCUMULATE_STEPS", 1)
    if steps < 1:
        raise ValueError(f"SOLVER.ACCUMULATE_STEPS is {steps}: use 1 (no accumulation) or more")
    parts = world_size * steps
    if batch < parts or batch % parts:
        accumulation = f" x SOLVER.ACCUMULATE_STEPS {steps}" if steps > 1 else ""
        raise ValueError(
            f"SOLVER.IMS_PER_BATCH {batch} does not split evenly over {world_size} processes"
            f"{accumulation}: use a multiple of {parts}, e.g. SOLVER.IMS_PER_BATCH "
            f"{max(parts, batch // parts * parts)}"
        )
    return batch // parts


class StepTrainer(SimpleTrainer):
    """detectron2's SimpleTrainer with gradient accumulation, autocast and non-finite step skipping (see the
    module docstring). The data loader yields micro-batches."""

    def __init__(
        self,
        model,
        data_loader,
        optimizer,
        accumulate_steps=1,
        amp_dtype=None,
        device_type="cpu",
        max_consecutive_nonfinite=20,
        **kwargs,
    ):
        """
        Args:
            accumulate_steps: micro-batches per optimizer step.
            amp_dtype: None (float32), torch.float16 (with a GradScaler) or torch.bfloat16.
            device_type: autocast device type ("cuda", "cpu").
            max_consecutive_nonfinite: skipped steps in a row tolerated before NonFiniteTrainingError.
        """
        super().__init__(model, data_loader, optimizer, **kwargs)
        self.accumulate_steps = accumulate_steps
        self.amp_dtype, self.device_type = amp_dtype, device_type
        self.grad_scaler = torch.amp.GradScaler(device_type) if amp_dtype == torch.float16 else None
        self.max_consecutive_nonfinite = max_consecutive_nonfinite
        self.skipped_steps = 0
        self.consecutive_skips = 0

    def _autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device_type, dtype=self.amp_dtype)

    def _micro_step(self, last):
        """Forward and backward of one micro-batch; returns (loss dict, data time)."""
        start = time.perf_counter()
        data = next(self._data_loader_iter)
        data_time = time.perf_counter() - start
        # Under DDP, gradients are all-reduced once, in the backward of the last micro-batch.
        sync = (
            contextlib.nullcontext()
            if last or not isinstance(self.model, DistributedDataParallel)
            else self.model.no_sync()
        )
        with sync:
            with self._autocast():
                loss_dict = self.model(data)
                if isinstance(loss_dict, torch.Tensor):
                    loss_dict = {"total_loss": loss_dict}
                loss = sum(loss_dict.values()) / self.accumulate_steps
            (self.grad_scaler.scale(loss) if self.grad_scaler is not None else loss).backward()
        return loss_dict, data_time

    def _step_is_finite(self, loss_dict):
        """Whether the losses and every gradient are finite, on every process (so that all skip together)."""
        values = [v.detach().float().reshape(-1) for v in loss_dict.values()]
        values += [
            p.grad.detach().float().reshape(-1)
            for group in self.optimizer.param_groups
            for p in group["params"]
            if p.grad is not None
        ]
        finite = torch.stack([torch.isfinite(v).all() for v in values]).all().float()
        if comm.get_world_size() > 1:
            torch.distributed.all_reduce(finite, op=torch.distributed.ReduceOp.MIN)
        return bool(finite.item())

    def run_step(self):
        assert self.model.training, "[StepTrainer] model was changed to eval mode!"
        self.optimizer.zero_grad()
        loss_dict, data_time = {}, 0.0
        for i in range(self.accumulate_steps):
            micro_losses, micro_time = self._micro_step(last=i == self.accumulate_steps - 1)
            data_time += micro_time
            for k, v in micro_losses.items():  # the logged losses are the full batch's: means of the micro-batches
                loss_dict[k] = loss_dict.get(k, 0.0) + v.detach() / self.accumulate_steps
        self.after_backward()
        if self.grad_scaler is not None:
            self.grad_scaler.unscale_(self.optimizer)
        if not self._step_is_finite(loss_dict):
            self._skip(loss_dict)
            return
        self.consecutive_skips = 0
        get_event_storage().put_scalar("skipped_steps", self.skipped_steps, smoothing_hint=False)
        self._write_metrics(loss_dict, data_time)
        if self.grad_scaler is not None:
            self.grad_scaler.step(self.optimizer)
            self.grad_scaler.update()
        else:
            self.optimizer.step()

    def _skip(self, loss_dict):
        self.optimizer.zero_grad()
        if self.grad_scaler is not None:
            self.grad_scaler.update()  # lowers the scale after an overflow
        self.skipped_steps += 1
        self.consecutive_skips += 1
        get_event_storage().put_scalar("skipped_steps", self.skipped_steps, smoothing_hint=False)
        losses = ", ".join(f"{k}={float(v):.4g}" for k, v in loss_dict.items())
        logger.warning(
            "Iteration %d: non-finite loss or gradient (%s); the step is skipped (%d in a row, %d in all).",
            self.iter,
            losses,
            self.consecutive_skips,
            self.skipped_steps,
        )
        if self.consecutive_skips > self.max_consecutive_nonfinite:
            raise NonFiniteTrainingError(
                f"{self.consecutive_skips} steps in a row (up to iteration {self.iter}) had a non-finite loss or "
                "gradient: the training has diverged. Lower SOLVER.BASE_LR, enable SOLVER.CLIP_GRADIENTS, or "
                "disable SOLVER.AMP.ENABLED; SOLVER.MAX_CONSECUTIVE_NONFINITE_STEPS sets how many are tolerated."
            )

    def state_dict(self):
        ret = super().state_dict()
        if self.grad_scaler is not None:
            ret["grad_scaler"] = self.grad_scaler.state_dict()
        return ret

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        if self.grad_scaler is not None and "grad_scaler" in state_dict:
            self.grad_scaler.load_state_dict(state_dict["grad_scaler"])
