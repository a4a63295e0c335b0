"""The model protocol: everything the shared code (engine, evaluation suite, predictor, demo) may ask of a model.

A meta-architecture declares what it can do by subclassing `SegmentationModel` and overriding its class
attributes and methods; the shared code reads them with `capabilities(model or cfg)` (a cfg through detectron2's
META_ARCH_REGISTRY), never by the model's name or its module paths. A detectron2 meta-architecture that does not
subclass it gets the defaults: a closed vocabulary, no category early rejection, every parameter at the base lr.

Beyond detectron2's contract (a loss dict in training, [{"sem_seg": (K, H, W)}] in inference):
- `open_vocabulary`: the model segments any vocabulary: `set_vocabulary(names)` gives it T names (kept in its
  `test_class_names`) and it returns T class maps; `evaluation_settings` says which config values choose its test
  vocabulary.
- `supports_fast_inference`: `inference_options(fast=True)` switches on category early rejection for a block
  (the predictor does for large vocabularies).
- `supports_label_maps`: inside `inference_options(labels_only=True)`, inference returns label maps instead of
  class scores, with whether those scores were finite (`sed.modeling.postprocess.label_outputs`; evaluation,
  predictor, speed benchmark).
  The two options live in the model's `fast_inference` / `labels_only` attributes; callers use the methods.
- `lr_multiplier(param_name)`: the lr factor of each of its parameters (e.g. a pre-trained encoder at 0.01).
- `benchmark_parts()`: the parts of an inference that the speed benchmark times separately.
"""

import contextlib
from typing import Dict, List, Optional, Sequence, Tuple

from detectron2.config import CfgNode
from detectron2.modeling import META_ARCH_REGISTRY
from torch import nn

__all__ = ["SegmentationModel", "capabilities", "inference_options", "model_class", "unwrap_model"]


class SegmentationModel:
    """Mixin of a meta-architecture (next to nn.Module) that declares its capabilities; defaults: none."""

    open_vocabulary: bool = False
    supports_fast_inference: bool = False
    supports_label_maps: bool = False

    def set_vocabulary(self, class_names: Sequence[str]) -> None:
        """From now on, segment these T class names (open-vocabulary models; others refuse)."""
        if not self.open_vocabulary:
            raise ValueError(f"{type(self).__name__} segments the classes of its config: it takes no vocabulary.")
        self.test_class_names = list(class_names)

    @contextlib.contextmanager
    def inference_options(self, fast: Optional[bool] = None, labels_only: Optional[bool] = None):
        """Inside the block, inference uses category early rejection or not (`fast`) and returns label maps or
        scores (`labels_only`); None, or an option the model does not support, leaves that setting as it is.
        The settings are restored on leaving the block."""
        changes = {
            name: value
            for name, value, supported in [
                ("fast_inference", fast, self.supports_fast_inference),
                ("labels_only", labels_only, self.supports_label_maps),
            ]
            if value is not None and supported
        }
        previous = {name: getattr(self, name) for name in changes}
        for name, value in changes.items():
            setattr(self, name, bool(value))
        try:
            yield self
        finally:
            for name, value in previous.items():
                setattr(self, name, value)

    def lr_multiplier(self, param_name: str) -> float:
        """The factor of SOLVER.BASE_LR for parameter `param_name` (a name of `self.named_parameters()`)."""
        return 1.0

    def benchmark_parts(self) -> Dict[str, Tuple[object, List[str]]]:
        """{part: (object, names of its methods that run the part)}: the speed benchmark times each part as the
        time spent inside those methods during an inference (wrapping them on the instances for the time of a
        measurement; the rest of a call is pre- and post-processing). Default: none, only the total is timed."""
        return {}

    @classmethod
    def evaluation_settings(cls, class_json: str, benchmark: bool = False) -> Dict[str, object]:
        """{config key: Python value} with which an open-vocabulary model is tested with the class names of
        `class_json` ("" = each test dataset's own); with `benchmark`, plus its settings for the open-vocabulary
        benchmarks. Closed-vocabulary models: none."""
        return {}


def unwrap_model(model: nn.Module) -> nn.Module:
    """The model inside DistributedDataParallel / DataParallel wrappers (the model itself when unwrapped)."""
    while isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    return model


def inference_options(model, fast: Optional[bool] = None, labels_only: Optional[bool] = None):
    """`model.inference_options(...)` for any model (possibly wrapped in DistributedDataParallel); a model without
    the protocol has no options and is left as it is."""
    model = unwrap_model(model)
    if isinstance(model, SegmentationModel):
        return model.inference_options(fast=fast, labels_only=labels_only)
    return contextlib.nullcontext(model)


def model_class(cfg) -> type:
    """The registered class of cfg.MODEL.META_ARCHITECTURE."""
    try:
        return META_ARCH_REGISTRY.get(cfg.MODEL.META_ARCHITECTURE)
    except KeyError as e:
        raise ValueError(
            f"MODEL.META_ARCHITECTURE={cfg.MODEL.META_ARCHITECTURE!r} is not a registered model: "
            "import the module that registers it, or fix the name."
        ) from e


def capabilities(model_or_cfg) -> type:
    """The class whose attributes say what a model can do (see the module docstring): the model's own class
    when it subclasses `SegmentationModel`, else `SegmentationModel` (the defaults).

    Args:
        model_or_cfg: a model (possibly wrapped in DistributedDataParallel), a model class, or a config.
    """
    if isinstance(model_or_cfg, CfgNode):
        cls = model_class(model_or_cfg)
    elif isinstance(model_or_cfg, type):
        cls = model_or_cfg
    else:
        cls = type(unwrap_model(model_or_cfg))
    return cls if issubclass(cls, SegmentationModel) else SegmentationModel
