"""Speed and memory of inference of any registered model (SED, ECENet): start-up, latency by part, throughput,
peak memory, FLOPs, and for SED category rejection.

`run_benchmark(args)` measures one configuration (config file + overrides, vocabulary, device, precision,
category early rejection) and returns a JSON-able dict; `format_report` prints it as a table. The command line
is `tools/benchmark.py`. The model runs as in evaluation (`model(batched_inputs)`, label maps where the model
can give them, see `sed.modeling.postprocess`); its parts (the model protocol's `benchmark_parts`) are timed by
wrapping their entry points on the instance for the time of a measurement, and `--keep` replaces SED's rejection
function the same way: the models' code has no benchmark-only paths.
"""

import contextlib
import functools
import gc
import logging
import os
import statistics
import tempfile
import time

import torch

from ..config import load_config
from ..data.vocabulary import benchmark_vocabularies, parse_vocabulary
from ..modeling.postprocess import label_outputs
from ..modeling.protocol import SegmentationModel, capabilities
from ..utils.class_names import load_class_names
from ..utils.measure import PeakMemory, environment, synchronize
from ..utils.precision import PRECISIONS, inference_precision

logger = logging.getLogger(__name__)

DEFAULT_VOCABULARY = "ade150"  # SED's, when --vocabulary is not given


# ------------------------------------------------------------------------------------------------ inputs
def resolve_vocabulary(spec):
    """(name, class names) for a benchmark name (ade150, ...), a number of classes (synthetic names
    "class 0", "class 1", ...) or the path of a class-name JSON file."""
    spec = str(spec)
    if spec.isdigit():
        if int(spec) < 1:
            raise ValueError(f"--vocabulary {spec}: the number of classes must be at least 1.")
        return f"synthetic{spec}", [f"class {i}" for i in range(int(spec))]
    if spec in benchmark_vocabularies():
        return spec, parse_vocabulary(spec)
    if spec.endswith(".json"):
        return os.path.splitext(os.path.basename(spec))[0], load_class_names(spec)
    raise ValueError(
        f"--vocabulary {spec!r}: unknown. Use a benchmark vocabulary "
        f"({', '.join(benchmark_vocabularies())}), a number of classes (synthetic names 'class 0', 'class 1', ...) "
        "or a class-name JSON file."
    )


def resolve_device(device):
    """'cpu' or 'cuda[:i]'; None picks CUDA when available. Asking for an absent CUDA is an error."""
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(
            f"--device {device}: CUDA is not available here (torch {torch.__version__}, "
            f"built with CUDA {torch.version.cuda}, no usable GPU). Use --device cpu."
        )
    if device != "cpu" and not device.startswith("cuda"):
        raise ValueError(f"--device {device!r}: expected cpu, cuda or cuda:N.")
    return device


def build_cfg(config_file, opts, device, cache_dir):
    """Frozen config of `config_file` + `opts`, on `device`, caching text embeddings in `cache_dir`."""
    cfg = load_config(config_file, [*opts, "MODEL.DEVICE", device, "MODEL.ENC.TEXT_EMBEDDING_CACHE_DIR", cache_dir])
    cfg.freeze()
    return cfg


def synthetic_images(batch_size, size, seed=0):
    """detectron2-style inputs: dicts with a (3, H, W) float "image" in 0..255 and the output size."""
    g = torch.Generator().manual_seed(seed)
    return [
        {"image": torch.rand(3, *size, generator=g) * 255, "height": size[0], "width": size[1]}
        for _ in range(batch_size)
    ]


# ------------------------------------------------------------------------------------------------ measuring
@contextlib.contextmanager
def patched(obj, name, wrapper):
    """Replaces attribute `name` of `obj` (a module, or an instance whose method it shadows) by
    `wrapper(original)` inside the block."""
    own = name in vars(obj)
    original = getattr(obj, name)
    setattr(obj, name, wrapper(original))
    try:
        yield
    finally:
        if own:
            setattr(obj, name, original)
        else:
            delattr(obj, name)  # the instance sees its class's method again


