"""The synthetic quickstart datasets (sed/data/synthetic.py): `synthetic_train_sem_seg`, `synthetic_test_sem_seg`.

The root ($DETECTRON2_DATASETS/synthetic) is read when a dataset is used, so it may be set after `import sed`; a
missing dataset says how to generate it.
"""
import os

from detectron2.data import DatasetCatalog, Metadata, MetadataCatalog
from detectron2.data.datasets import load_sem_seg

from ..synthetic import IGNORE_LABEL, SPLITS, SYNTHETIC_CLASSES, default_root, synthetic_dataset_exists

__all__ = ["register_synthetic_datasets"]


class _SyntheticMetadata(Metadata):
    """Metadata whose folders follow `$DETECTRON2_DATASETS` at the time they are read."""

    @property
    def image_root(self):
        return os.path.join(default_root(), "images", self.split)

    @property
    def sem_seg_root(self):
        return os.path.join(default_root(), "annotations_detectron2", self.split)


def _load(name, split):
    root = default_root()
    image_dir = os.path.join(root, "images", split)
    label_dir = os.path.join(root, "annotations_detectron2", split)
    if not (synthetic_dataset_exists(root) and os.path.isdir(image_dir) and os.path.isdir(label_dir)):
        raise FileNotFoundError(
            f"dataset '{name}' needs the synthetic dataset in {root}, which does not exist or is incomplete: "
            "generate it with `python datasets/prepare_synthetic.py` (a few seconds; DETECTRON2_DATASETS="
            f"{os.environ.get('DETECTRON2_DATASETS', '(unset, ./datasets)')}).")
    return load_sem_seg(label_dir, image_dir, gt_ext="png", image_ext="jpg")


def register_synthetic_datasets():
    for name, split in SPLITS.items():
        if name in DatasetCatalog.list():
            continue
        DatasetCatalog.register(name, lambda name=name, split=split: _load(name, split))
        MetadataCatalog[name] = _SyntheticMetadata(
            name=name, split=split, stuff_classes=list(SYNTHETIC_CLASSES), ignore_label=IGNORE_LABEL,
            evaluator_type="sem_seg", class_json="datasets/synthetic.json")


register_synthetic_datasets()
