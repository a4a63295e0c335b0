"""Converts ADE20K-150 (the SceneParsing challenge release) label maps to 0-based training ids.

Input, under the datasets root (`--root`, default $DETECTRON2_DATASETS or ./datasets):
    ADEChallengeData2016/images/{training,validation}/*.jpg
    ADEChallengeData2016/annotations/{training,validation}/*.png
    (ADEChallengeData2016.zip from the MIT Scene Parsing benchmark, unzipped into the root)
Output:
    ADEChallengeData2016/annotations_detectron2/{training,validation}/*.png   uint8, 150 classes, 255 = ignore

Label mapping: raw 0 ("other objects", not a benchmark class) -> 255; raw k in 1..150 -> k - 1, the index of
the class in datasets/ade150.json ("wall" = 1 -> 0, ..., "flag" = 150 -> 149); anything above 150 -> 255.
"""

from pathlib import Path

import numpy as np
from PIL import Image
from prepare_common import main_wrapper, make_parser, remap, require, run_jobs, save_label

SPLITS = ("training", "validation")
IGNORE = 255
NUM_CLASSES = 150

LUT = np.full(256, IGNORE, dtype=np.uint8)
LUT[1 : NUM_CLASSES + 1] = np.arange(NUM_CLASSES)


def convert(src, dst):
    """ADEChallenge annotation PNG `src` -> 150-class label PNG `dst`."""
    save_label(remap(np.array(Image.open(src)), LUT, IGNORE).astype(np.uint8), dst)


def prepare(root, splits=SPLITS, workers=1):
    """Writes ADEChallengeData2016/annotations_detectron2/<split>/*.png; returns {split: (written, skipped)}."""
    base = Path(root) / "ADEChallengeData2016"
    hint = (
        "Download ADEChallengeData2016.zip (http://sceneparsing.csail.mit.edu, "
        "http://data.csail.mit.edu/places/ADEchallenge/ADEChallengeData2016.zip) and unzip it into the root."
    )
    result = {}
    for split in splits:
        src_dir = require(base / "annotations" / split, hint)
        require(base / "images" / split, hint)
        out_dir = base / "annotations_detectron2" / split
        jobs = [(src, out_dir / src.name) for src in sorted(src_dir.glob("*.png"))]
        result[split] = run_jobs(convert, jobs, workers, f"ADE20K-150 {split}")
    return result


if __name__ == "__main__":
    main_wrapper(prepare, make_parser(__doc__, SPLITS))
