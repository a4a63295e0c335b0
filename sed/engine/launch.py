"""Multi-process launch on GPUs (NCCL) or on CPU (gloo).

detectron2's `launch` picks NCCL whenever CUDA is available and asserts one GPU per process, so it cannot run
several CPU processes (tests, machines without GPUs) nor CPU processes on a GPU machine. This `launch` takes the
device kind explicitly; otherwise it behaves as detectron2's (same arguments, `dist_url="auto"` picks a free
local port, the local process group is created, rank r uses GPU r).
"""
import logging
import os
from datetime import timedelta

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from detectron2.utils import comm

__all__ = ["launch", "DEFAULT_TIMEOUT"]

DEFAULT_TIMEOUT = timedelta(minutes=30)


def _find_free_port():
    import socket

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


def launch(main_func, num_processes_per_machine, num_machines=1, machine_rank=0, dist_url=None, args=(),
           timeout=DEFAULT_TIMEOUT, use_gpu=None):
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
        logging.getLogger(__name__).warning("file:// is not a reliable init_method in multi-machine jobs; prefer tcp://")
    mp.start_processes(
        _distributed_worker,
        nprocs=num_processes_per_machine,
        args=(main_func, world_size, num_processes_per_machine, machine_rank, dist_url, args, timeout, use_gpu),
        daemon=False,
    )


def _distributed_worker(local_rank, main_func, world_size, num_processes_per_machine, machine_rank, dist_url, args,
                        timeout, use_gpu):
    if use_gpu:
        if num_processes_per_machine > torch.cuda.device_count():
            raise RuntimeError(f"{num_processes_per_machine} processes need as many GPUs; this machine has "
                               f"{torch.cuda.device_count()}.")
    elif "OMP_NUM_THREADS" not in os.environ:
        # CPU processes share the cores instead of each using them all.
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // num_processes_per_machine))
    global_rank = machine_rank * num_processes_per_machine + local_rank
    try:
        dist.init_process_group(backend="NCCL" if use_gpu else "GLOO", init_method=dist_url,
                                world_size=world_size, rank=global_rank, timeout=timeout)
    except Exception:
        logging.getLogger(__name__).error("Process group URL: %s", dist_url)
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
