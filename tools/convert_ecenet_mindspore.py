#!/usr/bin/env python
"""Converts the authors' released ECENet checkpoint (MindSpore .ckpt) into a detectron2 checkpoint.

    python tools/convert_ecenet_mindspore.py ecenet_swinB_ade20k.ckpt output/ecenet_swinB_ade20k.pth
    sh eval.sh configs/ecenet/ecenet_swinB_ade20k_640.yaml 1 output/ecenet_release \\
        MODEL.WEIGHTS output/ecenet_swinB_ade20k.pth

MindSpore is not needed (the `protobuf` package reads the file). The result is checked against the model that
--config-file builds (default: the Swin-B ADE20K config): released tensors without a place in it, tensors of
it missing from the file and shape mismatches are all listed, and nothing is written (exit status 2).
Library: sed.modeling.ecenet.mindspore_conversion.
"""

import argparse
import logging
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message=".*torch.jit.script.*is deprecated", category=FutureWarning)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without installing

import torch  # noqa: E402
from detectron2.modeling import build_model  # noqa: E402

from sed.checkpoint.mindspore_format import MindSporeCheckpointError  # noqa: E402
from sed.modeling.ecenet.mindspore_conversion import ConversionError, convert_released_ecenet  # noqa: E402
from sed.predictor import load_config  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog=__doc__.split("\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", help="the released MindSpore checkpoint (.ckpt)")
    parser.add_argument("output", help="detectron2 checkpoint to write (.pth)")
    parser.add_argument(
        "--config-file",
        default="configs/ecenet/ecenet_swinB_ade20k_640.yaml",
        metavar="FILE",
        help="the config whose model the checkpoint must fit",
    )
    parser.add_argument(
        "--opts", default=[], nargs=argparse.REMAINDER, metavar="KEY VALUE", help="config overrides (must come last)"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        cfg = load_config(args.config_file, args.opts, device="cpu")
        model_state = build_model(cfg).state_dict()
        checkpoint, report = convert_released_ecenet(args.input, model_state)
    except (ConversionError, MindSporeCheckpointError, OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for kind, what in [
        ("training_state", "optimizer / training-loop tensors, not converted"),
        ("computed_buffers", "index buffers the model computes itself, not converted"),
        ("filled", "BatchNorm counters MindSpore does not save, written as initialised"),
        ("skipped", "entries that are not tensors (append_dict strings), not converted"),
    ]:
        if report[kind]:
            logging.info("%d %s (e.g. %s)", len(report[kind]), what, ", ".join(report[kind][:3]))
    torch.save(checkpoint, args.output)
    logging.info(
        "wrote %d tensors to %s (use it as MODEL.WEIGHTS with %s)",
        len(checkpoint["model"]),
        args.output,
        args.config_file,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
