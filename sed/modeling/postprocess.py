"""Label maps straight from low-resolution class scores: argmax(resize(scores)) without the (T, H, W) tensor.

Evaluation (detectron2's SemSegEvaluator) and the demo only need the argmax over classes of the scores resized
to the output size. At 847 classes and 640x853 the resized scores take 1.85 GB, and resizing them all is most of
post-processing. `resized_labels` gives exactly the same labels (ties included: the lowest class index wins, as
in `torch.argmax`) from bounds on the small map: bilinear resizing makes each output value a convex combination
of a 2x2 cell of input values, so a class whose maximum over a cell is below another class's minimum over it
cannot win at any output pixel of that cell. Pixels of cells with a single possible winner get it directly; the
classes still in contention elsewhere are resized exactly as `F.interpolate` resizes them (a few at a time) and
compared at the remaining pixels.

A model with a `labels_only` attribute (SED) returns {"sem_seg_labels", "num_classes", "scores_finite"} instead of
"sem_seg" while it is set (`label_outputs`); sed.evaluation's evaluators and `sed.predictor` read either form.
"scores_finite" says whether the scores behind the labels held only finite values: the argmax of NaN scores is a
confident-looking class, so evaluation and the predictor refuse such outputs (`output_is_finite`).
"""

import contextlib
import math

import torch
import torch.nn.functional as F

from .chunks import chunk_slices
from .protocol import inference_options

__all__ = [
    "resized_labels",
    "exact_chunk_classes",
    "label_outputs",
    "output_is_finite",
    "NonFiniteOutputError",
    "LABELS_KEY",
    "FINITE_KEY",
]

LABELS_KEY = "sem_seg_labels"
FINITE_KEY = "scores_finite"
# Elements of the resized scores of the classes compared exactly that exist at once (float32: 32 MiB).
EXACT_CHUNK_ELEMENTS = 2**23
# Classes whose cell bounds are computed at a time: (this, h, w) scores exist at once, a few times over.
BOUND_CHUNK_CLASSES = 64
# Margin, in units of the scores' largest magnitude times their dtype's epsilon, by which a class must lose a cell
# to be ruled out: bilinear weights and sums are rounded, so an output may exceed its cell's range by a few ulps.
ROUNDING_ULPS = 16
# float64 source coordinates this close to an integer may floor either way in a double kernel (fused or not).
FLOAT64_SOURCE_SLACK = 1e-9


def _source_cells(in_size, out_size, device):
    """For one axis: the (out_size,) id of the cell each output index reads, and (K,) first and last *pair* of the
    K distinct cells, pair j being input indices j and j + 1 (a one-index axis has one pair: itself).

    Source coordinate of output i: max((i + 0.5) * in / out - 0.5, 0) (align_corners=False); bilinear reads
    floor of it and the next index, clamped to the input. The coordinate is computed as the resize kernels may
    round it (`_source_coordinates`); where they floor differently, the cell spans 3 indices (2 pairs).
    """
    index = torch.arange(out_size, dtype=torch.float64, device=device) + 0.5
    lo = hi = None
    for src in _source_coordinates(in_size, out_size, index):
        src = src.clamp(min=0).floor().clamp(max=in_size - 1).long()
        lo = src if lo is None else torch.minimum(lo, src)
        hi = src if hi is None else torch.maximum(hi, src)
    hi = (hi + 1).clamp(max=in_size - 1)
    first = lo.clamp(max=max(in_size - 2, 0))  # a cell of the last index alone: the last pair contains it
    last = torch.maximum(hi - 1, first)
    cells, cell_of = torch.unique(torch.stack([first, last], 1), dim=0, return_inverse=True)
    return cell_of, cells[:, 0], cells[:, 1]


def _source_coordinates(in_size, out_size, index):
    """(i + 0.5) * scale - 0.5 for index = i + 0.5 (float64), rounded as resize kernels compute it: in float32
    (the float, half and bfloat16 kernels' arithmetic type) with and without a fused multiply-add, and in float64
    (the double kernels'), there give or take `FLOAT64_SOURCE_SLACK` for either rounding."""
    scale = torch.tensor(in_size, dtype=torch.float32) / out_size
    product = scale.double() * index  # exact: float32 x float32 fits a float64
    in_float64 = index * (in_size / out_size) - 0.5
    return [
        (product.float() - 0.5).double(),
        (product - 0.5).float().double(),
        in_float64 - FLOAT64_SOURCE_SLACK,
        in_float64 + FLOAT64_SOURCE_SLACK,
    ]


def _pair_reduce(x, dim, reduce):
    """`reduce` of x over each two neighbouring indices along `dim` (n -> n - 1; a single index stays)."""
    n = x.shape[dim]
    return x if n == 1 else reduce(x.narrow(dim, 0, n - 1), x.narrow(dim, 1, n - 1))


def _select_cells(pairs, dim, first, last, reduce):
    """`reduce` of `pairs` along `dim` over pairs first..last of each cell ((K,) each, last - first <= 1)."""
    if (
        len(first) == pairs.shape[dim]
        and bool((first == last).all())
        and bool((first == torch.arange(len(first), device=first.device)).all())
    ):
        return pairs  # every pair is a cell, in order (upsampling without wide cells): no copy
    out = pairs.index_select(dim, first)
    wide = (last > first).nonzero().squeeze(1)
    if len(wide):
        out.index_copy_(dim, wide, reduce(out.index_select(dim, wide), pairs.index_select(dim, last[wide])))
    return out


