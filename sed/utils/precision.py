"""Inference precision (TEST.PRECISION): fp32, or autocast to bf16/fp16 with the numerically sensitive parts in fp32.

Autocast runs convolutions and matrix products in the low-precision dtype (on CPUs with AVX512-BF16 or AMX and on
GPUs with tensor cores, 2x to 8x the fp32 rate). The parts whose rounding would change decisions rather than
values run in fp32 inside it (`full_precision`): normalisations of the cost map, the scores that category early
rejection ranks, and the final sigmoid.
"""

import contextlib

import torch

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision):
    """`precision` if it is a key of PRECISIONS, else a ValueError naming the accepted values."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"TEST.PRECISION={precision!r}: expected one of {', '.join(map(repr, PRECISIONS))} "
            "(fp32 is exact; bf16 is the fast one on CPUs with AVX512-BF16/AMX and on GPUs)."
        )
    return precision


def inference_precision(device, precision):
    """A context running the code inside under autocast to `precision` on `device` (no-op for fp32)."""
    dtype = PRECISIONS[check_precision(precision)]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def full_precision(device):
    """A context that suspends autocast: the code inside runs in its tensors' dtypes (cast them to float)."""
    return torch.autocast(device_type=torch.device(device).type, enabled=False)
