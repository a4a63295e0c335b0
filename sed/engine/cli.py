"""Command line of `tools/train_net.py`: configuration, checks that fail early with one clear line, launch.

    python tools/train_net.py --config-file CONFIG [--num-gpus N] [--resume | --eval-only] [KEY VALUE ...]

Mistakes a user can fix (a missing or empty dataset, an OUTPUT_DIR that cannot be written, a config key that does
not exist, more processes than GPUs, a batch that does not split over the processes) end the run with exit
code 2 and ONE line on stderr saying what to do, before any model is built; so do, when they are met, a
checkpoint that cannot be read, holds more than weights (refused unread: it could run code), holds NaN/Inf or
does not fit the model, an image or label file that cannot be read or a label map that is not one of the
dataset's class ids (or the ignore label) per pixel of its image, class scores that hold NaN or Inf, and a
disk too full for a checkpoint or results (the previous checkpoint stays usable: --resume continues from it).
SIGTERM or SIGINT during training saves a checkpoint of the current iteration, says so in one line and exits
with 128 + the signal's number; --resume then continues exactly (see sed/engine/stop_signals.py).
Set SED_DEBUG=1 to get the traceback instead. A run that fails before writing anything leaves no OUTPUT_DIR
behind; an --eval-only run first moves an earlier OUTPUT_DIR/results.json to results.previous.json, so that a
failed evaluation leaves no results that look current.
"""

import difflib
import logging
import os
import sys
from datetime import timedelta

import torch
from detectron2.data import DatasetCatalog
from detectron2.engine import DefaultTrainer, default_argument_parser
from detectron2.utils import comm
from detectron2.utils.env import seed_all_rng
from torch.multiprocessing import ProcessExitedException

from .. import config, model_zoo
from ..checkpoint.loading import CheckpointError, SafeCheckpointer, load_checkpoint
from ..data.image_io import ImageFileError
from ..modeling.postprocess import NonFiniteOutputError
from ..utils.files import DiskFullError, check_writable_dir, missing_folders, remove_if_empty
from ..utils.logs import environment_info, setup_run_loggers
from ..utils.messages import one_line
from .launch import DEFAULT_TIMEOUT, launch
from .results import write_results
from .stop_signals import TrainingStopped
from .train_step import micro_batch_size
from .trainer import Trainer

__all__ = ["UsageError", "build_parser", "load_config", "setup", "main", "preflight", "run"]

USAGE_EXIT_CODE = 2
logger = logging.getLogger("sed.engine")


class UsageError(Exception):
    """A mistake in the command, config or files, explained in one line that says what to do."""


def build_parser():
    parser = default_argument_parser()
    parser.description = "Train or evaluate a segmentation model of this project (SED, ECENet) with detectron2."
    parser.add_argument(
        "--skip-missing-datasets",
        action="store_true",
        help="with --eval-only: record a test dataset whose files are missing as skipped "
        "(in OUTPUT_DIR/results.json) instead of failing",
    )
    parser.add_argument(
        "--dist-timeout",
        type=float,
        default=DEFAULT_TIMEOUT.total_seconds(),
        metavar="SECONDS",
        help="several processes: how long every process waits for the others to start (rank 0 "
        "says who is missing meanwhile), and for any collective operation; default "
        f"{DEFAULT_TIMEOUT.total_seconds():g} (detectron2's)",
    )
    return parser


def load_config(config_file, opts=()):
    """`sed.config.load_config`, its mistakes raised as UsageError."""
    if not config_file:
        raise UsageError("no config: pass --config-file configs/<name>.yaml")
    try:
        return config.load_config(config_file, opts)
    except (ValueError, FileNotFoundError) as e:
        raise UsageError(one_line(e)) from e


def _check_output_dir(output_dir):
    if not output_dir:
        raise UsageError("OUTPUT_DIR is empty: add OUTPUT_DIR <folder> to the command")
    try:
        check_writable_dir(output_dir)
    except OSError as e:
        raise UsageError(
            f"OUTPUT_DIR {output_dir!r} cannot be written ({e.strerror or e}): give a folder you can "
            "write to, e.g. OUTPUT_DIR ./output/<run name>"
        ) from e


def _check_devices(cfg, args):
    n = args.num_gpus
    if n < 1 or args.num_machines < 1:
        raise UsageError(
            "--num-gpus and --num-machines must be at least 1 (--num-gpus is the number of "
            "processes per machine: GPUs, or CPU processes with MODEL.DEVICE cpu)"
        )
    if not cfg.MODEL.DEVICE.startswith("cuda"):
        return False
    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if available == 0:
        if n > 1:
            raise UsageError(
                f"--num-gpus {n} but this machine has no GPU: add MODEL.DEVICE cpu to run {n} CPU "
                "processes (gloo), or use --num-gpus 1 MODEL.DEVICE cpu"
            )
        raise UsageError(
            f"MODEL.DEVICE is {cfg.MODEL.DEVICE} but this machine has no GPU: add MODEL.DEVICE cpu "
            "to the command (CPU runs suit the tiny configs; the paper's models need GPUs)"
        )
    if n > available:
        raise UsageError(
            f"--num-gpus {n} but this machine has {available} GPU(s): use --num-gpus {available} or "
            "less (SOLVER.IMS_PER_BATCH is split over the processes)"
        )
    return True


