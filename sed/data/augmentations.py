"""Training augmentations of semantic segmentation: the geometric ones come from detectron2, plus SSD-style
photometric distortion and mmsegmentation-style resizing by a random ratio of a base scale.

All randomness is drawn from numpy's global generator (as detectron2's augmentations do), so seeding numpy
(detectron2 seeds each data-loader worker) makes a pipeline deterministic.
"""

from typing import List, Optional, Sequence

import cv2
import numpy as np
from detectron2.data import transforms as T
from fvcore.transforms.transform import Transform
from PIL import Image

__all__ = [
    "ColorAugSSDTransform",
    "ColorAugSSD",
    "RandomResizeByRatio",
    "ResizeShortestEdge",
    "build_test_resize",
    "build_semantic_train_augmentations",
]


def _affine_uint8(x: np.ndarray, alpha: float, beta: float) -> np.ndarray:
    """x * alpha + beta, clipped to 0..255 and truncated to uint8 after every step, like SSD's distortion."""
    return np.clip(x.astype(np.float32) * alpha + beta, 0, 255).astype(np.uint8)


class ColorAugSSDTransform(Transform):
    """
    SSD's photometric distortion with fixed parameters (draw them with :class:`ColorAugSSD`): brightness shift,
    contrast scaling (before or after the colour changes), saturation scaling and hue rotation, each skipped
    when its parameter is None. Labels and coordinates are unchanged.
    """

    def __init__(
        self,
        img_format: str,
        brightness: Optional[float] = None,
        contrast: Optional[float] = None,
        contrast_first: bool = True,
        saturation: Optional[float] = None,
        hue: Optional[int] = None,
    ):
        """
        Args:
            img_format: "RGB" or "BGR", the channel order of the images it is applied to.
            brightness: added to every channel (-32..32 in SSD).
            contrast: every channel is multiplied by it (0.5..1.5 in SSD).
            contrast_first: apply contrast before (True) or after (False) saturation and hue.
            saturation: the HSV saturation is multiplied by it (0.5..1.5 in SSD).
            hue: added to the OpenCV HSV hue (0..179, wraps around; -18..18 in SSD).
        """
        super().__init__()
        if img_format not in ("RGB", "BGR"):
            raise ValueError(f"ColorAugSSDTransform needs RGB or BGR images, got format {img_format!r}")
        self._set_attributes(locals())

    def apply_image(self, img: np.ndarray) -> np.ndarray:
        """img: (H, W, 3) uint8 in `img_format` -> same shape and dtype.

        Saturation and hue each convert to HSV and back, as detectron2's PointRend transform does (the uint8
        round trips are part of the result)."""
        if self.brightness is not None:
            img = _affine_uint8(img, 1.0, self.brightness)
        if self.contrast is not None and self.contrast_first:
            img = _affine_uint8(img, self.contrast, 0.0)
        if self.saturation is not None:
            img = self._in_hsv(img, lambda hsv: _affine_uint8(hsv[:, :, 1], self.saturation, 0.0), channel=1)
        if self.hue is not None:
            img = self._in_hsv(img, lambda hsv: (hsv[:, :, 0].astype(np.int64) + self.hue) % 180, channel=0)
        if self.contrast is not None and not self.contrast_first:
            img = _affine_uint8(img, self.contrast, 0.0)
        return img

    def _in_hsv(self, img: np.ndarray, new_channel, channel: int) -> np.ndarray:
        """img with one channel of its OpenCV HSV form replaced by new_channel(hsv)."""
        rgb = self.img_format == "RGB"
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV if rgb else cv2.COLOR_BGR2HSV)
        hsv[:, :, channel] = new_channel(hsv)
        return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB if rgb else cv2.COLOR_HSV2BGR)

    def apply_coords(self, coords: np.ndarray) -> np.ndarray:
        return coords

    def apply_segmentation(self, segmentation: np.ndarray) -> np.ndarray:
        return segmentation


class ColorAugSSD(T.Augmentation):
    """Draws a :class:`ColorAugSSDTransform`: each distortion is applied with probability 1/2 with a uniform
    random strength, and contrast goes first or last with probability 1/2."""

    def __init__(
        self,
        img_format: str,
        brightness_delta: float = 32,
        contrast_range=(0.5, 1.5),
        saturation_range=(0.5, 1.5),
        hue_delta: int = 18,
    ):
        super().__init__()
        self._init(locals())

    def get_transform(self, image):
        def maybe(draw):
            return draw() if np.random.randint(2) else None

        return ColorAugSSDTransform(
            self.img_format,
            brightness=maybe(lambda: np.random.uniform(-self.brightness_delta, self.brightness_delta)),
            contrast_first=bool(np.random.randint(2)),
            contrast=maybe(lambda: np.random.uniform(*self.contrast_range)),
            saturation=maybe(lambda: np.random.uniform(*self.saturation_range)),
            hue=maybe(lambda: int(np.random.randint(-self.hue_delta, self.hue_delta + 1))),
        )


