from . import ecenet  # noqa: F401  (registers ECENet in detectron2's registries)
