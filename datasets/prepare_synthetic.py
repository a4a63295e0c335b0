#!/usr/bin/env python
"""Generates the synthetic quickstart dataset (no download): $DETECTRON2_DATASETS/synthetic, COCO-Stuff layout.

    python datasets/prepare_synthetic.py [--root DIR] [--num-train 200] [--num-val 40] [--size 128 128]
    python datasets/prepare_synthetic.py --if-missing --for-config configs/quickstart.yaml   # what run.sh does

With --for-config CONFIG [KEY VALUE ...] (last), only when that config trains or tests on a synthetic dataset.
The generator is sed/data/synthetic.py, loaded here by path: it needs numpy and Pillow, not torch.
"""
import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "sed_data_synthetic", Path(__file__).resolve().parents[1] / "sed" / "data" / "synthetic.py")
synthetic = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synthetic)

if __name__ == "__main__":
    synthetic.main()
