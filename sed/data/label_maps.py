"""What a label map must be to be counted: one class id per pixel, each a class of the dataset or its ignore
label, at the size of its image. Checked wherever label files are read (training, evaluation,
tools/verify_dataset.py), so that a bad file stops the run naming itself instead of landing in a wrong cell of
the confusion matrix, a wrong loss, or a bare AssertionError."""

import numpy as np

from .image_io import ImageFileError, read_image

__all__ = ["label_map_problem", "read_label_map"]


def label_map_problem(label, num_classes, ignore_label, image_size=None):
    """(kind, reason) of what is wrong with `label`, or None.

    Args:
        label: the label file's stored values (H, W).
        num_classes: class ids are 0..num_classes - 1.
        ignore_label: the one other value allowed.
        image_size: (H, W) of its image, if known.
    Returns:
        kind: the class of problem (for grouping reports); reason: one line with the values and what to do.
    """
    if label.ndim != 2:
        return (
            "label maps that are not one class id per pixel",
            f"it has {label.ndim} dimensions ({'x'.join(map(str, label.shape))}), not one class id per pixel "
            "(a colour image?): save the class ids as a greyscale PNG",
        )
    if image_size is not None and tuple(label.shape) != tuple(image_size):
        return (
            "size mismatches",
            f"the label map is {label.shape[1]}x{label.shape[0]} but its image is "
            f"{image_size[1]}x{image_size[0]}: they must be the same size",
        )
    values = np.unique(label)
    bad = [int(v) for v in values if (v < 0 or v >= num_classes) and v != ignore_label]
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        return (
            "label maps with values out of range",
            f"label value(s) {shown} are neither a class id (0..{num_classes - 1}: {num_classes} classes) nor "
            f"the ignore label {ignore_label}: fix the file or the dataset's classes",
        )
    return None


def read_label_map(path, num_classes, ignore_label, image_size=None):
    """The (H, W) stored values of label file `path`, checked (`label_map_problem`).

    Raises FileNotFoundError, or `ImageFileError` naming the file: unreadable, or not a valid label map.
    """
    label = read_image(path, format=None)
    problem = label_map_problem(label, num_classes, ignore_label, image_size)
    if problem:
        raise ImageFileError(path, problem[1])
    return label
