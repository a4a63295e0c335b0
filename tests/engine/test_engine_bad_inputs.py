"""tools/train_net.py fed bad files: each case ends with exit code 2, ONE line naming the problem and the fix (no
traceback, none of torch's advice), and nothing lost: earlier results kept, no empty OUTPUT_DIR left behind.

Table-driven: a case prepares its inputs in a temporary folder and returns the command's arguments; the command
runs in-process (`sed.engine.cli.run`, all of train_net.py but the interpreter start) to keep the suite fast.
"""

import json
import logging
import os
import signal
import sys

import numpy as np
import pytest
import torch
from conftest import fill_disk, write_hostile_checkpoint
from detectron2.data import MetadataCatalog
from detectron2.utils.logger import setup_logger
from engine_helpers import FAST_OPTS, REPO, one_thread, quickstart_cfg, synthetic_root  # noqa: F401 (fixtures)
from PIL import Image

from sed.engine.cli import run
from sed.engine.trainer import Trainer

QUICKSTART = str(REPO / "configs" / "quickstart.yaml")
CODE_RAN = "CODE_RAN"  # the file a hostile checkpoint would create while read
PREVIOUS_RESULTS = {"synthetic_test_sem_seg": {"sem_seg": {"mIoU": 12.5}}}


def _eval_only(out, *opts):
    return ["--config-file", QUICKSTART, "--eval-only", *FAST_OPTS, "OUTPUT_DIR", out, *opts]


def _with_previous_results(out):
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(PREVIOUS_RESULTS))


def truncated_checkpoint(tmp_path, out):
    _with_previous_results(out)
    good = tmp_path / "good.pth"
    torch.save({"model": {"w": torch.zeros(1000)}, "iteration": 3}, good)
    (tmp_path / "cut.pth").write_bytes(good.read_bytes()[:1500])
    return _eval_only(out, "MODEL.WEIGHTS", tmp_path / "cut.pth")


def random_bytes_checkpoint(tmp_path, out):
    _with_previous_results(out)
    (tmp_path / "noise.pth").write_bytes(os.urandom(4096))
    return _eval_only(out, "MODEL.WEIGHTS", tmp_path / "noise.pth")


def other_models_checkpoint(tmp_path, out):
    _with_previous_results(out)
    # Key names of ECENet's Swin backbone: a checkpoint of the other model of this project.
    torch.save(
        {
            "model": {
                "backbone.patch_embed.proj.weight": torch.zeros(8, 3, 4, 4),
                "sem_seg_head.cls_embed.weight": torch.zeros(8, 8),
            }
        },
        tmp_path / "ecenet.pth",
    )
    return _eval_only(out, "MODEL.WEIGHTS", tmp_path / "ecenet.pth")


def code_in_pkl_checkpoint(tmp_path, out):
    _with_previous_results(out)
    write_hostile_checkpoint(tmp_path / "model_final.pkl", tmp_path / CODE_RAN)
    return _eval_only(out, "MODEL.WEIGHTS", tmp_path / "model_final.pkl")


def code_in_pth_checkpoint(tmp_path, out):
    _with_previous_results(out)
    write_hostile_checkpoint(tmp_path / "model_final.pth", tmp_path / CODE_RAN)
    return _eval_only(out, "MODEL.WEIGHTS", tmp_path / "model_final.pth")


def code_in_last_checkpoint_on_resume(tmp_path, out):
    # --resume reads the checkpoint that OUTPUT_DIR/last_checkpoint names: a file anyone who can write there planted
    out.mkdir(parents=True)
    write_hostile_checkpoint(out / "model_0000001.pth", tmp_path / CODE_RAN)
    (out / "last_checkpoint").write_text("model_0000001.pth")
    return [
        "--config-file",
        QUICKSTART,
        "--resume",
        *FAST_OPTS,
        "SOLVER.MAX_ITER",
        "2",
        "DATASETS.TEST",
        "()",
        "OUTPUT_DIR",
        out,
    ]


