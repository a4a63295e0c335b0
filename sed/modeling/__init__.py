"""Models of the project, registered with detectron2 on import: each in its own package (`sed/`, `ecenet/`);
the modules at this level (protocol, inference, post-processing, chunks) are shared by every model."""

from . import (
    ecenet,  # noqa: F401  (registers ECENet in detectron2's registries)
    sed,  # noqa: F401  (registers SED in detectron2's registries)
)
from .sed import SED, SEDHead, SEDPredictor

__all__ = ["SED", "SEDHead", "SEDPredictor"]
