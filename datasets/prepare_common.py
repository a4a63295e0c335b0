"""Plumbing shared by the `prepare_*.py` scripts: arguments, raw-input checks, a resumable parallel loop and
atomic writes of label maps.

The scripts depend on numpy, Pillow, scipy, opencv and tqdm only (not on the `sed` package, whose import
pulls in torch and open_clip), so they run from any environment that has those.
"""

import argparse
import json
import os
from multiprocessing import Pool
from pathlib import Path
from typing import Callable, Iterable, List, Sequence, Tuple, Union

import numpy as np
from PIL import Image
from tqdm import tqdm

# The class-name JSON files (coco.json, ade847.json, ...) live next to the scripts.
CLASS_NAME_DIR = Path(__file__).resolve().parent

# Format by extension for Pillow, which cannot guess it from the temporary name used by `save_atomic`.
_FORMATS = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".jpg": "JPEG", ".jpeg": "JPEG"}

Outputs = Union[Path, Tuple[Path, ...]]


def default_root() -> Path:
    """`$DETECTRON2_DATASETS`, or `./datasets` like detectron2."""
    return Path(os.environ.get("DETECTRON2_DATASETS", "datasets")).expanduser()


def make_parser(description: str, splits: Sequence[str]) -> argparse.ArgumentParser:
    """The arguments every script takes: --root, --workers, --splits (one of `splits` or more)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--root",
        type=Path,
        default=default_root(),
        help="datasets root (default: $DETECTRON2_DATASETS, else ./datasets)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=min(8, os.cpu_count() or 1),
        help="parallel worker processes (1: convert in this process)",
    )
    parser.add_argument(
        "--splits", nargs="+", choices=list(splits), default=list(splits), help="splits to write (default: all)"
    )
    return parser


def require(path: Path, how_to_get_it: str) -> Path:
    """Returns `path` if it exists, else raises FileNotFoundError naming it and where to download it."""
    if not path.exists():
        raise FileNotFoundError(f"raw input {path} not found. {how_to_get_it} See datasets/README.md.")
    return path


def read_class_names(filename: str) -> List[str]:
    """A class-name JSON file next to the scripts (e.g. "ade847.json"): names in label order."""
    names = json.loads((CLASS_NAME_DIR / filename).read_text(encoding="utf-8"))
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"{CLASS_NAME_DIR / filename} is not a JSON list of class names")
    return names


def read_split_list(path: Path) -> List[str]:
    """Image ids, one a line, of a VOC-style ImageSets file."""
    return [line.split()[0] for line in path.read_text().splitlines() if line.strip()]


def save_atomic(image: Image.Image, dst: Path, **save_kwargs) -> None:
    """Writes through a temporary file, so an interrupted run never leaves a partial file that a resumed run
    would skip; the temporary name does not end in the image extension, so dataset loaders never list it."""
    tmp = dst.with_name(dst.name + ".tmp")
    image.save(tmp, format=_FORMATS[dst.suffix.lower()], **save_kwargs)
    os.replace(tmp, dst)


def save_label(label: np.ndarray, dst: Path) -> None:
    """
    Writes a label map: uint8 (H, W) as PNG, uint16 (H, W) as a deflate-compressed 16-bit TIFF (more than
    256 labels). Both read back exactly with Pillow, which is how detectron2 reads ground truth.
    """
    if label.dtype == np.uint8:
        save_atomic(Image.fromarray(label), dst)
    elif label.dtype == np.uint16:
        save_atomic(Image.fromarray(label), dst, compression="tiff_deflate")
    else:
        raise TypeError(f"label maps are uint8 or uint16, got {label.dtype}")


def remap(labels: np.ndarray, lut: np.ndarray, ignore: int) -> np.ndarray:
    """`lut[labels]`, with ids past the end of the table (never valid, but raw files may hold stray values)
    mapped to `ignore` instead of raising."""
    labels = np.asarray(labels, dtype=np.int64)
    out = lut[np.minimum(labels, len(lut) - 1)]
    out[labels >= len(lut)] = ignore
    return out


_worker_fn = None


def _init_worker(fn):
    global _worker_fn
    _worker_fn = fn


def _run_one(job):
    _worker_fn(*job)


def run_jobs(
    fn: Callable[[object, Outputs], None], jobs: Iterable[Tuple[object, Outputs]], workers: int, desc: str
) -> Tuple[int, int]:
    """
    Runs `fn(source, outputs)` for every job whose outputs do not all exist yet (so a run can be resumed),
    in `workers` processes, with a progress bar.

    Args:
        fn: a module-level function (it is sent to the worker processes); it writes `outputs`.
        jobs: (source, outputs) pairs; `outputs` is a Path or a tuple of Paths.

    Returns:
        (written, skipped): how many jobs ran and how many were already done.
    """
    todo, skipped = [], 0
    for source, outputs in jobs:
        paths = outputs if isinstance(outputs, tuple) else (outputs,)
        if all(p.exists() for p in paths):
            skipped += 1
            continue
        for p in paths:
            p.parent.mkdir(parents=True, exist_ok=True)
        todo.append((source, outputs))
    if workers <= 1 or len(todo) <= 1:  # no pool to start for a single job
        for job in tqdm(todo, desc=desc, unit="img"):
            fn(*job)
    else:
        with Pool(workers, initializer=_init_worker, initargs=(fn,)) as pool:
            for _ in tqdm(pool.imap_unordered(_run_one, todo, chunksize=8), total=len(todo), desc=desc, unit="img"):
                pass
    print(f"{desc}: wrote {len(todo)}, skipped {skipped} already done")
    return len(todo), skipped


def main_wrapper(prepare: Callable[..., object], parser: argparse.ArgumentParser, argv=None) -> None:
    """Command-line entry: parses arguments, runs `prepare(root, splits=..., workers=...)`, and turns a
    missing or malformed raw input into a one-line error instead of a traceback."""
    args = parser.parse_args(argv)
    try:
        prepare(args.root, splits=args.splits, workers=args.workers)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None
