"""Converts the full ADE20K (2021_17_01 release) to the 847 frequent classes of the A-847 benchmark.

Input, under the datasets root (`--root`, default $DETECTRON2_DATASETS or ./datasets):
    ADE20K_2021_17_01/index_ade20k.pkl
    ADE20K_2021_17_01/images/ADE/{training,validation}/<scene folders>/ADE_*.jpg and ADE_*_seg.png
    (ADE20K_2021_17_01.zip from https://ade20k.csail.mit.edu, after registering)
Output:
    ADE20K_2021_17_01/images_detectron2/{training,validation}/ADE_*.jpg
    ADE20K_2021_17_01/annotations_detectron2/{training,validation}/ADE_*.tif   uint16, 847 classes, 65535 = ignore

Label mapping. In a `*_seg.png`, the object class of a pixel is R // 10 * 256 + G (R, G its red and green values; 0 is
unlabelled). The authors' id table datasets/authors_ids/ade20k_full_847_raw_ids.json gives, for each of the 847
benchmark classes, that raw id ("id") and its label ("trainId", the order of datasets/ade847.json); every other pixel
(unlabelled, or one of the rare classes left out of the benchmark) gets 65535. This table, not a match of names
against `index_ade20k["objectnames"]` (where names repeat), is how the published numbers were computed.

Resolution. As in the preparation the published A-847 numbers were measured on, an image whose shorter side
exceeds 512 pixels is downscaled so that it is 512 (image bilinear, labels nearest, OpenCV); every image is
re-encoded with Pillow's default JPEG settings into images_detectron2, which is what the dataset registers.
The split of an image is the `training` / `validation` folder it sits in.
"""

import functools
import json
import pickle
from pathlib import Path

import cv2
import numpy as np
from PIL import Image
from prepare_common import (
    main_wrapper,
    make_parser,
    read_class_names,
    remap,
    require,
    run_jobs,
    save_atomic,
    save_label,
)

SPLITS = ("training", "validation")
IGNORE = 65535
MAX_SHORT_SIDE = 512
# Largest class value a *_seg.png can encode: R // 10 <= 25, G <= 255.
_MAX_RAW_CLASS = 255 // 10 * 256 + 255
TOP = "ADE20K_2021_17_01"
# What index_ade20k.pkl holds besides dicts, lists and strings: numpy arrays and scalars (numpy 1 and 2 names).
_INDEX_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
    *((f"numpy.{core}.multiarray", name) for core in ("core", "_core") for name in ("_reconstruct", "scalar")),
}
RAW_ID_TABLE = Path(__file__).resolve().parent / "authors_ids" / "ade20k_full_847_raw_ids.json"


def build_lut(id_table, class_names) -> np.ndarray:
    """
    Args:
        id_table (list[dict]): {"id": raw class, "trainId": label, "name"} for each benchmark class (the authors'
            datasets/authors_ids/ade20k_full_847_raw_ids.json).
        class_names (list[str]): the benchmark classes in label order (ade847.json), checked against the table.

    Returns:
        (_MAX_RAW_CLASS + 1,) uint16: raw class -> label (65535 = ignore).
    """
    labels = sorted(entry["trainId"] for entry in id_table)
    if labels != list(range(len(class_names))):
        raise ValueError(
            f"the id table should give labels 0..{len(class_names) - 1} once each ({len(labels)} entries found)"
        )
    by_label = {entry["trainId"]: entry for entry in id_table}
    renamed = [label for label, name in enumerate(class_names) if by_label[label]["name"] != name]
    if renamed:
        raise ValueError(
            f"the id table names {len(renamed)} labels differently from ade847.json, e.g. label "
            f"{renamed[0]}: {by_label[renamed[0]]['name']!r} vs {class_names[renamed[0]]!r}"
        )
    lut = np.full(_MAX_RAW_CLASS + 1, IGNORE, dtype=np.uint16)
    for entry in id_table:
        lut[entry["id"]] = entry["trainId"]
    return lut


