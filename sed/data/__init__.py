"""Data: class-name vocabularies, dataset registrations (on import), augmentations and dataset mappers."""
from . import datasets  # noqa: F401  registers the datasets
from .augmentations import ColorAugSSD, ColorAugSSDTransform, RandomResizeByRatio, build_semantic_train_augmentations
from .build import build_test_mapper, build_train_mapper, register_train_mapper
from .class_names import load_class_names, resolve_class_json
from .dataset_mappers import MaskFormerSemanticDatasetMapper

__all__ = [
    "ColorAugSSD",
    "ColorAugSSDTransform",
    "MaskFormerSemanticDatasetMapper",
    "RandomResizeByRatio",
    "build_semantic_train_augmentations",
    "build_test_mapper",
    "build_train_mapper",
    "load_class_names",
    "register_train_mapper",
    "resolve_class_json",
]
