"""Converts the full ADE20K (2021_17_01 release) to the 847 frequent classes of the A-847 benchmark.

Input, under the datasets root (`--root`, default $DETECTRON2_DATASETS or ./datasets):
    ADE20K_2021_17_01/index_ade20k.pkl
    ADE20K_2021_17_01/images/ADE/{training,validation}/<scene folders>/ADE_*.jpg and ADE_*_seg.png
    (ADE20K_2021_17_01.zip from https://ade20k.csail.mit.edu, after registering)
Output:
    ADE20K_2021_17_01/images_detectron2/{training,validation}/ADE_*.jpg
    ADE20K_2021_17_01/annotations_detectron2/{training,validation}/ADE_*.tif   uint16, 847 classes, 65535 = ignore

Label mapping. In a `*_seg.png`, the object class of a pixel is R // 10 * 256 + G (R, G its red and green
values); class c > 0 is `index_ade20k["objectnames"][c - 1]` and 0 is unlabelled. The 847 classes of
datasets/ade847.json (the benchmark's frequent classes, in label order) are matched by exact name against
`objectnames`; a pixel whose name is the i-th entry of ade847.json gets label i, every other pixel (unlabelled,
or one of the rare classes left out of the benchmark) gets 65535.

Resolution. As in the preparation the published A-847 numbers were measured on, an image whose shorter side
exceeds 512 pixels is downscaled so that it is 512 (image bilinear, labels nearest, OpenCV); every image is
re-encoded with Pillow's default JPEG settings into images_detectron2, which is what the dataset registers.
The split of an image is the `training` / `validation` folder it sits in.
"""
import functools
import pickle
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from prepare_common import (main_wrapper, make_parser, read_class_names, remap, require, run_jobs, save_atomic,
                            save_label)

SPLITS = ("training", "validation")
IGNORE = 65535
MAX_SHORT_SIDE = 512
# Largest class value a *_seg.png can encode: R // 10 <= 25, G <= 255.
_MAX_RAW_CLASS = 255 // 10 * 256 + 255
TOP = "ADE20K_2021_17_01"


def build_lut(objectnames, class_names) -> np.ndarray:
    """
    Args:
        objectnames (list[str]): `index_ade20k["objectnames"]`; raw class c > 0 is objectnames[c - 1].
        class_names (list[str]): the benchmark classes in label order (ade847.json).

    Returns:
        (_MAX_RAW_CLASS + 1,) uint16: raw class -> label (65535 = ignore).
    """
    raw_ids = {}
    for index, name in enumerate(objectnames):
        raw_ids.setdefault(name, []).append(index + 1)
    missing = [name for name in class_names if name not in raw_ids]
    if missing:
        raise ValueError(f"{len(missing)} benchmark classes are not in index_ade20k.pkl's objectnames, "
                         f"e.g. {missing[:5]}: is it the ADE20K_2021_17_01 index?")
    lut = np.full(_MAX_RAW_CLASS + 1, IGNORE, dtype=np.uint16)
    for label, name in enumerate(class_names):
        lut[raw_ids[name]] = label
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


def prepare(root, splits=SPLITS, workers=1):
    """Writes images_detectron2/ and annotations_detectron2/ for each split; returns {split: (written, skipped)}."""
    root = Path(root)
    hint = (f"Download {TOP}.zip from https://ade20k.csail.mit.edu (free registration) "
            "and unzip it into the root.")
    base = require(root / TOP, hint)
    with open(require(base / "index_ade20k.pkl", hint), "rb") as f:
        index = pickle.load(f)
    require(base / "images", hint)
    convert_fn = functools.partial(convert, lut=build_lut(index["objectnames"], read_class_names("ade847.json")))

    jobs = {split: [] for split in splits}
    for folder, filename in zip(index["folder"], index["filename"]):
        # `folder` starts with "ADE20K_2021_17_01/images/ADE/<split>/..." in the released index.
        parts = Path(folder).parts
        split = next((p for p in parts if p in SPLITS), None)
        if split not in jobs:
            continue
        src_dir = root.joinpath(*parts) if parts[0] == TOP else base.joinpath(*parts)
        stem = Path(filename).stem
        jobs[split].append((
            (src_dir / filename, src_dir / f"{stem}_seg.png"),
            (base / "images_detectron2" / split / f"{stem}.jpg",
             base / "annotations_detectron2" / split / f"{stem}.tif"),
        ))
    return {split: run_jobs(convert_fn, jobs[split], workers, f"ADE20K-847 {split}") for split in splits}


if __name__ == "__main__":
    main_wrapper(prepare, make_parser(__doc__, SPLITS))
