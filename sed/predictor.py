"""Segment your own images with your own words: `OpenVocabSegmenter`.

Like detectron2's `DefaultPredictor` (config in, test-time resize, model, output at the input's size), with a
vocabulary per call, batches, and image files, arrays or PIL images as input:

    from sed import OpenVocabSegmenter
    segmenter = OpenVocabSegmenter("configs/convnextB_768.yaml", weights="path/to/sed_b.pth")
    result = segmenter.segment("street.jpg", vocabulary="car, road, tree/bush, sky")
    result.label_map        # (H, W) indices into result.class_names
    result.present_classes  # the classes found, largest first

Open-vocabulary models (SED; `capabilities(model).open_vocabulary`, see sed/modeling/protocol.py) take any
vocabulary; closed-vocabulary ones (ECENet) segment the classes of their config's DATASETS.TEST[0] and take no
other vocabulary.
"""

import logging
import os
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import torch
from detectron2.data import MetadataCatalog
from detectron2.modeling import build_model
from detectron2.utils.env import seed_all_rng
from PIL import Image, ImageOps

from . import config
from .checkpoint.loading import (
    CheckpointError,
    NonFiniteCheckpointError,
    UnreadableCheckpointError,
    UnsafeCheckpointError,
    load_checkpoint,
)
from .data.augmentations import build_test_resize
from .data.image_io import pil_to_rgb, read_error_reason, read_image
from .data.vocabulary import VocabularyError, parse_vocabulary
from .model_zoo import weights_uri
from .modeling.postprocess import LABELS_KEY, NonFiniteOutputError, output_is_finite
from .modeling.protocol import capabilities, inference_options
from .utils.visualization import class_areas

logger = logging.getLogger(__name__)

# Category early rejection (TEST.FAST_INFERENCE) is switched on by default above this many classes: there it
# saves most of the decoder's time, below it the top-k keeps nearly every class anyway.
FAST_INFERENCE_ABOVE = 50


@dataclass(eq=False)  # arrays have no single truth value to compare by
class SegmentationResult:
    """The segmentation of one image over a vocabulary of T classes.

    Attributes:
        label_map: (H, W) int32 indices into `class_names`, at the input image's size.
        class_names: the T class names, in label order (synonyms joined by ", ").
        probabilities: (T, H, W) float32 class probabilities, or None when not asked for (they take
            T * H * W * 4 bytes: 1.9 GB for 847 classes at 640x854).
    """

    label_map: np.ndarray
    class_names: List[str]
    probabilities: Optional[np.ndarray] = None

    @property
    def class_areas(self) -> Dict[str, float]:
        """{class name: share of the image's pixels} of the classes present, largest first."""
        return {self.class_names[label]: share for label, share in class_areas(self.label_map, len(self.class_names))}

    @property
    def present_classes(self) -> List[str]:
        """The classes given at least one pixel, largest first."""
        return list(self.class_areas)


@dataclass(eq=False)
class SegmentationFailure:
    """An image that `segment(..., errors="report")` could not segment, in that image's place among the results.

    Attributes:
        input: the image's file path, or "image N" (its 1-based position) for an array or PIL image.
        error: why, in one line (e.g. "not an image file (or of a format Pillow cannot read)").
    """

    input: str
    error: str


def summary_classes(label_map: np.ndarray, class_names: List[str]) -> List[Dict]:
    """The classes present in an (H, W) label map, largest first, as summary.json lists them for each image:
    [{"name", "label" (index into `class_names`), "area" (share of the pixels, 6 decimals)}, ...]."""
    return [
        {"name": class_names[label], "label": label, "area": round(share, 6)}
        for label, share in class_areas(label_map, len(class_names))
    ]


def segmentation_summary(
    class_names: List[str], fast_inference: bool, images: List[Dict], failed: List[Dict], **context
) -> Dict:
    """The content of summary.json (the demo and the web page write the same schema): `context` (e.g. the
    config file) first, then the vocabulary, whether category early rejection ran, one entry per segmented image
    (each with its `summary_classes`) and {"input", "error"} per input that failed."""
    return {**context, "class_names": class_names, "fast_inference": fast_inference, "images": images, "failed": failed}


