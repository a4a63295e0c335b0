"""The SED meta-architecture: detectron2's input/output contract around `SEDHead`."""

import torch
import torch.nn.functional as F
from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, build_sem_seg_head
from detectron2.structures import ImageList
from torch import nn

from ...checkpoint.fit import describe_mismatch
from ...utils.class_names import load_class_names, test_vocabulary
from ...utils.precision import check_precision, inference_precision
from ..inference import sliding_window_from_config, sliding_window_inference
from ..postprocess import FINITE_KEY, LABELS_KEY, resized_labels
from ..protocol import SegmentationModel


def _test_class_names(cfg):
    if not cfg.MODEL.SEM_SEG_HEAD.TEST_CLASS_JSON and not cfg.DATASETS.TEST:
        raise ValueError(
            "MODEL.SEM_SEG_HEAD.TEST_CLASS_JSON is empty and DATASETS.TEST names no dataset: "
            "set one of them to give SED its test vocabulary."
        )
    return test_vocabulary(cfg, cfg.DATASETS.TEST[0] if cfg.DATASETS.TEST else None)


# What a user whose checkpoint does not fit must change.
CHECKPOINT_ADVICE = (
    "A checkpoint loads only into the config it was trained with: SED-B checkpoints with "
    "configs/convnextB_768.yaml, SED-L ones with configs/convnextL_768.yaml (MODEL.ENC.CLIP_MODEL_NAME and "
    "MODEL.SEM_SEG_HEAD.DECODER_GUIDANCE_DIMS must match); checkpoints of other models do not load."
)


def resize_probabilities(prob, size):
    """(T, h, w) class probabilities -> (T, *size), bilinear (align_corners=False).

    Classes that are zero everywhere (rejected by category early rejection) stay zero without being resized,
    which is what resizing them would give: with hundreds of classes most of them are, and resizing is costly.
    """
    present = (prob != 0).flatten(1).any(1)
    if bool(present.all()):
        return F.interpolate(prob[None], size=size, mode="bilinear", align_corners=False)[0]
    out = prob.new_zeros(prob.shape[0], *size)
    out[present] = F.interpolate(prob[present][None], size=size, mode="bilinear", align_corners=False)[0]
    return out


