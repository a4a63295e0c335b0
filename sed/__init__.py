"""SED (CVPR 2024) on detectron2. Importing the package registers its models, datasets and CLIP configs."""

import warnings
from pathlib import Path

with warnings.catch_warnings():
    # fvcore (imported by detectron2) calls torch.jit.script at import time, which recent torch deprecates: noise
    # to users, once per process, from code that is not ours.
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*is deprecated", category=FutureWarning)
    import open_clip

    from . import (
        data,  # noqa: F401  registers datasets
        model_zoo,  # noqa: F401  (registers sed:// in detectron2's PathManager)
        modeling,  # noqa: F401  (registers the models)
    )
    from .checkpoint.safe_load import make_detectron2_checkpoints_safe
    from .config import add_sed_config
    from .predictor import OpenVocabSegmenter

# detectron2's DetectionCheckpointer, which user code calls on this package's models, reads .pkl files with plain
# pickle: from here on it reads them (and .pth files) without running code from them.
make_detectron2_checkpoints_safe()
# Lets open_clip build the package's own model configs (e.g. the tiny test CLIP) by name.
open_clip.add_model_config(Path(__file__).parent / "model_configs")

__all__ = ["add_sed_config", "OpenVocabSegmenter"]