def non_finite_checkpoint(tmp_path, out):
    _with_previous_results(out)
    weights = {
        "w": torch.zeros(3),
        "sem_seg_head.a": torch.tensor([1.0, float("nan")]),
        "sem_seg_head.b": torch.tensor([float("inf")]),
    }
    torch.save({"model": weights}, tmp_path / "diverged.pth")
    return _eval_only(out, "MODEL.WEIGHTS", tmp_path / "diverged.pth")


def corrupt_test_label(tmp_path, out):
    _with_previous_results(out)
    label = sorted((tmp_path / "datasets" / "synthetic" / "annotations_detectron2" / "val2017").iterdir())[2]
    label.write_bytes(label.read_bytes()[:60])  # a PNG cut inside its first chunk
    return _eval_only(out)


def _synthetic_label(tmp_path, split, index):
    return sorted((tmp_path / "datasets" / "synthetic" / "annotations_detectron2" / split).iterdir())[index]


def out_of_range_test_label(tmp_path, out):
    _with_previous_results(out)
    label = _synthetic_label(tmp_path, "val2017", 1)
    values = np.array(Image.open(label))
    values[0, :3] = 200  # neither one of the synthetic classes nor the ignore label 255
    Image.fromarray(values).save(label)
    return _eval_only(out)


def non_finite_outputs(tmp_path, out):
    """Finite weights so large that the model's scores overflow to NaN: a confident-looking segmentation."""
    _with_previous_results(out)
    model = Trainer.build_model(quickstart_cfg())
    weights = {name: value * 1e30 if value.is_floating_point() else value for name, value in model.state_dict().items()}
    torch.save({"model": weights}, tmp_path / "overflowing.pth")
    return _eval_only(out, "MODEL.WEIGHTS", tmp_path / "overflowing.pth")


def _training(out):
    # Every image is read in the first iteration (batch 16 of 16 images).
    return [
        "--config-file",
        QUICKSTART,
        *FAST_OPTS,
        "SOLVER.IMS_PER_BATCH",
        "16",
        "SOLVER.MAX_ITER",
        "2",
        "DATASETS.TEST",
        "()",
        "OUTPUT_DIR",
        out,
    ]


def out_of_range_training_label(tmp_path, out):
    label = _synthetic_label(tmp_path, "train2017", 3)
    values = np.array(Image.open(label))
    values[-1, -1] = 31
    Image.fromarray(values).save(label)
    return _training(out)


def training_label_of_another_size(tmp_path, out):
    label = _synthetic_label(tmp_path, "train2017", 5)
    Image.fromarray(np.array(Image.open(label))[:, :50]).save(label)
    return _training(out)


def corrupt_training_image(tmp_path, out):
    image = sorted((tmp_path / "datasets" / "synthetic" / "images" / "train2017").iterdir())[0]
    image.write_bytes(image.read_bytes()[:200])
    return _training(out)


def empty_dataset_folders(tmp_path, out):
    metadata = MetadataCatalog.get("ade20k_150_test_sem_seg")
    os.makedirs(metadata.image_root)
    os.makedirs(metadata.sem_seg_root)
    return _eval_only(out, "DATASETS.TEST", '("ade20k_150_test_sem_seg",)')


def misspelt_dataset(tmp_path, out):
    return _eval_only(out, "DATASETS.TEST", '("synthetic_tset_sem_seg",)')


def looping_config(tmp_path, out):
    (tmp_path / "a.yaml").write_text(f"_BASE_: [{QUICKSTART}, b.yaml]\n")
    (tmp_path / "b.yaml").write_text("_BASE_: a.yaml\n")
    return ["--config-file", tmp_path / "a.yaml", "OUTPUT_DIR", out]


