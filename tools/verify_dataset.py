#!/usr/bin/env python
"""Checks registered datasets: counts, missing pairs, unreadable files, size mismatches, label values out of
range, the class-frequency table and, for the benchmarks, the published image counts; a one-line verdict per
dataset. Exit code 0 if every dataset is fine, 1 if a problem was found, 2 for bad arguments.

    python tools/verify_dataset.py ade20k_150_test_sem_seg context_59_test_sem_seg --workers 4
    python tools/verify_dataset.py --benchmarks                 # the six open-vocabulary benchmarks
    python tools/verify_dataset.py --spec my_data.yaml     # your own dataset's splits (register_custom.py)

The datasets root is $DETECTRON2_DATASETS (default ./datasets). The checks are sed/data/verification.py's.
"""

import argparse
import os
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message=".*torch.jit.script.*is deprecated", category=FutureWarning)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detectron2.data import MetadataCatalog  # noqa: E402

from sed.data.datasets import register_custom_dataset  # noqa: E402
from sed.data.verification import format_report, verify_dataset  # noqa: E402
from sed.engine.eval_suite import OPEN_VOCABULARY_BENCHMARKS  # noqa: E402
from sed.utils.messages import one_line  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("datasets", nargs="*", help="registered dataset names")
    parser.add_argument("--benchmarks", action="store_true", help="the six open-vocabulary benchmarks")
    parser.add_argument("--spec", action="append", default=[], help="a dataset spec (YAML/JSON) to register first")
    parser.add_argument(
        "--workers", type=int, default=min(8, os.cpu_count() or 1), help="processes reading the files (0: none)"
    )
    args = parser.parse_args(argv)
    names = list(args.datasets) + ([b.dataset for b in OPEN_VOCABULARY_BENCHMARKS] if args.benchmarks else [])
    try:
        for spec in args.spec:
            registered = register_custom_dataset(spec)
            names += [] if args.datasets else registered  # a spec alone: verify all its splits
        if not names:
            raise ValueError("name the datasets to verify (or --benchmarks, or --spec FILE)")
        all_ok = True
        for name in names:
            try:
                report = verify_dataset(name, num_workers=args.workers)
            except FileNotFoundError as e:
                print(f"{name}: MISSING: {one_line(e)}")
                all_ok = False
                continue
            print(format_report(report, MetadataCatalog.get(name).stuff_classes))
            print()
            all_ok &= report.ok
    except (KeyError, ValueError) as e:
        print(f"verify_dataset.py: error: {e.args[0] if e.args else e}", file=sys.stderr)
        return 2
    return 0 if all_ok else 1


if __name__ == "__main__":
    sys.exit(main())
