"""Writing files: atomically (checkpoints, results, caches), pictures and label maps; output folders checked for
writing before any work starts, and removed again when a failed run left them empty."""

import errno
import os
import shutil
import tempfile

__all__ = [
    "DiskFullError",
    "atomic_write",
    "check_writable_dir",
    "missing_folders",
    "remove_if_empty",
    "write_label_map",
    "write_png",
]


class DiskFullError(OSError):
    """No space left on the disk for a file; the message is one line: what was written, where, the space it needs."""

    def __init__(self, message, errno_):
        super().__init__(message)
        self.errno = errno_


def _size(size):
    return f"{size / 2**20:.1f} MB" if size >= 2**20 / 10 else f"{size / 2**10:.1f} KB"


def _position(f):
    try:
        return f.tell()
    except (OSError, ValueError):
        return 0


def _disk_full_error(error):
    """The full-disk OSError behind `error`, or None; torch.save reports it as a RuntimeError of its zip writer,
    raised while the OSError was being handled."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return error
        error = error.__cause__ or error.__context__
    return None


def atomic_write(path, write, what="file", size=None):
    """Calls `write(binary file)` on a temporary file beside `path`, then renames it to `path`: readers see the old
    file or the complete new one, never a partial one (also after a crash: the data is synced before the rename),
    and processes writing the same file at once each use their own temporary file.

    A full disk (or quota) raises `DiskFullError` naming `what` ("checkpoint", "results"...), `path`, the space it
    needs (`size` in bytes, an estimate given by the caller, else more than what was written) and the space free;
    the old file is left as it was."""
    tmp = f"{path}.{os.getpid()}.tmp"
    written = 0
    try:
        with open(tmp, "wb") as f:
            try:
                write(f)
                f.flush()
                os.fsync(f.fileno())
            finally:
                written = _position(f)
        os.replace(tmp, path)
    except Exception as e:
        full = _disk_full_error(e)
        if full is None or isinstance(e, DiskFullError):
            raise
        if os.path.exists(tmp):
            os.remove(tmp)  # before measuring the free space: the partial file is not lost space
        needed = f"about {_size(size)}" if size else f"more than the {_size(written)} written"
        free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
        raise DiskFullError(
            f"no space left on the disk to write the {what} {path} ({os.strerror(full.errno)}): it "
            f"needs {needed}, {_size(free)} free there; free some space or write elsewhere, then "
            "run again",
            full.errno,
        ) from e
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def check_writable_dir(path):
    """Creates the folder `path` if needed and checks that a file can be written in it; raises OSError if not."""
    os.makedirs(path, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path, prefix=".write_test"):
        pass


def missing_folders(path):
    """The folders of `path` that do not exist yet, deepest first: those a run creates, and may remove on failure."""
    missing = []
    path = os.path.abspath(path)
    while not os.path.exists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return missing


def remove_if_empty(folders):
    """Removes `folders` (deepest first, as `missing_folders` gives them) while they are empty."""
    for folder in folders:
        try:
            os.rmdir(folder)  # fails on a folder with anything in it, which is then kept with its parents
        except OSError:
            return


def write_png(path, array):
    """Writes a (H, W) or (H, W, 3) BGR array as PNG; raises OSError when it cannot (cv2.imwrite only returns False)."""
    import cv2

    ok, data = cv2.imencode(".png", array)
    if not ok:
        raise OSError(f"cannot encode {path} as PNG")
    with open(path, "wb") as f:
        f.write(data.tobytes())


def write_label_map(path, label_map, num_classes):
    """Writes a (H, W) map of class indices as PNG: pixel value = class index, uint8, or uint16 above 256 classes."""
    write_png(path, label_map.astype("uint8" if num_classes <= 256 else "uint16"))
