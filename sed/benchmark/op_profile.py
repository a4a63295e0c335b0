"""Where inference time goes, operation by operation, read against what this machine's cores reach.

`peak_rates` measures the cores' multiply-add rate on a large matrix product and a large 3x3 convolution (the
best case of each kind of operation, in fp32 and in a low precision); `profile_operations` runs a function under
torch's profiler with the model's parts (the protocol's `benchmark_parts`: SED's encoder and decoder, ECENet's
backbone and head) marked, and groups the time by part, operation and input shapes; `operation_table` adds each
group's multiply-adds per second and its share of the matching peak (convolutions against the convolution's,
matrix products against the matrix product's). The command line is `tools/profile_ops.py`.

Times are CPU times recorded by the profiler, whose bookkeeping adds a few microseconds to every operation: the
shares of small operations are overstated, the rates of large ones are not.
"""

import contextlib
import functools
import math
from collections import defaultdict

import torch

from ..utils.measure import timed_runs
from ..utils.precision import PRECISIONS

# Operations whose multiply-adds are counted (by the profiler, or here from their shapes), by the peak they are read
# against; oneDNN's fused linear layer is what the CLIP encoder's fused blocks run (sed.modeling.sed.fused_convnext).
ONEDNN_LINEAR = "mkldnn::_linear_pointwise"
MATMUL_OPERATIONS = (
    "aten::addmm",
    "aten::mm",
    "aten::bmm",
    "aten::baddbmm",
    "aten::matmul",
    "aten::linear",
    ONEDNN_LINEAR,
)
CONVOLUTION_OPERATIONS = ("aten::conv2d", "aten::convolution", "aten::conv_transpose2d")
PART_PREFIX = "part:"


def onednn_linear():
    """oneDNN's linear layer with fused post-operations (`torch.ops.mkldnn._linear_pointwise`), None where this
    PyTorch lacks it or was built without oneDNN."""
    op = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
    return op if op is not None and torch.backends.mkldnn.is_available() else None


def peak_rates(precisions=("fp32",), device="cpu", iters=3, size=1024):
    """{(kind, precision): GMAC/s}: the median rate, in each precision, of a size^3 matrix product by torch's
    matmul ("matmul", BLAS on the CPU) and by oneDNN's linear layer ("onednn_linear", CPU only, where present), and
    of a 3x3 256->256 convolution at 96x96, channels-last ("conv"): what the device reaches at best."""
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    conv = torch.nn.Conv2d(256, 256, 3, padding=1, bias=False).to(device, memory_format=torch.channels_last)
    x = torch.randn(1, 256, 96, 96, device=device).contiguous(memory_format=torch.channels_last)
    work = {
        "matmul": (lambda dtype: functools.partial(torch.matmul, a.to(dtype), b.to(dtype)), size**3),
        "conv": (lambda dtype: functools.partial(conv.to(dtype), x.to(dtype)), 256 * 256 * 9 * 96 * 96),
    }
    linear = onednn_linear()
    if linear is not None and torch.device(device).type == "cpu":
        work["onednn_linear"] = (
            lambda dtype: functools.partial(linear, a.to(dtype), b.to(dtype), None, "none", [], ""),
            size**3,
        )
    rates = {}
    with torch.no_grad():
        for kind, (make, macs) in work.items():
            for precision in precisions:
                run = make(PRECISIONS[precision] or torch.float32)
                rates[kind, precision] = macs / timed_runs(lambda run=run: run, iters, warmup=1, device=device)[1] / 1e9
    return rates


def _operation_kind(name):
    if name == ONEDNN_LINEAR:
        return "onednn_linear"
    if name in MATMUL_OPERATIONS:
        return "matmul"
    if name in CONVOLUTION_OPERATIONS:
        return "conv"
    return "other"


@contextlib.contextmanager
def marked_parts(parts):
    """Marks the time spent in each part of `parts` ({part: (object, method names)}, the protocol's
    `benchmark_parts`) as a profiler range "part:NAME", by wrapping the methods on their objects in the block."""
    from .speed import patched

    def marking(part):
        def wrap(fn):
            @functools.wraps(fn)
            def marked(*args, **kwargs):
                with torch.profiler.record_function(PART_PREFIX + part):
                    return fn(*args, **kwargs)

            return marked

        return wrap

    with contextlib.ExitStack() as stack:
        for part, (obj, names) in parts.items():
            for name in names:
                stack.enter_context(patched(obj, name, marking(part)))
        yield


