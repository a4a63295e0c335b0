#!/usr/bin/env python
"""This project's cost map + decoder side by side with the authors' (`Aggregator` of xb534/SED), same weights.

Takes a checkout of https://github.com/xb534/SED (not part of this project; only its decoder file
sed/modeling/transformer/model.py and convnext.py next to it are imported, with einops and timm). Builds this
project's decoder with a config's dimensions (default configs/convnextB_768.yaml, SED-B) and seeded random
weights, loads the same state dict into theirs (strict: no missing or unexpected keys), feeds both the same random
inputs of SED-B's shapes (dense CLIP embedding (1, 640, 24, 24), T classes x 80 prompt embeddings, guidance res4 /
res3 / res2), checks their outputs agree, then times one forward of each, alternated in one process, in CPU
seconds (time.process_time), and prints the ratio (theirs / ours) of the medians with its spread.

Modes: "full" (every class through the decoder) and "fast" (category early rejection). With `--keep K` (default
32) both keep the K classes of highest maximum score at every rejection, on both sides (random weights make
top-k's kept sets meaningless); `--keep 0` uses each side's own top-k (TEST.TOPK). `--composed` times this
project's `TEST.FAST_COMPOSED_SCORES True`.

    python tools/compare_with_authors.py /path/to/xb534-SED --classes 150 --mode fast --iters 3 --threads 1 \
        --output authors_150_fast.json MODEL.SEM_SEG_HEAD.POOLING_SIZES "[1,1]"
"""

import argparse
import contextlib
import importlib
import json
import platform
import statistics
import sys
import time
import types
from pathlib import Path

import torch

AUTHORS_DECODER = Path("sed") / "modeling" / "transformer"
PACKAGE = "xb534_sed_transformer"


def import_authors_decoder(checkout):
    """The authors' decoder module (their model.py), imported under a package name of its own so that their `sed`
    package does not shadow this project's; a clear error where the checkout or its dependencies are missing."""
    directory = Path(checkout).expanduser().resolve() / AUTHORS_DECODER
    if not (directory / "model.py").is_file():
        raise FileNotFoundError(
            f"{directory / 'model.py'} not found: pass the root of a checkout of "
            "https://github.com/xb534/SED (git clone https://github.com/xb534/SED)."
        )
    package = types.ModuleType(PACKAGE)
    package.__path__ = [str(directory)]
    sys.modules[PACKAGE] = package
    try:
        return importlib.import_module(f"{PACKAGE}.model")
    except ImportError as e:
        raise ImportError(
            f"importing the authors' decoder failed ({e}): it needs einops and timm (pip install einops timm)."
        ) from e


def authors_aggregator(module, cfg, prompt_channels):
    """Their `Aggregator` with the dimensions their predictor gives it from the same config keys."""
    head = cfg.MODEL.SEM_SEG_HEAD
    kernel = head.KERNEL_SIZE if isinstance(head.KERNEL_SIZE, (list, tuple)) else [head.KERNEL_SIZE] * 3
    return module.Aggregator(
        text_guidance_dim=0,
        text_guidance_proj_dim=0,
        appearance_guidance_dim=head.APPEARANCE_GUIDANCE_DIM,
        appearance_guidance_proj_dim=head.APPEARANCE_GUIDANCE_PROJ_DIM,
        decoder_dims=list(head.DECODER_DIMS),
        decoder_guidance_dims=list(head.DECODER_GUIDANCE_DIMS),
        decoder_guidance_proj_dims=list(head.DECODER_GUIDANCE_PROJ_DIMS),
        nheads=head.NUM_HEADS,
        hidden_dim=head.HIDDEN_DIMS,
        pooling_size=list(head.POOLING_SIZES),
        prompt_channel=prompt_channels,
        cnext_type=head.CNEXT_TYPE,
        kernel_size=list(kernel),
        fast_inference=False,
        topK=cfg.TEST.TOPK,
    )


def random_inputs(cfg, classes, prompts, seed=0):
    """Dense embedding (1, C, h, w), text (T, P, C) unit vectors, guidance [res4 (1, C4, 2h, 2w), res3, res2]."""
    import open_clip

    g = torch.Generator().manual_seed(seed)
    h = cfg.MODEL.CLIP_RESOLUTION[0] // 32
    dim = open_clip.get_model_config(cfg.MODEL.ENC.CLIP_MODEL_NAME)["embed_dim"]  # SED-B: 640
    dense = torch.randn(1, dim, h, h, generator=g)
    text = torch.nn.functional.normalize(torch.randn(classes, prompts, dim, generator=g), dim=-1)
    guidance = [
        torch.randn(1, c, h << (i + 1), h << (i + 1), generator=g)
        for i, c in enumerate(cfg.MODEL.SEM_SEG_HEAD.DECODER_GUIDANCE_DIMS)
    ]
    return dense, text, guidance


def top_by_maximum(scores, keep):
    """(T,) bool: the `keep` classes of (T, H, W) scores with the highest maximum (ties: the lower index)."""
    kept = torch.zeros(scores.shape[0], dtype=torch.bool)
    kept[scores.flatten(1).amax(1).topk(min(keep, scores.shape[0])).indices] = True
    return kept


@contextlib.contextmanager
def authors_on_cpu(aggregator, keep):
    """Their fast path allocates its output with `.cuda()`; on the CPU that becomes a no-op. With `keep`, their
    rejection keeps the `keep` classes of highest maximum score (as `rejection_override` does for ours)."""
    cuda = torch.Tensor.cuda
    if not torch.cuda.is_available():
        torch.Tensor.cuda = lambda self, *args, **kwargs: self
    if keep:
        aggregator.get_valid_idx_from_mask = lambda mask, topK=None: top_by_maximum(mask[0], keep)
    try:
        yield
    finally:
        torch.Tensor.cuda = cuda
        aggregator.__dict__.pop("get_valid_idx_from_mask", None)


