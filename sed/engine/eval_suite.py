"""What eval.sh evaluates (the evaluation suite): the one place that decides it.

- Open-vocabulary models (`capabilities(cfg).open_vocabulary`, see sed/modeling/protocol.py; SED): the six
  zero-shot benchmarks of the paper (SED spec, section 5), one by one, with the benchmark's class-name JSON as
  test vocabulary and the model's own benchmark settings (`evaluation_settings`; SED: the authors'
  class-attention pooling 1x1).
- Other models (ECENet and closed-vocabulary models): each dataset of the config's own DATASETS.TEST (an
  open-vocabulary model segments it with the dataset's own class names).
Training's periodic evaluation uses the same settings for the same dataset (`evaluation_config`).
TEST.EVAL_SUITE overrides the choice ("open_vocabulary" or "config"; "auto" = by the model's vocabulary), e.g.
the quickstart, an SED on its own synthetic test set. The results table is sed/engine/results.py's.
"""

import json
from collections import namedtuple

from ..modeling.protocol import capabilities

__all__ = [
    "Benchmark",
    "OPEN_VOCABULARY_BENCHMARKS",
    "evaluation_plan",
    "evaluation_settings",
    "config_words",
    "evaluation_config",
]

Benchmark = namedtuple("Benchmark", ["name", "dataset", "class_json", "title"])

OPEN_VOCABULARY_BENCHMARKS = (
    Benchmark("ade847", "ade20k_full_sem_seg_freq_val_all", "datasets/ade847.json", "A-847"),
    Benchmark("pc459", "context_459_test_sem_seg", "datasets/pc459.json", "PC-459"),
    Benchmark("ade150", "ade20k_150_test_sem_seg", "datasets/ade150.json", "A-150"),
    Benchmark("pc59", "context_59_test_sem_seg", "datasets/pc59.json", "PC-59"),
    Benchmark("voc20", "voc_2012_test_sem_seg", "datasets/voc20.json", "PAS-20"),
    Benchmark("voc20b", "voc_2012_test_background_sem_seg", "datasets/voc20b.json", "PAS-20b"),
)
SUITES = ("auto", "open_vocabulary", "config")


def evaluation_suite(cfg):
    suite = cfg.TEST.get("EVAL_SUITE", "auto")
    if suite not in SUITES:
        raise ValueError(f"TEST.EVAL_SUITE={suite!r}: use one of {SUITES}")
    if suite == "auto":
        return "open_vocabulary" if capabilities(cfg).open_vocabulary else "config"
    return suite


def evaluation_plan(cfg):
    """[(name, {config key: Python value})]: each evaluation of eval.sh, with the settings it needs. Results go to
    OUTPUT_DIR/eval/<name>."""
    if evaluation_suite(cfg) == "open_vocabulary":
        return [(b.name, evaluation_settings(cfg, b.dataset)) for b in OPEN_VOCABULARY_BENCHMARKS]
    if not cfg.DATASETS.TEST:
        raise ValueError("DATASETS.TEST is empty: the config names no dataset to evaluate.")
    return [(name, evaluation_settings(cfg, name)) for name in cfg.DATASETS.TEST]


def evaluation_settings(cfg, dataset):
    """{config key: Python value}: the settings with which eval.sh evaluates `dataset`, and so training's periodic
    evaluation (TEST.EVAL_PERIOD) too: for an open-vocabulary model, a benchmark's settings (its class names and
    the model's benchmark settings) where `dataset` is one of the benchmarks; else the config's own settings on
    `dataset`, an open-vocabulary model segmenting it with the dataset's own class names (your own dataset, the
    quickstart's)."""
    model = capabilities(cfg)
    settings = {"DATASETS.TEST": (dataset,)}
    if model.open_vocabulary and evaluation_suite(cfg) == "open_vocabulary":
        for b in OPEN_VOCABULARY_BENCHMARKS:
            if b.dataset == dataset:
                return {**settings, **model.evaluation_settings(b.class_json, benchmark=True)}
    return {**settings, **model.evaluation_settings("")}


def config_words(settings):
    """[KEY, VALUE, ...] of {config key: Python value}, as detectron2's command line and `merge_from_list` read
    them: each value the Python literal that yacs evaluates back to it, written as a user would type it
    (`("ade20k_150_test_sem_seg",)`, `[1,1]`)."""
    return [word for key, value in settings.items() for word in (key, _literal(value))]


def _literal(value):
    if isinstance(value, str):
        return json.dumps(value)  # a double-quoted Python string literal too
    if isinstance(value, tuple):
        return "(" + "".join(f"{_literal(v)}," for v in value) + ")"
    if isinstance(value, list):
        return "[" + ",".join(_literal(v) for v in value) + "]"
    if isinstance(value, (bool, int, float)):
        return repr(value)
    raise TypeError(f"evaluation setting of type {type(value).__name__}: use str, int, float, bool, tuple or list")


def evaluation_config(cfg, dataset):
    """A copy of `cfg` with the settings of `evaluation_settings(cfg, dataset)` applied."""
    cfg = cfg.clone()
    cfg.defrost()
    cfg.merge_from_list(config_words(evaluation_settings(cfg, dataset)))
    cfg.freeze()
    return cfg
