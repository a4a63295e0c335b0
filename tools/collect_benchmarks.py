#!/usr/bin/env python
"""Gathers the JSON files of tools/benchmark.py runs (and a pytest JUnit XML report) into one JSON and one table.

    python tools/collect_benchmarks.py output/gpu_check/runs --tests output/gpu_check/tests.xml \
        --output output/gpu_check/gpu_check.json

tools/gpu_check.sh calls it at its end. Inference runs give one row each (latency by part at batch 1, peak memory,
the largest batch of the run's --batch-sizes that fitted and its images/s); training runs (--train) one row per
batch size and CLIP checkpointing. Files that are not benchmark results are listed as such.
"""

import argparse
import glob
import json
import os
import sys
import xml.etree.ElementTree as ET

from tabulate import tabulate


def test_summary(path):
    """Counts and failed test ids of a pytest --junitxml report."""
    root = ET.parse(path).getroot()
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    failures, skip_reasons = [], set()
    for case in root.iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("failure") is not None or case.find("error") is not None:
            counts["failed"] += 1
            failures.append(name)
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
            skip_reasons.add(case.find("skipped").get("message", ""))
        else:
            counts["passed"] += 1
    return {**counts, "failures": failures, "skip_reasons": sorted(skip_reasons)}


def inference_row(name, result):
    config = result["config"]
    fitted = [t for t in result["throughput"] if not t.get("out_of_memory")]
    largest = max(fitted, key=lambda t: t["batch_size"]) if fitted else None
    return {
        "run": name,
        "config": config["config_file"],
        "classes": config["num_classes"],
        "inference": "fast" if config["fast_inference"] else "full",
        "precision": config["precision"],
        "latency_ms": {part: value["median"] for part, value in result["latency_ms"].items()},
        "peak_memory_mib": result["peak_memory"]["inference_mib"],
        "largest_batch": largest and largest["batch_size"],
        "largest_batch_images_per_s": largest and largest["images_per_s"],
        "largest_batch_peak_mib": largest and largest["peak_memory_mib"],
        "out_of_memory_at": next((t["batch_size"] for t in result["throughput"] if t.get("out_of_memory")), None),
    }


def collect(runs_dir, tests=None):
    report = {
        "environment": None,
        "tests": test_summary(tests) if tests and os.path.isfile(tests) else None,
        "inference": [],
        "train": [],
        "not_results": [],
    }
    for path in sorted(glob.glob(os.path.join(runs_dir, "*.json"))):
        name = os.path.splitext(os.path.basename(path))[0]
        try:
            with open(path) as f:
                result = json.load(f)
            report["environment"] = report["environment"] or result["environment"]
            if "train" in result:
                report["train"] += [
                    {
                        "run": name,
                        "config": result["config"]["config_file"],
                        "precision": result["config"]["precision"],
                        **row,
                    }
                    for row in result["train"]
                ]
            else:
                report["inference"].append(inference_row(name, result))
        except (OSError, ValueError, KeyError, TypeError) as e:
            report["not_results"].append(f"{name}: {type(e).__name__} {e}")
    return report


def _ms(row, part):
    value = row["latency_ms"].get(part)
    return "" if value is None else f"{value:.1f}"


def format_tables(report):
    env = report["environment"] or {}
    lines = [f"device: {env.get('gpu', env.get('cpu', '?'))}, torch {env.get('torch', '?')}"]
    if report["tests"]:
        t = report["tests"]
        lines.append(
            f"tests marked gpu: {t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped"
            + (f"; failed: {', '.join(t['failures'])}" if t["failures"] else "")
        )
    if report["inference"]:
        rows = [
            [
                os.path.basename(r["config"]),
                r["classes"],
                r["inference"],
                r["precision"],
                *(_ms(r, part) for part in ("encoder", "decoder", "pre_post_processing", "total")),
                f"{r['peak_memory_mib']:.0f}",
                r["largest_batch"] or "none",
                "" if r["largest_batch_images_per_s"] is None else f"{r['largest_batch_images_per_s']:.2f}",
                r["out_of_memory_at"] or "",
            ]
            for r in report["inference"]
        ]
        headers = [
            "config",
            "classes",
            "mode",
            "precision",
            "encoder",
            "decoder",
            "pre/post",
            "total",
            "peak MiB (b1)",
            "largest batch",
            "images/s there",
            "out of memory at",
        ]
        lines += [
            "",
            "inference, batch 1 latency (median ms) and the largest batch that fitted",
            tabulate(rows, headers=headers, tablefmt="pipe"),
        ]
    if report["train"]:
        rows = [
            [
                os.path.basename(r["config"]),
                r["precision"],
                r["batch_size"],
                "yes" if r["clip_gradient_checkpointing"] else "no",
                *(
                    ["out of memory", "", ""]
                    if r.get("out_of_memory")
                    else [f"{r['s_per_iter']:.3f}", f"{r['peak_mib']:.0f}", f"{r['total_mib']:.0f}"]
                ),
            ]
            for r in report["train"]
        ]
        headers = [
            "config",
            "precision",
            "images/GPU",
            "CLIP checkpointing",
            "s/iter",
            "peak MiB (steps)",
            "peak MiB (process)",
        ]
        lines += ["", "training steps", tabulate(rows, headers=headers, tablefmt="pipe")]
    if report["not_results"]:
        lines += ["", "not benchmark results: " + "; ".join(report["not_results"])]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs_dir", help="folder of tools/benchmark.py --output files")
    parser.add_argument("--tests", default=None, help="pytest --junitxml report of the gpu tests")
    parser.add_argument("--output", default=None, help="write the gathered results as one JSON file")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.runs_dir):
        parser.error(f"{args.runs_dir} is not a folder")
    report = collect(args.runs_dir, args.tests)
    print(format_tables(report))
    if args.output:
        with open(args.output, "w") as f:
            json.dump(report, f, indent=2)
        print(f"written: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
