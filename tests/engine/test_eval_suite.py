"""What eval.sh evaluates (decided by the model protocol in one place), the results table, and eval.sh reporting
a benchmark whose dataset is missing as skipped."""

import json
import subprocess

import pytest
from engine_helpers import REPO, subprocess_env

from sed.engine.cli import load_config
from sed.engine.eval_suite import OPEN_VOCABULARY_BENCHMARKS, config_words, evaluation_plan
from sed.engine.results import collect_results, format_results

SIX = [
    ("ade847", "ade20k_full_sem_seg_freq_val_all", "datasets/ade847.json"),
    ("pc459", "context_459_test_sem_seg", "datasets/pc459.json"),
    ("ade150", "ade20k_150_test_sem_seg", "datasets/ade150.json"),
    ("pc59", "context_59_test_sem_seg", "datasets/pc59.json"),
    ("voc20", "voc_2012_test_sem_seg", "datasets/voc20.json"),
    ("voc20b", "voc_2012_test_background_sem_seg", "datasets/voc20b.json"),
]


def _cfg(config, *opts):
    return load_config(str(REPO / "configs" / config), list(opts))


def test_sed_configs_evaluate_the_six_open_vocabulary_benchmarks():
    assert [(b.name, b.dataset, b.class_json) for b in OPEN_VOCABULARY_BENCHMARKS] == SIX
    for config in ("convnextB_768.yaml", "convnextL_768.yaml", "tiny_cpu.yaml"):
        plan = evaluation_plan(_cfg(config))
        assert [name for name, _ in plan] == [s[0] for s in SIX]
        for (_, settings), (_, dataset, class_json) in zip(plan, SIX):
            assert settings == {
                "MODEL.SEM_SEG_HEAD.TEST_CLASS_JSON": class_json,
                "DATASETS.TEST": (dataset,),
                "MODEL.SEM_SEG_HEAD.POOLING_SIZES": [1, 1],
            }
            cfg = _cfg(config, *config_words(settings))  # the command line's words give the same values back
            assert cfg.DATASETS.TEST == (dataset,) and cfg.MODEL.SEM_SEG_HEAD.TEST_CLASS_JSON == class_json
            assert list(cfg.MODEL.SEM_SEG_HEAD.POOLING_SIZES) == [1, 1]


def test_other_models_evaluate_their_own_test_sets():
    cfg = _cfg(
        "tiny_cpu.yaml",
        "MODEL.META_ARCHITECTURE",
        "SemanticSegmentor",
        "DATASETS.TEST",
        '("ade20k_150_test_sem_seg", "context_59_test_sem_seg")',
    )
    assert evaluation_plan(cfg) == [
        ("ade20k_150_test_sem_seg", {"DATASETS.TEST": ("ade20k_150_test_sem_seg",)}),
        ("context_59_test_sem_seg", {"DATASETS.TEST": ("context_59_test_sem_seg",)}),
    ]
    assert [n for n, _ in evaluation_plan(_cfg("quickstart.yaml"))] == ["synthetic_test_sem_seg"]  # EVAL_SUITE
    cfg = _cfg("quickstart.yaml", "TEST.EVAL_SUITE", "open_vocabulary")
    assert len(evaluation_plan(cfg)) == 6


def test_results_table(tmp_path):
    (tmp_path / "ade150").mkdir()
    (tmp_path / "ade150" / "results.json").write_text(
        json.dumps(
            {"ade20k_150_test_sem_seg": {"sem_seg": {"mIoU": 31.64, "fwIoU": 55.0, "pACC": 70.25, "IoU-wall": 1.0}}}
        )
    )
    (tmp_path / "voc20").mkdir()
    (tmp_path / "voc20" / "results.json").write_text(
        json.dumps({"voc_2012_test_sem_seg": {"skipped": "dataset 'voc_2012_test_sem_seg' needs the folder x"}})
    )
    rows = collect_results(str(tmp_path), ["ade150", "voc20", "pc59"])
    lines = format_results(rows).splitlines()
    assert lines[2].split() == "| A-150 | ade20k_150_test_sem_seg | 31.64 | 55.00 | 70.25 | ok |".split()
    assert lines[3].startswith("| PAS-20 ") and "voc_2012_test_sem_seg" in lines[3] and "| skipped " in lines[3]
    assert lines[4].startswith("| PC-59 ") and "| failed " in lines[4]
    assert lines[5] == "PAS-20 skipped: dataset 'voc_2012_test_sem_seg' needs the folder x"
    assert lines[6].startswith("PC-59 failed: no results (see ")
    assert lines[-2:] == ["copypaste: A-150", "copypaste: 31.64"]


@pytest.mark.slow
def test_eval_sh_reports_a_missing_dataset_as_skipped_and_fails_when_nothing_was_evaluated(tmp_path):
    env = subprocess_env(DETECTRON2_DATASETS=str(tmp_path / "no_datasets"))
    proc = subprocess.run(
        [
            "sh",
            str(REPO / "eval.sh"),
            str(REPO / "configs" / "quickstart.yaml"),
            "1",
            str(tmp_path / "out"),
            "DATASETS.TEST",
            '("synthetic_test_sem_seg",)',
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(tmp_path),
        timeout=600,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]  # the only benchmark was skipped: nothing evaluated
    assert "nothing was evaluated" in proc.stderr
    table = [line for line in proc.stdout.splitlines() if line.startswith("| synthetic_test_sem_seg")]
    assert len(table) == 1 and "| skipped " in table[0], proc.stdout[-2000:]
    reason = [line for line in proc.stdout.splitlines() if line.startswith("synthetic_test_sem_seg skipped: ")]
    assert len(reason) == 1 and "python datasets/prepare_synthetic.py" in reason[0]  # it says what to do
    results = json.loads((tmp_path / "out" / "eval" / "synthetic_test_sem_seg" / "results.json").read_text())
    assert "skipped" in results["synthetic_test_sem_seg"]


def test_config_words_give_each_value_back_through_the_command_line():
    settings = {
        "DATASETS.TEST": ("a b", 'quote"d'),
        "MODEL.SEM_SEG_HEAD.POOLING_SIZES": [1, 1],
        "MODEL.SEM_SEG_HEAD.TEST_CLASS_JSON": "",
        "TEST.FAST_INFERENCE": True,
        "TEST.TOPK": 8,
        "SOLVER.BASE_LR": 2e-4,
    }
    words = config_words(settings)
    assert words[:4] == ["DATASETS.TEST", '("a b","quote\\"d",)', "MODEL.SEM_SEG_HEAD.POOLING_SIZES", "[1,1]"]
    cfg = _cfg("tiny_cpu.yaml", *words)
    for key, value in settings.items():
        node = cfg
        for part in key.split("."):
            node = node[part]
        assert node == value, key
    with pytest.raises(TypeError, match="evaluation setting of type dict"):
        config_words({"DATASETS.TEST": {}})
