#!/usr/bin/env python
"""The evaluation suite that eval.sh runs: evaluates a model on each benchmark of its config, one by one, then
prints one table of results.

    python tools/eval_suite.py CONFIG NUM_GPUS OUTPUT_DIR [KEY VALUE ...]      (= sh eval.sh ...)

What is evaluated, and with which settings, is decided by sed/engine/eval_suite.py (tools/eval_plan.py prints
it). Each evaluation runs `tools/train_net.py --eval-only` in its own process (its own log; a failure does not
stop the others), its settings passed as a list of arguments: no setting goes through a shell. Weights:
OUTPUT_DIR/model_final.pth when it exists; KEY VALUE options come last and win. Results:
OUTPUT_DIR/eval/<benchmark>/results.json. Exit status: 0 if every benchmark was evaluated or skipped and at least
one evaluated, 1 otherwise (the table is printed either way), 2 for a bad command line or config.
"""

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sed.engine.cli import UsageError, load_config  # noqa: E402
from sed.engine.eval_suite import config_words, evaluation_plan  # noqa: E402

TOOLS = Path(__file__).resolve().parent
USAGE = "usage: sh eval.sh CONFIG NUM_GPUS OUTPUT_DIR [KEY VALUE ...]"


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["-h"], ["--help"]):
        print(__doc__)
        return 0
    if len(argv) < 3:
        print(USAGE, file=sys.stderr)
        return 2
    config_file, gpus, output_dir, opts = argv[0], argv[1], argv[2], argv[3:]
    try:
        plan = evaluation_plan(load_config(config_file, opts))
    except (UsageError, ValueError, FileNotFoundError) as e:
        print(f"eval.sh: error: {e}", file=sys.stderr)
        return 2
    weights = os.path.join(output_dir, "model_final.pth")
    weights = ["MODEL.WEIGHTS", weights] if os.path.isfile(weights) else []
    eval_dir = os.path.join(output_dir, "eval")
    for name, settings in plan:
        run_dir = os.path.join(eval_dir, name)
        try:
            os.makedirs(run_dir, exist_ok=True)
            if os.path.exists(os.path.join(run_dir, "results.json")):
                os.remove(os.path.join(run_dir, "results.json"))  # no stale results that look current
        except OSError as e:
            print(f"eval.sh: error: cannot write {run_dir} ({e.strerror or e})", file=sys.stderr)
            return 2
        print(f"==> eval.sh: {name}", flush=True)
        command = [
            sys.executable,
            str(TOOLS / "train_net.py"),
            "--config-file",
            config_file,
            "--num-gpus",
            gpus,
            "--dist-url",
            "auto",
            "--eval-only",
            "--skip-missing-datasets",
            *config_words(settings),
            "OUTPUT_DIR",
            run_dir,
            *weights,
            *opts,
        ]
        if subprocess.run(command, stdin=subprocess.DEVNULL).returncode != 0:
            print(f"eval.sh: the evaluation of {name} failed (log: {run_dir}/log.txt)", file=sys.stderr, flush=True)
    print(f"\n==> eval.sh: results ({eval_dir})", flush=True)
    names = [name for name, _ in plan]
    return subprocess.run([sys.executable, str(TOOLS / "collect_results.py"), eval_dir, *names]).returncode


if __name__ == "__main__":
    sys.exit(main())
