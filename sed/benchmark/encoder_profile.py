"""Where SED's CLIP ConvNeXt encoder spends its time, with timm's block forward and with the fused one
(`sed.modeling.sed.fused_convnext`), and how much their outputs differ.

`run_encoder_profile(args)` builds the config's model (random weights unless MODEL.WEIGHTS), then on a random
CLIP-normalised image at MODEL.CLIP_RESOLUTION:
- CPU seconds (time.process_time) of `encode_image` with each block forward, alternated `--iters` times (so the
  load of a shared machine hits both alike): median, min, max;
- one profiled run of each (torch.profiler), summed by part: the MLP matrix products (GMAC/s, against the
  cores' matrix-product peak in the same precision), GELU, layer scale + residual, depthwise convolutions,
  layer norms, the rest;
- the largest absolute and relative differences of the dense embedding and res2..res5, fused against timm's;
- the whole model on a synthetic image (`--image-size`, `--vocabulary`, `--fast`/`--topk`/`--keep` as for the speed
  benchmark, random text embeddings): the largest difference of its probabilities, fused against timm's, and CPU
  seconds of each, alternated `--iters` times.
With `--compile`, `encode_image` under torch.compile (timm's forward; inductor's own fusions) is timed and compared
too. The command line is `tools/benchmark.py --encoder-profile`; `--layer-scale G` first draws the trunk's layer scales
uniformly in [0, G): random initialisation sets them to 1e-6, which scales the MLP branch (and any difference of
its result) down to nothing, where trained ConvNeXts have layer scales of order 0.1-1.
"""

import functools
import logging
import statistics
import time

import torch

from ..modeling.sed.clip_encoder import STAGE_NAMES, encode_image
from ..utils.measure import alternated_cpu_seconds
from ..utils.precision import inference_precision
from .op_profile import ONEDNN_LINEAR, peak_rates, profile_operations

logger = logging.getLogger(__name__)


def _is_depthwise(shapes):
    return len(shapes) > 1 and len(shapes[1]) == 4 and shapes[1][1] == 1


# (part, test of a top-level operation's name and input shapes): the first that matches counts the operation's
# inclusive time. The linear layers are the blocks' MLPs and the projection head (0.5% of the multiply-adds of
# convnext_base_w_320 at 768 px).
PARTS = (
    ("mlp matmul", lambda name, shapes: name in ("aten::linear", ONEDNN_LINEAR)),
    ("gelu", lambda name, shapes: name == "aten::gelu"),
    ("layer scale + residual", lambda name, shapes: name in ("aten::mul", "aten::add", "aten::addcmul")),
    ("depthwise conv", lambda name, shapes: name == "aten::conv2d" and _is_depthwise(shapes)),
    ("layer norm", lambda name, shapes: name == "aten::layer_norm"),
)


def profile_parts(run):
    """{part: seconds} of one call of `run`, and the MLP's multiply-adds, from its top-level operations
    (`op_profile.profile_operations`)."""
    elapsed = []

    def timed():
        start = time.process_time()
        run()
        elapsed.append(time.process_time() - start)

    seconds = {name: 0.0 for name, _ in PARTS}
    macs = 0
    for (_, operation, shapes), (_, us, operation_macs) in profile_operations(timed, {}).items():
        for name, matches in PARTS:
            if matches(operation, shapes):
                seconds[name] += us / 1e6
                if name == "mlp matmul":
                    macs += operation_macs
                break
    seconds["rest"] = max(0.0, elapsed[0] - sum(seconds.values()))
    return {"total_s": elapsed[0], "parts_s": seconds, "mlp_gmac": macs / 1e9}


def _differences(a, b):
    a, b = a.float(), b.float()
    diff = (a - b).abs()
    scale = b.abs()
    return {
        "max_abs": diff.max().item(),
        "max_rel": (diff / scale)[scale > 1e-3].max().item() if (scale > 1e-3).any() else 0.0,
        "max_ref": scale.max().item(),
    }


