"""tools/demo.py with the tiny random-weight SED: one real command-line run, the other cases through main()."""

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from conftest import load_tool
from PIL import Image

from sed.predictor import SegmentationResult

REPO = Path(__file__).resolve().parents[2]
MODEL = ["--config-file", "configs/tiny_cpu.yaml"]
# One prompt template instead of 80: the same model code at a fraction of the text-encoding time.
OPTS = ["--opts", "MODEL.PROMPT_ENSEMBLE_TYPE", "single", "SEED", "0"]
VOCABULARY = "cat, dog, grass/lawn, sky"
CLASS_NAMES = ["cat", "dog", "grass, lawn", "sky"]

demo = load_tool("demo")


def make_image(height, width, seed):
    """A smooth random RGB image: blobs rather than noise, so that labels form regions."""
    coarse = np.random.default_rng(seed).uniform(0, 255, (3, height // 16 + 1, width // 16 + 1))
    image = torch.nn.functional.interpolate(torch.tensor(coarse)[None], size=(height, width), mode="bilinear")
    return image[0].permute(1, 2, 0).numpy().astype(np.uint8)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """a.png (96x128), dir/b.jpg (80x112) and dir/broken.png (not an image)."""
    root = tmp_path_factory.mktemp("inputs")
    Image.fromarray(make_image(96, 128, 0)).save(root / "a.png")
    (root / "dir").mkdir()
    Image.fromarray(make_image(80, 112, 1)).save(root / "dir" / "b.jpg")
    (root / "dir" / "broken.png").write_bytes(b"not an image")
    return root


def run_main(argv, capsys):
    status = demo.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_command_line_writes_results_and_skips_bad_inputs_by_name(inputs, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [
            sys.executable,
            "tools/demo.py",
            *MODEL,
            "--input",
            inputs / "a.png",
            inputs / "dir",
            inputs / "missing.jpg",
            "--vocabulary",
            VOCABULARY,
            "--output",
            out,
            "--probabilities",
            *OPTS,
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    assert f"Skipped {inputs / 'missing.jpg'}: no such file or directory" in proc.stderr
    assert f"Skipped {inputs / 'dir' / 'broken.png'}: not an image file" in proc.stderr
    assert "2 segmented, 2 failed" in proc.stdout

    summary = json.loads((out / "summary.json").read_text())
    assert summary["class_names"] == CLASS_NAMES and summary["fast_inference"] is False
    assert {Path(f["input"]).name for f in summary["failed"]} == {"missing.jpg", "broken.png"}
    assert [Path(e["input"]).name for e in summary["images"]] == ["a.png", "b.jpg"]
    for entry, (stem, size) in zip(summary["images"], [("a", (96, 128)), ("b", (80, 112))]):
        overlay = cv2.imread(str(out / f"{stem}_overlay.png"))
        assert overlay is not None and overlay.shape[0] >= size[0] and overlay.shape[1] > size[1]  # + legend
        labels = cv2.imread(str(out / f"{stem}_labels.png"), cv2.IMREAD_UNCHANGED)
        assert labels.dtype == np.uint8 and labels.shape == size and labels.max() < len(CLASS_NAMES)
        saved = np.load(out / f"{stem}_probabilities.npz")
        assert saved["probabilities"].shape == (len(CLASS_NAMES), *size)
        assert list(saved["class_names"]) == CLASS_NAMES
        assert saved["probabilities"].dtype == np.float32
        np.testing.assert_array_equal(saved["probabilities"].argmax(0), labels)
        assert sorted(c["label"] for c in entry["classes"]) == np.unique(labels).tolist()
        assert sum(c["area"] for c in entry["classes"]) == pytest.approx(1, abs=1e-4)
        assert f"{entry['input']}: " in proc.stdout and "%" in proc.stdout


def test_every_input_segmented_exits_0_and_each_file_once(inputs, tmp_path, capsys):
    out = tmp_path / "out"
    status, stdout, _ = run_main(
        [
            *MODEL,
            "--input",
            inputs / "a.png",
            inputs / "*.png",
            "--vocabulary",
            VOCABULARY,
            "--no-fast",
            "--output",
            out,
            *OPTS,
        ],
        capsys,
    )
    assert status == 0
    assert sorted(p.name for p in out.iterdir()) == ["a_labels.png", "a_overlay.png", "summary.json"]
    assert "1 segmented, 0 failed" in stdout


@pytest.mark.parametrize(
    "vocabulary,message",
    [
        (["--vocabulary", "cat, , dog"], "the class at position 2 is empty"),
        (["--vocabulary", "cat, dog, Cat"], "'Cat' is listed twice (positions 1 and 3)"),
        (["--vocabulary", "cat; dog"], "';' is not a separator"),
        (["--vocabulary", "cat, grass/"], "has an empty synonym"),
        (["--dataset", "ade15"], "neither a benchmark vocabulary (ade150, ade847"),
        (["--dataset", "cat, dog"], "typed classes go to --vocabulary"),
    ],
)
def test_bad_vocabularies_exit_2_before_any_model(vocabulary, message, inputs, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(demo, "OpenVocabSegmenter", lambda *a, **k: pytest.fail("a model was built"))
    out = tmp_path / "out"
    status, _, stderr = run_main([*MODEL, "--input", inputs / "a.png", *vocabulary, "--output", out], capsys)
    assert status == 2 and message in stderr and not out.exists()


def test_a_checkpoint_that_does_not_fit_exits_2_before_any_image(inputs, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(demo, "load_image", lambda path: pytest.fail("an image was read"))
    torch.save({"model": {"not_a_module.weight": torch.zeros(2)}}, tmp_path / "other.pth")
    out = tmp_path / "out"
    status, _, stderr = run_main(
        [
            *MODEL,
            "--input",
            inputs / "a.png",
            "--vocabulary",
            VOCABULARY,
            "--output",
            out,
            *OPTS,
            "MODEL.WEIGHTS",
            tmp_path / "other.pth",
        ],
        capsys,
    )
    assert status == 2 and not out.exists()
    assert "The checkpoint does not match the config configs/tiny_cpu.yaml; no image was processed" in stderr
    assert "does not fit this SED model" in stderr


def test_no_readable_input_exits_2(inputs, tmp_path, capsys):
    status, _, stderr = run_main(
        [
            *MODEL,
            "--input",
            inputs / "dir" / "broken.png",
            inputs / "*.gif",
            "--vocabulary",
            VOCABULARY,
            "--output",
            tmp_path / "out",
            *OPTS,
        ],
        capsys,
    )
    assert status == 2
    assert f"Skipped {inputs / '*.gif'}: pattern matches no image" in stderr
    assert f"Skipped {inputs / 'dir' / 'broken.png'}: not an image file" in stderr
    status, _, stderr = run_main([*MODEL, "--input", inputs / "missing.jpg", "--output", tmp_path / "out"], capsys)
    assert status == 2 and "No image to segment among the inputs" in stderr


def test_video_frames_are_segmented(tmp_path, capsys):
    video = cv2.VideoWriter(str(tmp_path / "clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 5, (128, 96))
    for seed in range(3):
        video.write(make_image(96, 128, seed))
    video.release()
    status, _, _ = run_main(
        [
            *MODEL,
            "--video-input",
            tmp_path / "clip.mp4",
            "--vocabulary",
            VOCABULARY,
            "--output",
            tmp_path / "out",
            *OPTS,
        ],
        capsys,
    )
    assert status == 0
    overlay = cv2.VideoCapture(str(tmp_path / "out" / "clip_overlay.mp4"))
    frames = []
    while True:
        ok, frame = overlay.read()
        if not ok:
            break
        frames.append(frame)
    assert len(frames) == 3 and frames[0].shape == (96, 128, 3)


def test_label_maps_of_more_than_256_classes_are_16_bit(tmp_path):
    label_map = np.kron(np.arange(12, dtype=np.int32).reshape(3, 4) * 25, np.ones((10, 10), np.int32))
    result = SegmentationResult(label_map, [f"class {i}" for i in range(300)])
    files = demo.write_outputs(str(tmp_path), "x", make_image(30, 40, 0), result, probabilities=False)
    labels = cv2.imread(files["labels"], cv2.IMREAD_UNCHANGED)
    assert labels.dtype == np.uint16
    np.testing.assert_array_equal(labels, label_map)


def test_output_names_of_inputs_with_the_same_name_are_made_unique():
    used = set()
    assert [demo.unique_stem(p, used) for p in ["x/a.png", "y/a.jpg", "z/a.png", "b.png"]] == ["a", "a_1", "a_2", "b"]