def load_image(image):
    """A (H, W, 3) uint8 RGB array from an image file path, a PIL image or an array.

    Arrays are uint8 (H, W, 3) RGB, (H, W) grey or (H, W, 4) RGBA (alpha dropped). Files and PIL images of any
    mode are converted as `sed.data.image_io.pil_to_rgb` does (16-bit greyscale scaled to 8 bits) and turned
    upright by their EXIF orientation, as detectron2's data loading does.
    Raises FileNotFoundError, or `ImageFileError` (an OSError naming the file and why) for a file that cannot
    be read; ValueError for an empty image or a mode without an RGB form.
    """
    if isinstance(image, (str, os.PathLike)):
        return read_image(image, format="RGB")
    if isinstance(image, Image.Image):
        image = pil_to_rgb(ImageOps.exif_transpose(image))
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise ValueError(f"Image arrays must be uint8 (0..255), got {image.dtype}.")
        if image.ndim in (2, 3) and 0 in image.shape[:2]:
            raise ValueError(f"The image is empty (shape {image.shape}): it has no pixel to segment.")
        if image.ndim == 2:
            return np.repeat(image[:, :, None], 3, axis=2)
        if image.ndim == 3 and image.shape[2] in (3, 4):
            return image[:, :, :3]
        raise ValueError(f"Image arrays must be (H, W, 3) RGB, (H, W) or (H, W, 4), got shape {image.shape}.")
    raise TypeError(f"An image is a file path, a PIL image or a numpy array, not {type(image).__name__}.")


def _is_one_image(images):
    return isinstance(images, (str, os.PathLike, Image.Image, np.ndarray))


def _resolve_device(device, config_device):
    """`device`; None = the config's, or the CPU when that is CUDA and torch sees none."""
    if device is None:
        if config_device.startswith("cuda") and not torch.cuda.is_available():
            logger.info(f"MODEL.DEVICE={config_device} but torch sees no CUDA device: running on the CPU.")
            return "cpu"
        return config_device
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"Device {device!r} asked for, but torch sees no CUDA device; use 'cpu'.")
    return str(device)


def load_config(config_file, opts=(), weights=None, device=None):
    """The frozen config of `config_file` + `opts` (`sed.config.load_config`), with weights and device applied."""
    cfg = config.load_config(config_file, opts)
    if weights is not None:
        cfg.MODEL.WEIGHTS = weights_uri(weights)
    cfg.MODEL.DEVICE = _resolve_device(device, cfg.MODEL.DEVICE)
    cfg.freeze()
    return cfg


def _model_failure(error):
    """The one-line reason of an image the model could not segment (e.g. out of memory)."""
    return " ".join(f"the model failed on it ({type(error).__name__}: {error})".split())


def _dataset_class_names(cfg):
    """The classes of a closed-vocabulary model: those of its test dataset."""
    if not cfg.DATASETS.TEST:
        raise ValueError("This closed-vocabulary model's config names no DATASETS.TEST, whose classes it segments.")
    names = MetadataCatalog.get(cfg.DATASETS.TEST[0]).get("stuff_classes", None)
    if not names:
        raise ValueError(
            f"Dataset {cfg.DATASETS.TEST[0]!r} has no stuff_classes metadata (is it registered?); "
            "a closed-vocabulary model takes its class names from there."
        )
    return list(names)


def build_error_message(error, config_file, consequence=""):
    """The message for `error`, raised while an `OpenVocabSegmenter` was built from `config_file`: a checkpoint that
    does not fit the config says so before listing its tensors; an unreadable, unsafe or non-finite checkpoint, a
    bad config, option, device or CLIP weights give their own message. `consequence` (e.g. "no image was
    processed") follows a checkpoint's first line."""
    tail = f"; {consequence}." if consequence else ""
    if isinstance(error, (UnreadableCheckpointError, UnsafeCheckpointError, NonFiniteCheckpointError)):
        return f"{error}{tail}"
    if isinstance(error, CheckpointError):
        return f"The checkpoint does not match the config {config_file}{tail or '.'}\n{error}"
    return str(error)


