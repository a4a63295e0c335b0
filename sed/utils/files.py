"""Writing files: atomically (checkpoints, results, caches), pictures and label maps; output folders checked for
writing before any work starts, and removed again when a failed run left them empty."""
import os
import tempfile

__all__ = ["atomic_write", "check_writable_dir", "missing_folders", "remove_if_empty", "write_label_map", "write_png"]


def atomic_write(path, write):
    """Calls `write(binary file)` on a temporary file beside `path`, then renames it to `path`: readers see the old
    file or the complete new one, never a partial one (also after a crash: the data is synced before the rename),
    and processes writing the same file at once each use their own temporary file."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
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
