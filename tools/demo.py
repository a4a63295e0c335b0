#!/usr/bin/env python
"""Segment your own images (or a video) with your own words.

    python tools/demo.py --config-file configs/convnextB_768.yaml --input photo.jpg photos/ "shots/*.png" \\
        --vocabulary "cat, dog, grass/lawn, sky" --output out/ --opts MODEL.WEIGHTS sed_model_base.pth

Vocabulary: --vocabulary "cat, dog, grass/lawn" (commas between classes, "/" between the synonyms of one
class), or --dataset NAME for a benchmark's classes (ade150, ade847, coco, pc59, pc459, voc20, voc20b), a
class-name JSON file or a registered dataset (your own: --opts DATASETS.CUSTOM '("spec.yaml",)'); neither: the
config's test vocabulary. Closed-vocabulary models (ECENet) take neither.

Inputs: image files, directories (their images, not recursive) and glob patterns. For every image, --output
gets NAME_overlay.png (the classes in colour, a legend of those present with their share of the image),
NAME_labels.png (pixel value = class index: uint8, or uint16 above 256 classes) and, with --probabilities,
NAME_probabilities.npz ("probabilities": (T, H, W) float32, "class_names": (T,)). summary.json lists the
vocabulary and, per image, its outputs and the classes found with their area; the same is printed. Two inputs
with the same file name get NAME, NAME_1, ... With --video-input, NAME_overlay.mp4 has every frame's overlay.

Any image size from 1 x 1 px and any aspect ratio is segmented. Exit status: 0 every input segmented; 1 some
inputs missing, unreadable or failing in the model (each named on stderr with why, the others segmented); 2
nothing segmented: bad arguments, vocabulary, config or checkpoint (all checked before any image is read), a
model whose class scores hold NaN or Inf (the image is named), or no input could be read.
"""

import argparse
import glob
import json
import os
import sys

import cv2
import numpy as np
from tqdm import tqdm

from sed import OpenVocabSegmenter
from sed.data.image_io import read_error_reason
from sed.data.vocabulary import VocabularyError, parse_vocabulary
from sed.modeling.postprocess import NonFiniteOutputError
from sed.predictor import SegmentationFailure, build_error_message, load_image, segmentation_summary, summary_classes
from sed.utils.files import check_writable_dir, missing_folders, remove_if_empty, write_label_map, write_png
from sed.utils.visualization import display_name, draw_segmentation

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
SUMMARY_CLASSES = 8  # classes per image in the printed summary (summary.json has all)


class SetupError(Exception):
    """Nothing can be segmented; the message says why (exit status 2)."""


def get_parser():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.split("\n")[4:]),
    )
    parser.add_argument("--config-file", required=True, metavar="FILE", help="model config (yaml)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", nargs="+", metavar="PATH", help="image files, directories or glob patterns")
    source.add_argument("--video-input", metavar="FILE", help="a video file to segment frame by frame")
    vocabulary = parser.add_mutually_exclusive_group()
    vocabulary.add_argument(
        "--vocabulary", metavar="CLASSES", help='classes separated by commas, synonyms by "/": "cat, dog, grass/lawn"'
    )
    vocabulary.add_argument(
        "--dataset", metavar="NAME", help="a benchmark vocabulary (e.g. ade150), a JSON file or a registered dataset"
    )
    parser.add_argument("--output", required=True, metavar="DIR", help="directory for the results")
    parser.add_argument("--probabilities", action="store_true", help="also write the class probability maps (images)")
    parser.add_argument(
        "--fast",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="category early rejection; default: on above 50 classes or if TEST.FAST_INFERENCE",
    )
    parser.add_argument("--batch-size", type=int, default=2, metavar="N", help="images per forward pass")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: MODEL.DEVICE if available, else cpu)")
    parser.add_argument(
        "--opts",
        default=[],
        nargs=argparse.REMAINDER,
        metavar="KEY VALUE",
        help="config overrides, e.g. MODEL.WEIGHTS model.pth (must come last)",
    )
    return parser


