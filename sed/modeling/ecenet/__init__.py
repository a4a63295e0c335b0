"""ECENet (ICCV 2023): explicit class embeddings for closed-vocabulary semantic segmentation.

Importing this package registers the backbone "TimmSwinBackbone", the head "ECENetHead" and the
meta-architecture "ECENet" in detectron2's registries.
"""

from .backbone import TimmSwinBackbone
from .config import add_ecenet_config
from .head import ECENetHead
from .losses import ECENetCriterion
from .meta_arch import ECENet

__all__ = ["add_ecenet_config", "TimmSwinBackbone", "ECENetHead", "ECENetCriterion", "ECENet"]
