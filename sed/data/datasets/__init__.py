"""Dataset registrations; importing this package registers every dataset in detectron2's catalogs."""

from . import (  # noqa: F401
    register_ade20k_150,
    register_ade20k_full,
    register_cityscapes,
    register_coco_stuff,
    register_custom,
    register_pascal_context,
    register_synthetic,
    register_voc,
)
from .register_custom import register_custom_dataset, register_custom_datasets
from .register_sem_seg import datasets_root, register_sem_seg_dataset

__all__ = ["datasets_root", "register_custom_dataset", "register_custom_datasets", "register_sem_seg_dataset"]
