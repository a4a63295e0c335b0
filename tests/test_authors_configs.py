"""The authors' own config files (their configs/config.yaml, convnextB_768.yaml, convnextL_768.yaml) load
unchanged and build SED as their code did. Copies of them are carried in tests/fixtures/authors_configs."""

import functools

import open_clip
import pytest
import torch
from conftest import FIXTURES
from torch import nn

AUTHORS_CONFIGS = FIXTURES / "authors_configs"


def authors_cfg(name, opts=()):
    from detectron2.config import get_cfg

    from sed import add_sed_config

    cfg = get_cfg()
    add_sed_config(cfg)
    cfg.merge_from_file(str(AUTHORS_CONFIGS / name))
    cfg.merge_from_list(list(opts))
    return cfg


@pytest.mark.parametrize("name", ["config.yaml", "convnextB_768.yaml", "convnextL_768.yaml"])
def test_authors_config_files_load_unchanged(name):
    cfg = authors_cfg(name)
    assert cfg.INPUT.COLOR_AUG_SSD is True  # set in their base config.yaml, inherited by B and L
    assert cfg.TEST.TOPK == 1


def _released_layout(keys):
    layout = {}
    for line in (FIXTURES / f"official_checkpoint_keys_{keys}.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, shape = line.split(" ", 1)
            layout[name] = tuple(eval(shape))
    return layout


@pytest.mark.parametrize(
    "name,keys,drop_path,head_dropout",
    [
        ("convnextB_768.yaml", "B", 0.0, 0.0),
        ("convnextL_768.yaml", "L", 0.1, 0.1),
    ],
)
def test_authors_configs_build_the_released_model(name, keys, drop_path, head_dropout, monkeypatch):
    """The released checkpoint layout, with the stochastic layers of the authors' open_clip model configs (built
    on the meta device; only the CLIP weights tag is replaced, as nothing can be downloaded here)."""
    from detectron2.modeling import META_ARCH_REGISTRY

    monkeypatch.setattr(open_clip, "create_model", functools.partial(open_clip.create_model, device="meta"))
    cfg = authors_cfg(name, ["MODEL.ENC.CLIP_PRETRAINED_WEIGHTS", ""])
    with torch.device("meta"):
        model = META_ARCH_REGISTRY.get(cfg.MODEL.META_ARCHITECTURE)(cfg)
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == _released_layout(keys)

    visual = model.sem_seg_head.predictor.clip_model.visual
    drop_paths = [m.drop_prob for m in visual.trunk.modules() if type(m).__name__ == "DropPath"]
    assert max(drop_paths, default=0.0) == pytest.approx(drop_path)
    dropouts = [m.p for m in visual.head.modules() if isinstance(m, nn.Dropout)]
    assert max(dropouts, default=0.0) == pytest.approx(head_dropout)
