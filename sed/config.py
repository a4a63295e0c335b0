"""The project's config: `add_sed_config` declares every key, in three owners (the keys every model may read
here, `add_common_config`; SED's, `sed.modeling.sed.config`; ECENet's, `sed.modeling.ecenet.config`); no model
reads another model's keys. `load_config` is the one way to read a config file (tools/train_net.py, eval.sh,
the predictor, the demo, the benchmarks)."""

import os
import re

import yaml
from detectron2.config import get_cfg

from .data.datasets import register_custom_datasets
from .model_zoo import weights_uri
from .modeling.ecenet.config import add_ecenet_config
from .modeling.sed.config import add_sed_model_config
from .utils.class_names import REPO_ROOT
from .utils.config_bases import ConfigLoopError, config_chain
from .utils.messages import one_line


def load_config(config_file, opts=()):
    """The (unfrozen) project config: detectron2's defaults + every key of the project, from `config_file` (a
    relative path is looked up in the working directory, then in the repository root) and ["KEY", "VALUE", ...]
    overrides; the datasets of DATASETS.CUSTOM are registered.

    Raises:
        FileNotFoundError: no such config file (or base config, or dataset spec file).
        ValueError: one line saying what is wrong and how to fix it (unknown key, odd overrides, bad YAML or value,
            a YAML tag that would build Python objects, a _BASE_ that cannot be read, a `_BASE_` chain that loops).
    """
    candidates = [config_file] if os.path.isabs(config_file) else [config_file, os.path.join(REPO_ROOT, config_file)]
    path = next((c for c in candidates if os.path.isfile(c)), None)
    if path is None:
        raise FileNotFoundError(
            f"config file {config_file!r} not found (also looked in {REPO_ROOT}): pass the path "
            "of a yaml file, e.g. configs/convnextB_768.yaml"
        )
    cfg = get_cfg()
    add_sed_config(cfg)
    try:
        config_chain(path)  # a _BASE_ loop or a missing base: one line, not detectron2's recursion
        # detectron2 allows unsafe YAML by default, whose tags (!!python/object/apply:...) run code when read
        cfg.merge_from_file(path, allow_unsafe=False)
        cfg.merge_from_list(list(opts or []))
    except yaml.constructor.ConstructorError as e:
        raise ValueError(
            f"config file {config_file} holds a YAML tag that builds Python objects "
            f"({one_line(e.problem)}): refusing it, since reading it could run code; write plain "
            "values (numbers, strings, lists)"
        ) from e
    except yaml.YAMLError as e:
        raise ValueError(f"config file {config_file} is not valid YAML ({one_line(e)})") from e
    except (ConfigLoopError, FileNotFoundError):  # one line already, naming the files
        raise
    except OSError as e:  # the file itself exists: a _BASE_ of it is missing, a folder, or unreadable
        raise ValueError(
            f"config file {config_file}: its _BASE_ {e.filename} cannot be read ({e.strerror}): fix "
            "the path (relative paths are relative to the file that names them)"
        ) from e
    except AttributeError as e:  # yacs merging a YAML scalar or list as if it were a mapping
        raise ValueError(
            f"config file {config_file} (or a _BASE_ of it) does not hold a mapping of config keys: "
            "write KEY: value lines, as in configs/quickstart.yaml"
        ) from e
    except (KeyError, AssertionError, ValueError, TypeError) as e:  # how yacs reports unknown keys and bad values
        message = one_line(e.args[0] if e.args else e)
        key = re.search(r"Non-existent (?:config )?key: (\S+)", message)
        if key:
            raise ValueError(
                f"config key {key.group(1)} does not exist: check its spelling (the project's keys "
                "are in sed/config.py, the others are detectron2's defaults)"
            ) from e
        if "odd length" in message:
            raise ValueError(
                "config overrides must come in KEY VALUE pairs, e.g. SOLVER.MAX_ITER 1000 MODEL.WEIGHTS model.pth"
            ) from e
        raise ValueError(f"invalid config ({message}): fix the value in {config_file} or in the overrides") from e
    register_custom_datasets(cfg)
    cfg.MODEL.WEIGHTS = weights_uri(cfg.MODEL.WEIGHTS)  # a zoo name (sed-b) -> sed://sed-b, downloaded on load
    return cfg