def _check_batch(cfg, world_size):
    cfg = DefaultTrainer.auto_scale_workers(cfg, world_size)
    try:
        micro_batch_size(cfg, world_size)
    except ValueError as e:
        raise UsageError(f"{e} (processes: --num-gpus x --num-machines)") from e


def _weights_available(weights):
    return not weights or "://" in weights or os.path.isfile(os.path.expanduser(weights))


def _dataset_error(name, key):
    """None if `name` loads, else the one-line reason its files are missing. An unregistered name raises."""
    if name not in DatasetCatalog.list():
        similar = difflib.get_close_matches(name, DatasetCatalog.list(), n=len(DatasetCatalog.list()), cutoff=0.8)
        hint = f"did you mean {', '.join(similar)}?" if similar else "no registered name resembles it"
        raise UsageError(
            f"dataset {name!r} ({key}) is not registered: {hint} (the project's datasets are "
            "registered in sed/data/datasets)"
        )
    try:
        DatasetCatalog.get(name)
    except FileNotFoundError as e:
        return one_line(e)
    return None


def preflight(cfg, args):
    """Checks what can be checked before launching processes. Returns a dict {test dataset: reason} of missing
    test datasets that --skip-missing-datasets allows to skip; raises UsageError otherwise."""
    _check_output_dir(cfg.OUTPUT_DIR)
    _check_devices(cfg, args)
    world_size = args.num_gpus * args.num_machines
    if args.dist_timeout <= 0:
        raise UsageError(
            f"--dist-timeout {args.dist_timeout:g}: give a number of seconds above 0 (default "
            f"{DEFAULT_TIMEOUT.total_seconds():g})"
        )
    if args.num_machines > 1 and args.dist_url == "auto":
        raise UsageError("--dist-url auto works on one machine only: give tcp://<address of machine 0>:<port>")
    resuming = args.resume and os.path.isfile(os.path.join(cfg.OUTPUT_DIR, "last_checkpoint"))
    if not resuming and not _weights_available(cfg.MODEL.WEIGHTS):
        raise UsageError(
            f"MODEL.WEIGHTS {cfg.MODEL.WEIGHTS!r}: no such file: give the path of a checkpoint (.pth), a "
            f"model-zoo name ({', '.join(model_zoo.zoo_names(model_zoo.Checkpoint))}; MODEL_ZOO.md), "
            'or MODEL.WEIGHTS "" to start from the config\'s initialisation'
        )
    if not resuming and cfg.MODEL.WEIGHTS.startswith(model_zoo.PREFIX):
        # Downloaded here, once, before the processes start: they then all find it in the cache.
        model_zoo.fetch_checkpoint(cfg.MODEL.WEIGHTS[len(model_zoo.PREFIX) :])
    if not args.eval_only:
        _check_batch(cfg, world_size)
        if not cfg.DATASETS.TRAIN:
            raise UsageError("DATASETS.TRAIN is empty: name the training dataset(s) in the config")
        for name in cfg.DATASETS.TRAIN:
            error = _dataset_error(name, "DATASETS.TRAIN")
            if error:
                raise UsageError(error)
    skipped = {}
    for name in cfg.DATASETS.TEST:
        error = _dataset_error(name, "DATASETS.TEST")
        if error is None:
            continue
        if args.eval_only and args.skip_missing_datasets:
            skipped[name] = error
        elif args.eval_only:
            raise UsageError(error)
        else:
            raise UsageError(
                f'{error} (training evaluates DATASETS.TEST; add DATASETS.TEST "()" to train without evaluation)'
            )
    return skipped


def setup(args):
    """The frozen config of a process, with logging, config file and seeding as detectron2's `default_setup`, whose
    log is coloured in files too and repeats the whole config (`sed.utils.logs`)."""
    cfg = load_config(args.config_file, args.opts)
    cfg.freeze()
    rank = comm.get_rank()
    if comm.is_main_process() and cfg.OUTPUT_DIR:
        os.makedirs(cfg.OUTPUT_DIR, exist_ok=True)
    setup_run_loggers(cfg.OUTPUT_DIR, rank)
    logger.info("Rank of current process: %d. World size: %d", rank, comm.get_world_size())
    logger.info("Environment info:\n%s", environment_info())
    logger.info("Command line arguments: %s", args)
    with open(args.config_file) as f:
        logger.info("Contents of %s:\n%s", args.config_file, f.read())
    if comm.is_main_process() and cfg.OUTPUT_DIR:
        # The full config (hundreds of lines) goes to its file only; the log has the file and the options above.
        path = os.path.join(cfg.OUTPUT_DIR, "config.yaml")
        with open(path, "w") as f:
            f.write(cfg.dump())
        logger.info("Full config saved to %s", path)
    seed_all_rng(None if cfg.SEED < 0 else cfg.SEED + rank)
    if not args.eval_only:
        torch.backends.cudnn.benchmark = cfg.CUDNN_BENCHMARK
    if cfg.MODEL.DEVICE.startswith("cuda"):
        # TF32 matrix products on GPUs that have them, as the authors' train_net.py sets for training and test.
        torch.set_float32_matmul_precision("high")
    return cfg


