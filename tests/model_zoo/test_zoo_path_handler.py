"""Zoo names wherever weights are taken: configs, detectron2's PathManager, OpenVocabSegmenter, train_net, demo."""

import io

import pytest
import torch
from conftest import REPO, load_tool
from detectron2.utils.file_io import PathManager
from zoo_server import ZooServer

from sed import OpenVocabSegmenter
from sed.config import load_config
from sed.engine import cli
from sed.model_zoo import MODEL_ZOO, weights_uri

OPTS = ["MODEL.PROMPT_ENSEMBLE_TYPE", "single", "SEED", "0"]
TINY = str(REPO / "configs" / "tiny_cpu.yaml")


@pytest.fixture(scope="module")
def tiny_checkpoint():
    """A checkpoint of the tiny SED with weights unlike its initialisation, and one of its tensors."""
    model = OpenVocabSegmenter(TINY, opts=[*OPTS, "SEED", "1"], device="cpu").model
    state = {k: v + 0.5 if v.is_floating_point() else v for k, v in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save({"model": state}, buffer)
    name, tensor = next((k, v) for k, v in state.items() if v.is_floating_point() and v.numel() > 1)
    return buffer.getvalue(), name, tensor


@pytest.fixture
def served(tiny_checkpoint, tmp_path, monkeypatch):
    monkeypatch.setenv("SED_HOME", str(tmp_path / "home"))
    server = ZooServer(tiny_checkpoint[0])
    monkeypatch.setitem(MODEL_ZOO, "tiny-test", server.entry())
    yield server
    server.stop()


def test_bare_names_become_zoo_uris_and_other_paths_stay():
    assert weights_uri("sed-b") == "sed://sed-b"
    assert weights_uri("sed-l") == "sed://sed-l"
    for other in ["./sed-b", "sed-b.pth", "clip-b", "https://host/sed-b", "", "output/model_final.pth"]:
        assert weights_uri(other) == other
    assert load_config(TINY, ["MODEL.WEIGHTS", "sed-b"]).MODEL.WEIGHTS == "sed://sed-b"


def test_path_manager_resolves_zoo_uris(served, tmp_path):
    path = PathManager.get_local_path("sed://tiny-test")
    assert path == str(tmp_path / "home" / "checkpoints" / "tiny-test.pth")
    assert PathManager.isfile("sed://tiny-test") and not PathManager.isfile("sed://no-such-model")


def test_segmenter_loads_weights_by_name(served, tiny_checkpoint):
    _, name, tensor = tiny_checkpoint
    segmenter = OpenVocabSegmenter(TINY, weights="tiny-test", opts=OPTS, device="cpu")
    assert segmenter.cfg.MODEL.WEIGHTS == "sed://tiny-test"
    assert torch.equal(segmenter.model.state_dict()[name], tensor)


def test_train_net_fetches_once_before_starting_processes(served, tmp_path):
    args = cli.build_parser().parse_args(
        [
            "--config-file",
            TINY,
            "--eval-only",
            "MODEL.WEIGHTS",
            "tiny-test",
            "MODEL.DEVICE",
            "cpu",
            "DATASETS.TEST",
            "()",
            "OUTPUT_DIR",
            str(tmp_path / "out"),
        ]
    )
    cfg = cli.load_config(args.config_file, args.opts)
    cli.preflight(cfg, args)
    assert (tmp_path / "home" / "checkpoints" / "tiny-test.pth").is_file()
    assert served.requests == [None]


def test_train_net_offline_is_one_line_and_exit_2(served, tmp_path, capsys):
    served.stop()
    code = cli.run(
        [
            "--config-file",
            TINY,
            "--eval-only",
            "MODEL.WEIGHTS",
            "tiny-test",
            "MODEL.DEVICE",
            "cpu",
            "OUTPUT_DIR",
            str(tmp_path / "out"),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "tiny-test.pth" in err and "SED_HOME" in err
    assert not (tmp_path / "out").exists()


def test_demo_offline_is_one_line_and_exit_2(served, tmp_path, capsys):
    served.stop()
    image = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (64, 48)).save(image)
    code = load_tool("demo").main(
        [
            "--config-file",
            TINY,
            "--input",
            str(image),
            "--vocabulary",
            "cat, dog",
            "--output",
            str(tmp_path / "out"),
            "--opts",
            *OPTS,
            "MODEL.WEIGHTS",
            "tiny-test",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "could not download tiny-test.pth" in err and "Traceback" not in err
