"""The training mapper, its augmentations and the mapper selection."""

import numpy as np
import pytest
import torch
from conftest import load_cfg
from detectron2.data import DatasetMapper
from detectron2.data import transforms as T
from PIL import Image

from sed.data import (
    ColorAugSSD,
    ColorAugSSDTransform,
    MaskFormerSemanticDatasetMapper,
    RandomResizeByRatio,
    build_semantic_train_augmentations,
    build_test_mapper,
    build_train_mapper,
)


def _record(tmp_path, image, label, label_ext="png"):
    Image.fromarray(image).save(tmp_path / "image.png")  # lossless, so pixels can be compared
    Image.fromarray(label).save(tmp_path / f"label.{label_ext}")
    return {"file_name": str(tmp_path / "image.png"), "sem_seg_file_name": str(tmp_path / f"label.{label_ext}")}


def _image(h, w, seed=0):
    return np.random.RandomState(seed).randint(0, 256, (h, w, 3), dtype=np.uint8)


def _mapper(*opts):
    # Training set coco_2017_train_stuff_all_sem_seg: ignore label 255.
    return MaskFormerSemanticDatasetMapper(load_cfg("tiny_cpu.yaml", opts), True)


def test_tiny_config_resizes_crops_and_returns_tensors(tmp_path):
    label = np.random.RandomState(1).randint(0, 171, (100, 150)).astype(np.uint8)
    out = _mapper()(_record(tmp_path, _image(100, 150), label))
    # shortest edge 100 -> 384 (so 150 -> 576), then a 384x384 crop; 384 is already a multiple of 384
    assert out["image"].shape == (3, 384, 384) and out["image"].dtype == torch.uint8
    assert out["sem_seg"].shape == (384, 384) and out["sem_seg"].dtype == torch.int64
    assert (out["height"], out["width"]) == (100, 150) and "sem_seg_file_name" not in out
    assert set(out["sem_seg"].unique().tolist()) <= set(np.unique(label).tolist())


def test_padding_uses_128_for_the_image_and_ignore_for_labels(tmp_path):
    """The authors' mapper pads with 128 (mid-grey), labels with the ignore value."""
    image, label = _image(40, 50), np.random.RandomState(2).randint(0, 5, (40, 50)).astype(np.uint8)
    mapper = _mapper(
        "INPUT.MIN_SIZE_TRAIN",
        "(40,)",
        "INPUT.CROP.ENABLED",
        "False",
        "INPUT.RANDOM_FLIP",
        "none",
        "INPUT.SIZE_DIVISIBILITY",
        "32",
        "INPUT.COLOR_AUG_SSD",
        "False",
    )
    out = mapper(_record(tmp_path, image, label))
    assert out["image"].shape == (3, 64, 64) and out["sem_seg"].shape == (64, 64)
    # The resize is the identity here, so the unpadded part is the input, in RGB order.
    np.testing.assert_array_equal(out["image"][:, :40, :50].permute(1, 2, 0).numpy(), image)
    np.testing.assert_array_equal(out["sem_seg"][:40, :50].numpy(), label)
    assert (out["image"][:, 40:] == 128).all() and (out["image"][:, :, 50:] == 128).all()
    assert (out["sem_seg"][40:] == 255).all() and (out["sem_seg"][:, 50:] == 255).all()


def test_bgr_format_reverses_channels(tmp_path):
    image, label = _image(40, 50), np.zeros((40, 50), dtype=np.uint8)
    out = _mapper(
        "INPUT.MIN_SIZE_TRAIN",
        "(40,)",
        "INPUT.CROP.ENABLED",
        "False",
        "INPUT.RANDOM_FLIP",
        "none",
        "INPUT.SIZE_DIVISIBILITY",
        "-1",
        "INPUT.FORMAT",
        "BGR",
        "INPUT.COLOR_AUG_SSD",
        "False",
    )(_record(tmp_path, image, label))
    np.testing.assert_array_equal(out["image"].permute(1, 2, 0).numpy(), image[:, :, ::-1])


def _largest_class_share(sem_seg):
    _, counts = np.unique(sem_seg.numpy(), return_counts=True)
    return counts.max() / counts.sum()


