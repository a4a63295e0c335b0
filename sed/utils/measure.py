"""Measuring tools any layer may use (the benchmarks, the ONNX export's comparison): peak memory of a block,
timed repeated runs, a description of the machine. CPU and CUDA alike; figures are printed, never asserted."""

import ctypes
import os
import platform
import re
import resource
import statistics
import time

import torch

__all__ = ["synchronize", "PeakMemory", "timed_runs", "environment"]


def synchronize(device):
    """Waits for the device's queued work (CUDA), so that a clock read after it covers that work."""
    if str(device).startswith("cuda"):
        torch.cuda.synchronize(device)


class PeakMemory:
    """Peak memory of a block, in MiB, above what was in use when it started.

    CUDA: torch.cuda.max_memory_allocated. CPU: the process's peak resident set (VmHWM), reset through
    /proc/self/clear_refs (Linux); where that is not possible, ru_maxrss, which cannot be reset (then the
    figure is a lower bound of the block's peak unless the block set a new process peak). On the CPU, memory
    freed by earlier work is first handed back to the system (glibc's malloc_trim): otherwise a block reusing
    it would add nothing to the resident set and show no peak.
    """

    def __init__(self, device):
        self.cuda = str(device).startswith("cuda")
        self.device = device
        self.resettable = not self.cuda and self._reset_rss_peak()
        self.method = (
            "torch.cuda.max_memory_allocated"
            if self.cuda
            else "VmHWM via /proc/self/clear_refs"
            if self.resettable
            else "ru_maxrss (no reset)"
        )

    @staticmethod
    def _status_kib(key):
        with open("/proc/self/status") as f:
            return int(re.search(rf"^{key}:\s+(\d+) kB", f.read(), re.M).group(1))

    @staticmethod
    def _reset_rss_peak():
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    @staticmethod
    def _release_freed_memory():
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except (OSError, AttributeError):  # not glibc: the figure may then miss reused memory
            pass

    def __enter__(self):
        if self.cuda:
            synchronize(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
            return self
        self._release_freed_memory()
        if self.resettable:
            self._reset_rss_peak()
            self.start = self._status_kib("VmRSS") * 1024
        else:
            self.start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return self

    def __exit__(self, *exc):
        if self.cuda:
            synchronize(self.device)
            peak = torch.cuda.max_memory_allocated(self.device)
        elif self.resettable:
            peak = self._status_kib("VmHWM") * 1024
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        self.peak_mib = max(0, peak - self.start) / 2**20
        self.total_mib = peak / 2**20
        return False


def timed_runs(make_run, iters, warmup=0, device="cpu"):
    """Calls `run = make_run()`, then `run()` warmup + iters times, all inside one `PeakMemory` (so what `make_run`
    allocates counts). Returns (the last result, median seconds of the `iters` timed runs, peak MiB)."""
    seconds, result = [], None
    with PeakMemory(device) as peak:
        run = make_run()
        for i in range(warmup + iters):
            synchronize(device)
            start = time.perf_counter()
            result = run()
            synchronize(device)
            if i >= warmup:
                seconds.append(time.perf_counter() - start)
        del run
    return result, statistics.median(seconds), peak.peak_mib


def alternated_cpu_seconds(runs, iters):
    """Runs each of `runs` ({label: function}) once as a warm-up, then `iters` rounds of each in turn, so that the
    load of a shared machine hits all alike. Returns ({label: its warm-up result}, {label: [CPU seconds
    (time.process_time) of each timed run]})."""
    results = {label: run() for label, run in runs.items()}
    seconds = {label: [] for label in runs}
    for _ in range(iters):
        for label, run in runs.items():
            start = time.process_time()
            run()
            seconds[label].append(time.process_time() - start)
    return results, seconds


def environment(device, threads=None):
    """The machine a measurement ran on: torch, Python, CPU model and count, GPU, load average."""
    info = {
        "torch": torch.__version__,
        "device": device,
        "threads": threads or torch.get_num_threads(),
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            model_name = re.search(r"^model name\s*:\s*(.*)$", f.read(), re.M)
        if model_name:
            info["cpu"] = model_name.group(1)
    except OSError:
        pass
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
    try:
        info["load_average"] = os.getloadavg()[0]
    except OSError:
        pass
    return info
