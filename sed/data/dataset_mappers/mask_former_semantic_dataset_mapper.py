"""The training mapper of semantic segmentation ("mask_former_semantic"): reads an image and its label map,
augments both, pads them, and returns tensors."""

import copy
from typing import List

import numpy as np
import torch
from detectron2.config import configurable
from detectron2.data import MetadataCatalog
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from torch.nn import functional as F

from ..augmentations import build_semantic_train_augmentations
from ..image_io import read_image
from ..label_maps import read_label_map

__all__ = ["MaskFormerSemanticDatasetMapper"]


class MaskFormerSemanticDatasetMapper:
    """
    Maps a dataset record {"file_name", "sem_seg_file_name", ...} (as detectron2's `load_sem_seg` makes them)
    to the training input of a semantic segmentation model:

    * "image": uint8 tensor (3, H, W), channels in `image_format` order;
    * "sem_seg": int64 tensor (H, W) of labels, `ignore_label` where there is none (including padding);
    * the record's other fields, plus "height" / "width" of the image file.

    Augmentations: see :func:`sed.data.augmentations.build_semantic_train_augmentations`. Then image and labels
    are padded at the bottom and right to a multiple of `size_divisibility` (if > 0): the image with 128 (as the
    authors' mapper does), the labels with `ignore_label`.
    """

    @configurable
    def __init__(
        self,
        is_train: bool = True,
        *,
        augmentations: List[T.Augmentation],
        image_format: str,
        ignore_label: int,
        size_divisibility: int,
        num_classes: int,
    ):
        """
        Args:
            is_train: must be True; evaluation uses `sed.data.build_test_mapper`.
            augmentations: applied in order to the image and its label map.
            image_format: detectron2 image format to read images in ("RGB" or "BGR").
            ignore_label: label of unlabelled pixels, used for padding and by the crop's area constraint.
            size_divisibility: pad to a multiple of this; <= 0 for no padding.
            num_classes: label values are 0..num_classes - 1 or `ignore_label`; a label map with any other value,
                or of another size than its image, raises `ImageFileError` naming it (`sed.data.label_maps`).
        """
        if not is_train:
            raise ValueError(
                "MaskFormerSemanticDatasetMapper is a training mapper; for testing use sed.data.build_test_mapper"
            )
        self.is_train = is_train
        self.augmentations = T.AugmentationList(augmentations)
        self.image_format = image_format
        self.ignore_label = ignore_label
        self.size_divisibility = size_divisibility
        self.num_classes = num_classes

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        # All training sets share the label space of the first one (ignore value included).
        metadata = MetadataCatalog.get(cfg.DATASETS.TRAIN[0])
        ignore_label = metadata.ignore_label
        return {
            "is_train": is_train,
            "augmentations": build_semantic_train_augmentations(cfg, ignore_label),
            "image_format": cfg.INPUT.FORMAT,
            "ignore_label": ignore_label,
            "size_divisibility": cfg.INPUT.SIZE_DIVISIBILITY,
            "num_classes": len(metadata.stuff_classes),
        }

    def __call__(self, dataset_dict: dict) -> dict:
        dataset_dict = copy.deepcopy(dataset_dict)
        image = read_image(dataset_dict["file_name"], format=self.image_format)  # names a bad file; 16-bit scaled
        utils.check_image_size(dataset_dict, image)
        if "sem_seg_file_name" not in dataset_dict:
            raise ValueError(f"{dataset_dict['file_name']}: a training record needs 'sem_seg_file_name'")
        # Float labels make detectron2 resize them with torch's nearest interpolation, as the authors' mapper
        # does (uint8 ones would go through PIL, which samples pixel centres differently); 16-bit labels
        # could not go through PIL anyway. Nearest interpolation keeps the values exact.
        sem_seg = read_label_map(
            dataset_dict.pop("sem_seg_file_name"), self.num_classes, self.ignore_label, image.shape[:2]
        ).astype(np.float64)

        aug_input = T.AugInput(image, sem_seg=sem_seg)
        self.augmentations(aug_input)
        image = torch.as_tensor(np.ascontiguousarray(aug_input.image.transpose(2, 0, 1)))
        sem_seg = torch.as_tensor(aug_input.sem_seg.astype(np.int64))

        if self.size_divisibility > 0:
            h, w = sem_seg.shape
            padding = (0, -w % self.size_divisibility, 0, -h % self.size_divisibility)  # left, right, top, bottom
            image = F.pad(image, padding, value=128)
            sem_seg = F.pad(sem_seg, padding, value=self.ignore_label)

        dataset_dict["image"] = image
        dataset_dict["sem_seg"] = sem_seg
        return dataset_dict
