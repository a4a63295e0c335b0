#!/usr/bin/env python
"""Post-processing speed and memory: label maps straight from the decoder's (T, h, w) scores
(`sed.modeling.postprocess.resized_labels`, what evaluation uses) against the argmax of the resized scores, on
synthetic maps from worst to best case (sed/benchmark/label_maps.py). Prints a table; --output writes JSON.
Exit status 1 if the two ever give different labels.

Example (A-847 shapes: 847 classes, 192x192 decoder output, a 640x853 image):
    python tools/benchmark_label_maps.py --classes 847 --threads 1 --output label_maps.json
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    from sed.benchmark.label_maps import MAP_KINDS, label_map_benchmark

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--classes", type=int, default=847, help="T, classes in the score map (default 847)")
    parser.add_argument(
        "--size",
        type=int,
        nargs=2,
        default=[192, 192],
        metavar=("h", "w"),
        help="the score map's size (SED's decoder output: 192x192)",
    )
    parser.add_argument(
        "--out-size",
        type=int,
        nargs=2,
        default=[640, 853],
        metavar=("H", "W"),
        help="the label map's size (the image's)",
    )
    parser.add_argument("--kinds", nargs="+", default=list(MAP_KINDS), choices=MAP_KINDS, help="synthetic maps")
    parser.add_argument("--kept", type=int, default=32, help="non-zero classes of the 'kept' map (fast inference)")
    parser.add_argument("--iters", type=int, default=1, help="timed runs of each (the median is reported)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--output", default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    if args.classes < 1 or args.kept < 1 or args.iters < 1:
        parser.error("--classes, --kept and --iters must be at least 1")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    rows = label_map_benchmark(args.kinds, args.classes, tuple(args.size), tuple(args.out_size), args.kept, args.iters)
    print(f"{'map':<10} {'before s':>9} {'before MiB':>11} {'after s':>8} {'after MiB':>10} {'speed-up':>9}  equal")
    for r in rows:
        print(
            f"{r['kind']:<10} {r['before_s']:>9.3f} {r['before_peak_mib']:>11.0f} {r['after_s']:>8.3f} "
            f"{r['after_peak_mib']:>10.0f} {r['before_s'] / max(r['after_s'], 1e-9):>8.1f}x  {r['equal']}"
        )
    if args.output:
        with open(args.output, "w") as f:
            json.dump(
                {
                    "classes": args.classes,
                    "size": args.size,
                    "out_size": args.out_size,
                    "threads": torch.get_num_threads(),
                    "rows": rows,
                },
                f,
                indent=2,
            )
    return 0 if all(r["equal"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
