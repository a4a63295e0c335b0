"""Checks a registered dataset's files: is a prepared benchmark (or your own dataset) complete and correct?

`verify_dataset(name)` reads every image and label map of the dataset and reports
- the number of images and label maps, label maps without an image, and images without a label map (an error
  where the image folder is the dataset's own, e.g. custom datasets; PASCAL's image folders hold every split);
- unreadable files, images and label maps of different sizes, label values outside [0, num_classes) + ignore;
- the class-frequency table (pixels and images per class);
- for the benchmarks, whether the number of images is the published one (EXPECTED_IMAGES);
and a one-line verdict. tools/verify_dataset.py is its command line.
"""

import logging
import os
from collections import namedtuple
from multiprocessing import Pool
from typing import Dict, List, Tuple

import numpy as np
from detectron2.data import DatasetCatalog, MetadataCatalog
from tabulate import tabulate
from tqdm import tqdm

from .image_io import read_image
from .label_maps import label_map_problem

__all__ = ["EXPECTED_IMAGES", "VerificationReport", "verify_dataset", "format_report"]

logger = logging.getLogger(__name__)

# Published image counts of the benchmarks' evaluated (or training) splits.
EXPECTED_IMAGES: Dict[str, Tuple[int, ...]] = {
    "ade20k_full_sem_seg_freq_val_all": (2000,),
    "context_459_test_sem_seg": (5104,),  # PC-459
    "ade20k_150_test_sem_seg": (2000,),
    "context_59_test_sem_seg": (5104, 5105),  # PC-59: 5,105 with the one image some preparations keep
    "voc_2012_test_sem_seg": (1449,),  # PAS-20
    "voc_2012_test_background_sem_seg": (1449,),  # PAS-20b
    "coco_2017_train_stuff_all_sem_seg": (118287,),  # COCO-Stuff train
    "coco_2017_test_stuff_all_sem_seg": (5000,),  # COCO-Stuff val
}

# One record's findings: `kind` and `problem` are "" when the pair is fine; `counts` are pixels per label value.
_PairResult = namedtuple("_PairResult", ["kind", "problem", "values", "counts"])

VerificationReport = namedtuple(
    "VerificationReport",
    ["dataset", "num_images", "num_label_maps", "problems", "notes", "class_pixels", "class_images", "verdict", "ok"],
)
VerificationReport.__doc__ = """What `verify_dataset` found.

problems: [str], each a reason the dataset is wrong (with up to a few file names); notes: [str], facts that are
not errors; class_pixels / class_images: (num_classes,) int arrays; verdict: one line; ok: no problems."""


def _why(error):
    """The reason of an image-reading error, in a few words."""
    return getattr(error, "reason", None) or type(error).__name__


def _check_pair(args):
    """Reads one (image, label map) pair; returns a _PairResult (never raises: a bad file is a finding)."""
    image_file, label_file, num_classes, ignore_label = args
    try:
        image_shape = read_image(image_file, "RGB").shape
    except OSError as e:  # decoded completely: a truncated file fails here, as it would in training
        return _PairResult("unreadable images", f"{image_file} ({_why(e)})", None, None)
    try:
        label = read_image(label_file, None)
    except OSError as e:
        return _PairResult("unreadable label maps", f"{label_file} ({_why(e)})", None, None)
    kind, reason = label_map_problem(label, num_classes, ignore_label, image_shape[:2]) or ("", "")
    problem = f"{label_file}: {reason}" if kind else ""
    if label.shape != image_shape[:2]:  # neither one class id per pixel nor its image's: nothing to count
        return _PairResult(kind, problem, None, None)
    values, counts = np.unique(label, return_counts=True)  # a map with values out of range counts its valid ones
    return _PairResult(kind, problem, values, counts)


def _folder_files(folder, ext):
    if not ext or not os.path.isdir(folder):
        return None
    return {os.path.splitext(f)[0] for f in os.listdir(folder) if f.endswith(f".{ext}")}


