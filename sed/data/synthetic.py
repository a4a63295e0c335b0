"""A small synthetic segmentation dataset for the quickstart and the tests: no download.

Every image is a Voronoi mosaic of 2-4 regions; each region shows one of the classes below as a colour and a
texture (sky: smooth light-blue gradient, grass: green streaks, brick wall: bricks and mortar, ...), with random
brightness and tint. Even a randomly initialised CLIP learns them from appearance, so a few minutes of CPU
training show a model that learns. Pixels on region borders are labelled 255 (ignored), as unlabelled pixels
in COCO-Stuff.

On disk it has the COCO-Stuff layout under its root (default `$DETECTRON2_DATASETS/synthetic`):

    images/{train2017,val2017}/NNNNNN.jpg
    annotations_detectron2/{train2017,val2017}/NNNNNN.png   (uint8 class ids 0..K-1, 255 = ignore)
    classes.json                                             (the class names, label order)

`sed/data/datasets/register_synthetic.py` registers it as `synthetic_train_sem_seg` and `synthetic_test_sem_seg`
(the root is read when a dataset is used). Generate it with `python datasets/prepare_synthetic.py` (a few seconds),
or `generate_synthetic_dataset(root)`. This module needs only numpy, Pillow and PyYAML (the preparation script
loads it without importing torch or detectron2).
"""

import json
import os
import re

import numpy as np
import yaml
from PIL import Image

# Label order; `datasets/synthetic.json` holds the same list (a test checks it).
SYNTHETIC_CLASSES = ["sky", "grass", "water", "road", "sand", "snow", "brick wall", "tree"]
SPLITS = {"synthetic_train_sem_seg": "train2017", "synthetic_test_sem_seg": "val2017"}
DEFAULT_DIRNAME = "synthetic"  # the dataset's folder under the datasets root
IGNORE_LABEL = 255
_COMPLETE_MARKER = ".complete"


