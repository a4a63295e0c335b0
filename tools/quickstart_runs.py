#!/usr/bin/env python
"""The quickstart's figures in README.md: runs `sh run.sh configs/quickstart.yaml 1 OUT SEED s` for each seed and
writes, per run, the test mIoU / fwIoU / pACC, the wall time of the whole command and the median training step,
with the machine, the date, the thread setting and the load average.

    OMP_NUM_THREADS=1 python tools/quickstart_runs.py --seeds 0 1 --output docs/performance/quickstart.json

Runs are appended to an existing --output file. Each run takes minutes on a few CPU cores (README, Quickstart).
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASET = "synthetic_test_sem_seg"


def machine():
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").is_file()
        else ""
    )
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def run(seed, out_dir, config):
    load_before = os.getloadavg()
    start = time.monotonic()
    proc = subprocess.run(
        ["sh", str(ROOT / "run.sh"), config, "1", str(out_dir), "SEED", str(seed)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    wall = time.monotonic() - start
    if proc.returncode != 0:
        sys.exit(f"quickstart_runs.py: the run with SEED {seed} failed ({out_dir}):\n{proc.stderr[-2000:]}")
    metrics = json.loads((out_dir / "eval" / DATASET / "results.json").read_text())[DATASET]["sem_seg"]
    steps = [json.loads(line) for line in (out_dir / "metrics.json").read_text().splitlines() if line.strip()]
    step_times = [s["time"] for s in steps if "time" in s]
    return {
        "seed": seed,
        "output_dir": str(out_dir),
        "mIoU": round(metrics["mIoU"], 2),
        "fwIoU": round(metrics["fwIoU"], 2),
        "pACC": round(metrics["pACC"], 2),
        "wall_s": round(wall, 1),
        "median_step_s": round(statistics.median(step_times), 3) if step_times else None,
        "load_average_1min": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--config-file", default="configs/quickstart.yaml")
    parser.add_argument("--runs-dir", default="output/quickstart_runs", help="OUTPUT_DIR of each run: RUNS_DIR/seed<s>")
    parser.add_argument("--output", required=True, help="JSON file the runs are appended to")
    args = parser.parse_args(argv)
    output = Path(args.output)
    record = (
        json.loads(output.read_text()) if output.is_file() else {"command": "sh run.sh CONFIG 1 OUT SEED s", "runs": []}
    )
    for seed in args.seeds:
        out_dir = Path(args.runs_dir).resolve() / f"seed{seed}"
        if out_dir.exists():
            sys.exit(f"quickstart_runs.py: {out_dir} exists; run.sh would resume it. Remove it or pick --runs-dir.")
        result = run(seed, out_dir, args.config_file)
        result.update(
            config_file=args.config_file,
            date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            omp_num_threads=os.environ.get("OMP_NUM_THREADS", "unset (torch: one thread per core)"),
            machine=machine(),
        )
        record["runs"].append(result)
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(record, indent=1) + "\n")
        print(json.dumps(result))


if __name__ == "__main__":
    main()