class OpenVocabSegmenter:
    """A model built from a config (and checkpoint) that segments images over a vocabulary.

    Attributes:
        cfg: the frozen config.
        model: the detectron2 model, in eval mode.
        class_names: the vocabulary used when `segment` gets none (SED: the config's TEST_CLASS_JSON).
        open_vocabulary: whether the model takes any vocabulary (the model protocol's `open_vocabulary`).
    """

    def __init__(self, config_file, weights=None, opts=(), device=None, fast_inference=None):
        """
        Args:
            config_file: a yaml config (relative paths are also looked up in the repository root).
            weights: checkpoint path, URL or model-zoo name ("sed-b", downloaded once: MODEL_ZOO.md); None = the
                config's MODEL.WEIGHTS (which `opts` may set). Without any the model keeps its initialisation (a
                warning says so).
            opts: config overrides, ["KEY", "VALUE", ...].
            device: "cpu", "cuda", "cuda:1"...; None = the config's MODEL.DEVICE, or the CPU when that is CUDA
                and there is none.
            fast_inference: category early rejection (TEST.FAST_INFERENCE) of open-vocabulary models. None =
                as TEST.FAST_INFERENCE, and on for vocabularies above FAST_INFERENCE_ABOVE (50) classes.
        Raises:
            CheckpointError: the checkpoint does not fit the model the config builds.
            ValueError, FileNotFoundError: a bad config, opts, device or dataset; weights that are not there (a
                zoo download that failed: `sed.model_zoo.WeightsUnavailableError`, one line).
        """
        self.cfg = cfg = load_config(config_file, opts, weights, device)
        if cfg.INPUT.FORMAT not in ("RGB", "BGR"):
            raise ValueError(f"INPUT.FORMAT={cfg.INPUT.FORMAT!r}: only RGB and BGR models are supported.")
        if cfg.SEED >= 0:  # makes a model without weights (tests, demos) the same on every run
            seed_all_rng(cfg.SEED)
        self.model = build_model(cfg).eval()
        if cfg.MODEL.WEIGHTS:
            load_checkpoint(self.model, cfg.MODEL.WEIGHTS)
        else:
            logger.warning(
                "No MODEL.WEIGHTS: the model keeps its initial (partly random) weights, so its "
                "segmentations mean nothing."
            )
        self.open_vocabulary = capabilities(self.model).open_vocabulary
        self.class_names = list(self.model.test_class_names) if self.open_vocabulary else _dataset_class_names(cfg)
        self.fast_inference = fast_inference
        # The test-time resize of detectron2's DefaultPredictor and test data loader (None = none).
        self.resize = build_test_resize(cfg)

    @property
    def device(self):
        return torch.device(self.cfg.MODEL.DEVICE)

    def resolve_vocabulary(self, vocabulary=None):
        """The T class names `segment` uses for `vocabulary` (forms: `sed.data.vocabulary`); None = `class_names`.

        Raises VocabularyError for a malformed vocabulary, or any other than `class_names` for a
        closed-vocabulary model.
        """
        if vocabulary is None:
            return list(self.class_names)
        names = parse_vocabulary(vocabulary)
        if not self.open_vocabulary and names != self.class_names:
            raise VocabularyError(
                f"{type(self.model).__name__} is a closed-vocabulary model: it segments the "
                f"{len(self.class_names)} classes of {self.cfg.DATASETS.TEST[0]} only; leave the vocabulary out."
            )
        return names

    def uses_fast_inference(self, num_classes):
        """Whether a vocabulary of `num_classes` is segmented with category early rejection."""
        if not capabilities(self.model).supports_fast_inference:
            return False
        if self.fast_inference is not None:
            return self.fast_inference
        return self.cfg.TEST.FAST_INFERENCE or num_classes > FAST_INFERENCE_ABOVE

    def segment(self, images, vocabulary=None, batch_size=2, return_probabilities=False, errors="raise"):
        """Segments one image or a list of images.

        Args:
            images: an image (file path, PIL image or (H, W, 3) uint8 RGB array; see `load_image`) or a list.
                Any size from 1 x 1 px and any aspect ratio is taken (the test resize keeps each side >= 1 px).
            vocabulary: class names: a list, a comma-separated string ("cat, dog, grass/lawn"), a benchmark
                name ("ade150") or a JSON file; see `sed.data.vocabulary`. None = `class_names`.
            batch_size: images per forward pass. Results do not depend on it.
            return_probabilities: also return the (T, H, W) class probabilities.
            errors: "raise": an image that cannot be read or segmented raises (the others are lost);
                "report": it gives a `SegmentationFailure` (input, one-line reason) in its place and the
                others are segmented as if it were not there.
        Returns:
            a `SegmentationResult` for one image, a list of them (in order) for a list.
        Raises:
            NonFiniteOutputError: the model's scores for an image hold NaN or Inf (it names the image).
        """
        if _is_one_image(images):
            return next(self.iter_segment([images], vocabulary, batch_size, return_probabilities, errors))
        return list(self.iter_segment(images, vocabulary, batch_size, return_probabilities, errors))

    def iter_segment(self, images, vocabulary=None, batch_size=2, return_probabilities=False, errors="raise"):
        """Like `segment` for an iterable of images, yielding results as batches finish (bounded memory).

        The vocabulary is checked at once; images are read one batch at a time.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
        if errors not in ("raise", "report"):
            raise ValueError(f"errors must be 'raise' or 'report', got {errors!r}.")
        class_names = self.resolve_vocabulary(vocabulary)
        return self._iterate(images, class_names, batch_size, return_probabilities, errors == "report")

    def _iterate(self, images, class_names, batch_size, return_probabilities, report):
        """Reads `images` a batch at a time; with `report`, a failure stands in for each image that fails."""
        batch = []  # (input name, 1-based position in `images`, image array or SegmentationFailure)
        for position, image in enumerate(images, 1):
            name = os.fspath(image) if isinstance(image, (str, os.PathLike)) else f"image {position}"
            try:
                batch.append((name, position, load_image(image)))
            except (OSError, ValueError, TypeError) as e:
                if not report:
                    raise
                batch.append((name, position, SegmentationFailure(name, read_error_reason(e))))
            if len(batch) == batch_size:
                yield from self._segment_reported(batch, class_names, return_probabilities, report)
                batch = []
        if batch:
            yield from self._segment_reported(batch, class_names, return_probabilities, report)

    def _segment_reported(self, batch, class_names, return_probabilities, report):
        """The results of a batch [(input name, position, image or SegmentationFailure)], in order. With `report`,
        a batch the model fails on is segmented image by image, so that only the images that fail alone give
        failures. Scores that are not finite raise in either case: they say the weights are broken."""
        readable = [
            (name, position, image) for name, position, image in batch if not isinstance(image, SegmentationFailure)
        ]
        images = [image for _, _, image in readable]
        positions = [(name, position) for name, position, _ in readable]
        if not report:
            return self._segment_batch(images, class_names, return_probabilities, positions)
        error = None
        try:
            results = iter(self._segment_batch(images, class_names, return_probabilities, positions) if images else [])
        except NonFiniteOutputError:  # broken weights, not this image: every image would fail alike
            raise
        except (RuntimeError, ValueError) as e:  # e.g. out of memory on one large image
            if len(images) > 1:
                return [
                    result
                    for item in batch
                    for result in self._segment_reported([item], class_names, return_probabilities, True)
                ]
            error = e
        return [
            image
            if isinstance(image, SegmentationFailure)
            else SegmentationFailure(name, _model_failure(error))
            if error is not None
            else next(results)
            for name, _, image in batch
        ]

    def _model_input(self, image):
        """detectron2's input dict of a (H, W, 3) RGB uint8 image, resized as at test time, output at (H, W)."""
        height, width = image.shape[:2]
        if self.resize is not None:
            image = self.resize.get_transform(image).apply_image(image)
        if self.cfg.INPUT.FORMAT == "BGR":
            image = image[:, :, ::-1]
        return {"image": torch.as_tensor(image.astype("float32").transpose(2, 0, 1)), "height": height, "width": width}

    @torch.no_grad()
    def _segment_batch(self, images, class_names, return_probabilities, positions):
        if self.open_vocabulary:
            self.model.set_vocabulary(class_names)  # the model caches the text embeddings per vocabulary
        results = []
        # Without probabilities, a model that can (SED) gives label maps directly, never the (T, H, W) scores.
        with inference_options(
            self.model, fast=self.uses_fast_inference(len(class_names)), labels_only=not return_probabilities
        ):
            outputs = self.model([self._model_input(image) for image in images])
        for (name, position), output in zip(positions, outputs):
            if not output_is_finite(output):
                raise NonFiniteOutputError(name, position)
            probabilities = output.get("sem_seg")
            num_classes = output["num_classes"] if LABELS_KEY in output else probabilities.shape[0]
            if num_classes != len(class_names):
                raise RuntimeError(
                    f"{type(self.model).__name__} returned {num_classes} class maps for "
                    f"a vocabulary of {len(class_names)} classes."
                )
            labels = output[LABELS_KEY] if LABELS_KEY in output else probabilities.argmax(0)
            results.append(
                SegmentationResult(
                    label_map=labels.to(torch.int32).cpu().numpy(),
                    class_names=list(class_names),
                    probabilities=probabilities.float().cpu().numpy() if return_probabilities else None,
                )
            )
        return results
