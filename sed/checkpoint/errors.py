"""The errors of checkpoint files that cannot be used, each raised with one line naming the file."""

__all__ = ["CheckpointError", "UnreadableCheckpointError", "UnsafeCheckpointError", "NonFiniteCheckpointError"]


class CheckpointError(ValueError):
    """A checkpoint cannot be used: MODEL.WEIGHTS does not load into the model its config builds."""


class UnreadableCheckpointError(CheckpointError):
    """The file cannot be read as a checkpoint at all (truncated, corrupt, not saved by torch)."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint file holds objects other than weights: reading it could run code, so it is refused unread."""


class NonFiniteCheckpointError(CheckpointError):
    """The checkpoint's weights hold NaN or Inf (a diverged training, a broken conversion)."""
