"""SED (CVPR 2024): open-vocabulary semantic segmentation with a CLIP ConvNeXt encoder, a cost map and a gradual
fusion decoder with category early rejection.

Importing this package registers the head "SEDHead" and the meta-architecture "SED" in detectron2's registries.
"""

from .sed_head import SEDHead, SEDPredictor
from .sed_model import SED

__all__ = ["SED", "SEDHead", "SEDPredictor"]