def collect_inputs(items):
    """(image paths in order, without repeats; [(item, why it gives no image)]) of --input's items."""
    paths, problems, seen = [], [], set()
    for item in items:
        if os.path.isfile(item):
            found = [item]
        elif os.path.isdir(item):
            found = sorted(os.path.join(item, name) for name in os.listdir(item))
            found = [p for p in found if os.path.isfile(p) and p.lower().endswith(IMAGE_EXTENSIONS)]
            if not found:
                problems.append((item, "directory without images"))
        elif glob.has_magic(item):
            found = [
                p
                for p in sorted(glob.glob(item, recursive=True))
                if os.path.isfile(p) and p.lower().endswith(IMAGE_EXTENSIONS)
            ]
            if not found:
                problems.append((item, "pattern matches no image"))
        else:
            found = []
            problems.append((item, "no such file or directory"))
        for path in found:  # a file given twice (e.g. by name and by its directory) is segmented once
            if os.path.realpath(path) not in seen:
                seen.add(os.path.realpath(path))
                paths.append(path)
    return paths, problems


def unique_stem(path, used):
    """The file name of `path` without extension, suffixed _1, _2... if an earlier input had it."""
    stem = base = os.path.splitext(os.path.basename(path))[0]
    count = 0
    while stem in used:
        count += 1
        stem = f"{base}_{count}"
    used.add(stem)
    return stem


def write_outputs(output_dir, stem, image, result, probabilities):
    """Writes one image's files; returns {kind: path}. Raises OSError if a file cannot be written."""
    files = {
        "overlay": os.path.join(output_dir, f"{stem}_overlay.png"),
        "labels": os.path.join(output_dir, f"{stem}_labels.png"),
    }
    write_png(files["overlay"], draw_segmentation(image, result.label_map, result.class_names)[:, :, ::-1])
    write_label_map(files["labels"], result.label_map, len(result.class_names))
    if probabilities:
        files["probabilities"] = os.path.join(output_dir, f"{stem}_probabilities.npz")
        np.savez_compressed(
            files["probabilities"], probabilities=result.probabilities, class_names=np.array(result.class_names)
        )
    return files


def summary_line(name, areas):
    """ "NAME: grass 45.2%, dog 30.1%, ..." for {class name: share}, largest first."""
    shown = [f"{display_name(c)} {100 * a:.1f}%" for c, a in list(areas.items())[:SUMMARY_CLASSES]]
    more = len(areas) - SUMMARY_CLASSES
    return f"{name}: {', '.join(shown)}" + (f", +{more} more" if more > 0 else "")


def segment_images(segmenter, paths, class_names, args, failures):
    """Segments and writes every readable image; returns their summary.json entries."""
    entries, used_stems = [], set()
    with tqdm(total=len(paths), unit="image", desc="Segmenting") as progress:
        for start in range(0, len(paths), args.batch_size):
            batch = []
            for path in paths[start : start + args.batch_size]:
                try:
                    batch.append((path, load_image(path)))
                except (OSError, ValueError) as e:  # missing, unreadable, not an image: skip it, go on
                    failures.append({"input": path, "error": read_error_reason(e)})
                    tqdm.write(f"Skipped {path}: {read_error_reason(e)}", file=sys.stderr)
            try:
                results = segmenter.segment(
                    [image for _, image in batch], class_names, args.batch_size, args.probabilities, errors="report"
                )
            except NonFiniteOutputError as e:  # the model, not the image, is broken: the others would fail too
                raise SetupError(str(NonFiniteOutputError(batch[e.position - 1][0]))) from e
            for (path, image), result in zip(batch, results):
                if isinstance(result, SegmentationFailure):  # e.g. out of memory: this image only
                    failures.append({"input": path, "error": result.error})
                    tqdm.write(f"Failed {path}: {result.error}", file=sys.stderr)
                    continue
                try:
                    files = write_outputs(args.output, unique_stem(path, used_stems), image, result, args.probabilities)
                except OSError as e:  # e.g. a full disk: this image failed, say so, try the others
                    failures.append({"input": path, "error": f"cannot write its results ({e})"})
                    tqdm.write(f"Failed {path}: cannot write its results ({e})", file=sys.stderr)
                    continue
                entries.append({"input": path, **files, "classes": summary_classes(result.label_map, class_names)})
            progress.update(len(paths[start : start + args.batch_size]))
    return entries