def _set_previous_results_aside(output_dir):
    """Moves OUTPUT_DIR/results.json to results.previous.json: a failed evaluation must not leave it looking current."""
    path = os.path.join(output_dir, "results.json")
    if comm.is_main_process() and os.path.isfile(path):
        os.replace(path, os.path.join(output_dir, "results.previous.json"))
        logger.info("Moved the earlier %s to results.previous.json.", path)


def main(args):
    """One process: evaluate (--eval-only) or train. Returns the evaluation results."""
    cfg = setup(args)
    if args.eval_only:
        _set_previous_results_aside(cfg.OUTPUT_DIR)
        model = Trainer.build_model(cfg)
        checkpointer = SafeCheckpointer(model, save_dir=cfg.OUTPUT_DIR)
        if args.resume and checkpointer.has_checkpoint():
            checkpointer.resume_or_load(cfg.MODEL.WEIGHTS, resume=True)
        elif cfg.MODEL.WEIGHTS:
            load_checkpoint(model, cfg.MODEL.WEIGHTS)  # every tensor must fit: evaluating random weights is no result
        else:
            logger.warning("MODEL.WEIGHTS is empty: evaluating the model's initial weights.")
        return Trainer.test(cfg, model, skip_missing_datasets=args.skip_missing_datasets)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


def _program():
    return os.path.basename(sys.argv[0]) or "train_net.py"


def _fail(message):
    print(f"{_program()}: error: {one_line(message)}", file=sys.stderr)
    sys.stderr.flush()
    return USAGE_EXIT_CODE


def _bad_file_message(error, args):
    """The one line of an image or label file that cannot be read; training also says how to find all of them."""
    message = error.one_line
    if args.eval_only:
        return message
    cfg = load_config(args.config_file, args.opts)
    return (
        f"{message}. To check every file of the training data: python tools/verify_dataset.py "
        f"{' '.join(cfg.DATASETS.TRAIN)}"
    )


def guarded_main(args):
    """`main` in a process: user mistakes and bad files print one line and exit with code 2."""
    try:
        return main(args)
    except TrainingStopped as e:  # SIGTERM / SIGINT: a checkpoint of the current iteration was saved
        if comm.is_main_process():
            print(f"{_program()}: {e}", file=sys.stderr)
            sys.stderr.flush()
        sys.exit(e.exit_code)
    except (UsageError, FileNotFoundError, CheckpointError, ImageFileError, NonFiniteOutputError, DiskFullError) as e:
        if os.environ.get("SED_DEBUG"):
            raise
        sys.exit(_fail(_bad_file_message(e, args) if isinstance(e, ImageFileError) else e))


def run(argv=None):
    """Entry point of tools/train_net.py. Returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        cfg = load_config(args.config_file, args.opts)
    except UsageError as e:
        if os.environ.get("SED_DEBUG"):
            raise
        return _fail(e)
    created = missing_folders(cfg.OUTPUT_DIR) if cfg.OUTPUT_DIR else []
    code = _run(cfg, args)
    if code:
        remove_if_empty(created)
    return code


def _run(cfg, args):
    try:
        skipped = preflight(cfg, args)
        if skipped and len(skipped) == len(cfg.DATASETS.TEST):
            # Nothing to evaluate: record why, without building the model.
            write_results(
                {name: {"skipped": reason} for name, reason in skipped.items()},
                os.path.join(cfg.OUTPUT_DIR, "results.json"),
            )
    except (UsageError, FileNotFoundError, DiskFullError) as e:
        if os.environ.get("SED_DEBUG"):
            raise
        return _fail(e)
    if skipped and len(skipped) == len(cfg.DATASETS.TEST):
        for name, reason in skipped.items():
            print(f"skipped {name}: {reason}", file=sys.stderr)
        return 0
    use_gpu = cfg.MODEL.DEVICE.startswith("cuda")
    try:
        launch(
            guarded_main,
            args.num_gpus,
            num_machines=args.num_machines,
            machine_rank=args.machine_rank,
            dist_url=args.dist_url,
            args=(args,),
            timeout=timedelta(seconds=args.dist_timeout),
            use_gpu=use_gpu,
        )
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    except ProcessExitedException as e:  # a worker exited after printing its one-line error
        return e.exit_code or 1
    return 0
