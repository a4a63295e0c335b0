"""tools/export_model.py traced on CUDA, and the exported model run by onnxruntime's CUDA provider against its CPU
provider. Marked `gpu`: skipped without CUDA, and without onnxruntime-gpu (the CUDA provider)."""

import numpy as np
import pytest
from conftest import load_tool
from PIL import Image

ort = pytest.importorskip("onnxruntime", reason="the export extra is not installed: pip install -e .[export]")
export_model = load_tool("export_model")

pytestmark = pytest.mark.gpu
OPTS = ["--opts", "MODEL.PROMPT_ENSEMBLE_TYPE", "single", "SEED", "0"]


def test_export_on_the_device_and_the_cuda_provider(gpu_device, tmp_path, capsys):
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime has no CUDA provider: pip install onnxruntime-gpu")
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
            "--device",
            gpu_device,
            *OPTS,
        ]
    )
    out = capsys.readouterr().out
    assert status == 0, out
    assert float(out.split("max abs difference: ")[1].split()[0]) <= export_model.CHECK_TOLERANCE
    feed = None
    results = []
    for provider in ["CPUExecutionProvider", "CUDAExecutionProvider"]:
        session = ort.InferenceSession(str(output), providers=[provider])
        assert session.get_providers()[0] == provider
        if feed is None:
            first = session.get_inputs()[0]
            feed = {first.name: np.asarray(Image.open(image), dtype=np.float32).transpose(2, 0, 1)[None]}
        results.append(session.run(None, feed)[0])
    np.testing.assert_allclose(results[1], results[0], atol=export_model.CHECK_TOLERANCE)