def verify_dataset(name: str, num_workers: int = 0, max_examples: int = 3) -> VerificationReport:
    """Verifies the registered dataset `name` (see the module docstring).

    Args:
        num_workers: processes reading the files (0: this process).
        max_examples: how many file names each kind of problem quotes.
    Raises:
        KeyError: `name` is not registered. FileNotFoundError: its folders do not exist (the registration says
            which, and how to prepare them).
    """
    if name not in DatasetCatalog.list():
        raise KeyError(
            f"dataset {name!r} is not registered (a built-in name such as ade20k_150_test_sem_seg, or one "
            "of your own: pass its spec with --spec)"
        )
    meta = MetadataCatalog.get(name)
    records = DatasetCatalog.get(name)
    num_classes, ignore_label = len(meta.stuff_classes), meta.ignore_label
    problems, notes = [], []
    grouped: Dict[str, List[str]] = {}

    def found(kind, text):
        grouped.setdefault(kind, []).append(text)

    # Files the loader did not pair (detectron2's load_sem_seg and the custom loader keep matched pairs only).
    images = _folder_files(meta.get("image_root", ""), meta.get("image_ext", None))
    labels = _folder_files(meta.get("sem_seg_root", ""), meta.get("gt_ext", None))
    num_label_maps = len(records)
    if images is not None and labels is not None and not meta.get("label_offset", 0):
        num_label_maps = len(labels)
        suffix = meta.get("mask_suffix", "")
        label_stems = {s[: len(s) - len(suffix)] if suffix and s.endswith(suffix) else s for s in labels}
        for stem in sorted(label_stems - images):
            found("label maps without an image", stem)
        unlabelled = sorted(images - label_stems)
        if unlabelled and meta.get("image_root_exclusive", False):
            for stem in unlabelled:
                found("images without a label map", stem)
        elif unlabelled:
            notes.append(
                f"{len(unlabelled)} images of {meta.image_root} have no label map (the folder holds other splits too)"
            )

    class_pixels = np.zeros(num_classes, np.int64)
    class_images = np.zeros(num_classes, np.int64)
    jobs = [(r["file_name"], r["sem_seg_file_name"], num_classes, ignore_label) for r in records]
    if num_workers > 0 and len(jobs) > 1:
        with Pool(num_workers) as pool:  # the workers only read files (numpy, PIL)
            results = list(tqdm(pool.imap(_check_pair, jobs, chunksize=16), total=len(jobs), desc=name))
    else:
        results = [_check_pair(job) for job in tqdm(jobs, desc=name, disable=len(jobs) < 50)]
    for result in results:
        if result.kind:
            found(result.kind, result.problem)
        if result.values is not None:
            valid = result.values < num_classes
            class_pixels[result.values[valid]] += result.counts[valid]
            class_images[result.values[valid]] += 1

    for kind, examples in grouped.items():
        problems.append(
            f"{len(examples)} {kind}: "
            + "; ".join(examples[:max_examples])
            + (" ..." if len(examples) > max_examples else "")
        )
    expected = EXPECTED_IMAGES.get(name)
    if expected and len(records) not in expected:
        problems.append(
            f"{len(records)} images, the benchmark has {' or '.join(f'{n:,}' for n in expected)}: "
            "the preparation is incomplete or used other files"
        )
    absent = int((class_pixels == 0).sum())
    if absent:
        notes.append(f"{absent} of {num_classes} classes have no pixel")
    ok = not problems
    verdict = (
        f"{name}: OK, {len(records)} images, {num_classes} classes"
        if ok
        else f"{name}: {len(problems)} problem(s) found in {len(records)} images, see above"
    )
    return VerificationReport(
        name, len(records), num_label_maps, problems, notes, class_pixels, class_images, verdict, ok
    )


def format_report(report: VerificationReport, classes: List[str] = None) -> str:
    """The class-frequency table, the notes and problems, and the verdict as the last line."""
    total = max(1, int(report.class_pixels.sum()))
    names = classes or [str(i) for i in range(len(report.class_pixels))]
    rows = [
        [i, name, int(p), f"{100.0 * p / total:.2f}", int(n)]
        for i, (name, p, n) in enumerate(zip(names, report.class_pixels, report.class_images))
    ]
    lines = [
        tabulate(rows, headers=["id", "class", "pixels", "%", "images"], tablefmt="pipe", stralign="left"),
        f"images: {report.num_images}, label maps: {report.num_label_maps}",
    ]
    lines += [f"note: {n}" for n in report.notes]
    lines += [f"PROBLEM: {p}" for p in report.problems]
    lines.append(report.verdict)
    return "\n".join(lines)
