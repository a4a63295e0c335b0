"""Evaluation results: `results.json` files and the one table that shows them (after an evaluation in the log, and
for a whole eval.sh run in tools/collect_results.py).

A results dict is {dataset: evaluator output ({"sem_seg": {"mIoU": ...}}) or {"skipped": reason}}; a row is
(name, dataset, metrics dict | None, note), note "" when evaluated, else "skipped: ..." / "failed: ...".
"""

import json
import os

import numpy as np
from tabulate import tabulate

from ..utils.files import atomic_write
from .eval_suite import OPEN_VOCABULARY_BENCHMARKS

__all__ = ["write_results", "result_rows", "collect_results", "format_results"]

RESULT_COLUMNS = ("mIoU", "fwIoU", "pACC")


def write_results(results, path):
    """Writes a results dict as JSON (floats, NaN as null), atomically."""

    def clean(x):
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, (float, np.floating)):
            return None if not np.isfinite(x) else float(x)
        if isinstance(x, (int, np.integer)):
            return int(x)
        return x

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    data = json.dumps(clean(results), indent=1).encode()
    atomic_write(path, lambda f: f.write(data), "results", len(data))


def _sem_seg_metrics(result):
    """The SemSegEvaluator dict inside an evaluator's output ({"sem_seg": {...}}), or the output itself."""
    if isinstance(result.get("sem_seg"), dict):
        return result["sem_seg"]
    return result


def result_rows(results, name=None):
    """The rows of a results dict, named `name` (default: each row by its dataset)."""
    rows = []
    for dataset, result in results.items():
        result = result if isinstance(result, dict) else {}
        if "skipped" in result:
            rows.append((name or dataset, dataset, None, f"skipped: {result['skipped']}"))
        else:
            rows.append((name or dataset, dataset, _sem_seg_metrics(result), ""))
    return rows


def collect_results(eval_dir, names=None):
    """The rows of eval_dir/<name>/results.json, in `names` order (default: the sub-folders, sorted)."""
    if names is None:
        names = (
            sorted(d for d in os.listdir(eval_dir) if os.path.isdir(os.path.join(eval_dir, d)))
            if os.path.isdir(eval_dir)
            else []
        )
    rows = []
    for name in names:
        path = os.path.join(eval_dir, name, "results.json")
        if not os.path.isfile(path):
            rows.append((name, "", None, f"failed: no results (see {os.path.join(eval_dir, name, 'log.txt')})"))
            continue
        with open(path) as f:
            results = json.load(f)
        if not results:
            rows.append((name, "", None, "failed: empty results"))
        rows.extend(result_rows(results, name))
    return rows


def format_results(rows):
    """The table of `rows` (benchmark, dataset, mIoU, fwIoU, pACC, status), the reasons of the skipped / failed
    ones below it, and detectron2-style copy-paste lines of the evaluated rows' mIoU. A benchmark's row shows its
    title (A-150, ...)."""
    titles = {b.name: b.title for b in OPEN_VOCABULARY_BENCHMARKS}
    table, done, notes = [], [], []
    for name, dataset, metrics, note in rows:
        title = titles.get(name, name)
        values = [None] * 3 if metrics is None else [metrics.get(k) for k in RESULT_COLUMNS]
        status = note.split(":", 1)[0] if note else "ok"
        table.append(
            [title, dataset] + ["" if metrics is None else "-" if v is None else f"{v:.2f}" for v in values] + [status]
        )
        if metrics is not None:
            done.append((title, values[0]))
        if note:
            notes.append(f"{title} {note}")
    text = tabulate(
        table,
        headers=["benchmark", "dataset", *RESULT_COLUMNS, "status"],
        tablefmt="pipe",
        stralign="left",
        disable_numparse=True,
    )
    if notes:
        text += "\n" + "\n".join(notes)
    if done:
        text += "\ncopypaste: " + ",".join(t for t, _ in done)
        text += "\ncopypaste: " + ",".join("nan" if v is None else f"{v:.2f}" for _, v in done)
    return text
