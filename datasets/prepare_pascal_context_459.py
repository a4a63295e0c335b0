"""Converts PASCAL Context (all 459 classes) to the PC-459 benchmark's label maps.

Input: the PASCAL Context release under VOCdevkit/VOC2010 (see pascal_context_raw.py and datasets/README.md).
Output, under the datasets root (`--root`, default $DETECTRON2_DATASETS or ./datasets):
    VOCdevkit/VOC2010/annotations_detectron2/pc459_{train,val}/*.tif   uint16, 459 classes, 459 = ignore

Label mapping: id k in 1..459 of labels.txt -> k - 1, the index of the class in datasets/pc459.json (labels.txt
order: "accordion" = 1 -> 0, ..., "wool" = 459 -> 458); 0 (unlabelled) and anything above 459 -> 459. The ignore value
is 459, one past the last class, as the benchmark is registered (detectron2's SemSegEvaluator counts ignored
pixels in its extra row 459 = num_classes); 16-bit TIFF because 459 labels do not fit in a byte.

Validation images: the 5,104 of the authors' evaluation (datasets/authors_ids/pascal_context_val_5104.txt), with
which the published PC-459 numbers were computed; VOC2010's ImageSets/Main/val.txt lists one image more.
"""

import numpy as np
from pascal_context_raw import (
    AUTHORS_PC459_VAL_LIST,
    NUM_CLASSES,
    SPLITS,
    context_dir,
    read_label_map,
    read_labels_txt,
    split_sources,
)
from prepare_common import main_wrapper, make_parser, remap, run_jobs, save_label

IGNORE = NUM_CLASSES

LUT = np.full(NUM_CLASSES + 1, IGNORE, dtype=np.uint16)
LUT[1:] = np.arange(NUM_CLASSES)


def convert(mat_path, dst):
    """PASCAL Context .mat -> 459-class uint16 TIFF `dst`."""
    save_label(remap(read_label_map(mat_path), LUT, IGNORE).astype(np.uint16), dst)


def prepare(root, splits=SPLITS, workers=1, val_list=AUTHORS_PC459_VAL_LIST):
    """Writes annotations_detectron2/pc459_<split>/*.tif; returns {split: (written, skipped)}. The val split
    holds the images listed in `val_list`."""
    base = context_dir(root)
    read_labels_txt(base / "labels.txt")  # checks that the release has the 459-class label space
    result = {}
    for split in splits:
        out_dir = base / "annotations_detectron2" / f"pc459_{split}"
        id_list = val_list if split == "val" else None
        jobs = [(mat, out_dir / f"{i}.tif") for i, mat in split_sources(base, split, id_list)]
        result[split] = run_jobs(convert, jobs, workers, f"PASCAL Context 459 {split}")
    return result


if __name__ == "__main__":
    main_wrapper(prepare, make_parser(__doc__, SPLITS))