def is_sed(model):
    """Whether `model` is SED (open vocabulary, text embeddings, category early rejection)."""
    return hasattr(model, "test_class_names") and hasattr(getattr(model, "sem_seg_head", None), "predictor")


def model_parts(model):
    """{part: (object, names of its methods that run the part)} of a model, for `PartTimer`: what the model
    protocol's `benchmark_parts` declares (none for a model without the protocol: only the total is timed)."""
    return model.benchmark_parts() if isinstance(model, SegmentationModel) else {}


class PartTimer:
    """Wall time spent in each part of `model_parts` during model calls; the rest of a call is pre- and
    post-processing (normalisation, resizing, activation, label maps)."""

    def __init__(self, model, device):
        self.parts, self.device = model_parts(model), device
        self.reset()

    def reset(self):
        self.seconds = {part: 0.0 for part in self.parts}

    def _timed(self, part):
        def wrap(fn):
            @functools.wraps(fn)
            def timed(*args, **kwargs):
                synchronize(self.device)
                start = time.perf_counter()
                out = fn(*args, **kwargs)
                synchronize(self.device)
                self.seconds[part] += time.perf_counter() - start
                return out

            return timed

        return wrap

    @contextlib.contextmanager
    def active(self):
        with contextlib.ExitStack() as stack:
            for part, (obj, names) in self.parts.items():
                for name in names:
                    stack.enter_context(patched(obj, name, self._timed(part)))
            yield self


@contextlib.contextmanager
def rejection_override(keep=None, record=None):
    """Replaces the decoder's category rejection for the block.

    keep: keep exactly min(keep, T) classes at every stage (the highest maximum scores), whatever top-k says:
        rejection speed can then be measured with untrained weights, whose scores are meaningless.
    record: a list that receives the number of classes kept at each rejection.
    """
    from ..modeling.sed import decoder

    def wrap(original):
        def rejection(logits, topk):
            if keep is None:
                kept = original(logits, topk)
            else:
                kept = logits.flatten(1).amax(1).topk(min(keep, logits.shape[0])).indices.sort().values
            if record is not None:
                record.append(int(kept.numel()))
            return kept

        return rejection

    with patched(decoder, "category_rejection", wrap):
        yield


@contextlib.contextmanager
def random_text_embeddings():
    """Vocabulary embeddings become random unit vectors instead of CLIP text encodings, for speed runs with random
    weights where encoding the vocabulary would take long (one CPU thread needs ~0.2 s a sentence with SED-B's text
    tower, and a vocabulary has 80 sentences per class)."""
    from ..modeling.sed import text_embeddings

    def wrap(original):
        def encode_vocabulary(clip_model, tokenizer, class_names, templates, batch_size=1024):
            device = next(clip_model.parameters()).device
            dim = clip_model.encode_text(tokenizer([templates[0].format(class_names[0])]).to(device)).shape[-1]
            g = torch.Generator().manual_seed(len(class_names))
            x = torch.randn(len(class_names), len(templates), dim, generator=g)
            return torch.nn.functional.normalize(x, dim=-1).to(device)

        return encode_vocabulary

    with patched(text_embeddings, "encode_vocabulary", wrap):
        yield


def _median_ms(seconds):
    return {
        "median": 1000 * statistics.median(seconds),
        "min": 1000 * min(seconds),
        "all": [round(1000 * s, 2) for s in seconds],
    }


