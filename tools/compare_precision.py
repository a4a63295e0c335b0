#!/usr/bin/env python
"""SED in bf16 (or fp16) against fp32 (TEST.PRECISION): accuracy on known weights, and the speed-up.

Accuracy, on the parity fixture's model (tests/fixtures/sed_parity_tiny.pt: a tiny CLIP, SED-B's decoder, the
authors' weights, 10 classes, one image) with its weights and with `--seeds` sets of random weights (the model's
own initialisation, seeded), in full and fast inference (the fixture's TEST.TOPK 1): the largest difference of a
probability, the share of pixels whose label (argmax over the classes at the output size) changes, and whether
fast inference keeps the same classes.

Speed (`--speed-iters N`): CPU seconds (time.process_time) of N fp32 and N low-precision forwards, alternated in
one process so that the load of a shared machine hits both alike: median, min and max of each and the ratio of
the medians. On the fixture's model, or with `--speed-config` on that config with random weights and random text
embeddings on a synthetic 640x853 image (`--fast --keep K`: K classes kept at every rejection, as
tools/benchmark.py does), label maps as in evaluation.

    python tools/compare_precision.py --seeds 0 1 --output precision.json
    python tools/compare_precision.py --seeds --peaks --threads 1       # the cores' fp32 and bf16 GMAC/s
    python tools/compare_precision.py --seeds --speed-iters 3 --speed-config configs/convnextB_768.yaml \
        --vocabulary ade150 --fast --keep 32 --threads 1
"""

import argparse
import contextlib
import functools
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from sed.benchmark.parity_fixture import ParityFixture
from sed.utils.measure import alternated_cpu_seconds

REPO = Path(__file__).resolve().parents[1]

FIXTURE = REPO / "tests" / "fixtures" / "sed_parity_tiny.pt"


def probabilities(model, inputs, precision):
    """[(T, H, W)] float32 probabilities of each input with TEST.PRECISION `precision`."""
    model.precision = precision
    with torch.no_grad():
        return [out["sem_seg"].float() for out in model([dict(x) for x in inputs])]


# Untrained weights give nearly tied classes (the fixture's: a median margin of ~1e-6 between the two most probable
# classes at a pixel), where any rounding changes the label; label changes are also counted among the pixels whose
# fp32 margin is above each of these, the decided pixels.
MARGINS = (1e-3, 1e-2)


def agreement(reference, other):
    """Max abs probability difference, share of pixels labelled differently (all, and among pixels whose fp32
    top-2 margin exceeds each of MARGINS) and whether the kept classes (those not zero everywhere, fast
    inference) are the same, of two lists of (T, H, W) probabilities."""
    kept = [[(p.flatten(1).amax(1) > 0).nonzero().flatten().tolist() for p in probs] for probs in (reference, other)]
    changed = torch.cat([(a.argmax(0) != b.argmax(0)).flatten() for a, b in zip(reference, other)])
    margin = torch.cat([(lambda top: top[0] - top[1])(a.topk(2, dim=0).values).flatten() for a in reference])
    return {
        "max_probability_difference": max((a - b).abs().max().item() for a, b in zip(reference, other)),
        "label_change_fraction": changed.float().mean().item(),
        "median_fp32_margin": margin.median().item(),
        "above_margin": {
            str(m): {
                "pixel_fraction": (margin > m).float().mean().item(),
                "label_change_fraction": changed[margin > m].float().mean().item()
                if bool((margin > m).any())
                else None,
            }
            for m in MARGINS
        },
        "kept_classes_equal": kept[0] == kept[1],
        "kept_classes": kept[0],
        "kept_classes_low_precision": kept[1],
    }


def accuracy(models, seeds, precision):
    """`agreement` of `precision` with fp32 on the fixture's weights and each seed's, full and fast inference."""
    rows = []
    for fast in (False, True):
        for seed in [None, *seeds]:
            model = models.build(fast, load=seed is None, seed=seed)
            inputs = [models.input()]
            result = agreement(probabilities(model, inputs, "fp32"), probabilities(model, inputs, precision))
            rows.append(
                {
                    "weights": "fixture" if seed is None else f"random, seed {seed}",
                    "inference": "fast" if fast else "full",
                    **result,
                }
            )
    return rows


def speed(model, inputs, precision, iters):
    from sed.modeling.postprocess import label_outputs

    def run(p):
        model.precision = p
        model([dict(x) for x in inputs])

    with label_outputs(model), torch.no_grad():
        _, seconds = alternated_cpu_seconds({p: functools.partial(run, p) for p in ["fp32", precision]}, iters)
    summary = {
        p: {"median_s": statistics.median(s), "min_s": min(s), "max_s": max(s), "runs_s": s} for p, s in seconds.items()
    }
    summary["speedup_of_medians"] = summary["fp32"]["median_s"] / summary[precision]["median_s"]
    summary["speedup_range"] = [
        min(seconds["fp32"]) / max(seconds[precision]),
        max(seconds["fp32"]) / min(seconds[precision]),
    ]
    return summary


