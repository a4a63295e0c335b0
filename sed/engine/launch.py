"""Multi-process launch on GPUs (NCCL) or on CPU (gloo).

detectron2's `launch` picks NCCL whenever CUDA is available and asserts one GPU per process, so it cannot run
several CPU processes (tests, machines without GPUs) nor CPU processes on a GPU machine. This `launch` takes the
device kind explicitly; otherwise it behaves as detectron2's (same arguments, `dist_url="auto"` picks a free
local port, the local process group is created, rank r uses GPU r). Besides:

- start-up at a tcp:// address is watched: rank 0 logs what it waits for (the address, how many processes joined,
  the missing ranks) and, when `timeout` passes without all of them, every process ends with a one-line
  `DistributedStartError` instead of waiting silently and printing a traceback;
- SIGTERM or SIGINT sent to the launching process is passed to its workers (which then stop as
  `sed.engine.stop_signals` says) and it waits for them; a worker also gets SIGTERM when the launcher dies, so
  that no worker outlives it holding the port.
"""

import logging
import os
import signal
import sys
import time
from datetime import timedelta
from urllib.parse import urlparse

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from detectron2.utils import comm

__all__ = ["launch", "DEFAULT_TIMEOUT", "DistributedStartError"]

DEFAULT_TIMEOUT = timedelta(minutes=30)  # detectron2's
PROGRESS_EVERY_S = 30  # how often rank 0 repeats what it waits for
logger = logging.getLogger(__name__)


class DistributedStartError(RuntimeError):
    """The processes of a distributed run did not all start within the timeout; the message is one line."""


def _find_free_port():
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def launch(
    main_func,
    num_processes_per_machine,
    num_machines=1,
    machine_rank=0,
    dist_url=None,
    args=(),
    timeout=DEFAULT_TIMEOUT,
    use_gpu=None,
):
    """Runs `main_func(*args)` in `num_processes_per_machine` processes on each of `num_machines` machines.

    Args:
        main_func: a picklable function (module level).
        num_processes_per_machine: processes on this machine (GPUs per machine when `use_gpu`).
        num_machines, machine_rank: the machines of the job and this one's rank.
        dist_url: "tcp://host:port" of machine 0 (or "auto" on one machine).
        use_gpu: True: one GPU per process and NCCL; False: CPU processes and gloo; None: GPUs if available.
    """
    if use_gpu is None:
        use_gpu = torch.cuda.is_available()
    world_size = num_machines * num_processes_per_machine
    if world_size <= 1:
        main_func(*args)
        return
    if dist_url == "auto":
        if num_machines != 1:
            raise ValueError("--dist-url auto works on one machine only: give tcp://<machine 0 address>:<port>.")
        dist_url = f"tcp://127.0.0.1:{_find_free_port()}"
    if num_machines > 1 and dist_url.startswith("file://"):
        logging.getLogger(__name__).warning(
            "file:// is not a reliable init_method in multi-machine jobs; prefer tcp://"
        )
    context = mp.start_processes(
        _launched_worker,
        nprocs=num_processes_per_machine,
        args=(main_func, world_size, num_processes_per_machine, machine_rank, dist_url, args, timeout, use_gpu),
        daemon=False,
        join=False,
    )
    _join_passing_signals(context)


