"""Config keys of ECENet (ICCV 2023); defaults are the released Swin-B ADE20K model's (docs/ECENET.md)."""

from detectron2.config import CfgNode as CN


def add_ecenet_config(cfg):
    """Declares the keys ECENet, its Swin backbone and its test-time inference read.

    Shared keys it also reads: detectron2's MODEL.SEM_SEG_HEAD.NUM_CLASSES / IGNORE_VALUE, MODEL.PIXEL_MEAN / STD,
    TEST.AUG.ENABLED / FLIP, and the project's common TEST.SLIDING_WINDOW* and TEST.AUG.SCALES
    (`sed.config.add_common_config`).
    """
    cfg.MODEL.ECENET = CN()
    ece = cfg.MODEL.ECENET
    ece.IN_FEATURES = ["res2", "res3", "res4", "res5"]  # backbone levels 1..4 (strides 4, 8, 16, 32)
    ece.CHANNELS = 256  # head channels C
    ece.NUM_HEADS = 4  # attention heads of the semantics attention blocks (head dim C / heads)
    ece.POOL_SIZES = [1, 2, 3, 6]  # fixed output sizes of the pyramid pooling of class masks
    ece.POOL_RATIO = 1.0  # extra pooling size s = int(sqrt(K) * ratio), made odd
    ece.LEARNER_GROUPS = 4  # groups of the first 1x1 conv of the mask predictor (learner)
    ece.FFN_RATIO = 4  # hidden-channel expansion of the Mix-FFN in each attention block
    ece.INVERTED_ATTENTION = True  # True: softmax(rowmax(S) - S) as released; False: softmax(S)
    ece.DROPOUT = 0.1  # dropout before conv_seg
    ece.SAU_DROPOUT = 0.0  # dropout in the attention blocks and their Mix-FFN (not in the release: assumed)
    ece.NORM = "SyncBN"  # batch norm of the head (FR, ghost upsamplers, proj): "SyncBN" or "BN"
    ece.CE_WEIGHT = 1.0  # weight of loss_ce (cross-entropy on the final logits)
    ece.MASK_WEIGHT = 5.0  # weight of loss_mask (sigmoid focal loss on the stage masks M4 + M3 + M2)
    ece.DICE_WEIGHT = 2.0  # weight of loss_dice (dice loss on the same masks)
    ece.DIV_WEIGHT = 0.2  # weight of loss_div (diversity of the FR diverse-branch channels)
    ece.FOCAL_ALPHA = 0.25  # alpha of the sigmoid focal loss
    ece.FOCAL_GAMMA = 2.0  # gamma of the sigmoid focal loss
    ece.HEAD_LR_MULTIPLIER = 10.0  # lr multiplier of sem_seg_head.* parameters (via ECENet.lr_multiplier)
    # lr multiplier of the backbone (detectron2's key, as in Mask2Former); 1.0: it trains at SOLVER.BASE_LR as in
    # the released recipe (0 would freeze it). SED's configs set it to 0.0 as the authors' do; SED has no such backbone.
    cfg.SOLVER.BACKBONE_MULTIPLIER = 1.0

    # Swin Transformer backbone, built from timm's SwinTransformer class; defaults = swin_base_patch4_window12_384.
    ece.SWIN = CN()
    ece.SWIN.EMBED_DIM = 128  # channels of stage 1 (doubled at each later stage)
    ece.SWIN.DEPTHS = [2, 2, 18, 2]  # blocks per stage
    ece.SWIN.NUM_HEADS = [4, 8, 16, 32]  # attention heads per stage
    ece.SWIN.WINDOW_SIZE = 12  # attention window (tokens per side); 12 = the ImageNet-22K 384 px weights
    ece.SWIN.PATCH_SIZE = 4  # patch embedding stride
    ece.SWIN.MLP_RATIO = 4.0  # MLP expansion of each block
    ece.SWIN.DROP_PATH_RATE = 0.3  # stochastic depth, rising linearly over the blocks to this value
    ece.SWIN.OUT_FEATURES = ["res2", "res3", "res4", "res5"]  # stages returned
