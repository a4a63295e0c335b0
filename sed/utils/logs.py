"""What a run's log says: colour only on a terminal, and no lines from libraries that are untrue for this project.

A redirected log (`sh run.sh ... > run.log`, OUTPUT_DIR/log.txt) is read in an editor or with grep, where colour
codes are noise; and a few library lines read as errors although nothing is wrong (see `environment_info`).
"""

import contextlib
import logging
import sys

from detectron2.utils.collect_env import collect_env_info
from detectron2.utils.logger import setup_logger

__all__ = ["environment_info", "hidden_log_lines", "setup_run_loggers"]

# The loggers of a run, each to stdout (main process) and OUTPUT_DIR/log.txt (every process).
RUN_LOGGERS = ("fvcore", "detectron2", "sed")


class _HideLines(logging.Filter):
    def __init__(self, text):
        super().__init__()
        self.text = text

    def filter(self, record):
        return self.text not in record.getMessage()


@contextlib.contextmanager
def hidden_log_lines(text, logger_name=""):
    """Drops the records of logger `logger_name` (default the root logger) whose message contains `text`.

    A library that logs through the root logger (`logging.warning(...)`, as open_clip does) while the root logger
    has no handler makes Python install one on stderr for the rest of the process (`logging.basicConfig`); the
    handler of last resort stands in meanwhile, so that other warnings still reach stderr and nothing stays.
    """
    target = logging.getLogger(logger_name)
    hide = _HideLines(text)
    target.addFilter(hide)
    stand_in = not logger_name and not target.handlers and logging.lastResort is not None
    if stand_in:
        target.addHandler(logging.lastResort)
    try:
        yield
    finally:
        target.removeFilter(hide)
        if stand_in:
            target.removeHandler(logging.lastResort)


def setup_run_loggers(output_dir, rank):
    """Logging of a training or evaluation process to stdout (rank 0) and `output_dir`/log.txt, coloured only
    when stdout is a terminal."""
    for name in RUN_LOGGERS:
        setup_logger(output_dir, distributed_rank=rank, name=name, color=sys.stdout.isatty())


def environment_info():
    """detectron2's environment table (versions, devices) for the log, without two untrue alarms:

    - the row "detectron2._C: not built correctly": the registry build of detectron2 (tools/setup_env.sh) has no
      compiled ops, and semantic segmentation uses none, so it says that instead;
    - torch's "No CUDA runtime is found, using CUDA_HOME=..." warning, printed when the table looks for a CUDA
      toolkit on a machine without GPU: the table's "GPU available" row says it plainly.
    """
    with hidden_log_lines("No CUDA runtime is found", "torch.utils.cpp_extension"):
        info = collect_env_info()
    lines = []
    for line in info.splitlines():
        if line.startswith("detectron2._C") and "not built correctly: No module named" in line:
            line = line.split("not built correctly")[0] + "not built (compiled ops, unused by this project)"
        lines.append(line)
    return "\n".join(lines)
