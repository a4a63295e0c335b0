"""Training and evaluation engine: `Trainer`, the optimizer and schedule, CPU/GPU multi-process launch, the
command line of tools/train_net.py and the benchmark suite of eval.sh. Model-agnostic (SED, ECENet, ...)."""
from .launch import launch
from .optimizer import build_lr_scheduler, build_optimizer, get_param_groups
from .trainer import Trainer, results_table, set_test_vocabulary, write_results

__all__ = ["Trainer", "build_optimizer", "build_lr_scheduler", "get_param_groups", "launch", "results_table",
           "set_test_vocabulary", "write_results"]