# ------------------------------------------------------------------------------------------------ measurements
def build_model_timed(cfg, class_names, device):
    """Builds the model (and loads MODEL.WEIGHTS) and, for SED, computes the embeddings of `class_names`.
    Returns (model, times).

    Random initialisation is seeded, so that two builds without weights files have the same text tower and the
    second finds the embeddings the first cached on disk."""
    from detectron2.checkpoint import DetectionCheckpointer
    from detectron2.modeling import build_model

    torch.manual_seed(0)
    synchronize(device)
    start = time.perf_counter()
    model = build_model(cfg)
    if cfg.MODEL.WEIGHTS:
        DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
    model.eval()
    synchronize(device)
    built = time.perf_counter()
    if capabilities(model).open_vocabulary:
        model.set_vocabulary(class_names)
    if is_sed(model):
        predictor = model.sem_seg_head.predictor
        with torch.no_grad():
            predictor.text_embeddings.get(predictor.clip_model, model.test_class_names, predictor.prompt_templates)
    synchronize(device)
    done = time.perf_counter()
    return model, {"build_s": built - start, "text_embeddings_s": done - built, "total_s": done - start}


def inference_context(device, precision):
    """no_grad and autocast to `precision` (SED also enters it itself, from TEST.PRECISION, which the benchmark
    sets: the context covers the parts the FLOP count runs outside the model's forward, and other models)."""
    stack = contextlib.ExitStack()
    stack.enter_context(torch.no_grad())
    stack.enter_context(inference_precision(device, precision))
    return stack


def time_model(model, inputs, device, precision, iters, warmup):
    """Runs model(inputs) warmup + iters times. Returns per-iteration seconds (total, and by part of
    `model_parts`), peak memory."""
    timer = PartTimer(model, device)
    totals, parts = [], {part: [] for part in timer.parts}
    with inference_context(device, precision), timer.active():
        for _ in range(warmup):
            model(inputs)
        with PeakMemory(device) as memory:
            for _ in range(iters):
                timer.reset()
                synchronize(device)
                start = time.perf_counter()
                model(inputs)
                synchronize(device)
                totals.append(time.perf_counter() - start)
                for k in parts:
                    parts[k].append(timer.seconds[k])
    return totals, parts, memory


def _gflops(module, args):
    from fvcore.nn import FlopCountAnalysis

    analysis = FlopCountAnalysis(module, args)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return analysis.total() / 1e9


def count_model_flops(model, inputs, device, precision):
    """fvcore FLOPs (one multiply-add counts 1) of a whole model's inference on one image."""
    image = inputs[0]["image"]

    class Whole(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, image):
            return self.model([{"image": image}])[0]["sem_seg"]

    with inference_context(device, precision):
        return {"model_gflops": _gflops(Whole(), (image,)), "note": "fvcore: one multiply-add = 1 flop"}


