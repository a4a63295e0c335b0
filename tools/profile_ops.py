#!/usr/bin/env python
"""Where one image's inference time goes, operation by operation, against the peak rates this machine reaches.

Measures the peak multiply-add rates (a 1024^3 matrix product, a 3x3 256->256 convolution at 96x96) in fp32 and
in --precision, then runs one image through the model (after a warm-up) under torch's profiler, and prints the
time of each part (SED: encoder, decoder; ECENet: backbone, head; "other": pre- and post-processing) by kind of
operation (matrix products, convolutions, the rest) with their GMAC/s and share of the peak, then the slowest
operations with their input shapes. --output writes the rows as JSON.

    python tools/profile_ops.py --config-file configs/tiny_cpu.yaml --vocabulary 20 --threads 1
    python tools/profile_ops.py --config-file configs/convnextB_768.yaml --vocabulary ade150 --fast --keep 32 \
        --threads 1 --opts MODEL.ENC.CLIP_PRETRAINED_WEIGHTS "" MODEL.SEM_SEG_HEAD.POOLING_SIZES "[1,1]"
"""

import argparse
import contextlib
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("KINETO_LOG_LEVEL", "5")  # the profiler's start/stop lines on stderr


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True, help="a model config (configs/*.yaml, configs/ecenet/*)")
    parser.add_argument("--vocabulary", default=None, help="as tools/benchmark.py (SED; default ade150)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    parser.add_argument("--fast", action="store_true", help="SED: category early rejection")
    parser.add_argument(
        "--keep", type=int, default=None, help="SED: keep K classes at every rejection (implies --fast)"
    )
    parser.add_argument("--image-size", type=int, nargs=2, default=(640, 853), metavar=("H", "W"))
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--rows", type=int, default=25, help="slowest operations to print")
    parser.add_argument("--output", default="", help="write the peaks and rows as JSON here")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE config overrides")
    args = parser.parse_args(argv)

    import torch

    from sed.benchmark.op_profile import format_operation_table, operation_table, peak_rates, profile_operations
    from sed.benchmark.speed import (
        build_cfg,
        build_model_timed,
        inference_context,
        is_sed,
        model_parts,
        random_text_embeddings,
        rejection_override,
        resolve_device,
        resolve_vocabulary,
        synthetic_images,
    )
    from sed.modeling.postprocess import label_outputs
    from sed.utils.measure import environment

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.keep is not None and args.keep < 1:
        parser.error("--keep must be at least 1.")
    device = resolve_device(args.device)
    fast = args.fast or args.keep is not None
    opts = [*args.opts, "TEST.PRECISION", args.precision] + (["TEST.FAST_INFERENCE", "True"] if fast else [])
    _, class_names = resolve_vocabulary(args.vocabulary or "ade150")
    precisions = ["fp32"] if args.precision == "fp32" else ["fp32", args.precision]
    peaks = peak_rates(precisions, device)
    with tempfile.TemporaryDirectory(prefix="sed-profile-") as cache_dir, contextlib.ExitStack() as stack:
        stack.enter_context(random_text_embeddings())
        model, _ = build_model_timed(build_cfg(args.config_file, opts, device, cache_dir), class_names, device)
        if (fast or args.vocabulary) and not is_sed(model):
            parser.error("--vocabulary, --fast and --keep are for SED only.")
        stack.enter_context(rejection_override(args.keep))
        stack.enter_context(label_outputs(model))
        stack.enter_context(inference_context(device, args.precision))
        inputs = synthetic_images(1, args.image_size)
        model(inputs)
        groups = profile_operations(lambda: model(inputs), model_parts(model))
    rows, summary = operation_table(groups, peaks, args.precision)
    print(format_operation_table(rows, summary, peaks, args.precision, args.rows))
    if args.output:
        result = {
            "environment": environment(device, args.threads or None),
            "setting": {**vars(args), "opts": opts},
            "peaks_gmac_per_s": {f"{kind}_{p}": value for (kind, p), value in peaks.items()},
            "summary": summary,
            "operations": rows,
        }
        with open(args.output, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