def _join_passing_signals(context):
    """Waits for the workers of `context`, passing SIGTERM and SIGINT to them instead of dying without them."""

    def forward(signum, frame):
        logger.warning(
            "%s received: passing it to the %d worker process(es).", signal.Signals(signum).name, len(context.processes)
        )
        for process in context.processes:
            if process.is_alive():
                os.kill(process.pid, signum)

    previous = {signum: signal.signal(signum, forward) for signum in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not context.join():
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _end_with_parent():
    """Linux: this process gets SIGTERM when the launcher dies (even by SIGKILL); it leaves the launcher's process
    group, so that Ctrl-C reaches it once, passed on by the launcher, not twice (which stops without a
    checkpoint)."""
    os.setpgrp()
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
        if os.getppid() == 1:  # the launcher died before prctl
            os.kill(os.getpid(), signal.SIGTERM)


def _rendezvous(dist_url, world_size, rank, timeout):
    """The TCPStore of a tcp:// start-up, once every rank has joined it. Rank 0 hosts it and logs who is missing
    while it waits; any rank raises DistributedStartError when `timeout` passes first."""
    address = urlparse(dist_url)
    host, port = address.hostname, address.port
    seconds = timeout.total_seconds()
    try:
        store = dist.TCPStore(host, port, world_size, rank == 0, timeout=timeout, wait_for_workers=False)
    except (RuntimeError, OSError) as e:  # torch's DistStoreError is a RuntimeError
        if rank == 0:
            raise DistributedStartError(
                f"rank 0 cannot listen at {dist_url} ({' '.join(str(e).split())[:200]}): "
                "the port is taken or the address is not this machine's; give another "
                "--dist-url"
            ) from e
        raise DistributedStartError(
            f"rank {rank} could not reach rank 0 at {dist_url} within {seconds:g} s: start "
            "machine 0 (--machine-rank 0) with the same --dist-url, or raise "
            "--dist-timeout"
        ) from e
    store.set(f"sed_joined/{rank}", "1")
    if rank != 0:
        store.add("sed_joined", 1)
        try:
            store.wait(["sed_all_joined"])  # within the store's timeout
        except RuntimeError as e:
            raise DistributedStartError(
                f"rank {rank} joined rank 0 at {dist_url}, but not every process did within "
                f"{seconds:g} s: start the missing ones (rank 0 names them), or raise "
                "--dist-timeout"
            ) from e
        return store
    store.add("sed_joined", 1)
    start = last_report = time.monotonic()
    reported = None
    while True:
        joined = store.add("sed_joined", 0)
        if joined >= world_size:
            store.set("sed_all_joined", "1")
            if reported is not None:
                logger.info("All %d processes joined %s.", world_size, dist_url)
            return store
        now = time.monotonic()
        if now - start >= seconds:
            missing = [r for r in range(world_size) if not store.check([f"sed_joined/{r}"])]
            raise DistributedStartError(
                f"only {joined} of {world_size} processes joined {dist_url} within {seconds:g} s (missing ranks "
                f"{_ranges(missing)}): start them with the same --dist-url and --num-machines (each machine its "
                "--machine-rank), or raise --dist-timeout"
            )
        if now - start >= 1 and (joined != reported or now - last_report >= PROGRESS_EVERY_S):
            missing = [r for r in range(world_size) if not store.check([f"sed_joined/{r}"])]
            logger.warning(
                "Waiting at %s for %d processes: %d joined, missing ranks %s (%.0f s of the %g s --dist-timeout).",
                dist_url,
                world_size,
                joined,
                _ranges(missing),
                now - start,
                seconds,
            )
            reported, last_report = joined, now
        time.sleep(0.2)


def _ranges(ranks):
    """'1-3, 6' for [1, 2, 3, 6]."""
    parts, start = [], None
    for i, r in enumerate(ranks):
        if start is None:
            start = r
        if i + 1 == len(ranks) or ranks[i + 1] != r + 1:
            parts.append(str(start) if start == r else f"{start}-{r}")
            start = None
    return ", ".join(parts)


def _launched_worker(local_rank, *args):
    _end_with_parent()
    _distributed_worker(local_rank, *args)


def _distributed_worker(
    local_rank, main_func, world_size, num_processes_per_machine, machine_rank, dist_url, args, timeout, use_gpu
):
    if use_gpu:
        if num_processes_per_machine > torch.cuda.device_count():
            raise RuntimeError(
                f"{num_processes_per_machine} processes need as many GPUs; this machine has "
                f"{torch.cuda.device_count()}."
            )
    elif "OMP_NUM_THREADS" not in os.environ:
        # CPU processes share the cores instead of each using them all.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // num_processes_per_machine))
    global_rank = machine_rank * num_processes_per_machine + local_rank
    backend = "NCCL" if use_gpu else "GLOO"
    try:
        if dist_url.startswith("tcp://"):
            store = _rendezvous(dist_url, world_size, global_rank, timeout)
            dist.init_process_group(
                backend=backend, store=store, world_size=world_size, rank=global_rank, timeout=timeout
            )
        else:
            dist.init_process_group(
                backend=backend, init_method=dist_url, world_size=world_size, rank=global_rank, timeout=timeout
            )
    except DistributedStartError as e:
        print(f"{os.path.basename(sys.argv[0]) or 'launch'}: error: {e}", file=sys.stderr)
        sys.stderr.flush()
        sys.exit(2)
    except Exception:
        logger.error("Process group URL: %s", dist_url)
        raise
    comm.create_local_process_group(num_processes_per_machine)
    if use_gpu:
        torch.cuda.set_device(local_rank)
    comm.synchronize()
    try:
        main_func(*args)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
