"""The ECENet meta-architecture: normalisation, backbone, head, losses and test-time inference."""

from functools import partial
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, Backbone, build_backbone, build_sem_seg_head
from detectron2.structures import ImageList
from torch import nn

from ..inference import multi_scale_inference, sliding_window_from_config, sliding_window_inference
from ..protocol import SegmentationModel
from .aggregation import resize
from .losses import ECENetCriterion

__all__ = ["ECENet"]


@META_ARCH_REGISTRY.register()
class ECENet(SegmentationModel, nn.Module):
    """ECENet (ICCV 2023) semantic segmentation: a backbone, the ECENet head and its losses."""

    @configurable
    def __init__(
        self,
        *,
        backbone: Backbone,
        sem_seg_head: nn.Module,
        criterion: ECENetCriterion,
        pixel_mean: Sequence[float],
        pixel_std: Sequence[float],
        sliding_window: Optional[Tuple[Tuple[int, int], Tuple[int, int]]] = None,
        test_scales: Sequence[float] = (1.0,),
        test_flip: bool = False,
        head_lr_multiplier: float = 1.0,
        backbone_lr_multiplier: float = 1.0,
    ):
        """
        Args:
            backbone: returns the levels the head reads.
            sem_seg_head: ECENetHead (or any head returning {"logits": (B, K, h, w), ...}).
            criterion: computes the training losses from the head's outputs.
            pixel_mean, pixel_std: per-channel normalisation of the input images (their channel order, 0..255).
            sliding_window: ((h, w) window, (h, w) stride) for test-time sliding windows; None = whole image.
            test_scales, test_flip: multi-scale / flip test; (1.0,) and False = single scale.
            head_lr_multiplier: lr factor of the head's parameters (`lr_multiplier`).
            backbone_lr_multiplier: lr factor of the backbone's parameters (`lr_multiplier`).
        """
        super().__init__()
        self.backbone = backbone
        self.sem_seg_head = sem_seg_head
        self.criterion = criterion
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)
        self.sliding_window = sliding_window
        self.test_scales = tuple(test_scales)
        self.test_flip = test_flip
        self.head_lr_multiplier = head_lr_multiplier
        self.backbone_lr_multiplier = backbone_lr_multiplier

    @classmethod
    def from_config(cls, cfg):
        backbone = build_backbone(cfg)
        return {
            "backbone": backbone,
            "sem_seg_head": build_sem_seg_head(cfg, backbone.output_shape()),
            "criterion": ECENetCriterion(cfg),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "sliding_window": sliding_window_from_config(cfg),
            "test_scales": cfg.TEST.AUG.SCALES if cfg.TEST.AUG.ENABLED else (1.0,),
            "test_flip": cfg.TEST.AUG.ENABLED and cfg.TEST.AUG.FLIP,
            "head_lr_multiplier": cfg.MODEL.ECENET.HEAD_LR_MULTIPLIER,
            "backbone_lr_multiplier": cfg.SOLVER.BACKBONE_MULTIPLIER,
        }

    def lr_multiplier(self, param_name: str) -> float:
        """The lr factor of parameter `param_name` (a name of `named_parameters()`; the model protocol): the head
        trains at `head_lr_multiplier` x SOLVER.BASE_LR (the recipe's x10), the backbone at
        `backbone_lr_multiplier` (SOLVER.BACKBONE_MULTIPLIER) x SOLVER.BASE_LR."""
        factor = self.head_lr_multiplier if param_name.startswith("sem_seg_head.") else 1.0
        return factor * (self.backbone_lr_multiplier if "backbone" in param_name.split(".")[:-1] else 1.0)

    def benchmark_parts(self):
        """The backbone and the head (every scale and flip of multi-scale inference adds to each)."""
        return {"backbone": (self.backbone, ["forward"]), "head": (self.sem_seg_head, ["forward"])}

    @property
    def device(self):
        return self.pixel_mean.device

    def forward(self, batched_inputs: List[Dict[str, torch.Tensor]]):
        """
        Args:
            batched_inputs: dicts with "image" (3, H, W) uint8 or float, 0..255; in training "sem_seg" (H, W)
                long labels (ignore value where unlabelled); in inference optional "height", "width" of the output.
        Returns:
            training: dict of weighted losses. Inference: per image {"sem_seg": (K, height, width) class
            probabilities}.
        """
        images = [(x["image"].to(self.device).float() - self.pixel_mean) / self.pixel_std for x in batched_inputs]
        if self.training:
            # different sizes are padded to a common one; padded pixels are ignored by the cross-entropy
            divisibility = self.backbone.size_divisibility
            images = ImageList.from_tensors(images, divisibility).tensor
            targets = ImageList.from_tensors(
                [x["sem_seg"].to(self.device) for x in batched_inputs],
                divisibility,
                pad_value=self.criterion.ignore_value,
            ).tensor
            return self.criterion(self.sem_seg_head(self.backbone(images)), targets)
        # One image at a time: the head pools and attends over whole maps, so padding images of other sizes to a
        # common batch size would change each one's result; one by one, a batch gives its images' own results.
        return [
            {"sem_seg": self.inference(image, (x.get("height", image.shape[-2]), x.get("width", image.shape[-1])))}
            for image, x in zip(images, batched_inputs)
        ]

    def segment(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) normalised images -> (B, K, h, w) logits (the head's stride-4 logits, resized)."""
        return resize(self.sem_seg_head(self.backbone(images))["logits"], images.shape[-2:])

    def inference(self, image: torch.Tensor, output_size: Tuple[int, int]) -> torch.Tensor:
        """(3, H, W) normalised image -> (K, *output_size) class probabilities, by the configured test mode."""
        if self.sliding_window is None:

            def predict(scaled):
                return self.segment(scaled[None])[0]
        else:
            crop_size, stride = self.sliding_window
            predict = partial(sliding_window_inference, self.segment, crop_size=crop_size, stride=stride)
        return multi_scale_inference(predict, image, self.test_scales, self.test_flip, output_size)
