"""Config keys of SED, with the same names and meanings as the authors' configs; defaults are the paper's; and
`load_config`, the one way to read a config file (tools/train_net.py, eval.sh, the predictor and the demo)."""
import os
import re

import yaml
from detectron2.config import CfgNode as CN
from detectron2.config import get_cfg

from .data.datasets import register_custom_datasets
from .model_zoo import weights_uri
from .modeling.ecenet.config import add_ecenet_config
from .utils.class_names import REPO_ROOT


def load_config(config_file, opts=()):
    """The (unfrozen) project config: detectron2's defaults + every key of the project, from `config_file` (a
    relative path is looked up in the working directory, then in the repository root) and ["KEY", "VALUE", ...]
    overrides; the datasets of DATASETS.CUSTOM are registered.

    Raises:
        FileNotFoundError: no such config file (or dataset spec file).
        ValueError: one line saying what is wrong and how to fix it (unknown key, odd overrides, bad YAML or value).
    """
    candidates = [config_file] if os.path.isabs(config_file) else [config_file, os.path.join(REPO_ROOT, config_file)]
    path = next((c for c in candidates if os.path.isfile(c)), None)
    if path is None:
        raise FileNotFoundError(f"config file {config_file!r} not found (also looked in {REPO_ROOT}): pass the path "
                                "of a yaml file, e.g. configs/convnextB_768.yaml")
    cfg = get_cfg()
    add_sed_config(cfg)
    try:
        cfg.merge_from_file(path)
        cfg.merge_from_list(list(opts or []))
    except yaml.YAMLError as e:
        raise ValueError(f"config file {config_file} is not valid YAML ({_one_line(e)})") from e
    except (KeyError, AssertionError, ValueError, TypeError) as e:  # how yacs reports unknown keys and bad values
        message = _one_line(e.args[0] if e.args else e)
        key = re.search(r"Non-existent (?:config )?key: (\S+)", message)
        if key:
            raise ValueError(f"config key {key.group(1)} does not exist: check its spelling (the project's keys "
                             "are in sed/config.py, the others are detectron2's defaults)") from e
        if "odd length" in message:
            raise ValueError("config overrides must come in KEY VALUE pairs, e.g. SOLVER.MAX_ITER 1000 "
                             "MODEL.WEIGHTS model.pth") from e
        raise ValueError(f"invalid config ({message}): fix the value in {config_file} or in the overrides") from e
    register_custom_datasets(cfg)
    cfg.MODEL.WEIGHTS = weights_uri(cfg.MODEL.WEIGHTS)  # a zoo name (sed-b) -> sed://sed-b, downloaded on load
    return cfg


def _one_line(message):
    return " ".join(str(message).split())


