"""The synthetic quickstart datasets (sed/data/synthetic.py): `synthetic_train_sem_seg`, `synthetic_test_sem_seg`,
registered like the benchmarks (register_sem_seg.py: the root is read when a dataset is used, so it may be set after
`import sed`); a missing or half-written dataset says how to generate it.
"""

import os

from detectron2.data import DatasetCatalog
from detectron2.data.datasets import load_sem_seg

from ..synthetic import DEFAULT_DIRNAME, IGNORE_LABEL, SPLITS, SYNTHETIC_CLASSES, synthetic_dataset_exists
from .register_sem_seg import register_sem_seg_dataset

__all__ = ["register_synthetic_datasets"]

HOW_TO = "Generate it with `python datasets/prepare_synthetic.py` (a few seconds)."


def _load(image_root, sem_seg_root):
    root = os.path.dirname(os.path.dirname(image_root))
    if not synthetic_dataset_exists(root):
        raise FileNotFoundError(
            f"the synthetic dataset in {root} is incomplete (its generation did not finish). " + HOW_TO
        )
    return load_sem_seg(sem_seg_root, image_root, gt_ext="png", image_ext="jpg")


def register_synthetic_datasets():
    for name, split in SPLITS.items():
        if name in DatasetCatalog.list():
            continue
        register_sem_seg_dataset(
            name,
            image_dirname=os.path.join(DEFAULT_DIRNAME, "images", split),
            sem_seg_dirname=os.path.join(DEFAULT_DIRNAME, "annotations_detectron2", split),
            class_json="datasets/synthetic.json",
            stuff_classes=SYNTHETIC_CLASSES,
            ignore_label=IGNORE_LABEL,
            prepare_script="prepare_synthetic.py",
            loader=_load,
            missing_hint=HOW_TO,
        )


register_synthetic_datasets()