def _cell_bounds(scores, rows, cols, reduce):
    """(T, L, K) `reduce` of scores (T, h, w) over the cells rows x cols ((L,) and (K,) first/last pairs): 2x2
    reductions of neighbouring pixels by slicing (two passes), then the cells' pairs."""
    pairs = _pair_reduce(_pair_reduce(scores, 1, reduce), 2, reduce)
    return _select_cells(_select_cells(pairs, 1, *rows, reduce), 2, *cols, reduce)


def _running_max(best, best_label, value, label):
    """The running maximum over chunks of ascending classes and its class: a tie keeps the earlier, lower class
    (as `torch.argmax`). `best` None starts it."""
    if best is None:
        return value, label
    better = value > best
    return torch.where(better, value, best), torch.where(better, label, best_label)


def exact_chunk_classes(size):
    """Classes resized at a time for the exact comparison at output size (H, W)."""
    return max(1, EXACT_CHUNK_ELEMENTS // (size[0] * size[1]))


@torch.no_grad()
def resized_labels(scores, size):
    """Labels of `scores` resized to `size`: `F.interpolate(scores[None], size, mode="bilinear",
    align_corners=False)[0].argmax(0)`, exactly, without building the resized scores.

    Args:
        scores: (T, h, w) class scores (e.g. probabilities; rejected classes may be 0), any float dtype/device.
        size: (H, W) output size.
    Returns:
        (H, W) int64 class indices.
    """
    num_classes, h, w = scores.shape
    if num_classes == 0:
        raise ValueError("resized_labels: the scores have no classes (T = 0).")
    low, high = torch.aminmax(scores)
    magnitude = max(abs(float(low)), abs(float(high)))
    if not math.isfinite(magnitude):  # NaN wins torch.argmax, inf resizes to NaN: the bounds cannot say so
        return F.interpolate(scores[None], size=size, mode="bilinear", align_corners=False)[0].argmax(0)
    row_of, *rows = _source_cells(h, size[0], scores.device)
    col_of, *cols = _source_cells(w, size[1], scores.device)
    # 1. per cell: the best minimum over classes (a lower bound of the winner's score) and its class
    best_min = best_class = None
    for classes in chunk_slices(num_classes, BOUND_CHUNK_CLASSES):
        chunk_min, chunk_class = _cell_bounds(scores[classes], rows, cols, torch.minimum).max(0)
        best_min, best_class = _running_max(best_min, best_class, chunk_min, chunk_class + classes.start)
    # 2. classes that may win a cell: their maximum is not below the best minimum (less the rounding margin).
    # The best-minimum class always may; where it is the only one, it wins.
    threshold = best_min - ROUNDING_ULPS * torch.finfo(scores.dtype).eps * magnitude
    may_win = [
        _cell_bounds(scores[classes], rows, cols, torch.maximum) >= threshold
        for classes in chunk_slices(num_classes, BOUND_CHUNK_CLASSES)
    ]
    contested = sum(m.sum(0) for m in may_win) > 1  # (L, K)
    labels = best_class[row_of][:, col_of]
    if not bool(contested.any()):
        return labels
    # 3. contested cells: resize the classes that may win one of them, exactly as F.interpolate does, a few at a
    # time, and keep the running argmax (ascending classes, strict comparison: ties keep the lower class)
    needed = torch.cat([m[:, contested].any(1) for m in may_win]).nonzero().squeeze(1)
    best = best_label = None
    for chunk in needed.split(exact_chunk_classes(size)):
        resized = F.interpolate(scores[chunk][None], size=size, mode="bilinear", align_corners=False)[0]
        value, index = resized.max(0)  # the first maximum within the chunk, as argmax
        best, best_label = _running_max(best, best_label, value, chunk[index])
    return torch.where(contested[row_of][:, col_of], best_label, labels)


class NonFiniteOutputError(ValueError):
    """A model's class scores for an image hold NaN or Inf: no segmentation of it means anything.

    Attributes: image: how the image was named (its file, or "image N"); position: its 1-based position among the
    images of the call that segmented it (None if unknown)."""

    def __init__(self, image, position=None):
        super().__init__(
            f"{image}: the model's class scores hold NaN or Inf, so no segmentation of it means "
            "anything: the weights are broken (a diverged training?); use other weights"
        )
        self.image, self.position = image, position

    def __reduce__(self):
        return type(self), (self.image, self.position)


def output_is_finite(output):
    """Whether the class scores of a model's output (one image) are all finite: "sem_seg" is checked; a label map
    carries the model's answer (FINITE_KEY; a model that does not say is trusted)."""
    if LABELS_KEY in output:
        return bool(output.get(FINITE_KEY, True))
    return bool(torch.isfinite(output["sem_seg"]).all())


@contextlib.contextmanager
def label_outputs(model, enabled=True):
    """Inside the block, a model that supports label maps (the model protocol's `supports_label_maps`) returns label
    maps instead of scores (see the module docstring); other models, or `enabled=False`, are left as they are."""
    with inference_options(model, labels_only=True if enabled else None):
        yield
