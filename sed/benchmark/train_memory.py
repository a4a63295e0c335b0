"""Peak memory and time of training steps by batch size, with and without SOLVER.CLIP_GRADIENT_CHECKPOINTING:
`tools/benchmark.py --train`. It runs the training iteration itself (`StepTrainer`: forward, backward, clipping,
optimizer step) on random images of INPUT.CROP.SIZE with random labels, so that users can pick IMS_PER_BATCH /
SOLVER.ACCUMULATE_STEPS / checkpointing / AMP for their GPU. Memory: `sed.utils.measure.PeakMemory` (CUDA:
max_memory_allocated, CPU: peak resident set), above what the model and optimizer held before the first step.
"""

import gc
import itertools
import statistics
import tempfile
import time

import torch
from detectron2.utils.events import EventStorage
from tabulate import tabulate

from ..engine.optimizer import build_optimizer
from ..engine.train_step import StepTrainer
from ..utils.measure import PeakMemory, environment, synchronize
from .speed import PRECISIONS, build_cfg, resolve_device

__all__ = ["run_train_benchmark", "format_train_report"]


def _random_batch(batch_size, size, num_classes, ignore_label, seed=0):
    """Training inputs as the dataset mapper makes them: uint8-range (3, H, W) "image", int64 (H, W) "sem_seg"."""
    g = torch.Generator().manual_seed(seed)
    batch = []
    for _ in range(batch_size):
        labels = torch.randint(0, num_classes, size, generator=g)
        labels[: size[0] // 8] = ignore_label
        batch.append(
            {
                "image": torch.randint(0, 256, (3, *size), generator=g, dtype=torch.uint8).float(),
                "sem_seg": labels,
                "height": size[0],
                "width": size[1],
            }
        )
    return batch


def _measure(cfg, batch_size, device, precision, iters, warmup):
    from ..engine.trainer import Trainer

    model = Trainer.build_model(cfg)
    optimizer = build_optimizer(cfg, model)
    size = tuple(cfg.INPUT.CROP.SIZE)
    batch = _random_batch(batch_size, size, cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES, cfg.MODEL.SEM_SEG_HEAD.IGNORE_VALUE)
    trainer = StepTrainer(
        model,
        itertools.repeat(batch),
        optimizer,
        amp_dtype=PRECISIONS[precision],
        device_type=torch.device(device).type,
    )
    seconds = []
    with EventStorage(0), PeakMemory(device) as memory:
        for trainer.iter in range(warmup + iters):
            start = time.perf_counter()
            trainer.run_step()
            synchronize(device)
            seconds.append(time.perf_counter() - start)
    del trainer, model, optimizer
    if str(device).startswith("cuda"):
        torch.cuda.empty_cache()
    return {
        "peak_mib": round(memory.peak_mib, 1),
        "total_mib": round(memory.total_mib, 1),
        "s_per_iter": round(statistics.median(seconds[warmup:]), 4),
        "memory_method": memory.method,
    }


def run_train_benchmark(args):
    """Measures training steps for each batch size of `args.batch_sizes`, without and with CLIP gradient
    checkpointing; `args` carries tools/benchmark.py's options (config_file, opts, device, precision, iters,
    warmup, threads). Batch sizes are per process (one GPU)."""
    device = resolve_device(args.device)
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    try:
        with tempfile.TemporaryDirectory(prefix="sed-bench-text-") as cache_dir:
            for checkpointing in (False, True):
                opts = list(args.opts) + ["SOLVER.CLIP_GRADIENT_CHECKPOINTING", str(checkpointing)]
                cfg = build_cfg(args.config_file, opts, device, cache_dir)
                for batch_size in args.batch_sizes:
                    try:
                        measured = _measure(cfg, batch_size, device, args.precision, args.iters, args.warmup)
                    except torch.cuda.OutOfMemoryError:  # recorded: the batch does not fit this GPU
                        measured = {"out_of_memory": True}
                    if measured.get("out_of_memory"):  # outside `except`, whose traceback holds the model
                        gc.collect()
                        torch.cuda.empty_cache()
                    rows.append({"batch_size": batch_size, "clip_gradient_checkpointing": checkpointing, **measured})
    finally:
        torch.set_num_threads(threads)
    return {
        "environment": environment(device, args.threads),
        "config": {
            "config_file": args.config_file,
            "opts": list(args.opts),
            "precision": args.precision,
            "crop_size": list(cfg.INPUT.CROP.SIZE),
        },
        "train": rows,
    }


def format_train_report(result):
    """A table: batch size, checkpointing, peak memory above the model and optimizer, s/iteration."""
    rows = [
        [
            r["batch_size"],
            "yes" if r["clip_gradient_checkpointing"] else "no",
            *(
                ["out of memory", "", ""]
                if r.get("out_of_memory")
                else [r["peak_mib"], r["total_mib"], r["s_per_iter"]]
            ),
        ]
        for r in result["train"]
    ]
    config = result["config"]
    head = (
        f"training steps: {config['config_file']} {' '.join(config['opts'])}, {config['precision']}, crop "
        f"{config['crop_size'][0]}x{config['crop_size'][1]}, device {result['environment']['device']}"
    )
    table = tabulate(
        rows,
        headers=["images/GPU", "CLIP checkpointing", "peak MiB (steps)", "peak MiB (process)", "s/iter"],
        tablefmt="pipe",
    )
    return f"{head}\n{table}"
