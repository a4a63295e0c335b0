"""An inference-only forward of timm's ConvNeXt blocks on the CPU with oneDNN's fused linear layers.

A ConvNeXt block spends most of its time in its MLP (fc1 -> exact GELU -> fc2) over every pixel. PyTorch runs it
as `addmm` (which first copies the broadcast bias into the output), a separate GELU pass, then the layer scale and
the residual sum as two more passes. Here oneDNN applies the bias and the GELU inside the matrix product
(`torch.ops.mkldnn._linear_pointwise`), and the layer scale and residual are one `addcmul`. SED-B's encoder at 768
px on one CPU thread: 15-25% less time in fp32, 5-9% in bf16 (shared machine), where the matrix products already
ran near the cores' peak (`tools/benchmark.py --encoder-profile` measures it).

oneDNN sums the products in another order than PyTorch's BLAS, so the outputs are not bitwise those of timm's
forward: float32 rounding differences (~1e-6 of the features' scale after 36 blocks, SED's probabilities within
1e-6), which the tests bound. Under autocast to bfloat16 the two matrix products run in bfloat16 (as autocast runs
them) and the residual stream stays float32, as in timm's forward under autocast.

Only where it applies (`fused_blocks_supported`): CPU float32 tensors, no gradient recorded, the trunk in eval
mode, a PyTorch built with oneDNN that has the op, not tracing or compiling; anything else (training, CUDA, fp16
autocast, jit tracing, exports, torch.compile) runs timm's own forward, as does any block of another form than
timm's ConvNeXt block with a linear MLP and a GELU.
"""

import torch
from timm.layers import activations as timm_activations
from torch import nn

_LINEAR = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)


def fused_blocks_supported(trunk, x):
    """True if `fused_block` may replace the blocks of `trunk` (a timm ConvNeXt) on input `x` (B, C, H, W)."""
    return not trunk.training and fused_mlp_supported(x)


def fused_mlp_supported(x):
    """True if `fused_mlp` may run on `x` (or a block may, on its input `x`): CPU inference, float32 or bfloat16
    autocast, a PyTorch with oneDNN's fused linear layer, not tracing or compiling."""
    if _LINEAR is None or not torch.backends.mkldnn.is_available() or not torch.backends.mkldnn.enabled:
        return False
    if torch.is_grad_enabled() or x.device.type != "cpu":
        return False
    if torch.jit.is_tracing() or torch.compiler.is_compiling():
        return False  # FLOP counts, exports and torch.compile see timm's forward: plain aten operations
    autocast = _autocast_dtype()
    return autocast in (None, torch.bfloat16) and x.dtype in (torch.float32, autocast)


def _autocast_dtype():
    """The CPU autocast dtype in effect, None outside autocast."""
    return torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None


def block_is_fusable(block):
    """True for a timm ConvNeXt block of the form `fused_block` computes: a linear MLP (fc1, GELU, fc2) with
    nothing between, an identity shortcut."""
    mlp = getattr(block, "mlp", None)
    return (
        not getattr(block, "use_conv_mlp", True)
        and isinstance(getattr(block, "shortcut", None), nn.Identity)
        and isinstance(getattr(mlp, "fc1", None), nn.Linear)
        and isinstance(getattr(mlp, "fc2", None), nn.Linear)
        and _gelu_algorithm(getattr(mlp, "act", None)) is not None
        and isinstance(getattr(mlp, "norm", None), nn.Identity)
        and mlp.fc1.bias is not None
        and mlp.fc2.bias is not None
    )


def _gelu_algorithm(module):
    """oneDNN's name of the GELU `module` computes ("none": exact, "tanh": the tanh approximation), None if it is
    no GELU. torch's GELU or timm's (timm's test_convnext, the tests' tiny CLIP, uses the tanh one)."""
    if isinstance(module, nn.GELU):
        return module.approximate
    if isinstance(module, timm_activations.GELUTanh):
        return "tanh"
    if isinstance(module, timm_activations.GELU):
        return "none"
    return None


def fused_block(block, x):
    """`block(x)` in eval mode, for a block where `block_is_fusable`.

    Args:
        block: a timm ConvNeXtBlock.
        x: (B, C, H, W) channels-last (then every permutation below is a view, not a copy); float32, or
            bfloat16 under bfloat16 autocast (a stage's downsampling convolution gives it).
    Returns:
        (B, C, H, W) channels-last, float32 (bfloat16 for a bfloat16 `x` in a block without layer scale, as timm's).
    """
    shortcut = x.permute(0, 2, 3, 1)
    y = block.norm(block.conv_dw(x).permute(0, 2, 3, 1))
    y = fused_mlp(y, block.mlp.fc1, block.mlp.fc2, _gelu_algorithm(block.mlp.act))
    with torch.autocast("cpu", enabled=False):
        y = torch.addcmul(shortcut, y, block.gamma) if block.gamma is not None else shortcut + y
    return y.permute(0, 3, 1, 2)


def fused_mlp(x, fc1, fc2, gelu="none"):
    """fc2(GELU(fc1(x))) for (..., C) `x` where `fused_mlp_supported`: both linear layers in oneDNN, the bias and
    the GELU ("none": exact, "tanh") inside the first. float32, or bfloat16 under bfloat16 autocast (the casts
    autocast would make; the op has no autocast rule)."""
    dtype = _autocast_dtype() or torch.float32
    with torch.autocast("cpu", enabled=False):
        y = _LINEAR(x.to(dtype), fc1.weight.to(dtype), fc1.bias.to(dtype), "gelu", [], gelu)
        return _LINEAR(y, fc2.weight.to(dtype), fc2.bias.to(dtype), "none", [], "")


def run_stage(stage, x, fused):
    """A timm ConvNeXt stage (downsample, then blocks) on `x`, its fusable blocks by `fused_block` if `fused`."""
    if not fused:
        return stage(x)
    x = stage.downsample(x).contiguous(memory_format=torch.channels_last)
    for block in stage.blocks:
        x = fused_block(block, x) if block_is_fusable(block) else block(x)
    return x