def count_flops(model, inputs, device, precision):
    """fvcore FLOPs (one multiply-add counts 1) of the encoder (CLIP image encoder + cost map) and the decoder
    (full inference, no rejection), for one image."""
    predictor = model.sem_seg_head.predictor
    names = model.test_class_names
    image = model._resize_for_clip(model._normalize(inputs[0]["image"])[None])  # the encoder's input, as in inference

    class Encoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.predictor = predictor

        def forward(self, images):
            cost_map, guidance = self.predictor.encode(images, names)
            return cost_map, *guidance

    class Decoder(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.decoder = predictor.transformer

        def forward(self, cost_map, *guidance):
            return self.decoder(cost_map, list(guidance), with_aux=False)[0]

    flops = _gflops
    decoder = predictor.transformer
    chunk = decoder.class_chunk_size
    with inference_context(device, precision):
        cost_map, *guidance = Encoder()(image)
        encoder_gflops = flops(Encoder(), (image,))
        # Large chunks keep the traced graph small; the work does not depend on the chunk size.
        decoder.class_chunk_size = max(decoder.rows_per_chunk(cost_map.shape[-2:], cost_map.device), 64)
        try:
            decoder_gflops = flops(Decoder(), (cost_map, *guidance))
        finally:
            decoder.class_chunk_size = chunk
    return {
        "encoder_gflops": encoder_gflops,
        "decoder_gflops": decoder_gflops,
        "note": "fvcore: one multiply-add = 1 flop; decoder without rejection",
    }


def compiled_decoder(model, inputs, device, precision, stack):
    """torch.compile (dynamic shapes: they vary with the vocabulary and the kept classes) of the decoder's
    per-chunk steps, for the rest of `stack`; tried on `inputs` first. Where compiling fails (no compiler,
    unsupported platform), the model stays as it was and the reason is logged. Returns a description."""
    steps = [
        (module, name)
        for stage in model.sem_seg_head.predictor.transformer.stages
        for module, name in [(stage.cnext, "residual"), (stage.attention, "transform_"), (stage.conv, "rest")]
    ]
    trial = contextlib.ExitStack()
    for module, name in steps:
        trial.enter_context(patched(module, name, functools.partial(torch.compile, dynamic=True)))
    try:
        with inference_context(device, precision):
            model(inputs)
    except Exception as e:  # backend failures surface as many exception types
        trial.close()
        logger.warning(f"torch.compile failed ({type(e).__name__}: {str(e)[:300]}); running uncompiled.")
        return f"failed, uncompiled: {type(e).__name__}"
    stack.push(trial.pop_all())
    return "torch.compile(dynamic=True) of the decoder's ConvNeXt blocks, class attention and fusion convolutions"


# ------------------------------------------------------------------------------------------------ the run
def run_benchmark(args):
    """Measures one configuration; `args` carries the command line's options (see tools/benchmark.py)."""
    threads = torch.get_num_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return _run_benchmark(args)
    finally:
        torch.set_num_threads(threads)


def _sed_only(args, model):
    """The options a model does not support, refused with the reason: --vocabulary needs an open-vocabulary
    model, the others SED's category early rejection and text embeddings."""
    if args.vocabulary is not None and not capabilities(model).open_vocabulary:
        raise ValueError(
            f"--vocabulary: only for open-vocabulary models; {type(model).__name__} segments its "
            "config's classes. Leave it out."
        )
    asked = [
        flag
        for flag, value in [
            ("--fast", args.fast),
            ("--topk", args.topk is not None),
            ("--keep", args.keep is not None),
            ("--random-text-embeddings", args.random_text_embeddings),
        ]
        if value
    ]
    if asked and not is_sed(model):
        raise ValueError(
            f"{', '.join(asked)}: only for SED (category early rejection, CLIP text embeddings); "
            f"{type(model).__name__} has neither. Leave them out."
        )


def _run_benchmark(args):
    device = resolve_device(args.device)
    if args.precision not in PRECISIONS:
        raise ValueError(f"--precision {args.precision!r}: expected one of {', '.join(PRECISIONS)}.")
    vocabulary, class_names = resolve_vocabulary(args.vocabulary or DEFAULT_VOCABULARY)
    fast = bool(args.fast or args.topk is not None or args.keep is not None)
    opts = list(args.opts) + ["TEST.PRECISION", args.precision]
    if fast:
        opts += ["TEST.FAST_INFERENCE", "True"] + (["TEST.TOPK", str(args.topk)] if args.topk is not None else [])
    if args.keep is not None and args.keep < 1:
        raise ValueError("--keep must be at least 1.")

    result = {"environment": environment(device, args.threads)}
    with tempfile.TemporaryDirectory(prefix="sed-bench-text-") as cache_dir, contextlib.ExitStack() as stack:
        if args.random_text_embeddings:
            stack.enter_context(random_text_embeddings())
        cfg = build_cfg(args.config_file, opts, device, cache_dir)
        # Start-up: cold (empty embedding cache), then cached (a second build reading the cache from disk).
        model, cold = build_model_timed(cfg, class_names, device)
        _sed_only(args, model)
        sed = is_sed(model)
        if not capabilities(model).open_vocabulary:
            vocabulary, class_names = "config", [None] * cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES
        result["config"] = {
            "config_file": args.config_file,
            "opts": opts,
            "model": cfg.MODEL.META_ARCHITECTURE,
            "weights": cfg.MODEL.WEIGHTS or (cfg.MODEL.ENC.CLIP_PRETRAINED_WEIGHTS if sed else "") or "random",
            "vocabulary": vocabulary,
            "num_classes": len(class_names),
            "precision": args.precision,
            "fast_inference": fast,
            "topk": cfg.TEST.TOPK if fast else None,
            "keep": args.keep,
            "image_size": list(args.image_size),
            "iters": args.iters,
            "warmup": args.warmup,
            "outputs": "label maps (as in evaluation)"
            if capabilities(model).supports_label_maps and not args.probabilities
            else "scores (T, H, W)",
        }
        if sed:
            result["config"].update(
                {
                    "clip_model": cfg.MODEL.ENC.CLIP_MODEL_NAME,
                    "clip_resolution": list(cfg.MODEL.CLIP_RESOLUTION),
                    "class_chunk_size": cfg.MODEL.SEM_SEG_HEAD.CLASS_CHUNK_SIZE,
                    "text_embeddings": "random (not CLIP)" if args.random_text_embeddings else "CLIP text tower",
                }
            )
        if args.skip_startup:
            result["startup"] = None
        else:
            del model
            gc.collect()
            model, cached = build_model_timed(cfg, class_names, device)
            result["startup"] = {"cold": cold, "cached": cached}
        if sed:
            result["config"]["class_chunk_rows"] = model.sem_seg_head.predictor.transformer.rows_per_chunk(
                [s // 32 for s in cfg.MODEL.CLIP_RESOLUTION], device
            )
        if args.compile:
            result["config"]["compile"] = compiled_decoder(
                model, synthetic_images(1, args.image_size), device, args.precision, stack
            )

        kept_counts = []
        stack.enter_context(rejection_override(args.keep, kept_counts))
        stack.enter_context(label_outputs(model, enabled=not args.probabilities))
        # Per-image latency, batch 1.
        inputs = synthetic_images(1, args.image_size)
        totals, parts, memory = time_model(model, inputs, device, args.precision, args.iters, args.warmup)
        other = [t - sum(p[i] for p in parts.values()) for i, t in enumerate(totals)]
        result["latency_ms"] = {
            **{part: _median_ms(seconds) for part, seconds in parts.items()},
            "pre_post_processing": _median_ms(other),
            "total": _median_ms(totals),
        }
        result["peak_memory"] = {
            "method": memory.method,
            "inference_mib": memory.peak_mib,
            "process_or_device_mib": memory.total_mib,
        }
        if fast:
            stages = 3  # rejections per image: after the cost embedding, after stages 1 and 2
            per_image = [kept_counts[i : i + stages] for i in range(0, len(kept_counts), stages)]
            result["rejection"] = {
                "classes": len(class_names),
                "kept_per_stage": per_image[-1],
                "kept_per_stage_mean": [statistics.mean(k[s] for k in per_image) for s in range(stages)],
                "forced_by_keep": args.keep is not None,
            }
        # Throughput at each batch size (batch 1: the latency run's figures). A batch the GPU has no memory for is
        # recorded as such and ends the list: the one before is the largest that fits.
        result["throughput"] = []
        for batch_size in args.batch_sizes:
            if batch_size != 1:
                inputs = synthetic_images(batch_size, args.image_size)
                try:
                    totals, _, memory = time_model(model, inputs, device, args.precision, args.iters, args.warmup)
                except torch.cuda.OutOfMemoryError:
                    totals = None
                if totals is None:  # outside `except`, whose traceback holds the batch's tensors
                    del inputs
                    gc.collect()
                    torch.cuda.empty_cache()
                    result["throughput"].append({"batch_size": batch_size, "out_of_memory": True})
                    break
            result["throughput"].append(
                {
                    "batch_size": batch_size,
                    "median_s": statistics.median(totals),
                    "images_per_s": batch_size / statistics.median(totals),
                    "peak_memory_mib": memory.peak_mib,
                }
            )
        stack.close()  # FLOPs of the plain model: probabilities, no forced rejection
        count = count_flops if sed else count_model_flops
        result["flops"] = (
            None if args.skip_flops else count(model, synthetic_images(1, args.image_size), device, args.precision)
        )
    return result


PART_LABELS = {
    "encoder": "CLIP encoder + cost map",
    "decoder": "decoder",
    "backbone": "backbone",
    "head": "head",
    "pre_post_processing": "pre/post-processing",
    "total": "total",
}


def format_report(result):
    """The result as a readable table."""
    c, env = result["config"], result["environment"]
    model = f"{c['model']} ({c['clip_model']})" if "clip_model" in c else c["model"]
    lines = [
        f"benchmark: {c['config_file']} ({model}, {c['weights']} weights), "
        f"{c['vocabulary']} ({c['num_classes']} classes), {env['device']} {env.get('gpu', env['cpu'])}, "
        f"{env['threads']} threads, {c['precision']}, torch {env['torch']}",
        f"inference: {'fast (category early rejection, top-%s)' % c['topk'] if c['fast_inference'] else 'full'}"
        + (f", kept set forced to {c['keep']} classes per stage (--keep)" if c["keep"] else "")
        + (
            f"; class chunks of {c['class_chunk_rows']} maps; text embeddings: {c['text_embeddings']}"
            if "class_chunk_rows" in c
            else ""
        )
        + f"; outputs: {c['outputs']}",
    ]
    if c.get("compile"):
        lines.append(f"compile: {c['compile']}")
    row = "  {:<28} {:>12} {:>12}"
    if result.get("startup"):
        lines += ["start-up (s)", row.format("", "cold", "cached")]
        for key, label in [
            ("build_s", "model build (+weights)"),
            ("text_embeddings_s", "text embeddings"),
            ("total_s", "total"),
        ]:
            lines.append(
                row.format(label, f"{result['startup']['cold'][key]:.2f}", f"{result['startup']['cached'][key]:.2f}")
            )
    lines += [
        f"latency per image, batch 1, median of {c['iters']} after {c['warmup']} warm-up (ms)",
        row.format("", "median", "min"),
    ]
    for key in result["latency_ms"]:
        label = PART_LABELS.get(key, key)
        lines.append(
            row.format(label, f"{result['latency_ms'][key]['median']:.1f}", f"{result['latency_ms'][key]['min']:.1f}")
        )
    mem = result["peak_memory"]
    lines.append(
        f"peak memory, batch 1: {mem['inference_mib']:.0f} MiB above the loaded model "
        f"({mem['process_or_device_mib']:.0f} MiB in all; {mem['method']})"
    )
    if result.get("rejection"):
        r = result["rejection"]
        lines.append(
            f"classes kept after head0 / stage 1 / stage 2 (of {r['classes']}): "
            + " / ".join(f"{k:.1f}" for k in r["kept_per_stage_mean"])
            + (" (forced by --keep)" if r["forced_by_keep"] else "")
        )
    lines += ["throughput", "  {:<10} {:>12} {:>12} {:>14}".format("batch", "images/s", "s/batch", "peak MiB")]
    for t in result["throughput"]:
        if t.get("out_of_memory"):
            lines.append("  {:<10} {:>12}".format(t["batch_size"], "out of memory"))
            continue
        lines.append(
            "  {:<10} {:>12.3f} {:>12.3f} {:>14.0f}".format(
                t["batch_size"], t["images_per_s"], t["median_s"], t["peak_memory_mib"]
            )
        )
    if result.get("flops"):
        f = result["flops"]
        counts = ", ".join(f"{k[: -len('_gflops')]} {v:.1f} G" for k, v in f.items() if k.endswith("_gflops"))
        lines.append(f"FLOPs, one image: {counts} ({f['note']})")
    return "\n".join(lines)
