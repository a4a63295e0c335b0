"""Reading image and label files: every Pillow mode turned into 8-bit RGB correctly (or refused by name), and
files that cannot be read reported with their path and what to do, instead of a bare Pillow exception.

detectron2's `read_image` converts with Pillow's `convert("RGB")`, which clips 16-bit and 32-bit greyscale to
255: a 16-bit photo comes out nearly white and is segmented silently wrong. Here high-bit-depth greyscale is
scaled to 8 bits instead.
"""

import os
import zlib

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..utils.messages import one_line

__all__ = ["ImageFileError", "pil_to_rgb", "read_image", "read_error_reason"]

# Pillow modes of 16-bit greyscale (PNG, TIFF). Mode "I" (32-bit int) is read as 16-bit data too, the range in
# which PNG and most TIFF writers store it; values outside 0..65535 are refused.
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
# Errors Pillow (and zlib below it) raise for truncated or corrupt files.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, zlib.error, Image.DecompressionBombError)


class ImageFileError(OSError):
    """An image or label file that cannot be used; `path` is the file, `reason` says why and what to do."""

    def __init__(self, path, reason=None):
        # With one argument: the message alone, as a DataLoader re-raises a worker's error (its text wrapped in
        # the worker's traceback); `path` is then None and the message's last line is the original one.
        super().__init__(f"{path}: {reason}" if reason is not None else path)
        self.path = os.fspath(path) if reason is not None else None
        self.reason = reason

    def __reduce__(self):  # pickled between processes
        return type(self), (self.path, self.reason) if self.path is not None else (str(self),)

    @property
    def one_line(self):
        """The original "PATH: reason" message, also of an error re-raised from a DataLoader worker."""
        lines = [line for line in str(self).splitlines() if line.strip()]
        return lines[-1].split(f"{type(self).__name__}: ", 1)[-1].strip() if lines else ""


def pil_to_rgb(image):
    """A (H, W, 3) uint8 RGB array of a PIL image of any mode; 16-bit greyscale is scaled (65535 -> 255).

    Raises ValueError for modes without a meaningful 8-bit RGB form (32-bit float "F"), naming the mode.
    """
    if image.mode in _SIXTEEN_BIT_MODES:
        values = np.asarray(image)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(
                f"its 32-bit integer pixels (Pillow mode {image.mode}) exceed the 16-bit range; "
                "save it as 8-bit or 16-bit RGB or greyscale"
            )
        grey = np.round(values.astype(np.float32) / 257).astype(np.uint8)
        return np.repeat(grey[:, :, None], 3, axis=2)
    if image.mode == "F":
        raise ValueError(
            "it holds 32-bit float pixels (Pillow mode F), which have no standard range; save it as "
            "8-bit or 16-bit RGB or greyscale"
        )
    try:
        return np.asarray(image.convert("RGB"))
    except ValueError as e:  # modes Pillow cannot convert to RGB (e.g. LAB, HSV)
        raise ValueError(f"Pillow cannot convert its mode {image.mode} to RGB; save it as RGB") from e


def read_image(path, format="RGB"):
    """The pixels of an image or label file, turned upright by its EXIF orientation (as detectron2's `read_image`).

    Args:
        path: the file.
        format: "RGB" or "BGR": (H, W, 3) uint8 in that channel order, any Pillow mode converted (`pil_to_rgb`);
            None: the stored values as they are (label maps: (H, W) uint8 or uint16).
    Raises:
        FileNotFoundError: no such file.
        ImageFileError: truncated, corrupt, not an image, or of a mode without an RGB form; names the file.
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f, Image.open(f) as image:
            image = ImageOps.exif_transpose(image)
            if format is None:
                return np.asarray(image)
            rgb = pil_to_rgb(image)
    except FileNotFoundError:
        raise
    except UnidentifiedImageError as e:
        raise ImageFileError(path, "not an image file (or of a format Pillow cannot read)") from e
    except _DECODE_ERRORS as e:
        reason = str(e) if isinstance(e, ValueError) else f"truncated or corrupt ({one_line(e)})"
        raise ImageFileError(path, f"{reason}; replace the file (re-download or re-run its preparation)") from e
    if format == "BGR":
        return np.ascontiguousarray(rgb[:, :, ::-1])
    if format != "RGB":
        raise ValueError(f"image format {format!r}: only 'RGB', 'BGR' and None are supported")
    return rgb


def read_error_reason(error):
    """Why an image file could not be read, in words, from the error reading it raised."""
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, ImageFileError) and error.reason is not None:
        return error.reason
    if isinstance(error, UnidentifiedImageError):
        return "not an image file (or of a format Pillow cannot read)"
    return f"cannot read it ({error})"