def speed_model(args):
    """(model, inputs, description) of `--speed-config`: random weights and text embeddings, as tools/benchmark.py."""
    from sed.benchmark.speed import (
        build_cfg,
        build_model_timed,
        random_text_embeddings,
        rejection_override,
        resolve_vocabulary,
        synthetic_images,
    )

    vocabulary, class_names = resolve_vocabulary(args.vocabulary)
    opts = list(args.opts) + ["MODEL.ENC.CLIP_PRETRAINED_WEIGHTS", ""]
    if args.fast:
        opts += ["TEST.FAST_INFERENCE", "True"]
    stack = contextlib.ExitStack()
    with tempfile.TemporaryDirectory(prefix="sed-precision-text-") as cache_dir, random_text_embeddings():
        cfg = build_cfg(args.speed_config, opts, args.device, cache_dir)
        model, _ = build_model_timed(cfg, class_names, args.device)
    if args.keep is not None:
        stack.enter_context(rejection_override(args.keep))
    return (
        model.eval(),
        synthetic_images(1, (640, 853)),
        stack,
        {
            "config_file": args.speed_config,
            "opts": opts,
            "vocabulary": vocabulary,
            "num_classes": len(class_names),
            "fast_inference": args.fast,
            "keep": args.keep,
            "weights": "random",
            "text_embeddings": "random",
            "image_size": [640, 853],
        },
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--precision", default="bf16", choices=["bf16", "fp16"])
    parser.add_argument("--fixture", default=str(FIXTURE), help="parity fixture (default: the repository's)")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0], help="seeds of random weights to compare on")
    parser.add_argument("--speed-iters", type=int, default=0, help="alternated timed runs of each (0: no timing)")
    parser.add_argument("--speed-config", default="", help="time this config (random weights) instead of the fixture")
    parser.add_argument("--vocabulary", default="ade150", help="with --speed-config: as tools/benchmark.py's")
    parser.add_argument("--fast", action="store_true", help="with --speed-config: category early rejection")
    parser.add_argument("--keep", type=int, default=None, help="with --speed-config --fast: classes kept per stage")
    parser.add_argument("--peaks", action="store_true", help="also measure the cores' matmul and conv GMAC/s")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--output", default="", help="write the results as JSON here")
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="with --speed-config: KEY VALUE config overrides")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.keep is not None and not args.fast:
        parser.error("--keep needs --fast.")
    if not Path(args.fixture).is_file():
        parser.error(
            f"--fixture {args.fixture}: no such file (the repository carries tests/fixtures/sed_parity_tiny.pt)."
        )

    result = {
        "environment": {
            "torch": torch.__version__,
            "device": args.device,
            "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        },
        "precision": args.precision,
    }
    with tempfile.TemporaryDirectory(prefix="sed-precision-") as workdir:
        models = ParityFixture(args.fixture, workdir, args.device)
        result["accuracy"] = accuracy(models, args.seeds, args.precision)
        for row in result["accuracy"]:
            print(
                f"{row['weights']:>16}, {row['inference']}: max probability difference "
                f"{row['max_probability_difference']:.2e}, labels changed {100 * row['label_change_fraction']:.2f}% "
                f"of pixels (median fp32 top-2 margin {row['median_fp32_margin']:.1e}; "
                + "; ".join(
                    f"margin > {m}: {100 * v['pixel_fraction']:.1f}% of pixels, "
                    + ("-" if v["label_change_fraction"] is None else f"{100 * v['label_change_fraction']:.2f}%")
                    + " changed"
                    for m, v in row["above_margin"].items()
                )
                + f"), kept classes {'equal' if row['kept_classes_equal'] else 'DIFFER'}"
            )
        if args.speed_iters:
            if args.speed_config:
                model, inputs, stack, described = speed_model(args)
            else:
                model, inputs, stack = models.build(fast=False), [models.input()], contextlib.ExitStack()
                described = {"model": "parity fixture, full inference", "image_size": list(models["image"].shape[1:])}
            with stack:
                result["speed"] = {"setting": described, **speed(model, inputs, args.precision, args.speed_iters)}
            s = result["speed"]
            print(
                f"speed ({described}), CPU seconds, {args.speed_iters} alternated runs: fp32 median "
                f"{s['fp32']['median_s']:.2f} s (min {s['fp32']['min_s']:.2f}, max {s['fp32']['max_s']:.2f}), "
                f"{args.precision} median {s[args.precision]['median_s']:.2f} s (min {s[args.precision]['min_s']:.2f}, "
                f"max {s[args.precision]['max_s']:.2f}): {s['speedup_of_medians']:.2f}x "
                f"(range {s['speedup_range'][0]:.2f}x-{s['speedup_range'][1]:.2f}x)"
            )
    if args.peaks:
        from sed.benchmark.op_profile import peak_rates

        peaks = peak_rates(["fp32", args.precision], args.device)
        result["peaks_gmac_per_s"] = {f"{kind}_{precision}": rate for (kind, precision), rate in peaks.items()}
        print("peak rates, GMAC/s: " + ", ".join(f"{k} {v:.0f}" for k, v in result["peaks_gmac_per_s"].items()))
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
