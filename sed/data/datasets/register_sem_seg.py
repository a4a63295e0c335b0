"""Registration of a semantic-segmentation dataset that lives under `$DETECTRON2_DATASETS`.

The datasets root is read when a dataset is used (`DatasetCatalog.get`, or `image_root` / `sem_seg_root` of its
metadata), not when `sed` is imported, so it can be set or changed after the import (tests do).
"""

import hashlib
import os
from functools import partial
from typing import Callable, List, Optional, Sequence

from detectron2.data import DatasetCatalog, Metadata, MetadataCatalog
from detectron2.data.datasets import load_sem_seg

from ...utils.class_names import load_class_names


def datasets_root() -> str:
    """`$DETECTRON2_DATASETS`, else "datasets" (relative to the current directory), as detectron2's builtins."""
    return os.path.expanduser(os.environ.get("DETECTRON2_DATASETS", "datasets"))


def colors_by_name(names: Sequence[str]) -> List[List[int]]:
    """The metadata's `stuff_colors`: a fixed RGB colour per class name (from a hash of the name), so the same
    class gets the same colour in every dataset and every run (pictures of a vocabulary use
    `sed.utils.visualization.class_colors` instead, distinct colours by label)."""
    return [list(hashlib.md5(name.encode("utf-8")).digest()[:3]) for name in names]


class SemSegMetadata(Metadata):
    """Metadata whose `image_root` and `sem_seg_root` are `image_dirname` / `sem_seg_dirname` under the
    datasets root as it is when they are read."""

    @property
    def image_root(self) -> str:
        return os.path.join(datasets_root(), self.image_dirname)

    @property
    def sem_seg_root(self) -> str:
        return os.path.join(datasets_root(), self.sem_seg_dirname)


def _load(name, image_dirname, sem_seg_dirname, image_ext, gt_ext, prepare_script, loader=None, missing_hint=None):
    root = datasets_root()
    image_root, gt_root = os.path.join(root, image_dirname), os.path.join(root, sem_seg_dirname)
    for folder in (image_root, gt_root):
        if not os.path.isdir(folder):
            raise FileNotFoundError(
                f"dataset '{name}' needs the folder {folder}, which does not exist (datasets root: "
                f"$DETECTRON2_DATASETS={os.environ.get('DETECTRON2_DATASETS', '(unset, ./datasets)')}). "
                + (
                    missing_hint
                    or f"Download the raw data and run `python datasets/{prepare_script}` as "
                    "datasets/README.md explains."
                )
            )
    if loader is not None:
        return loader(image_root, gt_root)
    try:
        records = load_sem_seg(gt_root, image_root, gt_ext=gt_ext, image_ext=image_ext)
    except AssertionError:  # detectron2's "No annotations found" for an empty label folder
        records = []
    if not records:  # an interrupted preparation, or files of other extensions: not an empty dataset to train on
        raise FileNotFoundError(
            f"dataset '{name}': the folders {image_root} and {gt_root} hold no *.{image_ext} image with a "
            f"*.{gt_ext} label map of the same name. Run `python datasets/{prepare_script}` again as "
            "datasets/README.md explains."
        )
    return records


def register_sem_seg_dataset(
    name: str,
    *,
    image_dirname: str,
    sem_seg_dirname: str,
    class_json: Optional[str],
    ignore_label: int,
    prepare_script: Optional[str],
    stuff_classes: Sequence[str] = None,
    evaluator_type: str = "sem_seg",
    image_ext: str = "jpg",
    gt_ext: str = "png",
    loader: Optional[Callable[[str, str], List[dict]]] = None,
    missing_hint: Optional[str] = None,
    **extra_metadata,
) -> None:
    """
    Registers `name` in detectron2's DatasetCatalog (records from detectron2's `load_sem_seg`) and
    MetadataCatalog.

    Args:
        image_dirname, sem_seg_dirname: image and label-map folders, relative to the datasets root.
        class_json: the class-name JSON (relative to the repository root, see `resolve_class_json`) of the
            dataset's vocabulary; stored as metadata `class_json` for the model's test vocabulary.
        ignore_label: label-map value of pixels that are not evaluated.
        prepare_script: the datasets/ script that writes `sem_seg_dirname` (named in the missing-folder error).
        stuff_classes: the evaluated classes, label i = stuff_classes[i]; default: the names in `class_json`.
        evaluator_type: "sem_seg", or "sem_seg_background" (see sed.evaluation.BackgroundSemSegEvaluator).
        image_ext, gt_ext: file extensions (without the dot) of images and label maps.
        loader: `loader(image_root, sem_seg_root)` -> records, instead of detectron2's `load_sem_seg` (which pairs
            files by name stem); for datasets with other naming rules (sed/data/datasets/register_custom.py).
        missing_hint: what to do when a folder is missing, instead of naming `prepare_script`.
        extra_metadata: more metadata fields.
    """
    stuff_classes = list(stuff_classes) if stuff_classes is not None else load_class_names(class_json)
    DatasetCatalog.register(
        name,
        partial(_load, name, image_dirname, sem_seg_dirname, image_ext, gt_ext, prepare_script, loader, missing_hint),
    )
    MetadataCatalog[name] = SemSegMetadata(
        name=name,
        image_dirname=image_dirname,
        sem_seg_dirname=sem_seg_dirname,
        stuff_classes=stuff_classes,
        stuff_colors=colors_by_name(stuff_classes),
        ignore_label=ignore_label,
        evaluator_type=evaluator_type,
        class_json=class_json,
        image_ext=image_ext,
        gt_ext=gt_ext,
        **extra_metadata,
    )
