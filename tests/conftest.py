import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope="session")
def repo_root():
    return REPO


def load_cfg(config_file, opts=()):
    """A frozen detectron2 config from one of the project's yaml files plus overrides."""
    from detectron2.config import get_cfg

    from sed import add_sed_config

    cfg = get_cfg()
    add_sed_config(cfg)
    cfg.merge_from_file(str(REPO / "configs" / config_file))
    cfg.merge_from_list(list(opts))
    cfg.freeze()
    return cfg