def test_crop_is_redrawn_until_no_class_dominates(tmp_path):
    label = np.zeros((64, 64), dtype=np.uint8)
    label[:, 32:] = 1
    record = _record(tmp_path, _image(64, 64), label)
    opts = [
        "INPUT.MIN_SIZE_TRAIN",
        "(64,)",
        "INPUT.CROP.SIZE",
        "(32, 32)",
        "INPUT.RANDOM_FLIP",
        "none",
        "INPUT.SIZE_DIVISIBILITY",
        "-1",
    ]
    constrained = _mapper(*opts, "INPUT.CROP.SINGLE_CATEGORY_MAX_AREA", "0.75")
    free = _mapper(*opts, "INPUT.CROP.SINGLE_CATEGORY_MAX_AREA", "1.0")
    shares, free_shares = [], []
    for seed in range(8):
        np.random.seed(seed)
        out = constrained(record)
        assert out["sem_seg"].shape == (32, 32)
        shares.append(_largest_class_share(out["sem_seg"]))
        np.random.seed(seed)
        free_shares.append(_largest_class_share(free(record)["sem_seg"]))
    assert max(shares) < 0.75
    assert max(free_shares) > 0.75  # the same draws without the constraint do give dominated crops


def test_same_seed_same_output_with_every_augmentation(tmp_path):
    label = np.random.RandomState(3).randint(0, 171, (60, 90)).astype(np.uint8)
    record = _record(tmp_path, _image(60, 90), label)
    mapper = _mapper(
        "INPUT.MIN_SIZE_TRAIN",
        "(48, 64, 80)",
        "INPUT.CROP.SIZE",
        "(40, 40)",
        "INPUT.COLOR_AUG_SSD",
        "True",
        "INPUT.CROP.SINGLE_CATEGORY_MAX_AREA",
        "0.75",
        "INPUT.SIZE_DIVISIBILITY",
        "-1",
    )
    outputs = []
    for seed in (5, 5, 6):
        np.random.seed(seed)
        outputs.append(mapper(record))
    assert torch.equal(outputs[0]["image"], outputs[1]["image"])
    assert torch.equal(outputs[0]["sem_seg"], outputs[1]["sem_seg"])
    assert not torch.equal(outputs[0]["image"], outputs[2]["image"])


def test_16_bit_tiff_labels_keep_their_values(tmp_path):
    label = np.array([[0, 846, 65535, 300]] * 4, dtype=np.uint16)
    # A-847's label space: 847 classes, ignore 65535
    out = _mapper(
        "INPUT.MIN_SIZE_TRAIN",
        "(8,)",
        "INPUT.CROP.ENABLED",
        "False",
        "INPUT.RANDOM_FLIP",
        "none",
        "INPUT.SIZE_DIVISIBILITY",
        "-1",
        "DATASETS.TRAIN",
        "('ade20k_full_sem_seg_freq_val_all',)",
    )(_record(tmp_path, _image(4, 4), label, "tif"))
    expected = np.repeat(np.repeat(label.astype(np.int64), 2, axis=0), 2, axis=1)
    np.testing.assert_array_equal(out["sem_seg"].numpy(), expected)


@pytest.mark.parametrize(
    "label, message",
    [
        (
            np.array([[0, 171], [255, 3]], np.uint8),
            r"label value\(s\) 171 are neither a class id \(0\.\.170: 171 classes\)",
        ),
        (np.zeros((4, 3), np.uint8), "the label map is 3x4 but its image is 4x4"),
        (np.zeros((4, 4, 3), np.uint8), r"it has 3 dimensions \(4x4x3\), not one class id per pixel"),
    ],
)
def test_a_bad_label_map_is_refused_naming_it(tmp_path, label, message):
    """Checked where training first reads it: a wrong loss or a bare AssertionError hours in otherwise."""
    from sed.data.image_io import ImageFileError

    image = _image(4, 4) if label.shape[:2] != (2, 2) else _image(2, 2)
    with pytest.raises(ImageFileError, match=r"label\.png: " + message):
        _mapper()(_record(tmp_path, image, label))


