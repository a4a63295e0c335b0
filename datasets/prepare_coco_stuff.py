"""Converts COCO-Stuff label maps (182-id label space) to the 171 contiguous training ids.

Input, under the datasets root (`--root`, default $DETECTRON2_DATASETS or ./datasets):
    coco-stuff/images/{train2017,val2017}/*.jpg        COCO 2017 images (train2017.zip, val2017.zip)
    coco-stuff/annotations/{train2017,val2017}/*.png   stuffthingmaps_trainval2017.zip, unzipped here
Output:
    coco-stuff/annotations_detectron2/{train2017,val2017}/*.png   uint8, 171 classes, 255 = ignore

Label mapping. A stuffthingmaps pixel holds its COCO-Stuff category id minus one (0..181) or 255
(unlabelled). Ids 1..90 are the COCO things, of which 80 are used (12, 26, 29, 30, 45, 66, 68, 69, 71, 83
were dropped from COCO), and 92..182 are the 91 stuff classes (91 is unused; 183 "other" never appears in
these maps). The 80 + 91 = 171 used ids, in increasing order, become 0..170 -- the order of
datasets/coco.json ("person" = id 1 -> 0, ..., "wood" = id 182 -> 170). Everything else becomes 255.
"""

from pathlib import Path

import numpy as np
from PIL import Image
from prepare_common import main_wrapper, make_parser, remap, require, run_jobs, save_label

SPLITS = ("train2017", "val2017")
IGNORE = 255
_UNUSED_THING_IDS = {12, 26, 29, 30, 45, 66, 68, 69, 71, 83}
# COCO-Stuff category ids (1-based) of the 171 classes, in label order.
USED_IDS = [i for i in range(1, 91) if i not in _UNUSED_THING_IDS] + list(range(92, 183))


def build_lut() -> np.ndarray:
    """(256,) uint8: stuffthingmaps value -> contiguous label (255 = ignore)."""
    assert len(USED_IDS) == 171
    lut = np.full(256, IGNORE, dtype=np.uint8)
    lut[np.array(USED_IDS) - 1] = np.arange(len(USED_IDS))
    return lut


LUT = build_lut()


def convert(src, dst):
    """stuffthingmaps PNG `src` -> 171-class label PNG `dst`."""
    save_label(remap(np.array(Image.open(src)), LUT, IGNORE).astype(np.uint8), dst)


def prepare(root, splits=SPLITS, workers=1):
    """Writes coco-stuff/annotations_detectron2/<split>/*.png for each split; returns {split: (written, skipped)}."""
    base = Path(root) / "coco-stuff"
    result = {}
    for split in splits:
        src_dir = require(
            base / "annotations" / split,
            "Download stuffthingmaps_trainval2017.zip (github.com/nightrome/cocostuff) and unzip it "
            "into coco-stuff/annotations/.",
        )
        require(
            base / "images" / split,
            f"Download {split}.zip from https://cocodataset.org and unzip it into coco-stuff/images/.",
        )
        out_dir = base / "annotations_detectron2" / split
        jobs = [(src, out_dir / src.name) for src in sorted(src_dir.glob("*.png"))]
        result[split] = run_jobs(convert, jobs, workers, f"COCO-Stuff {split}")
    return result


if __name__ == "__main__":
    main_wrapper(prepare, make_parser(__doc__, SPLITS))
