"""Your own folder dataset, registered from a small YAML (or JSON) file instead of code.

A dataset spec (YAML; JSON is valid YAML) describes `images/` + `masks/` folders (label maps, one value per pixel)
and the class list::

    name: pets                     # registers pets_<split> for each split below
    root: pets                     # dataset folder; a relative path is under $DETECTRON2_DATASETS
    classes: [cat, dog, grass/lawn]  # label order; a vocabulary as sed.data.vocabulary reads it (or a JSON file)
    ignore_label: 255              # label-map value of unlabelled pixels (not trained on, not evaluated)
    label_offset: 0                # label-map value of class 0; 1 for 1-based ids (value 0 is then ignored)
    image_ext: jpg                 # image file extension
    mask_ext: png                  # label-map file extension
    mask_suffix: ""                # the label map of images/x.jpg is masks/x<mask_suffix>.<mask_ext>
    splits:                        # split -> folders, relative to root
      train: {images: images/train, masks: masks/train}
      val: {images: images/val, masks: masks/val}

Only `name`, `classes` and `splits` are required. Each split is registered with `register_sem_seg_dataset`, as the
built-in benchmarks are (DatasetCatalog, MetadataCatalog with `stuff_classes`, `ignore_label`, `evaluator_type`
"sem_seg"), so the training, eval.sh, tools/demo.py --dataset and OpenVocabSegmenter(vocabulary=...) take it.
List spec files in DATASETS.CUSTOM (the command-line tools register them), or call `register_custom_dataset`.

With a `label_offset`, label maps are rewritten once, when the dataset is first loaded, into
`<root>/annotations_detectron2/<split>` (value v -> v - label_offset; values below it -> ignore_label), as the
preparation scripts of the benchmarks write theirs.
"""

import logging
import os
from functools import partial
from typing import List

import numpy as np
import yaml
from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image
from tqdm import tqdm

from ..vocabulary import VocabularyError, parse_vocabulary
from .register_sem_seg import datasets_root, register_sem_seg_dataset

__all__ = ["register_custom_dataset", "register_custom_datasets", "load_custom_records"]

logger = logging.getLogger(__name__)

_FIELDS = {"name", "root", "classes", "ignore_label", "label_offset", "image_ext", "mask_ext", "mask_suffix", "splits"}
PREPARED_DIRNAME = "annotations_detectron2"


def _fail(spec_file, problem):
    raise ValueError(
        f"dataset spec {spec_file}: {problem} (the fields are explained in "
        'sed/data/datasets/register_custom.py and README.md, "Your own dataset")'
    )


def _read_spec(spec_file):
    if not os.path.isfile(spec_file):
        raise FileNotFoundError(
            f"dataset spec {spec_file!r} not found: give the path of a .yaml or .json file (DATASETS.CUSTOM lists them)"
        )
    try:
        with open(spec_file, encoding="utf-8") as f:
            spec = yaml.safe_load(f)
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        _fail(spec_file, f"not valid YAML/JSON ({' '.join(str(e).split())})")
    if not isinstance(spec, dict):
        _fail(spec_file, "must hold a mapping of fields (name, classes, splits, ...)")
    unknown = sorted(set(spec) - _FIELDS)
    if unknown:
        _fail(spec_file, f"unknown field(s) {unknown}; valid fields: {sorted(_FIELDS)}")
    for field in ("name", "classes", "splits"):
        if not spec.get(field):
            _fail(spec_file, f"field '{field}' is missing or empty")
    if not isinstance(spec["splits"], dict) or not all(
        isinstance(v, dict) and set(v) == {"images", "masks"} for v in spec["splits"].values()
    ):
        _fail(spec_file, "'splits' must map each split to {images: <folder>, masks: <folder>}")
    for field in ("ignore_label", "label_offset"):
        if not isinstance(spec.get(field, 0), int) or spec.get(field, 0) < 0:
            _fail(spec_file, f"'{field}' must be a non-negative integer, got {spec[field]!r}")
    return spec


def _mask_path(mask_root, image_file, mask_suffix, mask_ext):
    stem = os.path.splitext(os.path.basename(image_file))[0]
    return os.path.join(mask_root, f"{stem}{mask_suffix}.{mask_ext}")


def _remap(mask, label_offset, ignore_label):
    """(H, W) label map with class i at value i + label_offset -> class i at value i; below the offset -> ignore."""
    out = mask.astype(np.int64) - label_offset
    out[(mask < label_offset) | (mask == ignore_label)] = ignore_label
    return out.astype(mask.dtype)