def test_color_aug_ssd_transform_is_exact_and_leaves_labels_alone():
    image = _image(6, 7)
    bright = ColorAugSSDTransform("RGB", brightness=20.7).apply_image(image)
    np.testing.assert_array_equal(bright, np.clip(image.astype(np.float32) + 20.7, 0, 255).astype(np.uint8))
    contrast = ColorAugSSDTransform("BGR", contrast=0.5).apply_image(image)
    np.testing.assert_array_equal(contrast, (image.astype(np.float32) * 0.5).astype(np.uint8))
    # Colour changes act on colours, not channel positions: RGB and BGR inputs give the same colours.
    kwargs = dict(brightness=-10.0, contrast=1.3, contrast_first=False, saturation=0.6, hue=17)
    rgb = ColorAugSSDTransform("RGB", **kwargs).apply_image(image)
    bgr = ColorAugSSDTransform("BGR", **kwargs).apply_image(np.ascontiguousarray(image[:, :, ::-1]))
    np.testing.assert_array_equal(rgb, bgr[:, :, ::-1])
    assert rgb.dtype == np.uint8 and rgb.shape == image.shape and not np.array_equal(rgb, image)
    label = np.arange(42).reshape(6, 7)
    assert ColorAugSSDTransform("RGB", **kwargs).apply_segmentation(label) is label
    with pytest.raises(ValueError, match="RGB or BGR"):
        ColorAugSSDTransform("L")


class _ScriptedRandom:
    """Stands in for the `random` module: returns the given draws in order."""

    def __init__(self, draws):
        self.draws = list(draws)

    def randrange(self, n):
        return self.draws.pop(0)

    uniform = randint = lambda self, lo, hi: self.draws.pop(0)


@pytest.mark.parametrize("fmt", ["RGB", "BGR"])
@pytest.mark.parametrize(
    "brightness,contrast_first,contrast,saturation,hue",
    [
        (-20.5, True, 1.4, 0.6, 11),
        (13.0, False, 0.7, 1.3, -17),
        (None, True, None, 1.45, 5),
        (None, False, 0.55, None, -3),
        (30.0, True, None, None, None),
    ],
)
def test_color_aug_ssd_equals_detectron2_pointrend_transform(
    monkeypatch, fmt, brightness, contrast_first, contrast, saturation, hue
):
    """Same parameters, same image out as PointRend's ColorAugSSDTransform, which the authors' mapper applies
    (it draws from Python's `random` as it goes: the draws are scripted here in its order)."""
    from detectron2.projects.point_rend import color_augmentation

    def step(value):
        return [0] if value is None else [1, value]

    order = [contrast, saturation, hue] if contrast_first else [saturation, hue, contrast]
    draws = step(brightness) + [int(contrast_first)] + [d for v in order for d in step(v)]
    monkeypatch.setattr(color_augmentation, "random", _ScriptedRandom(draws))
    image = np.random.RandomState(3).randint(0, 256, (16, 24, 3)).astype(np.uint8)
    theirs = color_augmentation.ColorAugSSDTransform(fmt).apply_image(image.copy())
    ours = ColorAugSSDTransform(
        fmt, brightness=brightness, contrast=contrast, contrast_first=contrast_first, saturation=saturation, hue=hue
    ).apply_image(image.copy())
    np.testing.assert_array_equal(ours, theirs)


def test_color_aug_ssd_draws_parameters_in_range():
    np.random.seed(0)
    drawn = [ColorAugSSD("RGB").get_transform(_image(2, 2)) for _ in range(200)]
    brightness = [t.brightness for t in drawn if t.brightness is not None]
    hue = [t.hue for t in drawn if t.hue is not None]
    assert 60 < len(brightness) < 140 and all(-32 <= b <= 32 for b in brightness)
    assert all(-18 <= h <= 18 for h in hue) and all(0.5 <= t.contrast <= 1.5 for t in drawn if t.contrast)
    assert {t.contrast_first for t in drawn} == {True, False}


@pytest.mark.parametrize(
    "hw,ratio,expected",
    [
        ((100, 200), 1.0, (512, 1024)),  # the short side binds: 512 / 100
        ((200, 100), 1.0, (1024, 512)),
        ((100, 1000), 1.0, (205, 2048)),  # the long side binds: 2048 / 1000
        ((100, 200), 0.5, (256, 512)),
    ],
)
def test_random_resize_by_ratio_matches_mmseg_keep_ratio(hw, ratio, expected):
    tfm = RandomResizeByRatio((2048, 512), (ratio, ratio)).get_transform(np.zeros(hw + (3,), dtype=np.uint8))
    assert (tfm.new_h, tfm.new_w) == expected


def test_resize_ratio_range_option_replaces_shortest_edge_resize():
    cfg = load_cfg(
        "tiny_cpu.yaml",
        [
            "INPUT.RESIZE_RATIO_RANGE",
            "(0.5, 2.0)",
            "INPUT.RESIZE_BASE_SCALE",
            "(2048, 640)",
            "INPUT.COLOR_AUG_SSD",
            "True",
        ],
    )
    augs = build_semantic_train_augmentations(cfg, 255)
    assert [type(a) for a in augs] == [
        RandomResizeByRatio,
        T.RandomCrop_CategoryAreaConstraint,
        ColorAugSSD,
        T.RandomFlip,
    ]
    assert augs[0].base_scale == (2048, 640) and augs[0].ratio_range == (0.5, 2.0)
    assert isinstance(build_semantic_train_augmentations(load_cfg("convnextB_768.yaml"), 255)[0], T.ResizeShortestEdge)


