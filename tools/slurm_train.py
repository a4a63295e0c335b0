#!/usr/bin/env python
"""Train on a SLURM cluster with run.sh's arguments: NODES x GPUS tasks through submitit, requeued on preemption.

    python tools/slurm_train.py --nodes 2 --partition gpu configs/convnextB_768.yaml 8 output/sed_b
    python tools/slurm_train.py --cluster local --wait configs/quickstart.yaml 2 output/qs MODEL.DEVICE cpu

Options (before CONFIG): --nodes, --partition, --account, --time MINUTES, --cpus-per-gpu, --mem-per-gpu GB,
--job-dir, --cluster slurm|local, --wait. Then CONFIG GPUS_PER_NODE OUTPUT_DIR [KEY VALUE ...] as run.sh.
Needs `pip install -e .[slurm]`. Library: sed/engine/slurm.py.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing

from sed.engine.slurm import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
