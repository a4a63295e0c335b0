"""No file read by this project runs code: every loading path gets a checkpoint (or config, cache file) whose
unpickling would create a file, and must refuse it in one line without that file ever appearing; genuine
Detectron / detectron2 .pkl checkpoints still load. (train_net's --eval-only and --resume paths:
tests/engine/test_engine_bad_inputs.py; the ADE20K index of datasets/: tests/data/test_prepare_datasets.py.)"""

import io
import pickle
from collections import OrderedDict

import numpy as np
import pytest
import torch
from conftest import REPO, load_cfg, load_tool, write_hostile_checkpoint
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model
from torch import nn

from sed.checkpoint.safe_load import UnsafeCheckpointError, load_pickle, torch_load

CODE_RAN = "CODE_RAN"
TINY_OPTS = ["MODEL.PROMPT_ENSEMBLE_TYPE", "single", "SEED", "0"]


@pytest.fixture
def marker(tmp_path):
    path = tmp_path / CODE_RAN
    yield path
    assert not path.exists(), "a file ran code while it was read"


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_weights_pickles_load_with_every_protocol(protocol):
    data = {
        "model": OrderedDict(w=np.arange(6, dtype=np.float32).reshape(2, 3), s=np.float64(2.5)),
        "__author__": "Detectron",
        "names": np.array(["a", None], dtype=object),
        "shape": (1, 2.0),
        "n": [3],
    }
    loaded = load_pickle(io.BytesIO(pickle.dumps(data, protocol=protocol)))
    np.testing.assert_array_equal(loaded["model"]["w"], data["model"]["w"])
    assert loaded["model"]["s"] == 2.5 and loaded["shape"] == (1, 2.0) and list(loaded["names"]) == ["a", None]


@pytest.mark.parametrize("suffix", [".pkl", ".pth"])
def test_readers_refuse_code(tmp_path, marker, suffix):
    path = write_hostile_checkpoint(tmp_path / f"evil{suffix}", marker)
    with pytest.raises(UnsafeCheckpointError, match=f"evil{suffix} names .*could run code") as error:
        (load_pickle if suffix == ".pkl" else torch_load)(str(path))
    assert "\n" not in str(error.value)


class _TwoLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)


def test_detectron2_checkpointer_still_reads_detectron_pkl_checkpoints(tmp_path):
    """The model zoo's .pkl format: {"model": numpy arrays, "__author__"}, pickled as by Python 2 (protocol 2)."""
    weights = {"fc.weight": np.arange(6, dtype=np.float32).reshape(2, 3), "fc.bias": np.ones(2, np.float32)}
    with open(tmp_path / "zoo.pkl", "wb") as f:
        pickle.dump({"model": weights, "__author__": "Detectron2 Model Zoo"}, f, protocol=2)
    model = _TwoLayers()
    DetectionCheckpointer(model).load(str(tmp_path / "zoo.pkl"))
    torch.testing.assert_close(model.fc.weight, torch.from_numpy(weights["fc.weight"]))


@pytest.mark.parametrize("suffix", [".pkl", ".pth"])
def test_detectron2_checkpointer_on_a_model_of_this_package(tmp_path, marker, suffix):
    """How detectron2's own tools and user code load weights: `build_model` + `DetectionCheckpointer`."""
    model = build_model(load_cfg("tiny_cpu.yaml", TINY_OPTS))
    path = write_hostile_checkpoint(tmp_path / f"evil{suffix}", marker)
    with pytest.raises(UnsafeCheckpointError, match="could run code"):
        DetectionCheckpointer(model).load(str(path))


@pytest.mark.parametrize("suffix", [".pkl", ".pth"])
def test_detectron2_checkpointer_refuses_non_finite_weights(tmp_path, suffix):
    """A model of NaN weights segments every image as one class: refused at load, with the tensors' names."""
    from sed.checkpoint.errors import NonFiniteCheckpointError

    weights = {"fc.weight": np.full((2, 3), np.inf, np.float32), "fc.bias": np.array([0, np.nan], np.float32)}
    if suffix == ".pkl":
        with open(tmp_path / "w.pkl", "wb") as f:
            pickle.dump({"model": weights, "__author__": "someone"}, f)
    else:
        torch.save({"model": {k: torch.from_numpy(v) for k, v in weights.items()}}, tmp_path / "w.pth")
    model = _TwoLayers()
    with pytest.raises(
        NonFiniteCheckpointError,
        match=rf"w\{suffix}: 2 weight tensor\(s\) hold NaN or Inf "
        r"\(fc.weight, fc.bias\)",
    ):
        DetectionCheckpointer(model).load(str(tmp_path / f"w{suffix}"))
    assert torch.isfinite(model.fc.weight).all()


