"""What eval.sh evaluates, and the table of its results: the one place that decides it.

- Open-vocabulary models (META_ARCHITECTURE in OPEN_VOCABULARY_ARCHITECTURES, i.e. SED): the six zero-shot
  benchmarks of the paper (SED spec, section 5), one by one, with the authors' settings — the benchmark's
  class-name JSON as test vocabulary and class-attention pooling 1x1.
- Other models (ECENet and closed-vocabulary models): each dataset of the config's own DATASETS.TEST (an
  open-vocabulary model segments it with the dataset's own class names).
Training's periodic evaluation uses the same settings for the same dataset (`evaluation_config`).
TEST.EVAL_SUITE overrides the choice ("open_vocabulary" or "config"; "auto" = by META_ARCHITECTURE), e.g. the
quickstart, an SED on its own synthetic test set.
"""
import json
import os
from collections import namedtuple

from tabulate import tabulate

__all__ = ["Benchmark", "OPEN_VOCABULARY_BENCHMARKS", "OPEN_VOCABULARY_ARCHITECTURES", "evaluation_plan",
           "benchmark_overrides", "evaluation_config", "collect_results", "format_results"]

Benchmark = namedtuple("Benchmark", ["name", "dataset", "class_json", "title"])

OPEN_VOCABULARY_BENCHMARKS = (
    Benchmark("ade847", "ade20k_full_sem_seg_freq_val_all", "datasets/ade847.json", "A-847"),
    Benchmark("pc459", "context_459_test_sem_seg", "datasets/pc459.json", "PC-459"),
    Benchmark("ade150", "ade20k_150_test_sem_seg", "datasets/ade150.json", "A-150"),
    Benchmark("pc59", "context_59_test_sem_seg", "datasets/pc59.json", "PC-59"),
    Benchmark("voc20", "voc_2012_test_sem_seg", "datasets/voc20.json", "PAS-20"),
    Benchmark("voc20b", "voc_2012_test_background_sem_seg", "datasets/voc20b.json", "PAS-20b"),
)
OPEN_VOCABULARY_ARCHITECTURES = ("SED",)
SUITES = ("auto", "open_vocabulary", "config")


def evaluation_suite(cfg):
    suite = cfg.TEST.get("EVAL_SUITE", "auto")
    if suite not in SUITES:
        raise ValueError(f"TEST.EVAL_SUITE={suite!r}: use one of {SUITES}")
    if suite == "auto":
        return "open_vocabulary" if cfg.MODEL.META_ARCHITECTURE in OPEN_VOCABULARY_ARCHITECTURES else "config"
    return suite


def evaluation_plan(cfg):
    """[(name, [KEY, VALUE, ...])]: each evaluation of eval.sh, with the config overrides it needs (values hold
    no spaces). Results go to OUTPUT_DIR/eval/<name>."""
    if evaluation_suite(cfg) == "open_vocabulary":
        return [(b.name, benchmark_overrides(cfg, b.dataset)) for b in OPEN_VOCABULARY_BENCHMARKS]
    if not cfg.DATASETS.TEST:
        raise ValueError("DATASETS.TEST is empty: the config names no dataset to evaluate.")
    return [(name, benchmark_overrides(cfg, name)) for name in cfg.DATASETS.TEST]


def benchmark_overrides(cfg, dataset):
    """[KEY, VALUE, ...]: the config overrides with which eval.sh evaluates `dataset`, and so training's periodic
    evaluation (TEST.EVAL_PERIOD) too: for an open-vocabulary model, a benchmark's settings (its class names,
    pooling 1x1) where `dataset` is one of the benchmarks; else the config's own settings on `dataset`, an
    open-vocabulary model segmenting it with the dataset's own class names (your own dataset, the quickstart's)."""
    open_vocabulary = cfg.MODEL.META_ARCHITECTURE in OPEN_VOCABULARY_ARCHITECTURES
    for b in OPEN_VOCABULARY_BENCHMARKS:
        if b.dataset == dataset and open_vocabulary and evaluation_suite(cfg) == "open_vocabulary":
            return ["MODEL.SEM_SEG_HEAD.TEST_CLASS_JSON", b.class_json, "DATASETS.TEST", f'("{dataset}",)',
                    "MODEL.SEM_SEG_HEAD.POOLING_SIZES", "[1,1]"]
    return ["DATASETS.TEST", f'("{dataset}",)'] + (["MODEL.SEM_SEG_HEAD.TEST_CLASS_JSON", '""'] if open_vocabulary
                                                   else [])


def evaluation_config(cfg, dataset):
    """A copy of `cfg` with the overrides of `benchmark_overrides(cfg, dataset)` applied."""
    cfg = cfg.clone()
    cfg.defrost()
    cfg.merge_from_list(benchmark_overrides(cfg, dataset))
    cfg.freeze()
    return cfg


def _titles():
    return {b.name: b.title for b in OPEN_VOCABULARY_BENCHMARKS}


def collect_results(eval_dir, names=None):
    """[(name, dataset, metrics dict | None, note)] from eval_dir/<name>/results.json, in `names` order
    (default: the sub-folders, sorted). note: "" if evaluated, else why not."""
    if names is None:
        names = sorted(d for d in os.listdir(eval_dir) if os.path.isdir(os.path.join(eval_dir, d))) \
            if os.path.isdir(eval_dir) else []
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
        for dataset, result in results.items():
            if "skipped" in result:
                rows.append((name, dataset, None, f"skipped: {result['skipped']}"))
            else:
                rows.append((name, dataset, result.get("sem_seg", result), ""))
    return rows


def format_results(rows):
    """The table of `collect_results` rows (benchmark, dataset, mIoU, fwIoU, pACC, status), the reasons of the
    skipped / failed ones below it, and detectron2-style copy-paste lines of the evaluated benchmarks' mIoU."""
    titles = _titles()
    table, done, notes = [], [], []
    for name, dataset, metrics, note in rows:
        title = titles.get(name, name)
        values = [None] * 3 if metrics is None else [metrics.get(k) for k in ("mIoU", "fwIoU", "pACC")]
        status = note.split(":", 1)[0] if note else "ok"
        table.append([title, dataset] + ["" if metrics is None else "-" if v is None else f"{v:.2f}"
                                         for v in values] + [status])
        if metrics is not None:
            done.append((title, values[0]))
        if note:
            notes.append(f"{title} {note}")
    text = tabulate(table, headers=["benchmark", "dataset", "mIoU", "fwIoU", "pACC", "status"], tablefmt="pipe",
                    stralign="left", disable_numparse=True)
    if notes:
        text += "\n" + "\n".join(notes)
    if done:
        text += "\ncopypaste: " + ",".join(t for t, _ in done)
        text += "\ncopypaste: " + ",".join("nan" if v is None else f"{v:.2f}" for _, v in done)
    return text
