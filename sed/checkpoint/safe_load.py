"""Reading checkpoint files without running code from them.

A pickle names functions that unpickling calls: a crafted `.pkl` or `.pth` can run any command while it is
read, and can still hold correct weights. Every checkpoint this package reads goes through this module:

- `load_pickle`: an unpickler that rebuilds only what Detectron / detectron2 `.pkl` checkpoints hold (dicts,
  lists, tuples, strings, numbers, numpy arrays and dtypes); any other object refuses the file.
- `torch_load`: `torch.load(weights_only=True)` (explicit: the environment variable
  TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD turns torch's default off, never an explicit argument); a refusal is one line.
- `make_detectron2_checkpoints_safe`: run on `import sed`, so that detectron2's own `DetectionCheckpointer`
  (which user code and detectron2's tools call directly on this package's models) reads files the same way,
  and refuses weights that hold NaN or Inf (`NonFiniteCheckpointError`).

Both raise `UnsafeCheckpointError` for a file that holds anything else, with one line saying how to convert a
file whose source is trusted.
"""

import os
import pickle

import numpy as np
import torch

from .errors import NonFiniteCheckpointError, UnsafeCheckpointError

__all__ = [
    "UnsafeCheckpointError",
    "load_pickle",
    "torch_load",
    "refusal",
    "non_finite_tensors",
    "make_detectron2_checkpoints_safe",
]

# (module, name) of every global a Detectron / detectron2 .pkl checkpoint names: numpy arrays (rebuilt from
# their dtype, shape and bytes), numpy scalars, ordered dicts, and the codec that Python 3 pickles of protocol
# 2 use for bytes. None of them runs code given to it.
_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    *((f"numpy.{core}.multiarray", name) for core in ("core", "_core") for name in ("_reconstruct", "scalar")),
    *((f"numpy.{core}.numeric", "_frombuffer") for core in ("core", "_core")),
}

_CONVERT_HINT = (
    "if you trust its source, convert it once to a .pth of tensors (torch.save of its state dict) "
    "in a separate Python session, and use that"
)


class _WeightsUnpickler(pickle.Unpickler):
    def __init__(self, file, filename):
        super().__init__(file, encoding="latin1")  # latin1: Python 2 pickles (Detectron) hold numpy bytes as str
        self.filename = filename

    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise UnsafeCheckpointError(
                f"{self.filename} names {module}.{name}, which a weights file never holds: refusing to read it, "
                f"since unpickling it could run code; {_CONVERT_HINT}"
            )
        return super().find_class(module, name)

    def persistent_load(self, pid):
        raise UnsafeCheckpointError(
            f"{self.filename} is not a plain pickle of weights (it refers to external "
            f"objects): refusing to read it; {_CONVERT_HINT}"
        )


def load_pickle(file, filename=None):
    """The object pickled in `file` (a path or a binary file object), rebuilt from allowed types only.

    Raises `UnsafeCheckpointError` for any other global; the usual pickle errors for bytes that are no pickle.
    """
    if isinstance(file, (str, os.PathLike)):
        with open(file, "rb") as f:
            return load_pickle(f, filename or os.fspath(file))
    return _WeightsUnpickler(file, filename or getattr(file, "name", "the checkpoint")).load()


def torch_load(file, filename=None):
    """`torch.load(file, map_location="cpu", weights_only=True)`; its refusal of a file that names other objects
    is raised as a one-line `UnsafeCheckpointError` (instead of torch's advice to allow them)."""
    filename = filename or (os.fspath(file) if isinstance(file, (str, os.PathLike)) else "the checkpoint")
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise (refusal(e, filename) or e) from None


def refusal(error, filename):
    """The `UnsafeCheckpointError` that says why `torch.load(weights_only=True)` refused `filename`, if `error`
    (its pickle.UnpicklingError) is the refusal of a global; None for other errors (bytes that are no pickle)."""
    reason = next((line for line in str(error).splitlines() if "GLOBAL" in line), None)
    if reason is None:
        return None
    name = reason.split("GLOBAL ", 1)[1].split()[0]
    return UnsafeCheckpointError(
        f"{filename} names {name}, which a weights file never holds: refusing to read "
        f"it, since unpickling it could run code; {_CONVERT_HINT}"
    )


class _RestrictedPickleModule:
    """Stands for the `pickle` module in detectron2's detection_checkpoint, which reads .pkl files with its `load`."""

    @staticmethod
    def load(file, encoding="latin1"):
        return load_pickle(file)


def _detectron2_torch_load(self, f):
    return torch_load(f)


def non_finite_tensors(state_dict):
    """Names of the floating-point tensors (or numpy arrays) of `state_dict` that hold NaN or Inf, in order."""
    bad = []
    for name, value in state_dict.items():
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(value) if value.dtype.kind in "fc" else None
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not bool(torch.isfinite(value).all()):
            bad.append(name)
    return bad


def _checked(load_file):
    """detectron2's `_load_file`, refusing pycls files and weights that hold NaN or Inf."""

    def _load_file(self, filename):
        if filename.endswith(".pyth"):
            # detectron2 reads pycls .pyth files with torch.load and torch's default (unsafe when
            # TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD is set); no model of this package uses pycls weights.
            raise UnsafeCheckpointError(
                f"{filename}: pycls .pyth checkpoints are not read by this package: "
                "save its model_state with torch.save to a .pth and use that"
            )
        checkpoint = load_file(self, filename)
        # A model of NaN weights segments every image as one class, with no other sign.
        bad = non_finite_tensors(checkpoint["model"]) if isinstance(checkpoint.get("model"), dict) else []
        if bad:
            shown = ", ".join(bad[:3]) + (", ..." if len(bad) > 3 else "")
            raise NonFiniteCheckpointError(
                f"{filename}: {len(bad)} weight tensor(s) hold NaN or Inf ({shown}): the model would give "
                "meaningless results; use a checkpoint saved before the training diverged, or another one"
            )
        return checkpoint

    _load_file.sed_checked = True
    return _load_file


def make_detectron2_checkpoints_safe():
    """Makes detectron2's `DetectionCheckpointer` (and so every subclass) read checkpoints with this module.

    detectron2 reads a `.pkl` with `pickle.load` and a `.pth` through its `_torch_load` hook (fvcore's plain
    `torch.load`). The pickle module that detectron2's checkpoint module reads .pkl files with is replaced by the
    restricted one, and `_torch_load` by `torch_load`; detectron2's own format handling stays as it is. pycls
    `.pyth` files, which detectron2 reads with torch's default settings, are refused, and so are weights that
    hold NaN or Inf. Idempotent.
    """
    from detectron2.checkpoint import DetectionCheckpointer, detection_checkpoint

    detection_checkpoint.pickle = _RestrictedPickleModule
    DetectionCheckpointer._torch_load = _detectron2_torch_load
    if not getattr(DetectionCheckpointer._load_file, "sed_checked", False):
        DetectionCheckpointer._load_file = _checked(DetectionCheckpointer._load_file)
