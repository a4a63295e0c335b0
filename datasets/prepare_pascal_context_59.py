"""Converts PASCAL Context to the 59-class benchmark (PC-59): the 59 most frequent classes, the rest ignored.

Input: the PASCAL Context release under VOCdevkit/VOC2010 (see pascal_context_raw.py and datasets/README.md).
Output, under the datasets root (`--root`, default $DETECTRON2_DATASETS or ./datasets):
    VOCdevkit/VOC2010/annotations_detectron2/pc59_{train,val}/*.png   uint8, 59 classes, 255 = ignore

Label mapping: the i-th name of datasets/pc59.json is looked up by name in labels.txt ("diningtable" is called
"table" there) and its id gets label i. With the released labels.txt the 59 ids, in label order, are
    2 9 18 19 22 23 25 31 33 34 44 45 46 59 65 68 72 80 85 98 104 105 113 115 144 158 159 162 187 189 207 220
    232 258 259 260 284 295 296 308 324 326 347 349 354 355 360 366 368 397 415 416 420 424 427 440 445 454 458
(aeroplane .. wood: pc59.json lists the classes by increasing id). Every other id -- 0 (unlabelled) and the
400 classes outside the benchmark ("background" of the 60-class variant) -- becomes 255.
"""

import functools

import numpy as np
from pascal_context_raw import NUM_CLASSES, SPLITS, context_dir, read_label_map, read_labels_txt, split_sources
from prepare_common import main_wrapper, make_parser, read_class_names, remap, run_jobs, save_label

IGNORE = 255
# pc59.json uses the VOC name of a class where labels.txt has the Context one.
_LABELS_TXT_NAME = {"diningtable": "table"}


def build_lut(labels) -> np.ndarray:
    """
    Args:
        labels (dict[int, str]): labels.txt, {1-based id: name}.

    Returns:
        (460,) uint8: PASCAL Context id -> PC-59 label (255 = ignore).
    """
    ids = {name: i for i, name in labels.items()}
    lut = np.full(NUM_CLASSES + 1, IGNORE, dtype=np.uint8)
    for label, name in enumerate(read_class_names("pc59.json")):
        name = _LABELS_TXT_NAME.get(name, name)
        if name not in ids:
            raise ValueError(f"PC-59 class '{name}' is not in labels.txt")
        lut[ids[name]] = label
    return lut


def convert(mat_path, dst, lut):
    """PASCAL Context .mat -> 59-class label PNG `dst`, ids mapped by `lut`."""
    save_label(remap(read_label_map(mat_path), lut, IGNORE).astype(np.uint8), dst)


def prepare(root, splits=SPLITS, workers=1):
    """Writes annotations_detectron2/pc59_<split>/*.png; returns {split: (written, skipped)}."""
    base = context_dir(root)
    convert_fn = functools.partial(convert, lut=build_lut(read_labels_txt(base / "labels.txt")))
    result = {}
    for split in splits:
        out_dir = base / "annotations_detectron2" / f"pc59_{split}"
        jobs = [(mat, out_dir / f"{i}.png") for i, mat in split_sources(base, split)]
        result[split] = run_jobs(convert_fn, jobs, workers, f"PASCAL Context 59 {split}")
    return result


if __name__ == "__main__":
    main_wrapper(prepare, make_parser(__doc__, SPLITS))