# ---------------------------------------------------------------------------------------------- textures
def _noise(rng, h, w, scale):
    """Smooth noise in [-1, 1]: random values on a coarse grid, bilinearly upsampled."""
    gh, gw = max(2, h // scale + 2), max(2, w // scale + 2)
    grid = rng.uniform(-1, 1, (gh, gw)).astype(np.float32)
    img = Image.fromarray(grid).resize((w, h), Image.BILINEAR)
    return np.asarray(img)


def _texture(name, rng, h, w):
    """(h, w, 3) float RGB in 0..255 of class `name`."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    fine = rng.normal(0, 1, (h, w)).astype(np.float32)
    if name == "sky":
        t = yy / max(h - 1, 1)
        base = np.stack([110 + 60 * t, 170 + 45 * t, 235 + 10 * t], -1)
        return base + 3 * fine[..., None]
    if name == "grass":
        streaks = np.asarray(
            Image.fromarray(rng.uniform(-1, 1, (max(2, h // 6), w)).astype(np.float32)).resize((w, h), Image.BILINEAR)
        )
        return (
            np.array([70, 160, 50], np.float32)
            + 35 * streaks[..., None] * np.array([0.5, 1, 0.4])
            + 10 * fine[..., None]
        )
    if name == "water":
        phase = rng.uniform(0, 2 * np.pi)
        waves = np.sin(yy / 3.0 + 0.8 * np.sin(xx / 9.0 + phase))
        return (
            np.array([30, 80, 150], np.float32)
            + 25 * waves[..., None] * np.array([0.6, 0.8, 1.0])
            + 5 * fine[..., None]
        )
    if name == "road":
        return np.array([105, 105, 110], np.float32) + 18 * fine[..., None]
    if name == "sand":
        speckle = (rng.uniform(0, 1, (h, w)) > 0.93).astype(np.float32)
        return np.array([215, 185, 125], np.float32) + 12 * fine[..., None] - 60 * speckle[..., None]
    if name == "snow":
        return np.array([240, 242, 250], np.float32) + 6 * _noise(rng, h, w, 16)[..., None] + 2 * fine[..., None]
    if name == "brick wall":
        bh, bw = 8, 16
        row = (yy // bh).astype(np.int64)
        shifted = xx + (row % 2) * (bw // 2)
        mortar = ((yy % bh) < 2) | ((shifted % bw) < 2)
        bricks = np.array([160, 65, 45], np.float32) + 12 * fine[..., None]
        return np.where(mortar[..., None], np.array([200, 195, 185], np.float32), bricks)
    if name == "tree":
        blobs = _noise(rng, h, w, 6)
        return (
            np.array([35, 95, 35], np.float32) + 30 * blobs[..., None] * np.array([0.4, 1, 0.4]) + 6 * fine[..., None]
        )
    raise KeyError(name)


def render_sample(rng, height, width, classes=SYNTHETIC_CLASSES, max_regions=4):
    """One (image (H, W, 3) uint8 RGB, labels (H, W) uint8) pair: a Voronoi mosaic of 2..max_regions classes."""
    n = int(rng.integers(2, max_regions + 1))
    chosen = rng.choice(len(classes), size=n, replace=False)
    seeds = rng.uniform(0, 1, (n, 2)) * np.array([height, width])
    yy, xx = np.mgrid[0:height, 0:width]
    dist = (yy[None] - seeds[:, 0, None, None]) ** 2 + (xx[None] - seeds[:, 1, None, None]) ** 2
    region = dist.argmin(0)
    labels = chosen[region].astype(np.uint8)
    image = np.zeros((height, width, 3), np.float32)
    for i, c in enumerate(chosen):
        tint = rng.uniform(-12, 12, 3)
        image = np.where((region == i)[..., None], _texture(classes[c], rng, height, width) + tint, image)
    image = image * rng.uniform(0.85, 1.15)
    # Region borders are ignored (a pixel whose right or lower neighbour lies in another region).
    border = np.zeros((height, width), bool)
    border[:, :-1] |= region[:, :-1] != region[:, 1:]
    border[:-1, :] |= region[:-1, :] != region[1:, :]
    labels[border] = IGNORE_LABEL
    return np.clip(image, 0, 255).astype(np.uint8), labels


def generate_synthetic_dataset(root, num_train=200, num_val=40, size=(128, 128), seed=0):
    """Writes the dataset (COCO-Stuff layout, see the module docstring) under `root`; returns the root.

    Args:
        root: output folder (registered datasets read `$DETECTRON2_DATASETS/synthetic`).
        num_train, num_val: images in train2017 / val2017.
        size: (height, width) of every image.
        seed: the random seed; the same arguments always give the same files.
    """
    rng = np.random.default_rng(seed)
    for split, count in (("train2017", num_train), ("val2017", num_val)):
        image_dir = os.path.join(root, "images", split)
        label_dir = os.path.join(root, "annotations_detectron2", split)
        os.makedirs(image_dir, exist_ok=True)
        os.makedirs(label_dir, exist_ok=True)
        for i in range(count):
            image, labels = render_sample(rng, *size)
            Image.fromarray(image).save(os.path.join(image_dir, f"{i:06d}.jpg"), quality=92)
            Image.fromarray(labels).save(os.path.join(label_dir, f"{i:06d}.png"))
    with open(os.path.join(root, "classes.json"), "w") as f:
        json.dump(SYNTHETIC_CLASSES, f)
    with open(os.path.join(root, _COMPLETE_MARKER), "w") as f:
        json.dump({"num_train": num_train, "num_val": num_val, "size": list(size), "seed": seed}, f)
    return root


def synthetic_dataset_exists(root):
    """Whether a complete dataset (its generation finished) is under `root`."""
    return os.path.isfile(os.path.join(root, _COMPLETE_MARKER))


# ---------------------------------------------------------------------------------------------- configs
def _config_chain(config_file):
    """The yaml files of a detectron2 config, bases first."""
    with open(config_file) as f:
        data = yaml.safe_load(f) or {}
    base = data.get("_BASE_")
    chain = []
    if base:
        base = os.path.expanduser(base)
        chain = _config_chain(base if os.path.isabs(base) else os.path.join(os.path.dirname(config_file), base))
    return chain + [data]


def config_uses_synthetic(config_file, opts=()):
    """Whether the config (with KEY VALUE overrides) trains or tests on a synthetic dataset. Reads the yaml files
    only (no detectron2), so that run.sh can ask cheaply; False for a config it cannot read."""
    try:
        values = {"TRAIN": "", "TEST": ""}
        for data in _config_chain(config_file):
            for key in values:
                if key in (data.get("DATASETS") or {}):
                    values[key] = str(data["DATASETS"][key])
    except (OSError, yaml.YAMLError, AttributeError, RecursionError):  # a _BASE_ loop: train_net.py names it
        return False
    opts = list(opts)
    for key, value in zip(opts[::2], opts[1::2]):
        if key in ("DATASETS.TRAIN", "DATASETS.TEST"):
            values[key.split(".")[1]] = value
    names = "|".join(re.escape(n) for n in SPLITS)
    return any(re.search(rf"\b({names})\b", v) for v in values.values())
