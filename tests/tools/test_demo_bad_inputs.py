"""tools/demo.py fed bad inputs: each case asserts the exit code, the one-line message and that nothing was lost
(the other inputs still segmented, class names whole in summary.json). Run through `main()` in-process."""

import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import load_tool
from PIL import Image

MODEL = ["--config-file", "configs/tiny_cpu.yaml"]
OPTS = ["--opts", "MODEL.PROMPT_ENSEMBLE_TYPE", "single", "SEED", "0"]

demo = load_tool("demo")


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """a.png and b.png: two small RGB images."""
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(root / f"{name}.png")
    return root


@pytest.fixture(scope="module")
def trained_weights(tmp_path_factory):
    """A checkpoint of the tiny model (what a user passes as MODEL.WEIGHTS)."""
    from sed import OpenVocabSegmenter

    path = tmp_path_factory.mktemp("weights") / "tiny.pth"
    model = OpenVocabSegmenter("configs/tiny_cpu.yaml", opts=OPTS[1:], device="cpu").model
    torch.save({"model": model.state_dict()}, path)
    return path


def run_main(argv, capfd):
    status = demo.main([str(a) for a in argv])
    captured = capfd.readouterr()
    return status, captured.out, captured.err


def test_unwritable_output_exits_2_before_reading_any_image(images, tmp_path, capfd, monkeypatch):
    monkeypatch.setattr(demo, "load_image", lambda path: pytest.fail("an image was read"))
    monkeypatch.setattr(demo, "OpenVocabSegmenter", lambda *a, **k: pytest.fail("a model was built"))
    (tmp_path / "a_file").write_text("")
    status, _, stderr = run_main(
        [*MODEL, "--input", images, "--vocabulary", "cat, dog", "--output", tmp_path / "a_file" / "out"], capfd
    )
    lines = stderr.strip().splitlines()
    assert status == 2 and len(lines) == 1
    assert lines[0].startswith("error: --output ") and "cannot be written" in lines[0]


def test_a_failed_write_is_reported_and_the_other_images_are_kept(images, tmp_path, capfd, monkeypatch):
    write_png = demo.write_png

    def full_disk_for_a(path, array):
        if Path(path).name.startswith("a_"):
            raise OSError(28, "No space left on device")
        write_png(path, array)

    monkeypatch.setattr(demo, "write_png", full_disk_for_a)
    out = tmp_path / "out"
    status, stdout, stderr = run_main(
        [*MODEL, "--input", images, "--vocabulary", "cat, dog", "--output", out, *OPTS], capfd
    )
    assert status == 1
    assert f"Failed {images / 'a.png'}: cannot write its results" in stderr and "No space left" in stderr
    assert "1 segmented, 1 failed" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert [Path(e["input"]).name for e in summary["images"]] == ["b.png"]
    assert (out / "b_overlay.png").is_file()


def test_trained_weights_long_and_non_ascii_names(images, trained_weights, tmp_path, capfd, caplog):
    long_name = "x" * 10000
    caplog.set_level(logging.INFO)
    out = tmp_path / "out"
    status, _, stderr = run_main(
        [
            *MODEL,
            "--input",
            images / "a.png",
            "--vocabulary",
            f"кошка, café, {long_name}",
            "--output",
            out,
            *OPTS,
            "MODEL.WEIGHTS",
            trained_weights,
            "MODEL.ENC.CLIP_PRETRAINED_WEIGHTS",
            "",
        ],
        capfd,
    )
    assert status == 0
    # No warning, e.g. open_clip's "Model initialized randomly" (untrue: MODEL.WEIGHTS replaces every weight).
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert "warn" not in stderr.lower(), stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["class_names"] == ["кошка", "café", long_name]  # whole, whatever the picture shows
    overlay = cv2.imread(str(out / "a_overlay.png"))
    assert overlay.shape[1] < 64 + 1000  # the name is cut in the legend, not a 95,000-px-wide picture


def test_weights_whose_scores_overflow_stop_the_demo_naming_the_image(images, trained_weights, tmp_path, capfd):
    """Finite weights (so the checkpoint loads) that make every score NaN: no label map may look like a result."""
    checkpoint = torch.load(trained_weights, weights_only=True)
    overflowing = {k: v * 1e30 if v.is_floating_point() else v for k, v in checkpoint["model"].items()}
    torch.save({"model": overflowing}, tmp_path / "overflowing.pth")
    status, _, stderr = run_main(
        [
            *MODEL,
            "--input",
            images / "a.png",
            "--vocabulary",
            "cat, dog",
            "--output",
            tmp_path / "out",
            *OPTS,
            "MODEL.WEIGHTS",
            tmp_path / "overflowing.pth",
        ],
        capfd,
    )
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]  # the others: tqdm's bar
    assert status == 2 and len(errors) == 1 and "Traceback" not in stderr
    assert errors[0].startswith(f"error: {images / 'a.png'}: the model's class scores hold NaN or Inf")


def test_a_folder_with_degenerate_sizes_and_a_failing_image_loses_only_that_image(tmp_path, capfd, monkeypatch):
    """1 x 5000 and 5000 x 1 px images are segmented at their size; an image the model fails on (here: made to
    fail, as an out-of-memory would) is named with its reason, and the images of its batch are still written."""
    from sed import predictor

    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, shape in [("a_wide", (1, 5000)), ("b_tall", (5000, 1)), ("c_fails", (33, 20)), ("d_ok", (48, 64))]:
        Image.fromarray(rng.integers(0, 255, (*shape, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    segment_batch = predictor.OpenVocabSegmenter._segment_batch

    def fails_on_33_rows(self, images, *args):
        if any(image.shape[0] == 33 for image in images):
            raise RuntimeError("not enough memory: you tried to allocate 9 GB")
        return segment_batch(self, images, *args)

    monkeypatch.setattr(predictor.OpenVocabSegmenter, "_segment_batch", fails_on_33_rows)
    out = tmp_path / "out"
    status, stdout, stderr = run_main(
        [*MODEL, "--input", folder, "--vocabulary", "cat, dog", "--output", out, "--batch-size", "2", *OPTS], capfd
    )
    assert status == 1
    assert f"Failed {folder / 'c_fails.png'}: the model failed on it (RuntimeError: not enough memory" in stderr
    assert "3 segmented, 1 failed" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert [Path(e["input"]).name for e in summary["images"]] == ["a_wide.png", "b_tall.png", "d_ok.png"]
    assert [Path(e["input"]).name for e in summary["failed"]] == ["c_fails.png"]
    assert cv2.imread(str(out / "a_wide_labels.png"), cv2.IMREAD_UNCHANGED).shape == (1, 5000)
    assert cv2.imread(str(out / "b_tall_labels.png"), cv2.IMREAD_UNCHANGED).shape == (5000, 1)
    assert (out / "d_ok_overlay.png").is_file()