def segment_video(segmenter, video_path, class_names, args):
    """Writes the overlay of every frame to NAME_overlay.mp4; returns its summary.json entry."""
    video = cv2.VideoCapture(video_path)
    if not video.isOpened():
        raise SetupError(f"Cannot open the video {video_path}.")
    fps = video.get(cv2.CAP_PROP_FPS) or 25.0
    output = os.path.join(args.output, f"{os.path.splitext(os.path.basename(video_path))[0]}_overlay.mp4")
    writer, frames = None, 0
    with tqdm(total=int(video.get(cv2.CAP_PROP_FRAME_COUNT)) or None, unit="frame", desc="Segmenting") as progress:
        while True:
            batch = [frame[:, :, ::-1] for ok, frame in (video.read() for _ in range(args.batch_size)) if ok]
            if not batch:
                break
            for image, result in zip(batch, segmenter.segment(batch, class_names, len(batch))):
                # No legend: its size would change from frame to frame; the overlay names the regions.
                picture = draw_segmentation(image, result.label_map, result.class_names, legend=False)
                if writer is None:
                    writer = cv2.VideoWriter(
                        output, cv2.VideoWriter_fourcc(*"mp4v"), fps, (picture.shape[1], picture.shape[0])
                    )
                writer.write(np.ascontiguousarray(picture[:, :, ::-1]))
            frames += len(batch)
            progress.update(len(batch))
    video.release()
    if writer is None:
        raise SetupError(f"The video {video_path} has no readable frame.")
    writer.release()
    return {"input": video_path, "overlay": output, "frames": frames}


def setup(args):
    """(segmenter, class names, image paths, input problems); raises SetupError if nothing can be segmented."""
    vocabulary = args.vocabulary
    if args.dataset is not None:
        if "," in args.dataset:
            raise SetupError(
                f"--dataset {args.dataset!r}: give one benchmark name or JSON file; typed classes go to --vocabulary."
            )
        vocabulary = args.dataset
    if args.batch_size < 1:
        raise SetupError(f"--batch-size must be at least 1, got {args.batch_size}.")
    try:
        check_writable_dir(args.output)
    except OSError as e:
        raise SetupError(
            f"--output {args.output} cannot be written ({e.strerror or e}): give a folder you can "
            "write to; no image was read."
        ) from e
    try:
        class_names = parse_vocabulary(vocabulary) if vocabulary is not None else None
    except VocabularyError as e:
        if args.dataset is None or "DATASETS.CUSTOM" not in args.opts:
            raise SetupError(str(e)) from e
        class_names = args.dataset  # maybe a dataset that DATASETS.CUSTOM in --opts registers: checked below
    paths, problems = collect_inputs(args.input) if args.input else ([], [])
    for item, why in problems:
        print(f"Skipped {item}: {why}", file=sys.stderr)
    if args.input and not paths:
        raise SetupError("No image to segment among the inputs.")
    if args.video_input and not os.path.isfile(args.video_input):
        raise SetupError(f"--video-input {args.video_input}: no such file.")
    try:
        segmenter = OpenVocabSegmenter(args.config_file, opts=args.opts, device=args.device, fast_inference=args.fast)
        class_names = segmenter.resolve_vocabulary(class_names)
    except (ValueError, OSError, RuntimeError) as e:  # checkpoint, config, opts, device, CLIP weights, vocabulary
        raise SetupError(build_error_message(e, args.config_file, "no image was processed")) from e
    return segmenter, class_names, paths, problems


def main(argv=None):
    """Runs the demo; returns the exit status (see the module docstring)."""
    args = get_parser().parse_args(argv)
    created = missing_folders(args.output)
    try:
        segmenter, class_names, paths, problems = setup(args)
        failures = [{"input": item, "error": why} for item, why in problems]
        if args.video_input:
            entries = [segment_video(segmenter, args.video_input, class_names, args)]
        else:
            entries = segment_images(segmenter, paths, class_names, args, failures)
    except SetupError as e:
        remove_if_empty(created)  # a run that failed before writing anything leaves no empty --output behind
        print(f"error: {e}", file=sys.stderr)
        return 2
    summary = segmentation_summary(
        class_names, segmenter.uses_fast_inference(len(class_names)), entries, failures, config_file=args.config_file
    )
    try:
        with open(os.path.join(args.output, "summary.json"), "w") as f:
            json.dump(summary, f, indent=1)
    except OSError as e:
        print(f"error: cannot write {os.path.join(args.output, 'summary.json')} ({e.strerror or e})", file=sys.stderr)
        return 2
    for entry in entries:
        if "classes" in entry:
            print(summary_line(entry["input"], {c["name"]: c["area"] for c in entry["classes"]}))
    print(f"{len(entries)} segmented, {len(failures)} failed; results in {args.output}")
    if not entries:
        return 2
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
