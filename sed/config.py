"""Config keys of SED, with the same names and meanings as the authors' configs; defaults are the paper's."""
from detectron2.config import CfgNode as CN

from .modeling.ecenet.config import add_ecenet_config


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
    cfg.MODEL.ENC.TEXT_EMBEDDING_CACHE_DIR = "~/.cache/sed/text_embeddings"  # disk cache of class embeddings ("" = off)
    cfg.MODEL.CLIP_PIXEL_MEAN = [122.7709383, 116.7460125, 104.09373615]  # CLIP normalisation mean, RGB 0..255
    cfg.MODEL.CLIP_PIXEL_STD = [68.5005327, 66.6321579, 70.3231630]  # CLIP normalisation std, RGB 0..255
    cfg.MODEL.CLIP_RESOLUTION = (768, 768)  # every image is resized to this before the CLIP encoder
    cfg.MODEL.PROMPT_ENSEMBLE = False  # authors' key, kept for config compatibility; templates follow PROMPT_ENSEMBLE_TYPE
    cfg.MODEL.PROMPT_ENSEMBLE_TYPE = "imagenet"  # prompt templates: "imagenet" (80), "single"

    # ---------------------------------------------------------------- SED head (gradual fusion decoder)
    head = cfg.MODEL.SEM_SEG_HEAD
    head.TRAIN_CLASS_JSON = "datasets/coco.json"  # class names (JSON list) of the training vocabulary
    head.TEST_CLASS_JSON = "datasets/coco.json"  # class names of the test vocabulary ("" = the test dataset's)
    head.TRAIN_CLASS_INDEXES = "datasets/coco/coco_stuff/split/seen_indexes.json"  # authors' key, unused by SED
    head.TEST_CLASS_INDEXES = "datasets/coco/coco_stuff/split/unseen_indexes.json"  # authors' key, unused by SED
    head.CLIP_PRETRAINED = "ViT-B/16"  # authors' key from CAT-Seg, unused: MODEL.ENC.CLIP_MODEL_NAME decides
    head.PROMPT_DEPTH = 0  # visual prompt tuning depth (SED: none)
    head.PROMPT_LENGTH = 0  # visual prompt tuning length (SED: none)
    head.TEXT_GUIDANCE_DIM = 0  # text guidance channels into class attention (SED: off)
    head.TEXT_GUIDANCE_PROJ_DIM = 0  # projected text guidance channels (SED: off)
    head.APPEARANCE_GUIDANCE_DIM = 1024  # channels of res5 (authors' key; SED's decoder does not read res5)
    head.APPEARANCE_GUIDANCE_PROJ_DIM = 128  # authors' key, unused by SED's decoder
    head.DECODER_DIMS = [64, 32, 16]  # output channels of fusion stages 1..3
    head.DECODER_GUIDANCE_DIMS = [512, 256, 128]  # channels of res4, res3, res2 (the appearance guidance inputs)
    head.DECODER_GUIDANCE_PROJ_DIMS = [32, 16, 8]  # appearance and cost guidance channels of stages 1..3
    head.NUM_LAYERS = 1  # authors' key, unused: SED has one class-attention layer per stage
    head.NUM_HEADS = 4  # heads of the linear class attention
    head.HIDDEN_DIMS = 128  # channels of the cost embedding (conv1 output)
    head.POOLING_SIZES = [2, 2]  # class-attention average pooling (eval.sh uses [1, 1], as the authors')
    head.FEATURE_RESOLUTION = [24, 24]  # authors' key, unused: the cost-map size follows from MODEL.CLIP_RESOLUTION
    head.WINDOW_SIZES = 12  # authors' key, unused by linear attention
    head.ATTENTION_TYPE = "linear"  # class attention kind; SED uses "linear"
    head.KERNEL_SIZE = 9  # depthwise kernel of the decoder's ConvNeXt blocks
    head.CLIP_FINETUNE = "full"  # CLIP image tower training: "full", "none" (frozen)
    head.CLASS_CHUNK_SIZE = 0  # inference: class maps per chunk of the decoder's per-class work (0 = automatic)
    head.LOSS_EXCLUDE_IGNORED = False  # True: drop ignored pixels from the BCE mean (authors: kept, all-zero target)

    # ---------------------------------------------------------------- test
    cfg.TEST.SLIDING_WINDOW = False  # sliding-window inference
    cfg.TEST.SLIDING_WINDOW_SIZE = 768  # window size in pixels
    cfg.TEST.SLIDING_WINDOW_STRIDE = 512  # window stride in pixels
    cfg.TEST.FAST_INFERENCE = False  # category early rejection
    cfg.TEST.TOPK = 8  # classes kept per pixel by category early rejection
    # what eval.sh evaluates: "auto" (SED: the six open-vocabulary benchmarks, other models: DATASETS.TEST),
    # "open_vocabulary" or "config" (each dataset of DATASETS.TEST); see sed/engine/benchmarks.py
    cfg.TEST.EVAL_SUITE = "auto"

    # ---------------------------------------------------------------- data
    cfg.DATASETS.VAL_ALL = ()  # authors' key: extra test sets
    cfg.DATASETS.CUSTOM = ()  # dataset spec files (YAML/JSON) to register, see sed/data/datasets/register_custom.py

    add_ecenet_config(cfg)  # ECENet's keys: one config serves both models
