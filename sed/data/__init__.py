"""Data: dataset registrations (on import), user vocabularies, augmentations and dataset mappers."""

from . import datasets  # noqa: F401  registers the datasets
from .augmentations import ColorAugSSD, ColorAugSSDTransform, RandomResizeByRatio, build_semantic_train_augmentations
from .build import build_test_mapper, build_train_mapper
from .dataset_mappers import MaskFormerSemanticDatasetMapper

__all__ = [
    "ColorAugSSD",
    "ColorAugSSDTransform",
    "MaskFormerSemanticDatasetMapper",
    "RandomResizeByRatio",
    "build_semantic_train_augmentations",
    "build_test_mapper",
    "build_train_mapper",
]