CASES = {  # case: (what the one line says, and no other line may say)
    truncated_checkpoint: (["cut.pth is not a readable checkpoint", "truncated"], ["weights_only", "match"]),
    random_bytes_checkpoint: (
        ["noise.pth is not a readable checkpoint"],
        ["weights_only", "does not match", "does not fit"],
    ),
    other_models_checkpoint: (["ecenet.pth", "does not fit", "backbone.patch_embed.proj.weight"], ["weights_only"]),
    code_in_pkl_checkpoint: (["model_final.pkl names io.open", "could run code", "convert"], ["weights_only"]),
    code_in_pth_checkpoint: (["model_final.pth names", "could run code", "convert"], ["weights_only"]),
    code_in_last_checkpoint_on_resume: (["model_0000001.pth names", "could run code"], ["weights_only"]),
    non_finite_checkpoint: (
        ["diverged.pth: 2 weight tensor(s) hold NaN or Inf (sem_seg_head.a, sem_seg_head.b)"],
        ["does not fit"],
    ),
    corrupt_test_label: (["annotations_detectron2", "truncated or corrupt", "replace the file"], []),
    out_of_range_test_label: (
        ["val2017/", ".png: label value(s) 200 are neither a class id", "nor the ignore label 255"],
        [],
    ),
    non_finite_outputs: ([".jpg: the model's class scores hold NaN or Inf"], []),
    out_of_range_training_label: (
        [
            "train2017/",
            ".png: label value(s) 31 are neither a class id",
            "python tools/verify_dataset.py synthetic_train_sem_seg",
        ],
        ["AssertionError"],
    ),
    training_label_of_another_size: (
        ["train2017/", ".png: the label map is 50x64 but its image is 64x64"],
        ["AssertionError"],
    ),
    corrupt_training_image: (
        ["train2017", ".jpg: truncated or corrupt", "python tools/verify_dataset.py synthetic_train_sem_seg"],
        [],
    ),
    empty_dataset_folders: (["'ade20k_150_test_sem_seg'", "hold no *.jpg image", "prepare_ade20k_150.py"], []),
    looping_config: (
        ["the _BASE_ chain of the config loops", "a.yaml -> ", "b.yaml -> ", "remove or change"],
        ["RecursionError"],
    ),
    misspelt_dataset: (
        [
            "'synthetic_tset_sem_seg' (DATASETS.TEST) is not registered",
            "did you mean synthetic_test_sem_seg, synthetic_train_sem_seg?",
        ],
        [],
    ),
}


@pytest.fixture
def fresh_loggers():
    """detectron2's `setup_logger` is cached: its handlers would write to the streams of the test that first set
    it up, closed by the time a later case logs. Each case sets logging up anew."""

    def reset():
        for name in ("detectron2", "fvcore", "sed"):
            for handler in list(logging.getLogger(name).handlers):
                logging.getLogger(name).removeHandler(handler)
        setup_logger.cache_clear()

    reset()
    yield
    reset()


@pytest.mark.parametrize("case", list(CASES), ids=lambda case: case.__name__)
def test_bad_input_gives_one_line_and_keeps_everything(
    case,
    capfd,
    tmp_path,
    synthetic_root,
    one_thread,  # noqa: F811
    fresh_loggers,
):
    expected, forbidden = CASES[case]
    out = tmp_path / "out" / "run"
    argv = case(tmp_path, out)
    capfd.readouterr()
    code = run([str(a) for a in argv])
    stderr = capfd.readouterr().err  # the run's log goes to stdout; stderr has the error (and library warnings)
    errors = [line for line in stderr.splitlines() if ": error: " in line]
    assert code == 2
    assert len(errors) == 1 and "Traceback" not in stderr, stderr[-3000:]
    for text in expected:
        assert text in errors[0]
    for text in forbidden:
        assert text not in stderr
    assert not list(tmp_path.rglob(CODE_RAN)), "a checkpoint ran code while it was read"
    if (tmp_path / "out" / "run").exists():
        previous = out / "results.previous.json"
        if previous.exists() or (out / "results.json").exists():  # earlier results: kept, not looking current
            assert not (out / "results.json").exists()
            assert json.loads(previous.read_text()) == PREVIOUS_RESULTS
        else:
            assert os.listdir(out), "an empty OUTPUT_DIR was left behind"
    else:
        assert not (tmp_path / "out").exists(), "a failed run left the empty parent of OUTPUT_DIR"


