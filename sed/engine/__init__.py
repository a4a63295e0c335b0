"""Training and evaluation engine: `Trainer`, the optimizer and schedule, CPU/GPU multi-process launch, the
command line of tools/train_net.py, the evaluation suite of eval.sh and its results table. Model-agnostic: it asks
models only what the model protocol (sed/modeling/protocol.py) declares."""

from .launch import launch
from .optimizer import build_lr_scheduler, build_optimizer, get_param_groups
from .results import format_results, write_results
from .trainer import Trainer, set_test_vocabulary

__all__ = [
    "Trainer",
    "build_optimizer",
    "build_lr_scheduler",
    "get_param_groups",
    "launch",
    "format_results",
    "set_test_vocabulary",
    "write_results",
]
