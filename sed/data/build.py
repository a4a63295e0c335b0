"""Picks the dataset mappers of training (by INPUT.DATASET_MAPPER_NAME) and of testing."""

from typing import Callable, Dict

from detectron2.data import DatasetMapper

from .dataset_mappers import MaskFormerSemanticDatasetMapper, SemSegTestDatasetMapper

__all__ = ["TRAIN_MAPPERS", "build_train_mapper", "build_test_mapper"]

# INPUT.DATASET_MAPPER_NAME -> a mapper class built as `cls(cfg, True)` (detectron2 @configurable style).
TRAIN_MAPPERS: Dict[str, Callable] = {"mask_former_semantic": MaskFormerSemanticDatasetMapper}


def build_train_mapper(cfg):
    """The training mapper named by cfg.INPUT.DATASET_MAPPER_NAME, built from `cfg`."""
    name = cfg.INPUT.DATASET_MAPPER_NAME
    if name not in TRAIN_MAPPERS:
        raise ValueError(f"unknown INPUT.DATASET_MAPPER_NAME {name!r}; valid names: {sorted(TRAIN_MAPPERS)}")
    return TRAIN_MAPPERS[name](cfg, True)


def build_test_mapper(cfg) -> DatasetMapper:
    """detectron2's test mapper (`SemSegTestDatasetMapper`): the image resized by ResizeShortestEdge(
    INPUT.MIN_SIZE_TEST, INPUT.MAX_SIZE_TEST), with the original "height" / "width" kept for resizing predictions
    back."""
    return SemSegTestDatasetMapper(cfg, is_train=False)
