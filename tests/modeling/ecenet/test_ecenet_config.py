"""The ECENet configs load through add_sed_config and carry the recipe."""

import pytest
from conftest import load_cfg


@pytest.mark.parametrize(
    "name,classes,crop,base_scale,iters,batch,train,test",
    [
        (
            "ecenet_swinB_ade20k_640.yaml",
            150,
            [640, 640],
            [2048, 640],
            160000,
            16,
            "ade20k_150_train_sem_seg",
            "ade20k_150_test_sem_seg",
        ),
        (
            "ecenet_swinB_pc59_480.yaml",
            59,
            [480, 480],
            [520, 520],
            80000,
            16,
            "context_59_train_sem_seg",
            "context_59_test_sem_seg",
        ),
        (
            "ecenet_swinB_cityscapes_512x1024.yaml",
            19,
            [512, 1024],
            [2048, 1024],
            80000,
            8,
            "cityscapes_fine_sem_seg_train",
            "cityscapes_fine_sem_seg_val",
        ),
    ],
)
def test_recipe_configs(name, classes, crop, base_scale, iters, batch, train, test):
    cfg = load_cfg(f"ecenet/{name}")
    assert cfg.MODEL.META_ARCHITECTURE == "ECENet" and cfg.MODEL.SEM_SEG_HEAD.NAME == "ECENetHead"
    assert cfg.MODEL.BACKBONE.NAME == "TimmSwinBackbone" and cfg.MODEL.WEIGHTS == ""
    assert cfg.MODEL.SEM_SEG_HEAD.NUM_CLASSES == classes
    assert list(cfg.INPUT.CROP.SIZE) == crop and cfg.INPUT.CROP.SINGLE_CATEGORY_MAX_AREA == 0.75
    assert cfg.INPUT.COLOR_AUG_SSD
    # the spec's random resize: ratios 0.5 .. 2.0 of the dataset's base scale (long, short)
    assert list(cfg.INPUT.RESIZE_RATIO_RANGE) == [0.5, 2.0] and list(cfg.INPUT.RESIZE_BASE_SCALE) == base_scale
    assert (cfg.SOLVER.MAX_ITER, cfg.SOLVER.IMS_PER_BATCH) == (iters, batch)
    assert cfg.DATASETS.TRAIN == (train,) and cfg.DATASETS.TEST == (test,)
    assert cfg.SOLVER.OPTIMIZER == "ADAMW" and cfg.SOLVER.BASE_LR == pytest.approx(6e-5)
    assert cfg.SOLVER.WEIGHT_DECAY == pytest.approx(0.01) and cfg.SOLVER.WEIGHT_DECAY_NORM == 0.0
    assert cfg.SOLVER.LR_SCHEDULER_NAME == "WarmupPolyLR" and cfg.SOLVER.POLY_LR_POWER == 1.0
    assert (cfg.SOLVER.WARMUP_METHOD, cfg.SOLVER.WARMUP_ITERS) == ("linear", 1500)
    assert cfg.SOLVER.CLIP_GRADIENTS.ENABLED and cfg.SOLVER.CLIP_GRADIENTS.CLIP_VALUE == 35.0
    assert cfg.SOLVER.BACKBONE_MULTIPLIER == 1.0 and cfg.MODEL.ECENET.HEAD_LR_MULTIPLIER == 10.0
    assert cfg.MODEL.ECENET.SWIN.DROP_PATH_RATE == pytest.approx(0.3) and cfg.TEST.SLIDING_WINDOW


def test_ecenet_defaults_are_the_spec():
    e = load_cfg("ecenet/ecenet_swinB_ade20k_640.yaml").MODEL.ECENET
    assert (e.CHANNELS, e.NUM_HEADS, list(e.POOL_SIZES), e.POOL_RATIO) == (256, 4, [1, 2, 3, 6], 1.0)
    assert e.INVERTED_ATTENTION and e.DROPOUT == pytest.approx(0.1)
    assert (e.CE_WEIGHT, e.MASK_WEIGHT, e.DICE_WEIGHT, e.DIV_WEIGHT) == (1.0, 5.0, 2.0, 0.2)
    assert (e.FOCAL_ALPHA, e.FOCAL_GAMMA) == (0.25, 2.0)
    assert (e.SWIN.EMBED_DIM, list(e.SWIN.DEPTHS), list(e.SWIN.NUM_HEADS), e.SWIN.WINDOW_SIZE) == (
        128,
        [2, 2, 18, 2],
        [4, 8, 16, 32],
        12,
    )


def test_sliding_windows_of_the_recipes():
    ade = load_cfg("ecenet/ecenet_swinB_ade20k_640.yaml").TEST
    assert (ade.SLIDING_WINDOW_SIZE, ade.SLIDING_WINDOW_STRIDE) == (640, 608)
    pc = load_cfg("ecenet/ecenet_swinB_pc59_480.yaml").TEST
    assert (pc.SLIDING_WINDOW_SIZE, pc.SLIDING_WINDOW_STRIDE) == (480, 320)
    city = load_cfg("ecenet/ecenet_swinB_cityscapes_512x1024.yaml").TEST
    assert (list(city.SLIDING_WINDOW_SIZE_HW), list(city.SLIDING_WINDOW_STRIDE_HW)) == ([512, 1024], [341, 683])


def test_sed_configs_still_load_and_int_windows_still_merge():
    cfg = load_cfg("convnextB_768.yaml", ["TEST.SLIDING_WINDOW_SIZE", "384"])
    assert cfg.TEST.SLIDING_WINDOW_SIZE == 384 and cfg.MODEL.ECENET.CHANNELS == 256


def test_every_ecenet_key_has_a_comment(repo_root):
    lines = (repo_root / "sed" / "modeling" / "ecenet" / "config.py").read_text().splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if (
            "=" in stripped
            and stripped.split("=")[0].strip().startswith(("cfg.", "ece."))
            and "CN()" not in stripped
            and not stripped.startswith("ece = ")
        ):
            assert "#" in stripped or lines[i - 1].strip().startswith("#"), f"no comment: {stripped}"