def compiled_encoder(visual, images, device, precision):
    """`encode_image` with timm's block forward under torch.compile (inductor makes its own fusions), tried on
    `images` first. Returns (function or None, description); compiling needs a C++ compiler on the CPU."""
    compiled = torch.compile(lambda x: encode_image(visual, x, fused_blocks=False))
    start = time.perf_counter()
    try:
        with torch.no_grad(), inference_precision(device, precision):
            compiled(images)
    except Exception as e:  # backend failures surface as many exception types
        logger.warning(f"torch.compile failed ({type(e).__name__}: {str(e)[:300]}); not measured.")
        return None, f"failed: {type(e).__name__}"
    return compiled, f"torch.compile of encode_image, first call {time.perf_counter() - start:.0f} s (wall)"


def encoder_profile(model, images, precision, iters, compile=False):
    """The measurements of the module docstring for `model` (an SED model) and CLIP-normalised `images`; with
    `compile`, also `compiled_encoder`'s seconds and differences."""
    visual = model.sem_seg_head.predictor.clip_model.visual
    device = images.device.type
    forwards = {
        "timm": lambda x: encode_image(visual, x, fused_blocks=False),
        "fused": lambda x: encode_image(visual, x, fused_blocks=True),
    }
    result = {"precision": precision, "image_size": list(images.shape[-2:])}
    if compile:
        compiled, result["compiled_as"] = compiled_encoder(visual, images, device, precision)
        if compiled is not None:
            forwards["compiled"] = compiled

    def run(label):
        with torch.no_grad(), inference_precision(device, precision):
            return forwards[label](images)

    outputs, seconds = alternated_cpu_seconds({label: functools.partial(run, label) for label in forwards}, iters)
    features, dense = outputs["timm"]
    for label in forwards:
        if label != "timm":
            other_features, other_dense = outputs[label]
            differences = {"dense": _differences(other_dense, dense)}
            differences.update({k: _differences(other_features[k], features[k]) for k in STAGE_NAMES})
            result[f"differences_{label}_vs_timm"] = differences
    peaks = peak_rates([precision], device)
    result["matmul_peaks_gmac_per_s"] = {
        label: peaks[kind, precision]
        for kind, label in (("matmul", "torch matmul"), ("onednn_linear", "oneDNN linear"))
        if (kind, precision) in peaks
    }
    for label, s in seconds.items():
        result[label] = {"median_s": statistics.median(s), "min_s": min(s), "max_s": max(s)}
        if label != "compiled":
            result[label].update(profile_parts(lambda label=label: run(label)))
    return result


def whole_model(model, inputs, iters):
    """The whole model with the fused encoder blocks against timm's: the largest absolute difference of its
    probabilities, and CPU seconds of `iters` alternated runs of each (median, min, max)."""
    predictor = model.sem_seg_head.predictor
    saved = predictor.fused_blocks

    def run(fused):
        predictor.fused_blocks = fused
        return [out["sem_seg"].float() for out in model([dict(x) for x in inputs])]

    try:
        with torch.no_grad():
            probabilities, seconds = alternated_cpu_seconds(
                {fused: functools.partial(run, fused) for fused in (False, True)}, iters
            )
    finally:
        predictor.fused_blocks = saved
    return {
        "probability_max_abs_difference": max(
            (a - b).abs().max().item() for a, b in zip(probabilities[False], probabilities[True])
        ),
        **{
            f"{label}_s": {"median": statistics.median(s), "min": min(s), "max": max(s)}
            for label, s in (("timm", seconds[False]), ("fused", seconds[True]))
        },
    }


