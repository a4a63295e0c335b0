"""Checkpoints that survive a crash and say in one line what is wrong with them.

- `SafeCheckpointer`: detectron2's DetectionCheckpointer whose saves are atomic (a temporary file renamed into
  place, then `last_checkpoint`), so a run killed while saving, or out of disk space (`DiskFullError`: one line
  with the file and the space it needs), leaves the previous checkpoint intact and named; resuming
  falls back to the newest checkpoint that loads when the one `last_checkpoint` names cannot be read.
- Files are read as `import sed` made detectron2 read them (`sed.checkpoint.safe_load`): a file holding
  anything but weights raises `UnsafeCheckpointError` unread, one whose weights hold NaN or Inf
  `NonFiniteCheckpointError`. A file that is not a checkpoint (truncated, random bytes) raises
  `UnreadableCheckpointError`, without torch's unpickling advice (loading untrusted files with
  `weights_only=False` is not the fix).
- `load_checkpoint`: loads weights into a model that must use every tensor (evaluation, the demo), or raises
  `CheckpointError` naming the tensors that do not fit.
"""

import glob
import logging
import os

import torch
from detectron2.checkpoint import DetectionCheckpointer

from ..utils.files import atomic_write
from .errors import CheckpointError, NonFiniteCheckpointError, UnreadableCheckpointError, UnsafeCheckpointError
from .fit import describe_mismatch

__all__ = [
    "CheckpointError",
    "UnreadableCheckpointError",
    "NonFiniteCheckpointError",
    "UnsafeCheckpointError",
    "SafeCheckpointer",
    "load_checkpoint",
]

logger = logging.getLogger(__name__)


def _tensor_bytes(obj):
    """The bytes of the tensors in a nest of dicts and lists: about the size of its checkpoint file."""
    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(v) for v in obj)
    return 0


class SafeCheckpointer(DetectionCheckpointer):
    """DetectionCheckpointer with atomic saves, one-line errors for unreadable files and a resume that falls back
    to the newest readable checkpoint of `save_dir` (same constructor and methods)."""

    def save(self, name, **kwargs):
        # fvcore's save writes the checkpoint in place: a crash while writing leaves a truncated file that
        # `last_checkpoint` may already name. Same contents here, written atomically.
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        data.update({key: obj.state_dict() for key, obj in self.checkpointables.items()})
        data.update(kwargs)
        basename = f"{name}.pth"
        path = os.path.join(self.save_dir, basename)
        self.logger.info("Saving checkpoint to %s", path)
        atomic_write(path, lambda f: torch.save(data, f), "checkpoint", _tensor_bytes(data))
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename):
        atomic_write(
            os.path.join(self.save_dir, "last_checkpoint"),
            lambda f: f.write(last_filename_basename.encode()),
            "checkpoint tag",
        )

    def _load_file(self, filename):
        # `import sed` made DetectionCheckpointer's reading safe (sed.checkpoint.safe_load): no code runs from it.
        try:
            checkpoint = super()._load_file(filename)
            if not isinstance(checkpoint.get("model"), dict):
                raise TypeError(f"its 'model' entry is a {type(checkpoint.get('model')).__name__}, not a dict")
            return checkpoint
        except (FileNotFoundError, CheckpointError):  # unsafe or non-finite: said in one line already
            self._parsed_url_during_load = None  # DetectionCheckpointer.load resets it on success only
            raise
        except Exception as e:  # torch.load fails with many types on bad bytes; every one means "not a checkpoint"
            self._parsed_url_during_load = None
            raise UnreadableCheckpointError(
                f"{filename} is not a readable checkpoint ({type(e).__name__} while reading it: the file is "
                "truncated, corrupt or not saved by torch.save): use another checkpoint or save it again"
            ) from e

    def resume_or_load(self, path, *, resume=True):
        """With `resume` and a `last_checkpoint` in save_dir: loads the checkpoint it names, or, if that cannot be
        read, the newest model_*.pth of save_dir that can (saying so). Otherwise loads the weights `path`."""
        if not (resume and self.has_checkpoint()):
            return self.load(path, checkpointables=[])
        tagged = self.get_checkpoint_file()
        others = sorted(
            (p for p in glob.glob(os.path.join(self.save_dir, "model_*.pth")) if p != tagged),
            key=os.path.getmtime,
            reverse=True,
        )
        unreadable = []
        for candidate in [tagged, *others]:
            if not os.path.isfile(candidate):
                unreadable.append(f"{os.path.basename(candidate)} (missing)")
                continue
            try:
                checkpoint = self.load(candidate)
            except UnreadableCheckpointError:
                unreadable.append(os.path.basename(candidate))
                logger.warning("Checkpoint %s cannot be read (truncated or corrupt); trying an older one.", candidate)
                continue
            if unreadable:
                logger.warning("Resuming from %s: the newer %s could not be read.", candidate, ", ".join(unreadable))
            return checkpoint
        raise UnreadableCheckpointError(
            f"--resume: no checkpoint in {self.save_dir} can be read ({', '.join(unreadable)}): remove them (or "
            "the folder's last_checkpoint) to start over, or give another OUTPUT_DIR"
        )


def load_checkpoint(model, weights):
    """Loads `weights` into `model`, or raises `CheckpointError` when any tensor of either is unmatched.

    detectron2's checkpointer only logs unmatched tensors; a model that silently keeps random weights would
    segment nonsense, so here a mismatch is an error, raised before any image is seen. Raises
    FileNotFoundError for a missing file, `UnreadableCheckpointError` for one that is not a checkpoint.
    """
    if "://" not in weights and not os.path.isfile(os.path.expanduser(weights)):
        raise FileNotFoundError(f"MODEL.WEIGHTS={weights!r}: no such file.")
    loaded = []
    handle = model.register_load_state_dict_post_hook(lambda module, incompatible: loaded.append(incompatible))
    try:
        SafeCheckpointer(model).load(os.path.expanduser(weights))
    except (
        UnreadableCheckpointError,
        NonFiniteCheckpointError,
        UnsafeCheckpointError,
        FileNotFoundError,
    ):  # said in one line (FileNotFoundError: not there, or a zoo download failed)
        raise
    except Exception as e:  # a model's own check (SED's: describe_mismatch) may raise: it does not fit
        raise CheckpointError(f"MODEL.WEIGHTS={weights!r} does not load into {type(model).__name__}: {e}") from e
    finally:
        handle.remove()
    if loaded[0].missing_keys or loaded[0].unexpected_keys:
        raise CheckpointError(
            f"MODEL.WEIGHTS={weights!r}: "
            + describe_mismatch(model, loaded[0], "Use the config the checkpoint was trained with.")
        )