@META_ARCH_REGISTRY.register()
class SED(SegmentationModel, nn.Module):
    """Open-vocabulary semantic segmentation with a CLIP ConvNeXt encoder and a gradual fusion decoder.

    Input: detectron2's list of dicts with "image" (3, H, W) in 0..255 (INPUT.FORMAT channel order),
    optional "height"/"width" (output size), and "sem_seg" (H, W) class ids in training.
    Output (inference): [{"sem_seg": (T, height, width) probabilities}] over `test_class_names`; while
    `labels_only` is set (evaluation, see `sed.modeling.postprocess.label_outputs`), [{"sem_seg_labels":
    (height, width) int64 argmax of those probabilities, "num_classes": T}] without building them.
    """

    open_vocabulary = True
    supports_fast_inference = True
    supports_label_maps = True

    @configurable
    def __init__(
        self,
        *,
        sem_seg_head,
        train_class_names,
        test_class_names,
        clip_pixel_mean,
        clip_pixel_std,
        clip_resolution=(768, 768),
        size_divisibility=-1,
        input_format="RGB",
        fast_inference=False,
        topk=8,
        sliding_window=None,
        aligned_postprocess=False,
        clip_lr_multiplier=1.0,
        precision="fp32",
    ):
        """
        Args:
            sem_seg_head: an `SEDHead`.
            train_class_names / test_class_names: vocabularies of training and inference (T names each). The
                test vocabulary may be replaced at any time (`model.test_class_names = [...]`).
            clip_pixel_mean, clip_pixel_std: CLIP normalisation, RGB 0..255.
            clip_resolution: every image is resized to this (whatever its aspect ratio) for the encoder.
            size_divisibility: training batches are padded to a multiple of this (the authors' behaviour).
            input_format: "RGB" or "BGR" channel order of "image".
            fast_inference, topk: category early rejection, keeping the top-k classes of every pixel.
            sliding_window: ((h, w) window, (h, w) stride) in input pixels: each window is segmented on its own
                (resized to the CLIP resolution) and the probabilities of overlapping windows are averaged.
                None: the whole image at once (the authors' evaluation).
            aligned_postprocess: False (the authors'): the (T, S/4, S/4) map is first cut to the input image's
                size, as detectron2's `sem_seg_postprocess` does, then resized; an image under S/4 px on a side
                is thereby stretched. True: the whole map, which covers the whole image, is resized.
            clip_lr_multiplier: lr factor of the CLIP image tower in training (`lr_multiplier`).
            precision: inference precision, "fp32", "bf16" or "fp16" (see `sed.utils.precision`); the outputs
                are float32 whatever it is. Training ignores it (SOLVER.AMP.ENABLED sets its precision).
        """
        super().__init__()
        self.sem_seg_head = sem_seg_head
        self.train_class_names = list(train_class_names)
        self.test_class_names = list(test_class_names)
        # Not persistent: the released checkpoints hold no such buffers.
        self.register_buffer("clip_pixel_mean", torch.tensor(clip_pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("clip_pixel_std", torch.tensor(clip_pixel_std).view(-1, 1, 1), False)
        self.clip_resolution = tuple(clip_resolution)
        self.size_divisibility = size_divisibility
        self.input_format = input_format
        self.fast_inference = fast_inference
        self.topk = topk
        self.sliding_window = sliding_window
        self.aligned_postprocess = aligned_postprocess
        self.labels_only = False
        self.clip_lr_multiplier = clip_lr_multiplier
        self.precision = check_precision(precision)
        self.register_load_state_dict_post_hook(self._check_checkpoint_fits)

    @classmethod
    def from_config(cls, cfg):
        return {
            "sem_seg_head": build_sem_seg_head(cfg, None),
            "train_class_names": load_class_names(cfg.MODEL.SEM_SEG_HEAD.TRAIN_CLASS_JSON),
            "test_class_names": _test_class_names(cfg),
            "clip_pixel_mean": cfg.MODEL.CLIP_PIXEL_MEAN,
            "clip_pixel_std": cfg.MODEL.CLIP_PIXEL_STD,
            "clip_resolution": cfg.MODEL.CLIP_RESOLUTION,
            "size_divisibility": cfg.INPUT.SIZE_DIVISIBILITY,
            "input_format": cfg.INPUT.FORMAT,
            "fast_inference": cfg.TEST.FAST_INFERENCE,
            "topk": cfg.TEST.TOPK,
            "sliding_window": sliding_window_from_config(cfg),
            "aligned_postprocess": cfg.TEST.ALIGNED_POSTPROCESS,
            "clip_lr_multiplier": cfg.SOLVER.CLIP_MULTIPLIER,
            "precision": cfg.TEST.PRECISION,
        }

    def lr_multiplier(self, param_name):
        """`clip_lr_multiplier` for the CLIP model's parameters (those trained: the image tower), else 1."""
        return self.clip_lr_multiplier if "clip_model" in param_name.split(".")[:-1] else 1.0

    def benchmark_parts(self):
        """The encoder (`SEDPredictor.encode`: CLIP image encoder + cost map) and the decoder (full, or with
        category early rejection)."""
        predictor = self.sem_seg_head.predictor
        return {
            "encoder": (predictor, ["encode"]),
            "decoder": (predictor.transformer, ["forward", "forward_with_rejection"]),
        }

    @classmethod
    def evaluation_settings(cls, class_json, benchmark=False):
        """TEST_CLASS_JSON; on the open-vocabulary benchmarks, the authors' class-attention pooling 1x1 too."""
        settings = {"MODEL.SEM_SEG_HEAD.TEST_CLASS_JSON": class_json}
        return {**settings, "MODEL.SEM_SEG_HEAD.POOLING_SIZES": [1, 1]} if benchmark else settings

    @property
    def device(self):
        return self.clip_pixel_mean.device

    @staticmethod
    def _check_checkpoint_fits(module, incompatible):
        if incompatible.missing_keys or incompatible.unexpected_keys:
            raise ValueError(describe_mismatch(module, incompatible, CHECKPOINT_ADVICE))

    def _normalize(self, image):
        image = image.to(self.device, non_blocking=True).float()
        if self.input_format == "BGR":
            image = image.flip(0)
        return (image - self.clip_pixel_mean) / self.clip_pixel_std

    def _resize_for_clip(self, images):
        return F.interpolate(images, size=self.clip_resolution, mode="bilinear", align_corners=False)

    def forward(self, batched_inputs):
        if self.training:
            return self.forward_train(batched_inputs)
        return self.inference(batched_inputs)

    def forward_train(self, batched_inputs):
        """dict of losses. The batch is padded (ignored in the targets) and resized as a whole, as the authors do."""
        images = ImageList.from_tensors(
            [self._normalize(x["image"]) for x in batched_inputs], max(self.size_divisibility, 0)
        )
        targets = ImageList.from_tensors(
            [x["sem_seg"].to(self.device) for x in batched_inputs],
            max(self.size_divisibility, 0),
            pad_value=self.sem_seg_head.ignore_value,
        ).tensor
        return self.sem_seg_head.losses(self._resize_for_clip(images.tensor), self.train_class_names, targets)

    def _probabilities(self, images):
        """(B, T, S/4, S/4) probabilities over the test vocabulary of (B, 3, h, w) normalised images."""
        return self.sem_seg_head.probabilities(
            self._resize_for_clip(images), self.test_class_names, self.topk if self.fast_inference else None
        )

    def _window_probabilities(self, windows):
        """(B, T, h, w) probabilities of (B, 3, h, w) sliding windows, at the windows' own size."""
        return F.interpolate(
            self._probabilities(windows), size=windows.shape[-2:], mode="bilinear", align_corners=False
        )

    def inference(self, batched_inputs):
        """Each image is resized to the CLIP resolution on its own, so a batch equals its images one by one."""
        images = [self._normalize(x["image"]) for x in batched_inputs]
        with inference_precision(self.device, self.precision):
            if self.sliding_window is None:
                probs = self._probabilities(torch.cat([self._resize_for_clip(image[None]) for image in images]))
            else:
                probs = [
                    sliding_window_inference(self._window_probabilities, image, *self.sliding_window)
                    for image in images
                ]
        results = []
        for prob, x in zip(probs, batched_inputs):
            image_size = x["image"].shape[-2:]
            if self.sliding_window is None and not self.aligned_postprocess:
                # detectron2's sem_seg_postprocess, as the authors call it: a crop to the input's size.
                prob = prob[:, : image_size[0], : image_size[1]]
            size = (x.get("height", image_size[0]), x.get("width", image_size[1]))
            if self.labels_only:
                results.append(
                    {
                        LABELS_KEY: resized_labels(prob, size),
                        "num_classes": prob.shape[0],
                        FINITE_KEY: bool(torch.isfinite(prob).all()),
                    }
                )
            else:
                results.append({"sem_seg": resize_probabilities(prob, size)})
        return results
