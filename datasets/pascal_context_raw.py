"""Reading the PASCAL Context release, shared by prepare_pascal_context_59.py and prepare_pascal_context_459.py.

Expected under the datasets root:
    VOCdevkit/VOC2010/JPEGImages/*.jpg, VOCdevkit/VOC2010/ImageSets/Main/{train,val}.txt
        (VOCtrainval_03-May-2010.tar, http://host.robots.ox.ac.uk/pascal/VOC/voc2010/)
    VOCdevkit/VOC2010/trainval/*.mat, VOCdevkit/VOC2010/labels.txt
        (trainval.tar.gz and labels.txt, https://cs.stanford.edu/~roozbeh/pascal-context/)
Each .mat holds `LabelMap`, an (H, W) map of 1-based ids into labels.txt ("1: accordion" .. "459: wool"),
0 where a pixel has no label. PASCAL Context's train / val images (4,998 / 5,105) are VOC 2010's
ImageSets/Main train / val lists.
"""

from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
from prepare_common import read_split_list, require
from scipy.io import loadmat

SPLITS = ("train", "val")
NUM_CLASSES = 459
# The 5,104 validation images of the authors' PC-459 evaluation (VOC2010's val.txt lists one more).
AUTHORS_PC459_VAL_LIST = Path(__file__).resolve().parent / "authors_ids" / "pascal_context_val_5104.txt"
_HINT = (
    "Download VOCtrainval_03-May-2010.tar (http://host.robots.ox.ac.uk/pascal/VOC/voc2010/) into the root, "
    "then trainval.tar.gz and labels.txt (https://cs.stanford.edu/~roozbeh/pascal-context/) into "
    "VOCdevkit/VOC2010/."
)


def context_dir(root) -> Path:
    """VOCdevkit/VOC2010 under `root`, after checking the raw inputs every split needs."""
    base = Path(root) / "VOCdevkit" / "VOC2010"
    for needed in ("JPEGImages", "trainval", "labels.txt"):
        require(base / needed, _HINT)
    return base


def read_labels_txt(path: Path) -> Dict[int, str]:
    """{1-based id: name} from PASCAL Context's labels.txt ("<id>: <name>" a line)."""
    labels = {}
    for line in path.read_text().splitlines():
        if ":" in line:
            index, name = line.split(":", 1)
            labels[int(index)] = name.strip()
    if sorted(labels) != list(range(1, NUM_CLASSES + 1)):
        raise ValueError(f"{path} should list ids 1..{NUM_CLASSES}, found {len(labels)} ids")
    return labels


def split_sources(base: Path, split: str, id_list: Optional[Path] = None) -> List[Tuple[str, Path]]:
    """(image id, .mat path) of every image of `split`: the ids of `id_list`, else of VOC2010's split list."""
    ids = read_split_list(id_list or require(base / "ImageSets" / "Main" / f"{split}.txt", _HINT))
    return [(i, base / "trainval" / f"{i}.mat") for i in ids]


def read_label_map(mat_path: Path) -> np.ndarray:
    """(H, W) int64 1-based PASCAL Context ids (0 = unlabelled)."""
    return np.asarray(loadmat(str(mat_path))["LabelMap"], dtype=np.int64)