def load_custom_records(
    image_root, mask_root, *, image_ext, mask_ext, mask_suffix, label_offset, ignore_label, prepared_root
) -> List[dict]:
    """Records {"file_name", "sem_seg_file_name"} of every image that has a label map (images without one are
    left out with a warning; tools/verify_dataset.py lists them). With `label_offset`, the label maps are those
    rewritten into `prepared_root` (written when missing or older than the original)."""
    images = sorted(f for f in os.listdir(image_root) if f.endswith(f".{image_ext}"))
    pairs = [(os.path.join(image_root, f), _mask_path(mask_root, f, mask_suffix, mask_ext)) for f in images]
    unmatched = [image for image, mask in pairs if not os.path.isfile(mask)]
    if unmatched:
        logger.warning(
            "%d of %d images in %s have no label map in %s (e.g. %s); they are left out.",
            len(unmatched),
            len(pairs),
            image_root,
            mask_root,
            os.path.basename(unmatched[0]),
        )
    pairs = [(image, mask) for image, mask in pairs if os.path.isfile(mask)]
    if label_offset:
        os.makedirs(prepared_root, exist_ok=True)
        prepared = []
        for image, mask in tqdm(pairs, desc=f"label maps -> {prepared_root}", disable=len(pairs) < 100):
            out = os.path.join(prepared_root, os.path.basename(mask))
            if not os.path.isfile(out) or os.path.getmtime(out) < os.path.getmtime(mask):
                array = _remap(np.asarray(Image.open(mask)), label_offset, ignore_label)
                tmp = f"{out}.tmp.{os.getpid()}.{mask_ext}"  # atomic: several processes may prepare at once
                Image.fromarray(array).save(tmp)
                os.replace(tmp, out)
            prepared.append((image, out))
        pairs = prepared
    return [{"file_name": image, "sem_seg_file_name": mask} for image, mask in pairs]


def register_custom_dataset(spec_file: str) -> List[str]:
    """Registers each split of the dataset described by `spec_file` as `<name>_<split>`; returns those names.

    Registering the same spec again replaces its datasets (a changed spec takes effect); a name that a built-in
    dataset or another spec holds raises ValueError.
    """
    spec_file = os.path.abspath(os.path.expanduser(spec_file))
    spec = _read_spec(spec_file)
    classes = spec["classes"]
    if isinstance(classes, str) and os.path.isfile(os.path.join(os.path.dirname(spec_file), classes)):
        classes = os.path.join(os.path.dirname(spec_file), classes)  # a class file beside the spec
    try:
        stuff_classes = parse_vocabulary(classes)
    except (VocabularyError, TypeError) as e:
        _fail(spec_file, f"'classes': {e}")
    class_json = classes if isinstance(classes, str) and "," not in classes else None
    ignore_label, label_offset = spec.get("ignore_label", 255), spec.get("label_offset", 0)
    if ignore_label < len(stuff_classes):
        _fail(
            spec_file,
            f"ignore_label {ignore_label} is a class id ({len(stuff_classes)} classes): use a value "
            f"of at least {len(stuff_classes)}, e.g. 255",
        )
    # `root` is resolved when the dataset is loaded, under the datasets root of that moment.
    root = spec.get("root", spec["name"])
    image_ext, mask_ext = spec.get("image_ext", "jpg").lstrip("."), spec.get("mask_ext", "png").lstrip(".")
    names = []
    for split, folders in spec["splits"].items():
        name = f"{spec['name']}_{split}"
        if name in DatasetCatalog.list():
            owner = MetadataCatalog.get(name).get("custom_spec", None)
            if owner != spec_file:
                _fail(
                    spec_file,
                    f"dataset name {name!r} is already registered"
                    f"{' by ' + owner if owner else ' (a built-in dataset)'}: choose another 'name'",
                )
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
        register_sem_seg_dataset(
            name,
            image_dirname=os.path.join(root, folders["images"]),
            sem_seg_dirname=os.path.join(root, folders["masks"]),
            class_json=class_json,
            stuff_classes=stuff_classes,
            ignore_label=ignore_label,
            prepare_script=None,
            image_ext=image_ext,
            gt_ext=mask_ext,
            loader=partial(
                _loader, root, split, image_ext, mask_ext, spec.get("mask_suffix", ""), label_offset, ignore_label
            ),
            missing_hint=f"Check 'root' and 'splits' in {spec_file}.",
            custom_spec=spec_file,
            label_offset=label_offset,
            mask_suffix=spec.get("mask_suffix", ""),
            # the images folder is the split's own: images without a label map are a mistake
            image_root_exclusive=True,
        )
        names.append(name)
    logger.info("Registered %s from %s (%d classes).", ", ".join(names), spec_file, len(stuff_classes))
    return names


def _loader(root, split, image_ext, mask_ext, mask_suffix, label_offset, ignore_label, image_root, mask_root):
    prepared_root = os.path.join(datasets_root(), root, PREPARED_DIRNAME, split)
    return load_custom_records(
        image_root,
        mask_root,
        image_ext=image_ext,
        mask_ext=mask_ext,
        mask_suffix=mask_suffix,
        label_offset=label_offset,
        ignore_label=ignore_label,
        prepared_root=prepared_root,
    )


def register_custom_datasets(cfg) -> List[str]:
    """Registers the dataset specs listed in cfg.DATASETS.CUSTOM; returns the dataset names."""
    return [name for spec_file in cfg.DATASETS.get("CUSTOM", ()) for name in register_custom_dataset(spec_file)]