def add_sed_config(cfg):
    """Declares every key SED, its data pipeline and its engine read, on top of detectron2's defaults."""
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
    cfg.SOLVER.BACKBONE_MULTIPLIER = 0.0  # lr multiplier of a detectron2 backbone (SED has none: the CLIP is its encoder)
    cfg.SOLVER.CLIP_MULTIPLIER = 0.01  # lr multiplier of the CLIP image tower
    cfg.SOLVER.CLIP_GRADIENT_CHECKPOINTING = False  # recompute CLIP stage activations in backward to save memory
    cfg.SOLVER.ACCUMULATE_STEPS = 1  # micro-batches per step: IMS_PER_BATCH is split into this many (same gradient)
    cfg.SOLVER.MAX_CONSECUTIVE_NONFINITE_STEPS = 20  # skipped non-finite steps in a row tolerated before stopping

    # ---------------------------------------------------------------- CLIP encoder
    cfg.MODEL.ENC = CN()
    cfg.MODEL.ENC.CLIP_MODEL_NAME = "convnext_base_w_320"  # open_clip model name (a timm ConvNeXt visual tower)
    # open_clip pretrained tag, or path to a local open_clip weights file, or "" for random initialisation
    cfg.MODEL.ENC.CLIP_PRETRAINED_WEIGHTS = "laion_aesthetic_s13b_b82k"
    # stochastic depth of the CLIP ConvNeXt trunk in training (< 0: the authors' value, 0.0 for
    # convnext_base_w_320 and 0.1 for convnext_large_d_320; other models: their open_clip config's)
    cfg.MODEL.ENC.DROP_PATH_RATE = -1.0
    cfg.MODEL.ENC.HEAD_DROPOUT = -1.0  # dropout of the CLIP projection head in training (< 0: as DROP_PATH_RATE)
    cfg.MODEL.ENC.TEXT_EMBEDDING_CACHE_DIR = "~/.cache/sed/text_embeddings"  # disk cache of class embeddings ("" = off)
    cfg.MODEL.CLIP_PIXEL_MEAN = [122.7709383, 116.7460125, 104.09373615]  # CLIP normalisation mean, RGB 0..255
    cfg.MODEL.CLIP_PIXEL_STD = [68.5005327, 66.6321579, 70.3231630]  # CLIP normalisation std, RGB 0..255
    cfg.MODEL.CLIP_RESOLUTION = (768, 768)  # every image is resized to this before the CLIP encoder
    cfg.MODEL.PROMPT_ENSEMBLE_TYPE = "imagenet"  # prompt templates: "imagenet" (80), "single"

    # ---------------------------------------------------------------- SED head (gradual fusion decoder)
    head = cfg.MODEL.SEM_SEG_HEAD
    head.TRAIN_CLASS_JSON = "datasets/coco.json"  # class names (JSON list) of the training vocabulary
    head.TEST_CLASS_JSON = "datasets/coco.json"  # class names of the test vocabulary ("" = the test dataset's)
    head.DECODER_DIMS = [64, 32, 16]  # output channels of fusion stages 1..3
    head.DECODER_GUIDANCE_DIMS = [512, 256, 128]  # channels of res4, res3, res2 (the appearance guidance inputs)
    head.DECODER_GUIDANCE_PROJ_DIMS = [32, 16, 8]  # appearance and cost guidance channels of stages 1..3
    head.NUM_HEADS = 4  # heads of the linear class attention
    head.HIDDEN_DIMS = 128  # channels of the cost embedding (conv1 output)
    head.POOLING_SIZES = [2, 2]  # class-attention average pooling (eval.sh uses [1, 1], as the authors')
    head.KERNEL_SIZE = [9, 9, 9]  # depthwise kernel of the decoder's ConvNeXt blocks, per stage (or one int)
    head.CNEXT_TYPE = "V1"  # decoder block: "V1" = ConvNeXt block (the only kind SED's released models use)
    # True (authors'): the decoder ConvNeXt blocks' LayerNorm takes SOLVER.WEIGHT_DECAY (their own LayerNorm class
    # escaped their norm rule); False: SOLVER.WEIGHT_DECAY_NORM like the other normalisation layers
    head.CNEXT_NORM_WEIGHT_DECAY = True
    head.CLIP_FINETUNE = "full"  # CLIP image tower training: "full", "none" (frozen)
    head.CLASS_CHUNK_SIZE = 0  # inference: class maps per chunk of the decoder's per-class work (0 = automatic)
    head.LOSS_EXCLUDE_IGNORED = False  # True: drop ignored pixels from the BCE mean (authors: kept, all-zero target)

    # ---------------------------------------------------------------- test
    cfg.TEST.SLIDING_WINDOW = False  # sliding-window inference
    cfg.TEST.SLIDING_WINDOW_SIZE = 768  # window size in pixels
    cfg.TEST.SLIDING_WINDOW_STRIDE = 512  # window stride in pixels
    cfg.TEST.FAST_INFERENCE = False  # category early rejection
    cfg.TEST.TOPK = 1  # classes kept per pixel by category early rejection (authors' default; the paper's fast: 8)
    # True: rejection scores every class through head0 composed with the cost embedding (decoder ~2x faster at
    # 847 classes; scores equal to ~1e-6, so near-ties may be decided unlike the authors'); False: their order
    cfg.TEST.FAST_COMPOSED_SCORES = False
    # False (authors'): the 1/4-resolution map is cut to the input's size before the resize, which stretches
    # inputs under 192 px on a side (detectron2's sem_seg_postprocess); True: the whole map is resized
    cfg.TEST.ALIGNED_POSTPROCESS = False
    # what eval.sh evaluates: "auto" (open-vocabulary models: the six benchmarks, other models: DATASETS.TEST),
    # "open_vocabulary" or "config" (each dataset of DATASETS.TEST); see sed/engine/eval_suite.py
    cfg.TEST.EVAL_SUITE = "auto"

    # ---------------------------------------------------------------- data
    cfg.DATASETS.CUSTOM = ()  # dataset spec files (YAML/JSON) to register, see sed/data/datasets/register_custom.py

    add_authors_compatibility_keys(cfg)
    add_ecenet_config(cfg)


