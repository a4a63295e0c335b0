"""Training on a SLURM cluster through submitit: `sh run.sh`'s interface, one task per GPU, requeue on preemption.

    python tools/slurm_train.py --nodes 2 --partition gpu configs/convnextB_768.yaml 8 output/sed_b [KEY VALUE ...]

The job has NODES x GPUS tasks, each one process of the engine (`sed.engine.cli.guarded_main`, the code of
tools/train_net.py). The rendezvous address comes from the job: its first node and a port derived from the job
id (submitit's `TorchDistributedEnvironment`). Training always passes --resume, so when SLURM preempts the job
(or its time runs out) submitit requeues it and it continues from OUTPUT_DIR/last_checkpoint. `--cluster local`
runs the same job as processes of this machine (no SLURM: tests, debugging).
submitit is an optional extra (`pip install -e .[slurm]`); it is imported only here.
"""

import argparse
import copy
import logging
import os
from datetime import timedelta

from .cli import UsageError, build_parser, guarded_main, load_config, preflight
from .launch import _distributed_worker

__all__ = ["TrainJob", "get_parser", "submit", "main"]

logger = logging.getLogger(__name__)


class TrainJob:
    """What every task of the job runs: the train_net process of its rank. Picklable (submitit sends it)."""

    def __init__(self, train_args: argparse.Namespace, use_gpu: bool):
        self.train_args = train_args
        self.use_gpu = use_gpu

    def __call__(self):
        from submitit.helpers import TorchDistributedEnvironment

        # MASTER_ADDR / MASTER_PORT for init_method env://; each task keeps seeing every GPU of its node and
        # takes the one of its local rank, as in tools/train_net.py.
        env = TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
        _distributed_worker(
            env.local_rank,
            guarded_main,
            env.world_size,
            env.local_world_size,
            env.rank // env.local_world_size,
            "env://",
            (self.train_args,),
            timedelta(seconds=self.train_args.dist_timeout),
            self.use_gpu,
        )

    def checkpoint(self, *args, **kwargs):
        """Called by submitit on preemption or timeout: the same job again, which resumes (--resume)."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(TrainJob(self.train_args, self.use_gpu))


def get_parser():
    parser = argparse.ArgumentParser(
        description="Train a model of this project on a SLURM cluster (submitit), with run.sh's arguments.",
        epilog="Example: python tools/slurm_train.py --nodes 2 --partition gpu configs/convnextB_768.yaml 8 "
        "output/sed_b SOLVER.IMS_PER_BATCH 32",
    )
    parser.add_argument("--nodes", type=int, default=1, help="machines of the job (default 1)")
    parser.add_argument("--partition", default=None, help="SLURM partition (default: the cluster's)")
    parser.add_argument("--account", default=None, help="SLURM account to charge")
    parser.add_argument(
        "--time",
        type=int,
        default=4320,
        metavar="MINUTES",
        help="time limit per submission; the job is requeued and resumes after it (default 4320)",
    )
    parser.add_argument("--cpus-per-gpu", type=int, default=8, help="CPU cores per task (data loading)")
    parser.add_argument("--mem-per-gpu", type=int, default=None, metavar="GB", help="memory per task")
    parser.add_argument(
        "--job-dir", default=None, help="submitit's folder (job scripts, logs); default OUTPUT_DIR/slurm"
    )
    parser.add_argument(
        "--cluster",
        default="slurm",
        choices=["slurm", "local"],
        help="slurm: submit with sbatch; local: run the tasks as processes of this machine",
    )
    parser.add_argument("--wait", action="store_true", help="wait for the job to end and return its exit status")
    parser.add_argument("config", help="model config (yaml), as run.sh's CONFIG")
    parser.add_argument(
        "gpus", type=int, help="GPUs (tasks) per node, as run.sh's NUM_GPUS (CPU processes with MODEL.DEVICE cpu)"
    )
    parser.add_argument("output_dir", help="OUTPUT_DIR: checkpoints, logs, and where a requeued job resumes from")
    parser.add_argument("opts", nargs=argparse.REMAINDER, metavar="KEY VALUE", help="config overrides, as run.sh's")
    return parser


def _train_args(args):
    """tools/train_net.py's arguments for this job (as run.sh passes them: --resume, OUTPUT_DIR last but opts)."""
    return build_parser().parse_args(
        [
            "--config-file",
            args.config,
            "--num-gpus",
            str(args.gpus),
            "--num-machines",
            str(args.nodes),
            "--dist-url",
            "env://",
            "--resume",
            "OUTPUT_DIR",
            args.output_dir,
            *args.opts,
        ]
    )


def submit(args):
    """Checks the run as tools/train_net.py does, submits it; returns the submitit job.

    Raises UsageError for mistakes found before submitting (config, datasets, batch split, ...).
    """
    try:
        import submitit
    except ImportError as e:
        raise UsageError("cluster training needs submitit: pip install -e .[slurm]") from e
    train_args = _train_args(args)
    cfg = load_config(train_args.config_file, train_args.opts)
    use_gpu = cfg.MODEL.DEVICE.startswith("cuda")
    # The GPUs are the compute nodes', not this (login) machine's: the device check is left to the job.
    checked = cfg.clone()
    checked.MODEL.DEVICE = "cpu"
    preflight(checked, copy.copy(train_args))
    executor = submitit.AutoExecutor(folder=args.job_dir or os.path.join(cfg.OUTPUT_DIR, "slurm"), cluster=args.cluster)
    parameters = dict(
        name=os.path.basename(os.path.normpath(cfg.OUTPUT_DIR)) or "sed",
        nodes=args.nodes,
        tasks_per_node=args.gpus,
        cpus_per_task=args.cpus_per_gpu,
        timeout_min=args.time,
    )
    if use_gpu:
        parameters["gpus_per_node"] = args.gpus
    if args.mem_per_gpu:
        parameters["mem_gb"] = args.mem_per_gpu * args.gpus
    if args.partition:
        parameters["slurm_partition"] = args.partition
    if args.account:
        parameters["slurm_account"] = args.account
    executor.update_parameters(**parameters)
    job = executor.submit(TrainJob(train_args, use_gpu))
    logger.info(
        "submitted job %s: %d node(s) x %d task(s); logs in %s", job.job_id, args.nodes, args.gpus, executor.folder
    )
    return job


def main(argv=None):
    """Entry point of tools/slurm_train.py; returns the exit status (2: a mistake, said in one line)."""
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        job = submit(args)
    except (UsageError, FileNotFoundError) as e:
        print(f"slurm_train.py: error: {e}", flush=True)
        return 2
    print(f"job {job.job_id} submitted; follow it with: tail -f {job.paths.stdout}")
    if args.wait:
        try:
            job.results()  # one per task
        except Exception as e:  # submitit re-raises the task's failure; its log has the traceback
            print(
                f"job {job.job_id} failed: {str(e).splitlines()[0] if str(e) else type(e).__name__} "
                f"(log: {job.paths.stderr})"
            )
            return 1
    return 0
