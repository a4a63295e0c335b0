"""Converts PASCAL VOC 2012 segmentation labels to the PAS-20 (no background) and PAS-20b (with background)
label maps.

Input, under the datasets root (`--root`, default $DETECTRON2_DATASETS or ./datasets):
    VOCdevkit/VOC2012/JPEGImages/*.jpg
    VOCdevkit/VOC2012/SegmentationClass/*.png             palette PNGs (VOCtrainval_11-May-2012.tar)
    VOCdevkit/VOC2012/ImageSets/Segmentation/{train,val}.txt
    VOCdevkit/VOC2012/SegmentationClassAug/*.png          optional: the SBD-augmented labels (10,582 train)
Output:
    VOCdevkit/VOC2012/annotations_detectron2/{train,val}/*.png      uint8, 20 classes, 255 = ignore
    VOCdevkit/VOC2012/annotations_detectron2_bg/{train,val}/*.png   uint8, 21 classes, 255 = ignore

Label mapping. Raw values (palette indices): 0 background, 1..20 the classes of datasets/voc20.json in order
("aeroplane" .. "tvmonitor"), 255 object borders / difficult regions.
    without background: k in 1..20 -> k - 1; 0 -> 255; 255 -> 255.
    with background:    k in 1..20 -> k - 1; 0 -> 20 ("background"); 255 -> 255.
Splits: val = ImageSets/Segmentation/val.txt (1,449 images) from SegmentationClass. train = the
"train_aug" set when SegmentationClassAug exists (every image it labels that is not in val) and
ImageSets/Segmentation/train.txt (1,464 images) from SegmentationClass otherwise.
"""

from pathlib import Path

import numpy as np
from PIL import Image
from prepare_common import main_wrapper, make_parser, read_split_list, remap, require, run_jobs, save_label

SPLITS = ("train", "val")
IGNORE = 255
BACKGROUND = 20

LUT = np.full(256, IGNORE, dtype=np.uint8)
LUT[1:21] = np.arange(20)
LUT_BG = LUT.copy()
LUT_BG[0] = BACKGROUND


def convert(src, outputs):
    """VOC label PNG `src` -> (label PNG without background, label PNG with background)."""
    # Palette PNGs (and the grayscale SegmentationClassAug ones) read as their indices, i.e. the labels.
    raw = np.array(Image.open(src))
    dst, dst_bg = outputs
    save_label(remap(raw, LUT, IGNORE).astype(np.uint8), dst)
    save_label(remap(raw, LUT_BG, IGNORE).astype(np.uint8), dst_bg)


def prepare(root, splits=SPLITS, workers=1):
    """Writes annotations_detectron2{,_bg}/<split>/*.png; returns {split: (written, skipped)}."""
    base = Path(root) / "VOCdevkit" / "VOC2012"
    hint = (
        "Download VOCtrainval_11-May-2012.tar (http://host.robots.ox.ac.uk/pascal/VOC/voc2012/) "
        "and untar it into the root."
    )
    require(base / "JPEGImages", hint)
    labels_dir = require(base / "SegmentationClass", hint)
    val_ids = read_split_list(require(base / "ImageSets" / "Segmentation" / "val.txt", hint))
    aug_dir = base / "SegmentationClassAug"

    result = {}
    for split in splits:
        if split == "val":
            sources = [labels_dir / f"{i}.png" for i in val_ids]
        elif aug_dir.is_dir():
            val = set(val_ids)
            sources = [p for p in sorted(aug_dir.glob("*.png")) if p.stem not in val]
        else:
            train_ids = read_split_list(require(base / "ImageSets" / "Segmentation" / "train.txt", hint))
            sources = [labels_dir / f"{i}.png" for i in train_ids]
        jobs = [
            (
                src,
                (
                    base / "annotations_detectron2" / split / src.name,
                    base / "annotations_detectron2_bg" / split / src.name,
                ),
            )
            for src in sources
        ]
        result[split] = run_jobs(convert, jobs, workers, f"VOC 2012 {split}")
    return result


if __name__ == "__main__":
    main_wrapper(prepare, make_parser(__doc__, SPLITS))
