"""Tiny raw datasets in the on-disk formats their downloads ship, for the preparation and registration tests.

Each `make_*` writes a couple of small images under `root` as the real download lays them out and returns the
raw label arrays it wrote, keyed by image id.
"""

import importlib
import json
import pickle
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.io import savemat

REPO = Path(__file__).resolve().parents[2]
DATASETS_DIR = REPO / "datasets"


def load_script(name):
    """A datasets/ preparation script (e.g. "prepare_voc") as a module, as `python datasets/<name>.py` sees it."""
    if str(DATASETS_DIR) not in sys.path:
        sys.path.insert(0, str(DATASETS_DIR))
    return importlib.import_module(name)


def class_names(filename):
    return json.loads((DATASETS_DIR / filename).read_text())


def write_jpg(path, h, w, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rgb = np.random.RandomState(seed).randint(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(path)


def write_png(path, array, mode=None, palette=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array, mode=mode)
    if palette is not None:
        image.putpalette(palette)
    image.save(path)


def voc_palette():
    """The PASCAL VOC colour map (bit-interleaved), as its palette PNGs carry."""
    palette = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        palette += [r, g, b]
    return palette


def make_coco_stuff(root):
    """stuffthingmaps: value = COCO-Stuff id - 1 (0 person, 11 = unused id 12, 91 = banner, 181 = wood), 255."""
    raw = {
        "train2017": {"000000000009": np.array([[0, 11, 91], [181, 255, 90]], dtype=np.uint8)},
        "val2017": {"000000000139": np.array([[1, 12, 182], [250, 0, 24]], dtype=np.uint8)},
    }
    for split, maps in raw.items():
        for name, label in maps.items():
            write_jpg(root / "coco-stuff" / "images" / split / f"{name}.jpg", *label.shape)
            write_png(root / "coco-stuff" / "annotations" / split / f"{name}.png", label, mode="L")
    return raw


def make_ade20k_150(root):
    raw = {
        "training": {"ADE_train_00000001": np.array([[0, 1, 150], [151, 2, 0]], dtype=np.uint8)},
        "validation": {"ADE_val_00000001": np.array([[5, 0], [150, 1]], dtype=np.uint8)},
    }
    for split, maps in raw.items():
        for name, label in maps.items():
            write_jpg(root / "ADEChallengeData2016" / "images" / split / f"{name}.jpg", *label.shape)
            write_png(root / "ADEChallengeData2016" / "annotations" / split / f"{name}.png", label, mode="L")
    return raw


def ade_full_raw_ids():
    """{label: raw ADE20K class id} of the 847 benchmark classes, from the authors' id table."""
    table = json.loads((REPO / "datasets" / "authors_ids" / "ade20k_full_847_raw_ids.json").read_text())
    return {entry["trainId"]: entry["id"] for entry in table}


def make_ade20k_full(root, big=False):
    """
    A released-style ADE20K_2021_17_01 tree. Returns {(split, stem): raw class map (H, W)} of raw class ids (as
    encoded in the *_seg.png files). With `big`, one validation image is 520x600 (shorter side > 512:
    downscaled).
    """
    raw_id = ade_full_raw_ids()
    wall, building, last = raw_id[0], raw_id[1], raw_id[846]
    rare = max(raw_id.values()) + 1  # a class left out of the benchmark
    objectnames = [f"class {i}" for i in range(1, rare + 1)]
    maps = {
        ("training", "ADE_train_00000001"): np.array([[wall, 0, rare], [building, last, wall]]),
        ("validation", "ADE_val_00000001"): np.array([[last, building], [0, rare], [wall, wall]]),
    }
    if big:
        label = np.full((520, 600), wall)
        label[:, 300:] = last
        label[:10] = 0
        maps[("validation", "ADE_val_00000002")] = label
    folders = {
        "training": "ADE20K_2021_17_01/images/ADE/training/urban/street",
        "validation": "ADE20K_2021_17_01/images/ADE/validation/home_or_hotel/bedroom",
    }
    index = {"filename": [], "folder": [], "objectnames": objectnames}
    for (split, stem), label in maps.items():
        folder = root / folders[split]
        write_jpg(folder / f"{stem}.jpg", *label.shape)
        seg = np.zeros(label.shape + (3,), dtype=np.uint8)
        seg[:, :, 0] = label // 256 * 10
        seg[:, :, 1] = label % 256
        seg[:, :, 2] = 7  # instance ids live in B; they must not matter
        write_png(folder / f"{stem}_seg.png", seg)
        index["filename"].append(f"{stem}.jpg")
        index["folder"].append(folders[split])
    with open(root / "ADE20K_2021_17_01" / "index_ade20k.pkl", "wb") as f:
        pickle.dump(index, f)
    return maps


def make_voc(root, aug=False):
    """VOC2012 with palette PNGs; with `aug`, also a SegmentationClassAug folder (grayscale PNGs)."""
    base = root / "VOCdevkit" / "VOC2012"
    raw = {
        "2007_000032": np.array([[0, 1, 20], [255, 15, 0]], dtype=np.uint8),  # train
        "2007_000033": np.array([[0, 0], [255, 7]], dtype=np.uint8),  # val
    }
    for name, label in raw.items():
        write_jpg(base / "JPEGImages" / f"{name}.jpg", *label.shape)
        write_png(base / "SegmentationClass" / f"{name}.png", label, mode="P", palette=voc_palette())
    (base / "ImageSets" / "Segmentation").mkdir(parents=True)
    (base / "ImageSets" / "Segmentation" / "train.txt").write_text("2007_000032\n")
    (base / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000033\n")
    if aug:
        raw["2008_000002"] = np.array([[3, 0], [255, 20]], dtype=np.uint8)  # an SBD-only train image
        write_jpg(base / "JPEGImages" / "2008_000002.jpg", 2, 2)
        for name, label in raw.items():
            write_png(base / "SegmentationClassAug" / f"{name}.png", label, mode="L")
    return raw


def pascal_context_val_list(root):
    """A validation id list for prepare_pascal_context_459 naming the test tree's val image (the authors' list
    names 5,104 images this tree does not have)."""
    path = Path(root) / "pc459_val_list.txt"
    path.write_text("2008_000003\n")
    return path


def make_pascal_context(root):
    """VOC2010 images and split lists, PASCAL Context trainval/*.mat (LabelMap) and labels.txt."""
    base = root / "VOCdevkit" / "VOC2010"
    base.mkdir(parents=True)
    names = class_names("pc459.json")
    (base / "labels.txt").write_text("".join(f"{i + 1}: {name}\n" for i, name in enumerate(names)))
    raw = {
        # 0 unlabelled, 2 aeroplane (PC-59 label 0), 397 table (PC-59 "diningtable" = 49), 1 accordion (not PC-59),
        # 459 wool, 458 wood (PC-59 58)
        "2008_000002": np.array([[0, 2, 397], [1, 459, 458]], dtype=np.uint16),  # train
        "2008_000003": np.array([[259, 0], [2, 300]], dtype=np.uint16),  # val
    }
    for name, label in raw.items():
        write_jpg(base / "JPEGImages" / f"{name}.jpg", *label.shape)
        (base / "trainval").mkdir(parents=True, exist_ok=True)
        savemat(base / "trainval" / f"{name}.mat", {"LabelMap": label})
    (base / "ImageSets" / "Main").mkdir(parents=True)
    (base / "ImageSets" / "Main" / "train.txt").write_text("2008_000002\n")
    (base / "ImageSets" / "Main" / "val.txt").write_text("2008_000003\n")
    return raw


def read_label(path):
    return np.array(Image.open(path))
