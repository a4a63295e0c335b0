#!/usr/bin/env python
"""Export SED with a fixed vocabulary to ONNX (text embeddings baked in, any image size).

    python tools/export_model.py --config-file configs/convnextB_768.yaml --vocabulary "cat, dog/puppy, sky" \\
        --output sed.onnx --check photo.jpg --opts MODEL.WEIGHTS sed_model_base.pth

The ONNX model maps "image" (1, 3, H, W) float RGB in 0..255 to "probabilities" (1, T, H, W). --check IMAGE runs
it in onnxruntime and prints `max abs difference: X` against PyTorch; with --benchmark N it also times both on
that image (median of N runs after one warm-up, same thread count) and prints `seconds per image: pytorch X
onnxruntime Y` and both peak memories. Needs `pip install -e .[export]`.
Exit status: 0 exported (and checked within 1e-4); 1 the check differs by more; 2 bad arguments or failure.
"""

import argparse
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CHECK_TOLERANCE = 1e-4


def get_parser():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__
    )
    parser.add_argument("--config-file", required=True, metavar="FILE", help="a SED config (yaml)")
    parser.add_argument(
        "--vocabulary",
        required=True,
        metavar="CLASSES",
        help='"a, b/c, d" (commas between classes, "/" between synonyms), a benchmark name or JSON',
    )
    parser.add_argument("--output", required=True, metavar="FILE", help="the .onnx file to write")
    parser.add_argument(
        "--fast",
        action="store_true",
        help="category early rejection: refused, its kept classes vary per image (see --help)",
    )
    parser.add_argument("--topk", type=int, default=None, help="classes kept per pixel with --fast")
    parser.add_argument(
        "--check",
        metavar="IMAGE",
        default=None,
        help="compare onnxruntime with PyTorch on this image and print the difference",
    )
    parser.add_argument(
        "--benchmark",
        type=int,
        default=0,
        metavar="N",
        help="with --check: time PyTorch and onnxruntime on the image, median of N runs each",
    )
    parser.add_argument("--device", default="cpu", help="device the model is traced on (default cpu)")
    parser.add_argument(
        "--opts",
        default=[],
        nargs=argparse.REMAINDER,
        metavar="KEY VALUE",
        help="config overrides, e.g. MODEL.WEIGHTS path.pth",
    )
    return parser


def main(argv=None):
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    parser = get_parser()
    args = parser.parse_args(argv)
    if args.benchmark and not args.check:
        parser.error("--benchmark times the models on the --check image: give --check IMAGE")
    from sed import OpenVocabSegmenter
    from sed.export import export_onnx, onnx_max_abs_difference, onnx_speed_comparison
    from sed.predictor import load_image

    opts = list(args.opts) + (["TEST.TOPK", str(args.topk)] if args.topk is not None else [])
    try:
        segmenter = OpenVocabSegmenter(args.config_file, opts=opts, device=args.device, fast_inference=args.fast)
        if not segmenter.open_vocabulary:
            raise ValueError(f"{type(segmenter.model).__name__} is not SED: only SED models can be exported.")
        model = segmenter.model
        model.set_vocabulary(segmenter.resolve_vocabulary(args.vocabulary))
        image = load_image(args.check) if args.check else None
        # The exported graph and the checks run with the inference the command asked for, the model's own after.
        with model.inference_options(fast=args.fast):
            wrapper = export_onnx(model, args.output, segmenter.cfg.INPUT.FORMAT)
            print(f"written: {args.output} ({len(model.test_class_names)} classes)")
            if image is not None:
                difference = onnx_max_abs_difference(wrapper, args.output, image)
                print(f"max abs difference: {difference:.3g}")
                if difference > CHECK_TOLERANCE:
                    print(
                        f"export_model.py: the ONNX model differs from PyTorch by more than {CHECK_TOLERANCE}",
                        file=sys.stderr,
                    )
                    return 1
                if args.benchmark > 0:
                    speed = onnx_speed_comparison(wrapper, args.output, image, iters=args.benchmark)
                    print(
                        f"seconds per image: pytorch {speed['pytorch']['seconds']:.4g} "
                        f"onnxruntime {speed['onnxruntime']['seconds']:.4g}"
                    )
                    print(
                        f"peak memory (MiB): pytorch {speed['pytorch']['peak_mib']:.0f} "
                        f"onnxruntime {speed['onnxruntime']['peak_mib']:.0f}"
                    )
    except (ValueError, RuntimeError, OSError, ImportError) as e:
        print(f"export_model.py: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
