"""The test mapper of semantic segmentation: detectron2's test-time DatasetMapper, reading images with
`sed.data.image_io` (16-bit greyscale scaled, a bad file named) and leaving the label maps to the evaluator."""

import copy

import numpy as np
import torch
from detectron2.data import DatasetMapper
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T

from ..augmentations import build_test_resize
from ..image_io import read_image

__all__ = ["SemSegTestDatasetMapper"]


class SemSegTestDatasetMapper(DatasetMapper):
    """Maps a record {"file_name", ...} to {"image": uint8 (3, H', W') resized by the test augmentations (channels in
    the config's INPUT.FORMAT), "height", "width": the file's size, the record's other fields}. Built as
    detectron2's `DatasetMapper(cfg, is_train=False)`; the label map is not read (the evaluator reads it)."""

    @classmethod
    def from_config(cls, cfg, is_train: bool = False):
        ret = super().from_config(cfg, is_train)
        resize = build_test_resize(cfg)  # detectron2's test resize, at least 1 px a side
        ret["augmentations"] = [resize] if resize is not None else []
        return ret

    def __call__(self, dataset_dict: dict) -> dict:
        dataset_dict = copy.deepcopy(dataset_dict)
        dataset_dict.pop("sem_seg_file_name", None)
        image = read_image(dataset_dict["file_name"], format=self.image_format)
        utils.check_image_size(dataset_dict, image)
        aug_input = T.AugInput(image)
        self.augmentations(aug_input)
        dataset_dict["image"] = torch.as_tensor(np.ascontiguousarray(aug_input.image.transpose(2, 0, 1)))
        return dataset_dict
