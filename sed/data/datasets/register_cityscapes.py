"""Cityscapes (fine) semantic segmentation: detectron2's datasets, with the root read when they are used.

detectron2 registers `cityscapes_fine_sem_seg_{train,val,test}` when it is imported, under the
$DETECTRON2_DATASETS of that moment, and reports missing files with bare assertions. They are registered again
here under the same names, with detectron2's loader (`load_cityscapes_semantic`: every
`leftImg8bit/<split>/<city>/*_leftImg8bit.png` with its `gtFine/<split>/<city>/*_gtFine_labelTrainIds.png`)
and metadata (the 19 trainId classes, ignore 255, evaluator_type "cityscapes_sem_seg"), but with the root read
at use as for the project's other datasets, and missing files named together with what to do.
"""

import os

from detectron2.data import DatasetCatalog, Metadata, MetadataCatalog
from detectron2.data.datasets.cityscapes import load_cityscapes_semantic

from .register_sem_seg import datasets_root

__all__ = ["CITYSCAPES_SPLITS", "register_cityscapes"]

CITYSCAPES_SPLITS = {
    "cityscapes_fine_sem_seg_train": "train",
    "cityscapes_fine_sem_seg_val": "val",
    "cityscapes_fine_sem_seg_test": "test",
}


def _how_to(root):
    return (
        "Download leftImg8bit_trainvaltest.zip and gtFine_trainvaltest.zip (https://www.cityscapes-dataset.com) "
        f"into {root} and create the *_labelTrainIds.png label maps as datasets/README.md (Cityscapes) explains."
    )


def _folders(split):
    root = os.path.join(datasets_root(), "cityscapes")
    return root, os.path.join(root, "leftImg8bit", split), os.path.join(root, "gtFine", split)


class CityscapesMetadata(Metadata):
    """detectron2's Cityscapes metadata whose `image_dir` / `gt_dir` follow the datasets root when read."""

    @property
    def image_dir(self):
        return _folders(self.split)[1]

    @property
    def gt_dir(self):
        return _folders(self.split)[2]


def _load(name, split):
    root, image_dir, gt_dir = _folders(split)
    for folder in (image_dir, gt_dir):
        if not os.path.isdir(folder):
            raise FileNotFoundError(
                f"dataset '{name}' needs the folder {folder}, which does not exist (datasets root: "
                f"$DETECTRON2_DATASETS={os.environ.get('DETECTRON2_DATASETS', '(unset, ./datasets)')}). "
                f"{_how_to(root)}"
            )
    try:
        return load_cityscapes_semantic(image_dir, gt_dir)
    except (AssertionError, FileNotFoundError) as e:  # detectron2 asserts on missing images and label files
        raise FileNotFoundError(f"dataset '{name}' in {root} is incomplete ({e}). {_how_to(root)}") from e


def register_cityscapes():
    for name, split in CITYSCAPES_SPLITS.items():
        fields = MetadataCatalog.get(name).as_dict()
        for key in ("name", "image_dir", "gt_dir"):  # the folders become properties
            fields.pop(key, None)
        DatasetCatalog.remove(name)
        DatasetCatalog.register(name, lambda name=name, split=split: _load(name, split))
        MetadataCatalog.remove(name)
        MetadataCatalog[name] = CityscapesMetadata(name=name, split=split, **fields)


register_cityscapes()
