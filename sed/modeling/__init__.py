"""Models of the project, registered with detectron2 on import."""
from . import ecenet  # noqa: F401  (registers ECENet in detectron2's registries)
from .sed_head import SEDHead, SEDPredictor
from .sed_model import SED

__all__ = ["SED", "SEDHead", "SEDPredictor"]
