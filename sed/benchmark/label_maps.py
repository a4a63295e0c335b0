"""Post-processing benchmark: label maps by `resized_labels` against argmax(F.interpolate(scores)).

Evaluation only needs argmax over classes of the (T, h, w) decoder scores resized to the image (see
`sed.modeling.postprocess`). How much `resized_labels` saves depends on how many classes are within reach of the
winner in each 2x2 cell of the small map, so it is measured on synthetic maps from worst to best case:
"uniform" (independent noise in every class: every cell contested), "smooth" (smooth noise: T close competitors
everywhere), "segments" (a segmentation-like map: regions each won by one class with a few confusable classes,
the rest low, as sigmoid outputs of a trained model look) and "kept" (fast inference: only `kept` classes non-zero,
each a segments-like map).
"""

import functools

import torch
import torch.nn.functional as F

from ..modeling.postprocess import resized_labels
from ..utils.measure import timed_runs

__all__ = ["MAP_KINDS", "synthetic_scores", "label_map_benchmark"]

MAP_KINDS = ("uniform", "smooth", "segments", "kept")


def _segments(num_classes, h, w, generator, regions=15, confusers=3):
    """Sigmoid scores of a map split into `regions` Voronoi regions, each won by a random class (logit about +2)
    with `confusers` random classes near 0 there, every other class low (about -6) with smooth noise."""
    seeds = torch.rand(regions, 2, generator=generator) * torch.tensor([h, w])
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    region = ((rows[None] - seeds[:, :1, None]) ** 2 + (cols[None] - seeds[:, 1:, None]) ** 2).argmin(0)
    noise = torch.randn(1, num_classes, max(h // 8, 1), max(w // 8, 1), generator=generator)
    logits = F.interpolate(noise, size=(h, w), mode="bilinear", align_corners=False)[0] - 6
    winners = torch.randperm(num_classes, generator=generator)[:regions]
    for r in range(regions):
        inside = F.avg_pool2d((region == r).float()[None, None], 9, 1, 4)[0, 0]  # soft region borders
        logits[winners[r % len(winners)]] += 8 * inside
        for c in torch.randint(0, num_classes, (confusers,), generator=generator):
            logits[c] += 5 * inside
    return logits.sigmoid()


def synthetic_scores(kind, num_classes, size, kept=32, seed=0):
    """(T, h, w) synthetic class scores of one of `MAP_KINDS` (module docstring)."""
    h, w = size
    g = torch.Generator().manual_seed(seed)
    if kind == "uniform":
        return torch.rand(num_classes, h, w, generator=g)
    if kind == "smooth":
        coarse = torch.rand(1, num_classes, max(h // 8, 1), max(w // 8, 1), generator=g)
        return F.interpolate(coarse, size=size, mode="bilinear", align_corners=False)[0]
    if kind == "segments":
        return _segments(num_classes, h, w, g)
    if kind == "kept":
        scores = torch.zeros(num_classes, h, w)
        chosen = torch.randperm(num_classes, generator=g)[:kept]
        scores[chosen] = _segments(len(chosen), h, w, g)
        return scores
    raise ValueError(f"unknown map kind {kind!r}: one of {', '.join(MAP_KINDS)}")


def _argmax_of_resized(scores, size):
    """The label map the plain way: every class resized to `size`, then the argmax."""
    return F.interpolate(scores[None], size=size, mode="bilinear", align_corners=False)[0].argmax(0)


@torch.no_grad()
def label_map_benchmark(kinds=MAP_KINDS, num_classes=847, size=(192, 192), out_size=(640, 853), kept=32, iters=1):
    """For each map kind: median seconds and peak memory (MiB above the start) of the label map before
    (argmax of the resized scores) and after (`resized_labels`), and whether the two are equal.
    Returns a list of dicts (kind, before_s, before_peak_mib, after_s, after_peak_mib, equal)."""
    rows = []
    for kind in kinds:
        scores = synthetic_scores(kind, num_classes, size, kept)
        before, before_s, before_mib = timed_runs(
            lambda scores=scores: functools.partial(_argmax_of_resized, scores, out_size), iters
        )
        after, after_s, after_mib = timed_runs(
            lambda scores=scores: functools.partial(resized_labels, scores, out_size), iters
        )
        rows.append(
            {
                "kind": kind,
                "before_s": before_s,
                "before_peak_mib": before_mib,
                "after_s": after_s,
                "after_peak_mib": after_mib,
                "equal": bool(torch.equal(before, after)),
            }
        )
    return rows