def test_detectron2_checkpointer_refuses_pycls_files(tmp_path, marker):
    torch.save({"model_state": {}}, tmp_path / "net.pyth")
    with pytest.raises(UnsafeCheckpointError, match=r"\.pyth checkpoints are not read"):
        DetectionCheckpointer(_TwoLayers()).load(str(tmp_path / "net.pyth"))


@pytest.mark.parametrize("suffix", [".pkl", ".pth"])
def test_python_api(tmp_path, marker, suffix):
    from sed import OpenVocabSegmenter

    path = write_hostile_checkpoint(tmp_path / f"evil{suffix}", marker)
    with pytest.raises(UnsafeCheckpointError, match="could run code"):
        OpenVocabSegmenter("configs/tiny_cpu.yaml", weights=str(path), opts=TINY_OPTS, device="cpu")


def test_clip_weights_file(tmp_path, marker):
    """MODEL.ENC.CLIP_PRETRAINED_WEIGHTS, read by open_clip."""
    from sed import OpenVocabSegmenter

    path = write_hostile_checkpoint(tmp_path / "open_clip_pytorch_model.bin", marker)
    with pytest.raises(UnsafeCheckpointError, match="open_clip_pytorch_model.bin names .*could run code"):
        OpenVocabSegmenter(
            "configs/tiny_cpu.yaml", opts=[*TINY_OPTS, "MODEL.ENC.CLIP_PRETRAINED_WEIGHTS", str(path)], device="cpu"
        )


def test_demo(tmp_path, marker, capfd):
    from PIL import Image

    Image.new("RGB", (32, 24)).save(tmp_path / "a.png")
    path = write_hostile_checkpoint(tmp_path / "evil.pkl", marker)
    status = load_tool("demo").main(
        [
            "--config-file",
            "configs/tiny_cpu.yaml",
            "--input",
            str(tmp_path / "a.png"),
            "--output",
            str(tmp_path / "out"),
            "--opts",
            *TINY_OPTS,
            "MODEL.WEIGHTS",
            str(path),
        ]
    )
    lines = capfd.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "evil.pkl names" in lines[0] and "no image was processed" in lines[0]


def test_web_demo(tmp_path, marker, capfd):
    pytest.importorskip("gradio", reason="the browser demo needs the web extra: pip install -e .[web]")
    from sed.web.launch import main

    path = write_hostile_checkpoint(tmp_path / "evil.pth", marker)
    status = main(["--config-file", "configs/tiny_cpu.yaml", "--opts", *TINY_OPTS, "MODEL.WEIGHTS", str(path)])
    lines = capfd.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "evil.pth names" in lines[0]


def test_swin_converter(tmp_path, marker):
    path = write_hostile_checkpoint(tmp_path / "swin.pth", marker)
    with pytest.raises(SystemExit, match=r"^error: .*swin.pth cannot be converted .*could run code"):
        load_tool("convert_swin_to_d2").main([str(path), str(tmp_path / "out.pth")])
    assert not (tmp_path / "out.pth").exists()


def test_text_embedding_cache(tmp_path, marker, caplog):
    import open_clip

    from sed.modeling.sed.text_embeddings import TextEmbeddingCache

    torch.manual_seed(0)
    clip_model = open_clip.create_model("sed_tiny_convnext", pretrained=None).eval()
    expected = TextEmbeddingCache("sed_tiny_convnext", str(tmp_path)).get(clip_model, ["cat"], ["a {}."])
    [cached] = tmp_path.glob("*.pt")
    write_hostile_checkpoint(cached, marker)
    again = TextEmbeddingCache("sed_tiny_convnext", str(tmp_path)).get(clip_model, ["cat"], ["a {}."])
    torch.testing.assert_close(again, expected)
    assert "cannot be used" in caplog.text and "recomputing" in caplog.text


def test_config_yaml_tags(tmp_path, marker):
    from sed.config import load_config

    config = tmp_path / "evil.yaml"
    config.write_text(
        f"_BASE_: {REPO / 'configs' / 'tiny_cpu.yaml'}\n"
        f"OUTPUT_DIR: !!python/object/apply:builtins.open ['{marker}', 'w']\n"
    )
    with pytest.raises(ValueError, match="evil.yaml holds a YAML tag that builds Python objects") as error:
        load_config(str(config))
    assert "\n" not in str(error.value)
