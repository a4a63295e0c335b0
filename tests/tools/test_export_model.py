"""tools/export_model.py on the tiny random-weight SED: the ONNX model agrees with PyTorch at another image size."""

import numpy as np
import pytest
from conftest import load_tool
from PIL import Image

pytest.importorskip("onnxruntime", reason="the export extra is not installed: pip install -e .[export]")
export_model = load_tool("export_model")

OPTS = ["--opts", "MODEL.PROMPT_ENSEMBLE_TYPE", "single", "SEED", "0"]


def test_export_check_and_speed_comparison_at_another_image_size(tmp_path, capsys):
    image = tmp_path / "image.png"
    Image.fromarray((np.random.default_rng(0).random((203, 291, 3)) * 255).astype(np.uint8)).save(image)
    output = tmp_path / "sed.onnx"
    status = export_model.main(
        [
            "--config-file",
            "configs/tiny_cpu.yaml",
            "--vocabulary",
            "cat, dog/puppy, sky",
            "--output",
            str(output),
            "--check",
            str(image),
            "--benchmark",
            "1",
            *OPTS,
        ]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert output.is_file()
    difference = float(out.split("max abs difference: ")[1].split()[0])
    assert difference <= export_model.CHECK_TOLERANCE
    timings = out.split("seconds per image: ")[1].split()
    assert timings[0] == "pytorch" and timings[2] == "onnxruntime"
    assert float(timings[1]) > 0 and float(timings[3]) > 0
    assert "peak memory (MiB): pytorch " in out


def test_benchmark_needs_the_check_image(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        export_model.main(
            [
                "--config-file",
                "configs/tiny_cpu.yaml",
                "--vocabulary",
                "cat, dog",
                "--output",
                str(tmp_path / "x.onnx"),
                "--benchmark",
                "3",
                *OPTS,
            ]
        )
    assert exit_info.value.code == 2
    assert "--check IMAGE" in capsys.readouterr().err


def test_fast_inference_is_refused_with_the_reason(tmp_path, capsys):
    status = export_model.main(
        [
            "--config-file",
            "configs/tiny_cpu.yaml",
            "--vocabulary",
            "cat, dog",
            "--output",
            str(tmp_path / "x.onnx"),
            "--fast",
            *OPTS,
        ]
    )
    assert status == 2
    assert "cannot be exported" in capsys.readouterr().err
