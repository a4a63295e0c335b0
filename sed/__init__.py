"""SED (CVPR 2024) on detectron2. Importing the package registers its models, datasets and CLIP configs."""
from pathlib import Path

import open_clip

from . import data  # noqa: F401  registers datasets
from . import modeling  # noqa: F401  (registers the models)
from .config import add_sed_config
from .predictor import OpenVocabSegmenter

# Lets open_clip build the package's own model configs (e.g. the tiny test CLIP) by name.
open_clip.add_model_config(Path(__file__).parent / "model_configs")

__all__ = ["add_sed_config", "OpenVocabSegmenter"]