def _one_error_line(capfd):
    stderr = capfd.readouterr().err
    errors = [line for line in stderr.splitlines() if ": error: " in line]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return errors[0]


def test_a_full_disk_while_checkpointing_keeps_the_previous_checkpoint(
    tmp_path, synthetic_root, one_thread, fresh_loggers, capfd, monkeypatch
):  # noqa: F811
    out = tmp_path / "run"
    train = [
        "--config-file",
        QUICKSTART,
        *FAST_OPTS,
        "SOLVER.MAX_ITER",
        "4",
        "SOLVER.CHECKPOINT_PERIOD",
        "2",
        "DATASETS.TEST",
        "()",
        "OUTPUT_DIR",
        str(out),
    ]
    with monkeypatch.context() as patch:
        fill_disk(patch, paths="model_0000003.pth")
        assert run(train) == 2
    error = _one_error_line(capfd)
    assert f"no space left on the disk to write the checkpoint {out / 'model_0000003.pth'}" in error
    assert "it needs about " in error and " free there" in error
    assert (out / "last_checkpoint").read_text() == "model_0000001.pth"
    assert run([*train[:2], "--resume", *train[2:]]) == 0  # continues from the previous checkpoint
    assert "Resuming at iteration 2" in capfd.readouterr().out
    assert (out / "last_checkpoint").read_text() == "model_final.pth"


def test_a_full_disk_while_writing_results_is_one_line(
    tmp_path, synthetic_root, one_thread, fresh_loggers, capfd, monkeypatch
):  # noqa: F811
    out = tmp_path / "run"
    fill_disk(monkeypatch, paths="results.json")
    assert run([str(a) for a in _eval_only(out)]) == 2
    error = _one_error_line(capfd)
    assert f"no space left on the disk to write the results {out / 'results.json'}" in error
    assert not (out / "results.json").exists()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_training_saves_the_iteration_says_so_and_resume_finishes(
    signum, tmp_path, synthetic_root, one_thread, fresh_loggers, capfd, monkeypatch
):  # noqa: F811
    from detectron2.engine import HookBase

    from sed.engine.trainer import Trainer

    class SignalInIteration1(HookBase):
        def before_step(self):
            if self.trainer.iter == 1:
                os.kill(os.getpid(), signum)

    build_hooks = Trainer.build_hooks
    out = tmp_path / "run"
    train = [
        "--config-file",
        QUICKSTART,
        *FAST_OPTS,
        "SOLVER.MAX_ITER",
        "4",
        "SOLVER.CHECKPOINT_PERIOD",
        "3",
        "DATASETS.TEST",
        "()",
        "OUTPUT_DIR",
        str(out),
    ]
    with monkeypatch.context() as patch:
        patch.setattr(Trainer, "build_hooks", lambda self: [SignalInIteration1(), *build_hooks(self)])
        assert run(train) == 128 + signum
    lines = [line for line in capfd.readouterr().err.splitlines() if "train" in line or "Traceback" in line]
    name = signal.Signals(signum).name
    assert lines == [
        f"{os.path.basename(sys.argv[0]) or 'train_net.py'}: stopped by {name} after iteration 1: "
        f"saved {out}/model_0000001.pth; run the same command with --resume to continue"
    ]
    assert (out / "last_checkpoint").read_text() == "model_0000001.pth"
    assert run([*train[:2], "--resume", *train[2:]]) == 0
    assert "Resuming at iteration 2" in capfd.readouterr().out
    assert (out / "last_checkpoint").read_text() == "model_final.pth"
