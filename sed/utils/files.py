"""Output folders: checked for writing before any work starts, and removed again when a failed run left them empty."""
import os
import tempfile

__all__ = ["check_writable_dir", "missing_folders", "remove_if_empty"]


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