def read_raw_classes(seg_png) -> np.ndarray:
    """(H, W) int64 raw object classes of an ADE20K `*_seg.png`."""
    rgb = np.array(Image.open(seg_png).convert("RGB"), dtype=np.int64)
    return rgb[:, :, 0] // 10 * 256 + rgb[:, :, 1]


def convert(sources, outputs, lut):
    """(image, *_seg.png) -> (resized image JPEG, 847-class uint16 TIFF), raw classes mapped by `lut`."""
    image_src, seg_src = sources
    image_dst, label_dst = outputs
    image = np.array(Image.open(image_src).convert("RGB"))
    label = remap(read_raw_classes(seg_src), lut, IGNORE).astype(np.uint16)
    h, w = label.shape
    if min(h, w) > MAX_SHORT_SIDE:
        if h <= w:
            new_w, new_h = round(w / h * MAX_SHORT_SIDE), MAX_SHORT_SIDE
        else:
            new_w, new_h = MAX_SHORT_SIDE, round(h / w * MAX_SHORT_SIDE)
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        label = cv2.resize(label, (new_w, new_h), interpolation=cv2.INTER_NEAREST)
    save_atomic(Image.fromarray(image), image_dst)
    save_label(label, label_dst)


class _IndexUnpickler(pickle.Unpickler):
    """Rebuilds only the types of `_INDEX_GLOBALS`: a pickle naming anything else could run code when read."""

    def find_class(self, module, name):
        if (module, name) not in _INDEX_GLOBALS:
            raise pickle.UnpicklingError(
                f"it names {module}.{name}, which the ADE20K index never holds (reading "
                "it could run code): download index_ade20k.pkl again"
            )
        return super().find_class(module, name)


def read_index(path):
    """The dict of index_ade20k.pkl (we use its "folder" and "filename" lists), read without running code."""
    try:
        with open(path, "rb") as f:
            index = _IndexUnpickler(f).load()
        if not isinstance(index, dict) or len(index.get("folder", ())) != len(index.get("filename", ())):
            raise ValueError("no 'folder' and 'filename' lists of one length")
    except (pickle.UnpicklingError, ValueError, EOFError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise ValueError(f"{path} is not ADE20K's index ({e}): download {TOP}.zip again") from e
    return index


def prepare(root, splits=SPLITS, workers=1):
    """Writes images_detectron2/ and annotations_detectron2/ for each split; returns {split: (written, skipped)}."""
    root = Path(root)
    hint = f"Download {TOP}.zip from https://ade20k.csail.mit.edu (free registration) and unzip it into the root."
    base = require(root / TOP, hint)
    index = read_index(require(base / "index_ade20k.pkl", hint))
    require(base / "images", hint)
    id_table = json.loads(RAW_ID_TABLE.read_text(encoding="utf-8"))
    convert_fn = functools.partial(convert, lut=build_lut(id_table, read_class_names("ade847.json")))

    jobs = {split: [] for split in splits}
    for folder, filename in zip(index["folder"], index["filename"]):
        # `folder` starts with "ADE20K_2021_17_01/images/ADE/<split>/..." in the released index.
        parts = Path(folder).parts
        split = next((p for p in parts if p in SPLITS), None)
        if split not in jobs:
            continue
        src_dir = root.joinpath(*parts) if parts[0] == TOP else base.joinpath(*parts)
        stem = Path(filename).stem
        jobs[split].append(
            (
                (src_dir / filename, src_dir / f"{stem}_seg.png"),
                (
                    base / "images_detectron2" / split / f"{stem}.jpg",
                    base / "annotations_detectron2" / split / f"{stem}.tif",
                ),
            )
        )
    return {split: run_jobs(convert_fn, jobs[split], workers, f"ADE20K-847 {split}") for split in splits}


if __name__ == "__main__":
    main_wrapper(prepare, make_parser(__doc__, SPLITS))
