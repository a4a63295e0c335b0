import os

import pytest
import torch
from conftest import REPO, load_cfg, load_tool

from sed.config import load_config


def test_package_exports_add_sed_config():
    import sed
    from sed import add_sed_config

    assert callable(add_sed_config) and sed.add_sed_config is add_sed_config


@pytest.mark.parametrize(
    "name,clip,weights,guidance,drop_path",
    [
        ("convnextB_768.yaml", "convnext_base_w_320", "laion_aesthetic_s13b_b82k", [512, 256, 128], 0.0),
        ("convnextL_768.yaml", "convnext_large_d_320", "laion2b_s29b_b131k_ft_soup", [768, 384, 192], 0.1),
    ],
)
def test_paper_configs_load_with_paper_settings(name, clip, weights, guidance, drop_path):
    """The paper's recipe, as the authors' config files give it (their files: tests/test_authors_configs.py)."""
    cfg = load_cfg(name)
    assert cfg.MODEL.META_ARCHITECTURE == "SED"
    assert cfg.MODEL.ENC.CLIP_MODEL_NAME == clip
    assert cfg.MODEL.ENC.CLIP_PRETRAINED_WEIGHTS == weights
    assert list(cfg.MODEL.SEM_SEG_HEAD.DECODER_GUIDANCE_DIMS) == guidance
    assert list(cfg.MODEL.SEM_SEG_HEAD.DECODER_DIMS) == [64, 32, 16]
    assert list(cfg.MODEL.SEM_SEG_HEAD.KERNEL_SIZE) == [9, 9, 9]
    assert cfg.MODEL.ENC.DROP_PATH_RATE == cfg.MODEL.ENC.HEAD_DROPOUT == pytest.approx(drop_path)
    assert cfg.INPUT.COLOR_AUG_SSD is True
    assert cfg.SOLVER.IMS_PER_BATCH == 4 and cfg.SOLVER.MAX_ITER == 80000
    assert cfg.SOLVER.BASE_LR == pytest.approx(2e-4) and cfg.SOLVER.CLIP_MULTIPLIER == pytest.approx(0.01)
    assert cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE == pytest.approx(0.01)
    assert cfg.SOLVER.CLIP_GRADIENTS.CLIP_TYPE == "full_model"


def test_config_mistakes_are_one_line_saying_what_to_do(tmp_path):
    with pytest.raises(ValueError, match="config key MODEL.SEM_SEG_HEAD.NOT_A_KEY does not exist: check its spelling"):
        load_config("configs/convnextB_768.yaml", ["MODEL.SEM_SEG_HEAD.NOT_A_KEY", "1"])
    bad = tmp_path / "bad.yaml"
    bad.write_text("MODEL:\n  ENC:\n    CLIP_MODEL_NAMES: x\n")
    with pytest.raises(ValueError, match="config key MODEL.ENC.CLIP_MODEL_NAMES does not exist"):
        load_config(str(bad))
    with pytest.raises(ValueError, match="KEY VALUE pairs"):
        load_config("configs/convnextB_768.yaml", ["TEST.TOPK"])
    with pytest.raises(FileNotFoundError, match="'configs/nope.yaml' not found"):
        load_config("configs/nope.yaml")


def test_relative_config_paths_also_resolve_from_the_repository_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_config("configs/convnextB_768.yaml").MODEL.META_ARCHITECTURE == "SED"


@pytest.mark.parametrize("owner", ["config.py", "modeling/sed/config.py", "modeling/ecenet/config.py"])
def test_every_key_has_a_comment(repo_root, owner):
    """Every key declared by the three owners carries a one-line comment (the config is the documentation)."""
    lines = (repo_root / "sed" / owner).read_text().splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if (
            "=" in stripped
            and stripped.split("=")[0].strip().startswith(("cfg.", "head.", "ece."))
            and "CN()" not in stripped
        ):
            assert "#" in stripped or lines[i - 1].strip().startswith("#"), f"no comment: {stripped}"


def _declared_keys(add_config):
    """The dotted keys `add_config` adds to detectron2's defaults."""
    from detectron2.config import CfgNode, get_cfg

    def flatten(node, prefix=""):
        return {
            k
            for name, v in node.items()
            for k in (flatten(v, f"{prefix}{name}.") if isinstance(v, CfgNode) else {f"{prefix}{name}"})
        }

    cfg = get_cfg()
    before = flatten(cfg)
    add_config(cfg)
    return flatten(cfg) - before


def test_the_three_owners_declare_disjoint_keys_and_no_model_reads_another_models():
    from sed.config import add_common_config, add_sed_config
    from sed.modeling.ecenet.config import add_ecenet_config
    from sed.modeling.sed.config import add_sed_model_config

    common, sed_keys, ecenet = (_declared_keys(f) for f in (add_common_config, add_sed_model_config, add_ecenet_config))
    assert not (common & sed_keys) and not (common & ecenet) and not (sed_keys & ecenet)
    assert _declared_keys(add_sed_config) == common | sed_keys | ecenet
    assert "SOLVER.BACKBONE_MULTIPLIER" in ecenet and "TEST.SLIDING_WINDOW_SIZE_HW" in common
    for model, others in (("sed", ecenet), ("ecenet", sed_keys)):
        source = "\n".join(p.read_text() for p in (REPO / "sed" / "modeling" / model).rglob("*.py"))
        assert not {key for key in others if key in source}, model