class RandomResizeByRatio(T.Augmentation):
    """
    mmsegmentation's `Resize(img_scale, ratio_range, keep_ratio=True)`: draw r uniformly in `ratio_range`, then
    resize, keeping the aspect ratio, to the largest size whose long side is at most int(long * r) and short
    side at most int(short * r), where (long, short) = `base_scale` (e.g. (2048, 640) for ADE20K at 640 crops).
    The arithmetic is mmcv's `rescale_size`: factor = min(int(long * r) / long side, int(short * r) / short
    side), each side becomes int(side * factor + 0.5) (rounded half up).
    """

    def __init__(self, base_scale: Sequence[int], ratio_range: Sequence[float], interp=Image.BILINEAR):
        super().__init__()
        self._init(locals())

    def get_transform(self, image):
        h, w = image.shape[:2]
        ratio = np.random.uniform(*self.ratio_range)
        long_side, short_side = int(max(self.base_scale) * ratio), int(min(self.base_scale) * ratio)
        scale = min(long_side / max(h, w), short_side / min(h, w))
        # at least 1 px a side: a 1 x 5000 image would round to 0 rows
        return T.ResizeTransform(h, w, max(int(h * scale + 0.5), 1), max(int(w * scale + 0.5), 1), self.interp)


class ResizeShortestEdge(T.ResizeShortestEdge):
    """detectron2's ResizeShortestEdge whose output has at least 1 px a side. detectron2 rounds a side to 0 px when
    the long side's limit (max_size) shrinks the image below half a pixel across (e.g. 1 x 5000 px at
    MIN_SIZE 384, MAX_SIZE 1333), which then fails inside the resize; here that side stays 1 px."""

    def get_transform(self, image):
        transform = super().get_transform(image)
        if isinstance(transform, T.ResizeTransform) and min(transform.new_h, transform.new_w) < 1:
            return T.ResizeTransform(
                transform.h, transform.w, max(transform.new_h, 1), max(transform.new_w, 1), transform.interp
            )
        return transform


def build_test_resize(cfg) -> Optional[T.Augmentation]:
    """The test-time resize of detectron2's test data loader and DefaultPredictor (INPUT.MIN_SIZE_TEST,
    INPUT.MAX_SIZE_TEST), at least 1 px a side; None when INPUT.MIN_SIZE_TEST is 0 (no resize)."""
    if cfg.INPUT.MIN_SIZE_TEST <= 0:
        return None
    return ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST, "choice")


def build_semantic_train_augmentations(cfg, ignore_label: int) -> List[T.Augmentation]:
    """
    The training augmentations, in order:

    1. resize: `ResizeShortestEdge(INPUT.MIN_SIZE_TRAIN, INPUT.MAX_SIZE_TRAIN, INPUT.MIN_SIZE_TRAIN_SAMPLING)`,
       or, when INPUT.RESIZE_RATIO_RANGE is set, `RandomResizeByRatio(INPUT.RESIZE_BASE_SCALE, that range)`;
    2. crop (if INPUT.CROP.ENABLED) of INPUT.CROP.TYPE / SIZE, re-drawn (up to 10 times) while one class
       covers more than INPUT.CROP.SINGLE_CATEGORY_MAX_AREA of it, `ignore_label` not counted;
    3. SSD photometric distortion if INPUT.COLOR_AUG_SSD;
    4. flip per INPUT.RANDOM_FLIP ("horizontal", "vertical" or "none").

    Mappers that need more can extend the returned list.
    """
    if cfg.INPUT.RESIZE_RATIO_RANGE:
        augs = [RandomResizeByRatio(cfg.INPUT.RESIZE_BASE_SCALE, cfg.INPUT.RESIZE_RATIO_RANGE)]
    else:
        augs = [
            ResizeShortestEdge(cfg.INPUT.MIN_SIZE_TRAIN, cfg.INPUT.MAX_SIZE_TRAIN, cfg.INPUT.MIN_SIZE_TRAIN_SAMPLING)
        ]
    if cfg.INPUT.CROP.ENABLED:
        augs.append(
            T.RandomCrop_CategoryAreaConstraint(
                cfg.INPUT.CROP.TYPE, cfg.INPUT.CROP.SIZE, cfg.INPUT.CROP.SINGLE_CATEGORY_MAX_AREA, ignore_label
            )
        )
    if cfg.INPUT.COLOR_AUG_SSD:
        augs.append(ColorAugSSD(cfg.INPUT.FORMAT))
    if cfg.INPUT.RANDOM_FLIP != "none":
        augs.append(
            T.RandomFlip(horizontal=cfg.INPUT.RANDOM_FLIP == "horizontal", vertical=cfg.INPUT.RANDOM_FLIP == "vertical")
        )
    return augs
