#!/usr/bin/env python
"""Converts local ImageNet-22K Swin-B weights into a detectron2 checkpoint of ECENet's backbone.

    python tools/convert_swin_to_d2.py swin_base_patch4_window12_384_22k.pth swin_base_22k_384_d2.pth
    # then: MODEL.WEIGHTS swin_base_22k_384_d2.pth

Input: a timm state dict (.safetensors or .pth, e.g. timm's swin_base_patch4_window12_384.ms_in22k) or the
Microsoft release .pth (a "model" entry). Nothing is downloaded.
"""

import argparse
import logging
import pickle
import sys

import torch

from sed.modeling.ecenet.swin_conversion import convert_swin_to_d2


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("input", help="Swin weights: .safetensors, or .pth with or without a 'model' entry")
    parser.add_argument("output", help="detectron2 checkpoint to write (.pth)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        checkpoint = convert_swin_to_d2(args.input)
    except (OSError, ValueError, RuntimeError, pickle.UnpicklingError, AttributeError) as e:
        # missing, unsafe (UnsafeCheckpointError), truncated or not a state dict: one line, not a traceback
        sys.exit(f"error: {args.input} cannot be converted ({' '.join(str(e).split())[:300]})")
    torch.save(checkpoint, args.output)
    logging.info("wrote %d backbone tensors to %s", len(checkpoint["model"]), args.output)


if __name__ == "__main__":
    main()