def test_ecenet_trains_its_backbone_unless_a_config_says_otherwise():
    from detectron2.config import get_cfg

    from sed.modeling.ecenet.config import add_ecenet_config

    cfg = get_cfg()
    add_ecenet_config(cfg)
    assert cfg.SOLVER.BACKBONE_MULTIPLIER == 1.0


def test_tiny_open_clip_config_builds():
    import open_clip

    import sed  # noqa: F401  (registers the package's model configs)

    model = open_clip.create_model("sed_tiny_convnext", pretrained=None)
    tokens = open_clip.get_tokenizer("sed_tiny_convnext")(["a photo of a cat."])
    with torch.no_grad():
        text = model.encode_text(tokens)
        image = model.encode_image(torch.zeros(1, 3, 64, 64))
    assert text.shape == (1, 64) and image.shape == (1, 64)


def test_a_base_chain_that_loops_is_one_line_naming_its_files(tmp_path):
    (tmp_path / "a.yaml").write_text("_BASE_: b.yaml\nSEED: 1\n")
    (tmp_path / "b.yaml").write_text("_BASE_: [other.yaml, c.yaml]\n")  # a list of bases, as fvcore allows
    (tmp_path / "other.yaml").write_text("SEED: 2\n")
    (tmp_path / "c.yaml").write_text("_BASE_: a.yaml\n")
    with pytest.raises(ValueError) as error:
        load_config(str(tmp_path / "a.yaml"))
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("the _BASE_ chain of the config loops: ")
    files = [f.rsplit("/", 1)[-1] for f in message.split(": ")[1].split(" -> ")]
    assert files == ["a.yaml", "b.yaml", "c.yaml", "a.yaml"]
    (tmp_path / "self.yaml").write_text("_BASE_: ./self.yaml\n")
    with pytest.raises(ValueError, match="loops: .*self.yaml -> .*self.yaml: remove or change"):
        load_config(str(tmp_path / "self.yaml"))


def test_a_missing_base_names_the_config_that_names_it(tmp_path):
    (tmp_path / "child.yaml").write_text("_BASE_: parent.yaml\n")
    with pytest.raises(FileNotFoundError, match=r"parent.yaml' not found \(the _BASE_ of .*child.yaml\)"):
        load_config(str(tmp_path / "child.yaml"))


def test_a_base_named_twice_without_a_loop_loads(tmp_path, repo_root):
    (tmp_path / "left.yaml").write_text(f"_BASE_: {repo_root / 'configs' / 'tiny_cpu.yaml'}\n")
    (tmp_path / "right.yaml").write_text(f"_BASE_: {repo_root / 'configs' / 'tiny_cpu.yaml'}\nSEED: 7\n")
    (tmp_path / "both.yaml").write_text("_BASE_: [left.yaml, right.yaml]\n")
    assert load_config(str(tmp_path / "both.yaml")).SEED == 7


def _loop(tmp_path):
    (tmp_path / "a.yaml").write_text("_BASE_: b.yaml\n")
    (tmp_path / "b.yaml").write_text("_BASE_: a.yaml\n")
    return str(tmp_path / "a.yaml")


def _train_net(config, tmp_path):
    from sed.engine.cli import run

    return run(["--config-file", config, "OUTPUT_DIR", str(tmp_path / "out")])


def _eval_sh(config, tmp_path):
    import subprocess
    import sys

    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        ["sh", str(REPO / "eval.sh"), config, "1", str(tmp_path / "out")], env=env, capture_output=True, text=True
    )
    print(proc.stdout, end="")
    print(proc.stderr, end="", file=sys.stderr)
    return proc.returncode


def _demo(config, tmp_path):
    (tmp_path / "x.png").write_bytes(b"")
    return load_tool("demo").main(
        ["--config-file", config, "--input", str(tmp_path / "x.png"), "--output", str(tmp_path / "out")]
    )


def _web_demo(config, tmp_path):
    pytest.importorskip("gradio", reason="the browser demo needs the web extra: pip install -e .[web]")
    from sed.web.launch import main

    return main(["--config-file", config])


def _predictor(config, tmp_path):
    import sys

    from sed import OpenVocabSegmenter

    try:
        OpenVocabSegmenter(config)
    except ValueError as e:  # the API raises; its message is the line
        print(e, file=sys.stderr)
        return 2
    return 0


@pytest.mark.parametrize(
    "entry_point", [_train_net, _eval_sh, _demo, _web_demo, _predictor], ids=lambda f: f.__name__.strip("_")
)
def test_every_entry_point_names_a_base_loop_in_one_line(entry_point, tmp_path, capfd):
    config = _loop(tmp_path)
    code = entry_point(config, tmp_path)
    err = capfd.readouterr().err
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err[-2000:]
    assert "_BASE_ chain of the config loops" in lines[0] and "a.yaml -> " in lines[0]
    assert not (tmp_path / "out").exists()
