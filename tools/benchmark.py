#!/usr/bin/env python
"""Speed and memory of a model's inference (SED, ECENet, any registered model) for a config: start-up (for SED
cold / cached text embeddings), per-image latency by part (SED: CLIP encoder / decoder, ECENet: backbone / head,
then pre- and post-processing), images per second by batch size, peak memory, FLOPs, and for SED the classes
kept by category early rejection. Prints a table; --output writes JSON.

Examples:
    python tools/benchmark.py --config-file configs/tiny_cpu.yaml --vocabulary 20 --iters 2 --warmup 1
    python tools/benchmark.py --config-file configs/ecenet/ecenet_tiny_cpu.yaml --iters 2 --warmup 1
    python tools/benchmark.py --config-file configs/convnextB_768.yaml --vocabulary ade150 --device cpu \\
        --fast --keep 16 --random-text-embeddings --output b150.json --opts MODEL.ENC.CLIP_PRETRAINED_WEIGHTS ""
    python tools/benchmark.py --config-file configs/convnextB_768.yaml --vocabulary ade847 --device cuda \\
        --precision bf16 --batch-sizes 1 2 4 8 --opts MODEL.WEIGHTS sed_b.pth MODEL.ENC.CLIP_PRETRAINED_WEIGHTS ""
    python tools/benchmark.py --encoder-profile --config-file configs/convnextB_768.yaml --threads 1 --iters 3 \
        --precision bf16 --layer-scale 0.5 --opts MODEL.ENC.CLIP_PRETRAINED_WEIGHTS ""  # CLIP encoder by part
    python tools/benchmark.py --train --config-file configs/convnextB_768.yaml --device cuda --batch-sizes 1 2 4 \\
        --iters 3 --precision fp16 --opts MODEL.ENC.CLIP_PRETRAINED_WEIGHTS ""     # training memory per batch size
Config overrides follow --opts (KEY VALUE ..., the rest of the line), as in tools/demo.py: a list option such as
--batch-sizes cannot take them for its own values.
"""

import argparse
import json
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build_parser():
    """The command line's options; modules that add measurements add their own options to it."""
    from sed.benchmark.speed import DEFAULT_VOCABULARY, PRECISIONS
    from sed.data.vocabulary import benchmark_vocabularies

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, help="a model config (configs/*.yaml, configs/ecenet/*)")
    parser.add_argument(
        "--vocabulary",
        default=None,
        help=f"open-vocabulary models: {', '.join(benchmark_vocabularies())}, a number of classes (synthetic names) "
        "or a "
        f"class-name JSON (default {DEFAULT_VOCABULARY})",
    )
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available, else cpu)")
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=list(PRECISIONS),
        help="inference precision: SED's TEST.PRECISION (autocast, rejection scores in fp32), "
        "autocast for other models (fp32: none)",
    )
    parser.add_argument("--fast", action="store_true", help="category early rejection (TEST.FAST_INFERENCE)")
    parser.add_argument("--topk", type=int, default=None, help="classes kept per pixel by rejection (implies --fast)")
    parser.add_argument(
        "--keep",
        type=int,
        default=None,
        help="force the kept set to K classes at every rejection (implies --fast): measures "
        "rejection speed with untrained weights, whose rejection is meaningless",
    )
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1], help="batch sizes for images/s")
    parser.add_argument("--iters", type=int, default=5, help="timed iterations (the median is reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed iterations first")
    parser.add_argument(
        "--image-size",
        type=int,
        nargs=2,
        default=[640, 853],
        metavar=("H", "W"),
        help="input image size (the model resizes it to MODEL.CLIP_RESOLUTION)",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the decoder's steps (falls back); with --encoder-profile: the encoder",
    )
    parser.add_argument(
        "--random-text-embeddings",
        action="store_true",
        help="random unit vectors instead of encoding the vocabulary with CLIP (fast start-up "
        "for speed runs with random weights; start-up figures then exclude text encoding)",
    )
    parser.add_argument("--skip-startup", action="store_true", help="build once; no cold/cached start-up figures")
    parser.add_argument("--skip-flops", action="store_true", help="no fvcore FLOP count")
    parser.add_argument(
        "--train",
        action="store_true",
        help="measure training steps instead (peak memory and s/iter per --batch-sizes, without and "
        "with SOLVER.CLIP_GRADIENT_CHECKPOINTING; sed/benchmark/train_memory.py)",
    )
    parser.add_argument(
        "--encoder-profile",
        action="store_true",
        help="SED's CLIP encoder only: CPU seconds by part with timm's and the fused block forward "
        "(MODEL.ENC.FUSED_BLOCKS), and their output differences (sed/benchmark/encoder_profile.py)",
    )
    parser.add_argument(
        "--layer-scale",
        type=float,
        default=0.0,
        help="with --encoder-profile: draw the CLIP trunk's layer scales in [0, G) (random init: 1e-6)",
    )
    parser.add_argument(
        "--probabilities",
        action="store_true",
        help="time the (T, H, W) probability output instead of the label maps evaluation uses",
    )
    parser.add_argument("--output", default=None, help="write the results as JSON to this file")
    parser.add_argument(
        "--opts",
        nargs=argparse.REMAINDER,
        default=[],
        help="config overrides KEY VALUE ..., the rest of the command line",
    )
    return parser


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if len(args.opts) % 2:
        parser.error(f"config overrides come in KEY VALUE pairs; got {args.opts}")
    if args.iters < 1 or args.warmup < 0 or min(args.batch_sizes) < 1:
        parser.error("--iters and --batch-sizes must be at least 1, --warmup at least 0")
    return args


def main(argv=None):
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    if args.encoder_profile:
        from sed.benchmark.encoder_profile import format_encoder_profile as format_report
        from sed.benchmark.encoder_profile import run_encoder_profile as run_benchmark
    elif args.train:
        from sed.benchmark.train_memory import format_train_report as format_report
        from sed.benchmark.train_memory import run_train_benchmark as run_benchmark
    else:
        from sed.benchmark.speed import format_report, run_benchmark
    try:
        result = run_benchmark(args)
    except (ValueError, RuntimeError, FileNotFoundError) as e:
        print(f"benchmark.py: error: {e}", file=sys.stderr)
        return 2
    print(format_report(result))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(result, f, indent=2)
        print(f"written: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
