#!/usr/bin/env python
"""Prints what eval.sh evaluates for a config, one line per evaluation: NAME KEY VALUE KEY VALUE ... (each value a
Python literal, quoted for a shell)

    python tools/eval_plan.py --config-file CONFIG [KEY VALUE ...]

The decision (open-vocabulary benchmarks for open-vocabulary models, DATASETS.TEST otherwise) is
sed/engine/eval_suite.py's.
"""

import argparse
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sed.engine.cli import UsageError, load_config  # noqa: E402
from sed.engine.eval_suite import config_words, evaluation_plan  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config-file", required=True)
    parser.add_argument("opts", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    try:
        plan = evaluation_plan(load_config(args.config_file, args.opts))
    except (UsageError, ValueError, FileNotFoundError) as e:
        print(f"eval_plan.py: error: {e}", file=sys.stderr)
        return 2
    for name, settings in plan:
        print(" ".join([name, *map(shlex.quote, config_words(settings))]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
