"""SED with a fixed vocabulary as an ONNX model: image in, class probabilities out, any image size.

The vocabulary's text embeddings are computed once and stored in the graph as a constant, so the exported model
needs neither the text tower nor a tokenizer. Needs the `export` extra (onnx, onnxruntime): pip install -e .[export].
"""

import functools
import logging

import numpy as np
import torch
from torch import nn

from ..modeling.sed.sed_model import SED

logger = logging.getLogger(__name__)

__all__ = ["ImageToProbabilities", "export_onnx", "onnx_max_abs_difference", "onnx_speed_comparison"]

# Size of the example image the graph is traced with; the exported height and width are dynamic.
EXAMPLE_SIZE = (320, 448)


class ImageToProbabilities(nn.Module):
    """A SED model over its current `test_class_names` as a function of one image.

    (1, 3, H, W) float RGB image in 0..255 -> (1, T, H, W) class probabilities at the image's size (the
    model's own resizing to the CLIP resolution is part of the graph; detectron2's test-time resize is not).
    """

    def __init__(self, model, input_format="RGB"):
        super().__init__()
        self.model = model
        self.bgr = input_format == "BGR"

    def forward(self, image):
        image = image[0].flip(0) if self.bgr else image[0]  # the model takes INPUT.FORMAT's channel order
        return self.model([{"image": image}])[0]["sem_seg"][None]


def _require(module):
    try:
        return __import__(module)
    except ImportError as e:
        raise ImportError(
            f"{module} is needed for ONNX export: pip install -e .[export] (or pip install onnx onnxruntime)"
        ) from e


def export_onnx(model, path, input_format="RGB", opset_version=17):
    """Writes `model` (SED, eval mode, full inference) over its `test_class_names` to the ONNX file `path`.

    Category early rejection cannot be exported: the classes it keeps, and with them the shapes of every later
    tensor, change from image to image, which a traced graph cannot follow.
    Returns the `ImageToProbabilities` module that was exported.
    """
    onnx = _require("onnx")
    if getattr(model, "fast_inference", False):
        raise ValueError(
            "fast inference (category early rejection) cannot be exported to ONNX: the number of "
            "classes it keeps changes from image to image and a traced graph fixes it. Export without "
            "--fast (TEST.FAST_INFERENCE False)."
        )
    if not isinstance(model, SED):
        raise ValueError(f"{type(model).__name__} is not an open-vocabulary SED model; only SED can be exported.")
    model.eval()
    predictor = model.sem_seg_head.predictor
    # Computed now, outside the trace: the graph then holds the embeddings as a constant.
    predictor.text_embeddings.get(predictor.clip_model, model.test_class_names, predictor.prompt_templates)
    wrapper = ImageToProbabilities(model, input_format).eval()
    example = torch.rand(1, 3, *EXAMPLE_SIZE, device=model.device) * 255
    # The decoder runs every class at once (the same numbers): its memory-saving chunked inference writes into
    # slices of preallocated tensors, which the exporter does not translate faithfully.
    decoder = predictor.transformer
    chunked, decoder.chunked_inference = decoder.chunked_inference, False
    try:
        torch.onnx.export(
            wrapper,
            (example,),
            path,
            dynamo=False,
            opset_version=opset_version,
            input_names=["image"],
            output_names=["probabilities"],
            dynamic_axes={"image": {2: "height", 3: "width"}, "probabilities": {2: "height", 3: "width"}},
        )
    finally:
        decoder.chunked_inference = chunked
    onnx.checker.check_model(path)
    logger.info(f"Exported {len(model.test_class_names)} classes to {path}")
    return wrapper


def _image_tensor(image):
    """(H, W, 3) uint8 RGB array -> (1, 3, H, W) float32 tensor, the exported model's input."""
    return torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)), dtype=torch.float32)[None]


def _session(path):
    """An onnxruntime CPU session with as many threads as PyTorch uses (a like-for-like comparison)."""
    ort = _require("onnxruntime")
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


@torch.no_grad()
def onnx_max_abs_difference(wrapper, path, image):
    """Largest absolute difference between the probabilities of PyTorch (`wrapper`) and onnxruntime (CPU) on
    `image`, a (H, W, 3) uint8 RGB array."""
    tensor = _image_tensor(image)
    expected = wrapper(tensor.to(wrapper.model.device)).cpu().numpy()
    (got,) = _session(path).run(None, {"image": tensor.numpy()})
    if got.shape != expected.shape:
        raise RuntimeError(f"onnxruntime gave shape {got.shape}, PyTorch {expected.shape}")
    return float(np.abs(got - expected).max())


@torch.no_grad()
def onnx_speed_comparison(wrapper, path, image, iters=3, warmup=1):
    """PyTorch (`wrapper`, the model's own inference) against onnxruntime (CPU, as many threads as PyTorch) on
    `image`, a (H, W, 3) uint8 RGB array. Both produce the (1, T, H, W) probabilities.

    Returns {"pytorch": {"seconds": s, "peak_mib": m}, "onnxruntime": {...}}: median seconds of `iters` timed runs
    after `warmup` untimed ones, and the peak memory of all the runs above what was in use before them (for
    onnxruntime, from before its session is created: its memory arena stays allocated between runs).
    """
    from ..utils.measure import timed_runs

    tensor = _image_tensor(image)
    device = wrapper.model.device

    def runner(name):  # made inside the measurement: onnxruntime's session allocates its memory
        if name == "pytorch":
            return lambda: wrapper(tensor.to(device)).cpu()
        return functools.partial(_session(path).run, None, {"image": tensor.numpy()})

    results = {}
    for name in ["pytorch", "onnxruntime"]:
        _, seconds, peak_mib = timed_runs(
            functools.partial(runner, name), iters, warmup, device if name == "pytorch" else "cpu"
        )
        results[name] = {"seconds": seconds, "peak_mib": peak_mib}
    return results