def add_authors_compatibility_keys(cfg):
    """Keys of the authors' config files (configs/config.yaml, convnextB_768.yaml, convnextL_768.yaml of their
    code, largely inherited from CAT-Seg) that SED does not read, declared so that those files load unchanged.
    Changing them changes nothing; the project's own configs do not set them."""
    head = cfg.MODEL.SEM_SEG_HEAD
    # Read, to check it: "" (ours) or the authors' "Convnext-B" / "Convnext-L", which must then agree with
    # MODEL.ENC.CLIP_MODEL_NAME (the model it named in their code); other values (CAT-Seg's ViTs) are refused.
    head.CLIP_PRETRAINED = ""
    head.TRAIN_CLASS_INDEXES = "datasets/coco/coco_stuff/split/seen_indexes.json"  # CAT-Seg's seen/unseen split
    head.TEST_CLASS_INDEXES = "datasets/coco/coco_stuff/split/unseen_indexes.json"  # CAT-Seg's seen/unseen split
    head.PROMPT_DEPTH = 0  # visual prompt tuning depth (CAT-Seg's ViT; none in SED)
    head.PROMPT_LENGTH = 0  # visual prompt tuning length (CAT-Seg's ViT; none in SED)
    head.TEXT_GUIDANCE_DIM = 0  # text guidance channels into class attention (off in SED)
    head.TEXT_GUIDANCE_PROJ_DIM = 0  # projected text guidance channels (off in SED)
    head.APPEARANCE_GUIDANCE_DIM = 1024  # channels of res5, which SED's decoder does not read
    head.APPEARANCE_GUIDANCE_PROJ_DIM = 128  # projection of res5 (not in SED's decoder)
    head.NUM_LAYERS = 2  # CAT-Seg's aggregation layers; SED has one class-attention layer per stage
    head.FEATURE_RESOLUTION = [24, 24]  # cost-map size; in SED it follows from MODEL.CLIP_RESOLUTION / 32
    head.WINDOW_SIZES = 12  # Swin window of CAT-Seg's spatial aggregation (not in SED)
    head.ATTENTION_TYPE = "linear"  # SED's class attention is linear attention in every config
    cfg.MODEL.PROMPT_ENSEMBLE = False  # superseded by MODEL.PROMPT_ENSEMBLE_TYPE in their code too
    cfg.MODEL.ENC.EMBED_DIM = 768  # declared, read by nothing in the authors' code
    cfg.MODEL.MASK_FORMER = CN()
    cfg.MODEL.MASK_FORMER.SIZE_DIVISIBILITY = 32  # batch padding in their model; no-op for 768 crops
    cfg.DATASETS.VAL_ALL = ("coco_2017_val_all_stuff_sem_seg",)  # extra test sets, read by nothing
    # The Swin backbone of their base config.yaml, built and deleted unused by their SED.
    cfg.MODEL.SWIN = CN()
    cfg.MODEL.SWIN.PRETRAIN_IMG_SIZE = 224  # Swin pre-training resolution
    cfg.MODEL.SWIN.PATCH_SIZE = 4  # Swin patch size
    cfg.MODEL.SWIN.EMBED_DIM = 96  # Swin stage-1 channels
    cfg.MODEL.SWIN.DEPTHS = [2, 2, 6, 2]  # Swin blocks per stage
    cfg.MODEL.SWIN.NUM_HEADS = [3, 6, 12, 24]  # Swin heads per stage
    cfg.MODEL.SWIN.WINDOW_SIZE = 7  # Swin window
    cfg.MODEL.SWIN.MLP_RATIO = 4.0  # Swin MLP expansion
    cfg.MODEL.SWIN.QKV_BIAS = True  # Swin qkv bias
    cfg.MODEL.SWIN.QK_SCALE = None  # Swin attention scale
    cfg.MODEL.SWIN.DROP_RATE = 0.0  # Swin dropout
    cfg.MODEL.SWIN.ATTN_DROP_RATE = 0.0  # Swin attention dropout
    cfg.MODEL.SWIN.DROP_PATH_RATE = 0.3  # Swin stochastic depth
    cfg.MODEL.SWIN.APE = False  # Swin absolute position embedding
    cfg.MODEL.SWIN.PATCH_NORM = True  # Swin patch-embedding norm
    cfg.MODEL.SWIN.OUT_FEATURES = ["res2", "res3", "res4", "res5"]  # Swin outputs  # ECENet's keys: one config serves both models