# (h, w) of images with width:height 4:3, 3:4, 1:1, 2:1, 1:3 and 4:1 (wider than ADE20K's 3.2:1 base scale)
ASPECT_RATIOS = [(48, 64), (64, 48), (48, 48), (32, 64), (96, 32), (16, 64)]


@pytest.mark.parametrize(
    "config,base_scale",
    [
        ("ecenet/ecenet_swinB_ade20k_640.yaml", (2048, 640)),  # the spec's base scales (long, short)
        ("ecenet/ecenet_swinB_pc59_480.yaml", (520, 520)),
        ("ecenet/ecenet_swinB_cityscapes_512x1024.yaml", (2048, 1024)),
        ("ecenet/ecenet_tiny_cpu.yaml", (205, 64)),  # ADE20K's scaled down 10x
    ],
)
def test_ecenet_recipes_resize_by_a_random_ratio_of_the_base_scale(tmp_path, config, base_scale):
    # Crop and padding off, so the mapper's output size is the resize's.
    mapper = MaskFormerSemanticDatasetMapper(
        load_cfg(config, ["INPUT.CROP.ENABLED", "False", "INPUT.SIZE_DIVISIBILITY", "-1"]), True
    )
    for seed, (h, w) in enumerate(ASPECT_RATIOS):
        record = _record(tmp_path, _image(h, w), np.zeros((h, w), dtype=np.uint8))
        # mmsegmentation's Resize(img_scale=base_scale, ratio_range=(0.5, 2.0), keep_ratio=True): its
        # random_sample_ratio draws r (the pipeline's first draw) and truncates the limits to ints, mmcv's
        # rescale_size takes the smaller of the two factors and rounds each side half up.
        np.random.seed(seed)
        ratio = np.random.uniform(0.5, 2.0)
        long_limit, short_limit = int(max(base_scale) * ratio), int(min(base_scale) * ratio)
        factor = min(long_limit / max(h, w), short_limit / min(h, w))
        expected = (int(h * factor + 0.5), int(w * factor + 0.5))
        np.random.seed(seed)
        out = mapper(record)
        assert tuple(out["image"].shape[1:]) == expected and tuple(out["sem_seg"].shape) == expected, (h, w)


def test_mapper_selection():
    cfg = load_cfg("tiny_cpu.yaml")
    assert isinstance(build_train_mapper(cfg), MaskFormerSemanticDatasetMapper)
    test_mapper = build_test_mapper(cfg)
    assert isinstance(test_mapper, DatasetMapper) and not test_mapper.is_train
    with pytest.raises(ValueError, match=r"DATASET_MAPPER_NAME 'nope'; valid names: .*mask_former_semantic"):
        build_train_mapper(load_cfg("tiny_cpu.yaml", ["INPUT.DATASET_MAPPER_NAME", "nope"]))
    with pytest.raises(ValueError, match="training mapper"):
        MaskFormerSemanticDatasetMapper(cfg, False)


@pytest.mark.parametrize("shape", [(1, 5000), (5000, 1)])
def test_degenerate_sizes_keep_one_pixel_in_training_and_testing(tmp_path, shape):
    """detectron2's ResizeShortestEdge rounds the short side of a 1 x 5000 image to 0 px (384 / 1 then capped by
    1333 / 5000) and fails inside the resize; the project's keeps it at 1 px, in both mappers."""
    label = np.zeros(shape, np.uint8)
    record = _record(tmp_path, _image(*shape), label)
    out = build_test_mapper(load_cfg("tiny_cpu.yaml"))(dict(record))
    expected = (1, 1333) if shape[0] == 1 else (1333, 1)
    assert tuple(out["image"].shape[1:]) == expected and (out["height"], out["width"]) == shape
    out = _mapper("INPUT.COLOR_AUG_SSD", "False")(dict(record))
    assert out["image"].shape == (3, 384, 384)  # 1 px x the crop, padded to SIZE_DIVISIBILITY 384
    assert (out["sem_seg"] != 255).sum() == 384  # one row (or column) of labelled pixels
