#!/usr/bin/env python
"""README's top picture: the quickstart model's segmentation of synthetic test images beside their ground truth.

    sh run.sh configs/quickstart.yaml 1 output/quickstart   # the model (README, Quickstart)
    python docs/images/make_readme_figure.py                # writes docs/images/quickstart_results.png

The test images are those of the quickstart ($DETECTRON2_DATASETS/synthetic, default ./datasets/synthetic).
"""

import argparse
import os
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # runs from a checkout without installing, as tools/ do

from sed import OpenVocabSegmenter  # noqa: E402
from sed.data.synthetic import IGNORE_LABEL  # noqa: E402  (region borders, not scored)
from sed.utils.visualization import draw_segmentation  # noqa: E402

SCALE = 3  # 128 px images, enlarged so that the region names fit


def enlarge(array, resample):
    return np.asarray(Image.fromarray(array).resize((array.shape[1] * SCALE, array.shape[0] * SCALE), resample))


def grid(rows, gap=24):
    """A white picture of `rows` of (H, W, 3) pictures, each column as wide as its widest picture.
    Returns the picture and the x of each column."""
    widths = [max(row[i].shape[1] for row in rows) for i in range(len(rows[0]))]
    xs = [sum(widths[:i]) + gap * i for i in range(len(widths))]
    heights = [max(p.shape[0] for p in row) for row in rows]
    canvas = np.full((sum(heights) + gap * (len(rows) - 1), xs[-1] + widths[-1], 3), 255, np.uint8)
    y = 0
    for row, height in zip(rows, heights):
        for x, picture in zip(xs, row):
            canvas[y : y + picture.shape[0], x : x + picture.shape[1]] = picture
        y += height + gap
    return canvas, xs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", default="output/quickstart/model_final.pth", help="the quickstart model")
    parser.add_argument("--images", type=int, default=3, help="how many test images (the first ones)")
    parser.add_argument("--output", default=str(ROOT / "docs" / "images" / "quickstart_results.png"))
    args = parser.parse_args(argv)
    if not os.path.isfile(args.weights):
        parser.error(
            f"--weights {args.weights}: no such file; train the quickstart first: "
            "sh run.sh configs/quickstart.yaml 1 output/quickstart"
        )
    data = Path(os.environ.get("DETECTRON2_DATASETS", "datasets")) / "synthetic"
    paths = sorted((data / "images" / "val2017").glob("*.jpg"))[: args.images]
    if not paths:
        parser.error(f"no test images in {data / 'images' / 'val2017'}: python datasets/prepare_synthetic.py")

    segmenter = OpenVocabSegmenter(str(ROOT / "configs" / "quickstart.yaml"), weights=args.weights, device="cpu")
    names = segmenter.class_names
    results = segmenter.segment([str(p) for p in paths])
    rows = []
    for path, result in zip(paths, results):
        image = enlarge(np.asarray(Image.open(path).convert("RGB")), Image.BICUBIC)
        truth = np.asarray(Image.open(data / "annotations_detectron2" / "val2017" / f"{path.stem}.png")).astype(int)
        truth = np.where(truth == IGNORE_LABEL, len(names), truth)  # drawn as one more class, after the 8
        truth = enlarge(truth.astype(np.uint8), Image.NEAREST)
        predicted = enlarge(result.label_map.astype(np.uint8), Image.NEAREST)
        rows.append(
            [draw_segmentation(image, truth, [*names, "not scored"]), draw_segmentation(image, predicted, names)]
        )

    body, xs = grid(rows)
    title = Image.new("RGB", (body.shape[1], 40), (255, 255, 255))
    draw = ImageDraw.Draw(title)
    for x, text in zip(xs, ("ground truth", "the quickstart model")):
        draw.text((x + 4, 8), text, font=ImageFont.load_default(size=22), fill=(0, 0, 0))
    picture = np.concatenate([np.asarray(title), body])
    Image.fromarray(picture).save(args.output, optimize=True)
    print(f"wrote {args.output} ({len(rows)} test images)")


if __name__ == "__main__":
    main()
