#!/usr/bin/env python
"""Generates the synthetic quickstart dataset (no download): $DETECTRON2_DATASETS/synthetic, COCO-Stuff layout.

    python datasets/prepare_synthetic.py [--root DIR] [--num-train 200] [--num-val 40] [--size 128 128]
    python datasets/prepare_synthetic.py --if-missing --for-config configs/quickstart.yaml   # what run.sh does

With --for-config CONFIG [KEY VALUE ...] (last), only when that config trains or tests on a synthetic dataset.
The generator is sed/data/synthetic.py, loaded here by path: it needs numpy and Pillow, not torch.
"""

import argparse
import importlib.util
from pathlib import Path

from prepare_common import default_root

_spec = importlib.util.spec_from_file_location(
    "sed_data_synthetic", Path(__file__).resolve().parents[1] / "sed" / "data" / "synthetic.py"
)
synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synthetic)


def main(argv=None):
    parser = argparse.ArgumentParser(description="Generate the synthetic quickstart dataset (COCO-Stuff layout).")
    parser.add_argument("--root", default=None, help="output folder (default: $DETECTRON2_DATASETS/synthetic)")
    parser.add_argument("--num-train", type=int, default=200)
    parser.add_argument("--num-val", type=int, default=40)
    parser.add_argument("--size", type=int, nargs=2, default=(128, 128), metavar=("H", "W"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--if-missing", action="store_true", help="do nothing when a complete dataset exists")
    parser.add_argument(
        "--for-config",
        nargs=argparse.REMAINDER,
        metavar="CONFIG [KEY VALUE ...]",
        help="only if this config (with overrides) trains or tests on a synthetic dataset",
    )
    args = parser.parse_args(argv)
    if args.for_config is not None and not (
        args.for_config and synthetic.config_uses_synthetic(args.for_config[0], args.for_config[1:])
    ):
        return None
    root = args.root or str(default_root() / synthetic.DEFAULT_DIRNAME)
    if args.if_missing and synthetic.synthetic_dataset_exists(root):
        print(f"synthetic dataset already in {root}")
        return root
    synthetic.generate_synthetic_dataset(root, args.num_train, args.num_val, tuple(args.size), args.seed)
    print(f"wrote the synthetic dataset ({args.num_train} train, {args.num_val} val images) to {root}")
    return root


if __name__ == "__main__":
    main()