def runners(ours, theirs, inputs, mode, topk, keep):
    """(run ours, run theirs): each returns (T, H, W) probabilities (rejected classes 0) of one image."""
    from sed.benchmark.speed import rejection_override
    from sed.modeling.sed.cost_map import compute_cost_map

    dense, text, guidance = inputs
    t = text.shape[0]

    def run_ours():
        with rejection_override(keep or None):
            cost = compute_cost_map(dense, text)
            if mode == "full":
                return ours(cost, guidance, with_aux=False)[0][0].sigmoid()
            logits, kept = ours.forward_with_rejection(cost, guidance, topk)
            probs = logits.new_zeros(t, *logits.shape[-2:])
            probs[kept] = logits.sigmoid()
            return probs

    appearance = [None, *guidance]  # their predictor passes [res5, res4, res3, res2]; the decoder skips res5

    def run_theirs():
        theirs.fast_infer = mode == "fast"
        theirs.topK = topk
        with authors_on_cpu(theirs, keep):
            out = theirs(dense, text[None], appearance, torch.zeros(()))
        return out[0][0] if mode == "fast" else out[0][0].sigmoid()

    return run_ours, run_theirs


def summary(seconds):
    return {"median_s": statistics.median(seconds), "min_s": min(seconds), "max_s": max(seconds), "runs_s": seconds}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("authors_checkout", help="root of a checkout of github.com/xb534/SED")
    parser.add_argument("--config-file", default="configs/convnextB_768.yaml")
    parser.add_argument("--classes", type=int, default=150)
    parser.add_argument("--mode", choices=["full", "fast"], default="fast")
    parser.add_argument("--keep", type=int, default=32, help="fast: classes kept at every rejection (0: top-k)")
    parser.add_argument("--composed", action="store_true", help="ours with TEST.FAST_COMPOSED_SCORES True")
    parser.add_argument("--iters", type=int, default=3, help="timed runs of each, alternated")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and inputs")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--atol", type=float, default=1e-5, help="largest probability difference accepted")
    parser.add_argument("--output", default="", help="write the results as JSON here")
    parser.add_argument("opts", nargs="*", help="KEY VALUE config overrides")
    args = parser.parse_intermixed_args(argv)
    torch.set_num_threads(args.threads)

    from sed.config import load_config
    from sed.modeling.sed.decoder import GradualFusionDecoder
    from sed.modeling.sed.prompt_templates import get_prompt_templates
    from sed.utils.measure import alternated_cpu_seconds

    authors = import_authors_decoder(args.authors_checkout)
    cfg = load_config(args.config_file, [*args.opts, "TEST.FAST_COMPOSED_SCORES", str(args.composed)])
    prompts = len(get_prompt_templates(cfg.MODEL.PROMPT_ENSEMBLE_TYPE))
    torch.manual_seed(args.seed)
    ours = GradualFusionDecoder(cfg, prompt_channels=prompts).eval()
    theirs = authors_aggregator(authors, cfg, prompts).eval()
    theirs.load_state_dict(ours.state_dict(), strict=True)
    inputs = random_inputs(cfg, args.classes, prompts, args.seed)
    run_ours, run_theirs = runners(
        ours, theirs, inputs, args.mode, cfg.TEST.TOPK, args.keep if args.mode == "fast" else 0
    )

    with torch.no_grad():
        a, b = run_ours(), run_theirs()
        difference = (a - b).abs().max().item()
        kept_equal = torch.equal(a.flatten(1).amax(1) > 0, b.flatten(1).amax(1) > 0)
        _, seconds = alternated_cpu_seconds({"ours": run_ours, "theirs": run_theirs}, args.iters)
        ours_s, theirs_s = seconds["ours"], seconds["theirs"]
    ratios = [t / o for t, o in zip(theirs_s, ours_s)]
    result = {
        "environment": {
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "timing": "CPU seconds (time.process_time), runs alternated in one process",
        },
        "setting": {
            "config_file": args.config_file,
            "opts": list(args.opts),
            "classes": args.classes,
            "mode": args.mode,
            "keep": args.keep if args.mode == "fast" else None,
            "composed_scores": args.composed,
            "iters": args.iters,
            "seed": args.seed,
            "weights": "random (seeded), the same in both",
            "inputs": "random, SED-B shapes",
        },
        "outputs": {
            "max_probability_difference": difference,
            "kept_classes_equal": kept_equal,
            "agree": difference <= args.atol and kept_equal,
            "atol": args.atol,
        },
        "ours": summary(ours_s),
        "theirs": summary(theirs_s),
        "ratio_of_medians": statistics.median(theirs_s) / statistics.median(ours_s),
        "ratio_per_pair": {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios)},
    }
    print(
        f"{args.classes} classes, {args.mode}{' (composed scores)' if args.composed else ''}: outputs "
        f"{'agree' if result['outputs']['agree'] else 'DIFFER'} (max probability difference {difference:.1e}, "
        f"kept classes {'equal' if kept_equal else 'differ'}); CPU s, median (min-max) of {args.iters}: theirs "
        f"{result['theirs']['median_s']:.2f} ({min(theirs_s):.2f}-{max(theirs_s):.2f}), ours "
        f"{result['ours']['median_s']:.2f} ({min(ours_s):.2f}-{max(ours_s):.2f}); "
        f"ratio {result['ratio_of_medians']:.2f}x "
        f"(per pair {min(ratios):.2f}x-{max(ratios):.2f}x)"
    )
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=1))
    return 0 if result["outputs"]["agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