def draw_layer_scales(trunk, high, seed=0):
    """Sets the layer scales (`gamma`) of a timm ConvNeXt trunk to uniform draws in [0, high)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in trunk.named_parameters():
            if name.endswith("gamma"):
                p.copy_(high * torch.rand(p.shape, generator=g))


def run_encoder_profile(args):
    """`tools/benchmark.py --encoder-profile`: the encoder of the config's SED model (see the module docstring)."""
    import contextlib
    import tempfile

    from .speed import (
        DEFAULT_VOCABULARY,
        build_cfg,
        build_model_timed,
        is_sed,
        random_text_embeddings,
        rejection_override,
        resolve_device,
        resolve_vocabulary,
        synthetic_images,
    )

    device = resolve_device(args.device)
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        with tempfile.TemporaryDirectory(prefix="sed-encoder-profile-") as cache_dir, random_text_embeddings():
            fast = bool(args.fast or args.topk is not None or args.keep is not None)
            opts = list(args.opts) + ["TEST.PRECISION", args.precision, "TEST.FAST_INFERENCE", str(fast)]
            opts += ["TEST.TOPK", str(args.topk)] if args.topk is not None else []
            cfg = build_cfg(args.config_file, opts, device, cache_dir)
            vocabulary, class_names = resolve_vocabulary(args.vocabulary or DEFAULT_VOCABULARY)
            model, _ = build_model_timed(cfg, class_names, device)
        if not is_sed(model):
            raise ValueError(f"--encoder-profile: only for SED's CLIP encoder; {type(model).__name__} has none.")
        if args.layer_scale:
            draw_layer_scales(model.sem_seg_head.predictor.clip_model.visual.trunk, args.layer_scale)
        g = torch.Generator().manual_seed(0)
        images = torch.randn(1, 3, *cfg.MODEL.CLIP_RESOLUTION, generator=g).to(device)
        images = images.contiguous(memory_format=torch.channels_last)
        result = encoder_profile(model, images, args.precision, args.iters, args.compile)
        result["threads"] = torch.get_num_threads()
        result["layer_scale"] = args.layer_scale or "the model's"
        with rejection_override(args.keep) if args.keep is not None else contextlib.nullcontext():
            result["whole_model"] = whole_model(model, synthetic_images(1, tuple(args.image_size)), args.iters)
        result["whole_model"].update(vocabulary=vocabulary, fast_inference=fast, keep=args.keep)
        return result
    finally:
        torch.set_num_threads(threads)


def format_encoder_profile(result):
    """A table of `run_encoder_profile`'s result."""
    peaks = result["matmul_peaks_gmac_per_s"]
    peak = max(peaks.values())
    lines = [
        f"CLIP encoder, {result['precision']}, {result['image_size'][0]}x{result['image_size'][1]}, "
        f"{result['threads']} thread(s), layer scales {result['layer_scale']}; 1024^3 matmul "
        + ", ".join(f"{k} {v:.0f}" for k, v in peaks.items())
        + " GMAC/s",
    ]
    for label in ("timm", "fused"):
        r = result[label]
        lines.append(
            f"{label:>5}: median {r['median_s']:.3f} s (min {r['min_s']:.3f}, max {r['max_s']:.3f}); profiled run "
            f"{r['total_s']:.3f} s"
        )
        mlp = r["parts_s"]["mlp matmul"]
        rate = r["mlp_gmac"] / mlp if mlp else 0.0
        lines.append(
            f"       mlp matmul{' + gelu' if label == 'fused' else ''} {mlp:.3f} s ({r['mlp_gmac']:.2f} GMAC, "
            f"{rate:.0f} GMAC/s = {rate / peak:.0%} of the faster)"
        )
        lines.extend(f"       {part} {s:.3f} s" for part, s in r["parts_s"].items() if part != "mlp matmul")
    if "compiled_as" in result:
        lines.append(f"compiled: {result['compiled_as']}")
    if "compiled" in result:
        r = result["compiled"]
        lines.append(f"compiled: median {r['median_s']:.3f} s (min {r['min_s']:.3f}, max {r['max_s']:.3f})")
    for label in ("fused", "compiled"):
        if f"differences_{label}_vs_timm" in result:
            lines.append(f"{label} vs timm, max abs / max rel (|ref| > 1e-3) / max |ref|:")
            for name, d in result[f"differences_{label}_vs_timm"].items():
                lines.append(f"  {name:>5}: {d['max_abs']:.2e} / {d['max_rel']:.2e} / {d['max_ref']:.2f}")
    whole = result["whole_model"]
    lines.append(
        f"fused vs timm, probabilities of the whole model: max abs {whole['probability_max_abs_difference']:.2e}"
    )
    lines.append(
        f"whole model (SED, TEST.PRECISION {result['precision']}, {whole['vocabulary']}, fast inference "
        f"{whole['fast_inference']}, keep {whole['keep']}), CPU seconds, alternated: "
        + ", ".join(
            f"{label} median {whole[f'{label}_s']['median']:.2f} (min {whole[f'{label}_s']['min']:.2f}, max "
            f"{whole[f'{label}_s']['max']:.2f})"
            for label in ("timm", "fused")
        )
    )
    return "\n".join(lines)
