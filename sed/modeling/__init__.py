"""Models of the project, registered with detectron2 on import."""
from .sed_head import SEDHead, SEDPredictor
from .sed_model import SED

__all__ = ["SED", "SEDHead", "SEDPredictor"]
