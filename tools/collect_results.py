#!/usr/bin/env python
"""Prints one table of the results of eval.sh: EVAL_DIR/<name>/results.json for each name.

    python tools/collect_results.py OUTPUT_DIR/eval [NAME ...]

Without names, every sub-folder of EVAL_DIR. Skipped benchmarks (missing data) show their reason.
Exit code 1 if a benchmark has no results (its evaluation failed) or none was evaluated (all skipped), else 0.
"""

import argparse
import sys
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message=".*torch.jit.script.*is deprecated", category=FutureWarning)
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sed.engine.results import collect_results, format_results  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("eval_dir")
    parser.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    rows = collect_results(args.eval_dir, args.names or None)
    if not rows:
        print(f"collect_results.py: no results under {args.eval_dir}", file=sys.stderr)
        return 1
    print(format_results(rows))
    if all(metrics is None for _, _, metrics, _ in rows):
        print(
            f"collect_results.py: nothing was evaluated under {args.eval_dir} (every benchmark skipped or failed)",
            file=sys.stderr,
        )
        return 1
    return 1 if any(note.startswith("failed") for *_, note in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
