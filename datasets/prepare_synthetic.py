#!/usr/bin/env python
"""Generates the synthetic quickstart dataset (no download): $DETECTRON2_DATASETS/synthetic, COCO-Stuff layout.

    python datasets/prepare_synthetic.py [--root DIR] [--num-train 200] [--num-val 40] [--size 128 128]
    python datasets/prepare_synthetic.py --if-missing --for-config configs/quickstart.yaml   # what run.sh does

With --for-config, only when the config (plus KEY VALUE overrides) trains or tests on a synthetic dataset.
The generator is sed/data/synthetic.py.
"""
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message=".*torch.jit.script.*is deprecated", category=FutureWarning)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _config_uses_synthetic(argv):
    from sed.data.synthetic import SPLITS
    from sed.engine.cli import UsageError, load_config

    config, opts = argv[0], argv[1:]
    try:
        cfg = load_config(config, opts)
    except (UsageError, FileNotFoundError):
        return False  # train_net.py reports the mistake
    return any(name in SPLITS for name in (*cfg.DATASETS.TRAIN, *cfg.DATASETS.TEST))


if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--for-config" in argv:
        i = argv.index("--for-config")
        argv, config_argv = argv[:i], argv[i + 1:]
        if not config_argv or not _config_uses_synthetic(config_argv):
            sys.exit(0)
    from sed.data.synthetic import main

    main(argv)
