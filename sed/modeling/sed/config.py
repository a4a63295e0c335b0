"""Config keys of SED (CVPR 2024), with the same names and meanings as the authors' configs; defaults are the
paper's. The keys every model shares (input pipeline, solver, sliding-window test, evaluation suite) are
declared by `sed.config.add_common_config`."""

from detectron2.config import CfgNode as CN


def add_sed_model_config(cfg):
    """Declares the keys SED reads, and the keys of the authors' config files that it does not read (one block,
    `add_authors_compatibility_keys`), so that those files load unchanged."""
    # ---------------------------------------------------------------- optimizer
    cfg.SOLVER.CLIP_MULTIPLIER = 0.01  # lr multiplier of the CLIP image tower
    cfg.SOLVER.CLIP_GRADIENT_CHECKPOINTING = False  # recompute CLIP stage activations in backward to save memory

    # ---------------------------------------------------------------- CLIP encoder
    cfg.MODEL.ENC = CN()
    cfg.MODEL.ENC.CLIP_MODEL_NAME = "convnext_base_w_320"  # open_clip model name (a timm ConvNeXt visual tower)
    # open_clip pretrained tag, or path to a local open_clip weights file, or "" for random initialisation
    cfg.MODEL.ENC.CLIP_PRETRAINED_WEIGHTS = "laion_aesthetic_s13b_b82k"
    # stochastic depth of the CLIP ConvNeXt trunk in training (< 0: the authors' value, 0.0 for
    # convnext_base_w_320 and 0.1 for convnext_large_d_320; other models: their open_clip config's)
    cfg.MODEL.ENC.DROP_PATH_RATE = -1.0
    cfg.MODEL.ENC.HEAD_DROPOUT = -1.0  # dropout of the CLIP projection head in training (< 0: as DROP_PATH_RATE)
    cfg.MODEL.ENC.FUSED_BLOCKS = True  # CPU inference: CLIP blocks as oneDNN linear+GELU (faster, within 1e-6)
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
    cfg.TEST.FAST_INFERENCE = False  # category early rejection
    cfg.TEST.TOPK = 1  # classes kept per pixel by category early rejection (authors' default; the paper's fast: 8)
    # True: rejection scores every class through head0 composed with the cost embedding (decoder ~2x faster at
    # 847 classes; scores equal to ~1e-6, so near-ties may be decided unlike the authors'); False: their order
    cfg.TEST.FAST_COMPOSED_SCORES = False
    # True: CPU inference computes the cost embedding conv1 through the DFT, in float32 also under bf16 (3-4x faster;
    # as close to the exact convolution as conv2d, not bitwise equal); False: conv2d
    cfg.TEST.SPECTRAL_COST_EMBEDDING = True
    # False (authors'): the 1/4-resolution map is cut to the input's size before the resize, which stretches
    # inputs under 192 px on a side (detectron2's sem_seg_postprocess); True: the whole map is resized
    cfg.TEST.ALIGNED_POSTPROCESS = False

    add_authors_compatibility_keys(cfg)


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
    cfg.MODEL.SWIN.OUT_FEATURES = ["res2", "res3", "res4", "res5"]  # Swin outputs