def add_sed_config(cfg):
    """Declares every key of the project on top of detectron2's defaults: the common keys, then each model's
    (a model's own `add_*_config`, called here: the registration of its keys)."""
    add_common_config(cfg)
    add_sed_model_config(cfg)
    add_ecenet_config(cfg)


def add_common_config(cfg):
    """Declares the keys every model may read: the data pipeline, the solver, sliding-window and multi-scale
    inference (sed/modeling/inference.py), the evaluation suite, custom datasets."""
    # ---------------------------------------------------------------- input pipeline
    cfg.INPUT.DATASET_MAPPER_NAME = "mask_former_semantic"  # training mapper; "mask_former_semantic" = SED's
    cfg.INPUT.COLOR_AUG_SSD = False  # SSD-style photometric distortion in training
    cfg.INPUT.CROP.SINGLE_CATEGORY_MAX_AREA = 1.0  # re-draw a crop while one class covers more than this share
    cfg.INPUT.SIZE_DIVISIBILITY = -1  # pad training images to a multiple of this (-1: no padding)
    cfg.INPUT.RESIZE_RATIO_RANGE = ()  # (lo, hi): resize by a random ratio of RESIZE_BASE_SCALE, not MIN_SIZE_TRAIN
    cfg.INPUT.RESIZE_BASE_SCALE = (2048, 512)  # (long, short) side limits at ratio 1 of RESIZE_RATIO_RANGE

    # ---------------------------------------------------------------- optimizer
    cfg.SOLVER.OPTIMIZER = "ADAMW"  # "ADAMW" or "SGD"
    cfg.SOLVER.WEIGHT_DECAY_EMBED = 0.0  # weight decay of embedding parameters
    cfg.SOLVER.ACCUMULATE_STEPS = 1  # micro-batches per step: IMS_PER_BATCH is split into this many (same gradient)
    cfg.SOLVER.MAX_CONSECUTIVE_NONFINITE_STEPS = 20  # skipped non-finite steps in a row tolerated before stopping
    # Poly schedule of detectron2.projects.deeplab's WarmupPolyLR (SOLVER.LR_SCHEDULER_NAME "WarmupPolyLR").
    cfg.SOLVER.POLY_LR_POWER = 0.9  # lr factor (1 - iter / max_iter) ** power after warm-up
    cfg.SOLVER.POLY_LR_CONSTANT_ENDING = 0.0  # lr factor floor at the end of the schedule

    # ---------------------------------------------------------------- test
    cfg.TEST.SLIDING_WINDOW = False  # sliding-window inference
    cfg.TEST.SLIDING_WINDOW_SIZE = 768  # window size in pixels
    cfg.TEST.SLIDING_WINDOW_STRIDE = 512  # window stride in pixels
    # (h, w) window and stride; empty = the square TEST.SLIDING_WINDOW_SIZE / SLIDING_WINDOW_STRIDE
    cfg.TEST.SLIDING_WINDOW_SIZE_HW = []
    cfg.TEST.SLIDING_WINDOW_STRIDE_HW = []  # (h, w) stride; empty = the square TEST.SLIDING_WINDOW_STRIDE
    # image scales of the multi-scale test when TEST.AUG.ENABLED (ratios of the test-size image; + TEST.AUG.FLIP)
    cfg.TEST.AUG.SCALES = [0.5, 0.75, 1.0, 1.25, 1.5, 1.75]
    # inference: "fp32", or "bf16"/"fp16" autocast (faster, approximate; SED reads it, docs/PERFORMANCE.md)
    cfg.TEST.PRECISION = "fp32"
    # what eval.sh evaluates: "auto" (open-vocabulary models: the six benchmarks, other models: DATASETS.TEST),
    # "open_vocabulary" or "config" (each dataset of DATASETS.TEST); see sed/engine/eval_suite.py
    cfg.TEST.EVAL_SUITE = "auto"

    # ---------------------------------------------------------------- data
    cfg.DATASETS.CUSTOM = ()  # dataset spec files (YAML/JSON) to register, see sed/data/datasets/register_custom.py
