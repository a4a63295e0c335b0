#!/usr/bin/env python
"""Train or evaluate a model of this project (SED, ECENet) with detectron2.

    python tools/train_net.py --config-file configs/convnextB_768.yaml --num-gpus 4 OUTPUT_DIR output/sed_b
    python tools/train_net.py --config-file configs/convnextB_768.yaml --eval-only MODEL.WEIGHTS model.pth
    python tools/train_net.py --config-file configs/tiny_cpu.yaml --num-gpus 2 MODEL.DEVICE cpu   # 2 CPU processes

Options: --resume (continue from OUTPUT_DIR/last_checkpoint), --eval-only, --num-gpus (processes per machine),
--num-machines, --machine-rank, --dist-url, --skip-missing-datasets; then config overrides as KEY VALUE pairs.
The code is sed/engine (cli.py: this command; trainer.py: the training loop).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing

from sed.engine.cli import run  # noqa: E402

if __name__ == "__main__":
    sys.exit(run())