def profile_operations(run, parts):
    """Runs `run()` once under torch's profiler with `parts` marked (see `marked_parts`).

    Returns {(part, operation, input shapes as tuples): [calls, CPU microseconds, multiply-adds]} over the top-level
    operations: those called from Python, not from another operation (their time includes their callees', e.g. a
    convolution's oneDNN kernel, a linear layer's matrix product and bias). Time outside every part is "other".
    """
    from torch.profiler import ProfilerActivity, profile

    with marked_parts(parts), profile(activities=[ProfilerActivity.CPU], with_flops=True, record_shapes=True) as prof:
        run()
    groups = defaultdict(lambda: [0, 0.0, 0])
    for event in prof.events():
        parent = event.cpu_parent
        if event.name.startswith(PART_PREFIX) or (parent is not None and not parent.name.startswith(PART_PREFIX)):
            continue
        part = parent.name[len(PART_PREFIX) :] if parent is not None else "other"
        group = groups[part, event.name, tuple(tuple(shape) for shape in event.input_shapes)]
        group[0] += 1
        group[1] += event.cpu_time_total
        group[2] += _subtree_flops(event) // 2
    return dict(groups)


def _subtree_flops(event):
    shapes = event.input_shapes
    # Not counted by the profiler. A transposed convolution adds every input pixel's channels times the weight into
    # the output; a linear layer multiplies each row of its input by the (out, in) weight.
    if event.name == "aten::conv_transpose2d" and len(shapes) > 1 and len(shapes[0]) == 4:
        (n, _, h, w), weight = shapes[0], shapes[1]
        return 2 * n * h * w * math.prod(weight)
    if event.name == ONEDNN_LINEAR and len(shapes) > 1 and shapes[0] and shapes[1]:
        return 2 * math.prod(shapes[0]) // shapes[0][-1] * math.prod(shapes[1])
    return event.flops + sum(_subtree_flops(child) for child in event.cpu_children)


def operation_table(groups, peaks, precision="fp32"):
    """Rows (dicts) of `profile_operations`' groups, slowest first: part, operation, kind (matmul / conv / other),
    input shapes, calls, ms, share of the part's time, GMAC/s and the share of the kind's peak in `peaks`
    (oneDNN's linear layers read against its own peak where measured, else the matrix product's)
    (`peak_rates`) for `precision`; and totals by (part, kind)."""
    part_us = defaultdict(float)
    for (part, _, _), (_, us, _) in groups.items():
        part_us[part] += us
    rows, totals = [], defaultdict(lambda: [0.0, 0])
    for (part, name, shapes), (calls, us, macs) in groups.items():
        kind = _operation_kind(name)
        if (kind, precision) not in peaks and kind == "onednn_linear":
            kind = "matmul"
        rate = macs / us / 1e3 if macs and us else None
        peak = peaks.get((kind, precision))
        rows.append(
            {
                "part": part,
                "operation": name,
                "kind": kind,
                "input_shapes": str([list(shape) for shape in shapes]),
                "calls": calls,
                "ms": us / 1e3,
                "share_of_part": us / part_us[part] if part_us[part] else 0.0,
                "gmac_per_s": rate,
                "share_of_peak": rate / peak if rate is not None and peak else None,
            }
        )
        totals[part, kind][0] += us
        totals[part, kind][1] += macs
    rows.sort(key=lambda row: -row["ms"])
    summary = [
        {
            "part": part,
            "kind": kind,
            "ms": us / 1e3,
            "share_of_part": us / part_us[part] if part_us[part] else 0.0,
            "gmac_per_s": macs / us / 1e3 if macs and us else None,
            "share_of_peak": (macs / us / 1e3) / peaks[kind, precision]
            if macs and us and (kind, precision) in peaks
            else None,
        }
        for (part, kind), (us, macs) in sorted(totals.items())
    ]
    return rows, summary


def format_operation_table(rows, summary, peaks, precision="fp32", limit=25):
    """The tables as text: peaks, totals by part and kind, then the `limit` slowest operations."""

    def rate(row):
        if row["gmac_per_s"] is None:
            return f"{'':>8} {'':>6}"
        share = f"{100 * row['share_of_peak']:5.0f}%" if row["share_of_peak"] is not None else f"{'':>6}"
        return f"{row['gmac_per_s']:8.1f} {share}"

    lines = [
        "peaks (GMAC/s): "
        + ", ".join(f"{kind} {p} {value:.1f}" for (kind, p), value in sorted(peaks.items()))
        + f"; rates below are read against the {precision} peaks",
        f"{'part':<10} {'kind':<13} {'ms':>9} {'share':>6} {'GMAC/s':>8} {'peak':>6}",
    ]
    for row in summary:
        lines.append(
            f"{row['part']:<10} {row['kind']:<13} {row['ms']:9.1f} {100 * row['share_of_part']:5.1f}% {rate(row)}"
        )
    lines.append(
        f"{'part':<10} {'operation':<24} {'calls':>5} {'ms':>9} {'share':>6} {'GMAC/s':>8} {'peak':>6}  shapes"
    )
    for row in rows[:limit]:
        lines.append(
            f"{row['part']:<10} {row['operation']:<24} {row['calls']:5d} {row['ms']:9.1f} "
            f"{100 * row['share_of_part']:5.1f}% {rate(row)}  {row['input_shapes'][:90]}"
        )
    return "\n".join(lines)
