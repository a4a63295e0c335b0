"""Cityscapes (fine) through detectron2's registration as the project re-registers it: a tiny tree in the layout of
the official zips (+ the *_labelTrainIds.png of cityscapesscripts' createTrainIdLabelImgs) loads, maps, evaluates
with a known prediction and a tiny ECENet; missing folders and label maps are named with what to do."""

import json

import numpy as np
import pytest
import torch
from conftest import REPO, load_cfg, miou_by_hand
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.modeling import build_model
from PIL import Image

from sed.data import build_test_mapper, build_train_mapper
from sed.engine import Trainer
from sed.engine.cli import run
from sed.evaluation import CheckedSemSegEvaluator, build_sem_seg_evaluator

VAL = "cityscapes_fine_sem_seg_val"
CONFIG = "ecenet/ecenet_swinB_cityscapes_512x1024.yaml"
CITY = "frankfurt"
H, W = 8, 16
SKY, ROAD, CAR = 10, 0, 13  # trainIds


def _ground_truths():
    """{frame: (H, W) trainIds}: sky above (first row unlabelled), road left and car right below; then all road."""
    a = np.full((H, W), SKY, np.uint8)
    a[0] = 255
    a[H // 2 :, : W // 2] = ROAD
    a[H // 2 :, W // 2 :] = CAR
    return {"000000_000019": a, "000000_000576": np.full((H, W), ROAD, np.uint8)}


def _predictions():
    """Like the ground truth, but the road reaches 3/4 of the width on the first frame."""
    a = _ground_truths()["000000_000019"].copy()
    a[0] = SKY
    a[H // 2 :, : 3 * W // 4] = ROAD
    return {"000000_000019": a, "000000_000576": np.full((H, W), ROAD, np.uint8)}


def write_cityscapes(root, split="val", train_ids=True):
    """The files detectron2 reads: leftImg8bit/<split>/<city>/*_leftImg8bit.png; gtFine/<split>/<city>/* as the
    zip ships them (labelIds, instanceIds, polygons) and, if `train_ids`, the labelTrainIds cityscapesscripts
    writes."""
    images, gt = root / "cityscapes" / "leftImg8bit" / split / CITY, root / "cityscapes" / "gtFine" / split / CITY
    images.mkdir(parents=True)
    gt.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for frame, labels in _ground_truths().items():
        stem = f"{CITY}_{frame}"
        Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8)).save(images / f"{stem}_leftImg8bit.png")
        Image.fromarray(labels).save(gt / f"{stem}_gtFine_labelIds.png")  # content unused here
        Image.fromarray(labels).save(gt / f"{stem}_gtFine_instanceIds.png")
        (gt / f"{stem}_gtFine_polygons.json").write_text(json.dumps({"imgHeight": H, "imgWidth": W, "objects": []}))
        if train_ids:
            Image.fromarray(labels).save(gt / f"{stem}_gtFine_labelTrainIds.png")


@pytest.fixture
def datasets_root(tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    return tmp_path


def _scores(labels, num_classes=19):
    return torch.nn.functional.one_hot(torch.as_tensor(labels).long(), num_classes).permute(2, 0, 1).float()


def test_metadata_is_detectrons_with_the_root_read_at_use(datasets_root):
    meta = MetadataCatalog.get(VAL)
    assert len(meta.stuff_classes) == 19 and meta.stuff_classes[ROAD] == "road" and meta.stuff_classes[18] == "bicycle"
    assert meta.ignore_label == 255 and meta.evaluator_type == "cityscapes_sem_seg"
    assert meta.image_dir == str(datasets_root / "cityscapes" / "leftImg8bit" / "val")
    assert MetadataCatalog.get("cityscapes_fine_sem_seg_train").gt_dir == str(datasets_root / "cityscapes/gtFine/train")


def test_tiny_tree_loads_maps_and_evaluates_by_hand(datasets_root):
    write_cityscapes(datasets_root)
    records = sorted(DatasetCatalog.get(VAL), key=lambda r: r["file_name"])
    assert [r["sem_seg_file_name"].rsplit("/", 1)[1] for r in records] == [
        f"{CITY}_{frame}_gtFine_labelTrainIds.png" for frame in _ground_truths()
    ]
    assert all((r["height"], r["width"]) == (H, W) for r in records)

    # training mapper: exact labels without augmentation (the recipe's resize at ratio 1 of the image's own size);
    # the recipe's augmentations give a 512x1024 crop
    cfg = load_cfg(
        CONFIG,
        [
            "DATASETS.TRAIN",
            f"('{VAL}',)",
            "INPUT.RESIZE_RATIO_RANGE",
            "(1.0, 1.0)",
            "INPUT.RESIZE_BASE_SCALE",
            f"({W}, {H})",
            "INPUT.CROP.ENABLED",
            "False",
            "INPUT.COLOR_AUG_SSD",
            "False",
            "INPUT.RANDOM_FLIP",
            "none",
        ],
    )
    mapped = build_train_mapper(cfg)(records[0])
    assert mapped["image"].shape == (3, H, W) and mapped["image"].dtype == torch.uint8
    assert torch.equal(mapped["sem_seg"], torch.as_tensor(_ground_truths()["000000_000019"]).long())
    cfg = load_cfg(CONFIG, ["DATASETS.TRAIN", f"('{VAL}',)"])
    mapped = build_train_mapper(cfg)(records[0])
    assert mapped["sem_seg"].shape == (512, 1024) and set(mapped["sem_seg"].unique().tolist()) <= {SKY, ROAD, CAR, 255}
    tested = build_test_mapper(cfg)(records[0])  # the recipe's test size: short side 1024; output at the original
    assert tested["image"].shape == (3, 1024, 2048) and (tested["height"], tested["width"]) == (H, W)

    evaluator = build_sem_seg_evaluator(cfg, VAL)
    assert type(evaluator) is CheckedSemSegEvaluator
    evaluator.reset()
    for record in records:
        frame = record["file_name"].rsplit("/", 1)[1][len(CITY) + 1 : -len("_leftImg8bit.png")]
        evaluator.process([{"file_name": record["file_name"]}], [{"sem_seg": _scores(_predictions()[frame])}])
    result = evaluator.evaluate()["sem_seg"]
    # sky: tp 48 = gt 48 (row 0 ignored) -> 1; road: tp 32 + 128, gt 160, predicted 48 + 128 -> 160 / 176;
    # car: tp 16, gt 32, predicted 16 -> 1/2. The 16 classes absent from both are left out.
    assert result["mIoU"] == pytest.approx(100 * (1 + 160 / 176 + 1 / 2) / 3)
    assert result["pACC"] == pytest.approx(100 * (48 + 160 + 16) / (48 + 160 + 32))
    with pytest.raises(ValueError, match=f"scores 150 classes but {VAL} has 19: .*NUM_CLASSES 19"):
        evaluator.process([{"file_name": records[0]["file_name"]}], [{"sem_seg": torch.rand(150, H, W)}])


def test_a_tiny_ecenet_evaluates_on_it(datasets_root, tmp_path):
    write_cityscapes(datasets_root)
    cfg = load_cfg(
        "ecenet/ecenet_tiny_cpu.yaml",
        ["DATASETS.TEST", f"('{VAL}',)", "MODEL.SEM_SEG_HEAD.NUM_CLASSES", "19", "OUTPUT_DIR", str(tmp_path / "out")],
    )
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    results = Trainer.test(cfg, model)
    assert results["sem_seg"]["mIoU"] == pytest.approx(miou_by_hand(model, cfg, VAL), abs=1e-9)
    assert json.loads((tmp_path / "out" / "results.json").read_text())[VAL]["sem_seg"]["mIoU"] is not None


def test_missing_folder_names_it_and_the_readme(datasets_root, capfd):
    folder = datasets_root / "cityscapes" / "leftImg8bit" / "val"
    with pytest.raises(FileNotFoundError, match=f"needs the folder {folder},.*datasets/README.md"):
        DatasetCatalog.get(VAL)
    # the same reason is tools/train_net.py's one-line error, before any model is built
    code = run(
        [
            "--config-file",
            str(REPO / "configs" / CONFIG),
            "--eval-only",
            "OUTPUT_DIR",
            str(datasets_root / "out"),
            "MODEL.DEVICE",
            "cpu",
        ]
    )
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and str(folder) in lines[0] and "datasets/README.md" in lines[0]


def test_label_maps_not_created_yet_are_named(datasets_root):
    write_cityscapes(datasets_root, train_ids=False)
    with pytest.raises(FileNotFoundError, match="incomplete .*labelTrainIds.*datasets/README.md"):
        DatasetCatalog.get(VAL)
