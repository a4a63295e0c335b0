"""Evaluators on known predictions, against mIoU computed by hand."""

import numpy as np
import pytest
import torch
from detectron2.data import DatasetCatalog
from PIL import Image

import sed  # noqa: F401  registers the datasets
from sed.evaluation import BackgroundSemSegEvaluator, CheckedSemSegEvaluator, build_sem_seg_evaluator

# Where each registered benchmark keeps images and ground truth, relative to the datasets root.
LAYOUT = {
    "voc_2012_test_sem_seg": ("VOCdevkit/VOC2012/JPEGImages", "VOCdevkit/VOC2012/annotations_detectron2/val", "png"),
    "voc_2012_test_background_sem_seg": (
        "VOCdevkit/VOC2012/JPEGImages",
        "VOCdevkit/VOC2012/annotations_detectron2_bg/val",
        "png",
    ),
    "ade20k_full_sem_seg_freq_val_all": (
        "ADE20K_2021_17_01/images_detectron2/validation",
        "ADE20K_2021_17_01/annotations_detectron2/validation",
        "tif",
    ),
    "context_459_test_sem_seg": (
        "VOCdevkit/VOC2010/JPEGImages",
        "VOCdevkit/VOC2010/annotations_detectron2/pc459_val",
        "tif",
    ),
}


@pytest.fixture
def datasets_root(tmp_path, monkeypatch):
    monkeypatch.setenv("DETECTRON2_DATASETS", str(tmp_path))
    return tmp_path


def _write_dataset(root, name, ground_truths):
    """Writes ground truth {image id: (H, W) labels} (uint16 for .tif) and dummy images for `name`."""
    image_dir, gt_dir, ext = LAYOUT[name]
    (root / image_dir).mkdir(parents=True, exist_ok=True)
    (root / gt_dir).mkdir(parents=True, exist_ok=True)
    for image_id, gt in ground_truths.items():
        Image.new("RGB", gt.shape[::-1]).save(root / image_dir / f"{image_id}.jpg")
        Image.fromarray(gt.astype(np.uint16 if ext == "tif" else np.uint8)).save(root / gt_dir / f"{image_id}.{ext}")


def _scores(pred, num_classes):
    """(C, H, W) scores whose argmax is `pred`."""
    return torch.nn.functional.one_hot(torch.as_tensor(pred), num_classes).permute(2, 0, 1).float()


def _evaluate(evaluator, name, predictions, num_scores):
    records = {r["file_name"].rsplit("/", 1)[1][:-4]: r for r in DatasetCatalog.get(name)}
    evaluator.reset()
    for image_id, pred in predictions.items():
        evaluator.process(
            [{"file_name": records[image_id]["file_name"]}], [{"sem_seg": _scores(np.array(pred), num_scores)}]
        )
    return evaluator.evaluate()["sem_seg"]


def test_voc20_miou_by_hand(datasets_root, tmp_path):
    name = "voc_2012_test_sem_seg"
    _write_dataset(
        datasets_root,
        name,
        {
            "a": np.array([[0, 0, 1, 1], [0, 0, 1, 255]]),
            "b": np.array([[2, 2], [2, 3]]),
        },
    )
    out_dir = tmp_path / "eval"
    evaluator = build_sem_seg_evaluator(None, name, str(out_dir))
    assert type(evaluator) is CheckedSemSegEvaluator
    res = _evaluate(evaluator, name, {"a": [[0, 1, 1, 1], [0, 0, 1, 2]], "b": [[2, 3], [3, 3]]}, 20)
    # class 0: tp 3, gt 4, pred 3 -> 3/4; class 1: tp 3, gt 3, pred 4 -> 3/4; class 2: tp 1, gt 3, pred 1 -> 1/3
    # (its prediction on the ignored pixel does not count); class 3: tp 1, gt 1, pred 3 -> 1/3; absent classes
    # are left out of the mean.
    assert res["mIoU"] == pytest.approx(100 * (3 / 4 + 3 / 4 + 1 / 3 + 1 / 3) / 4)
    assert res["IoU-bicycle"] == pytest.approx(75.0) and res["pACC"] == pytest.approx(100 * 8 / 11)
    assert (out_dir / "sem_seg_evaluation.pth").exists()


def test_16_bit_ground_truth_with_ignore_65535(datasets_root):
    name = "ade20k_full_sem_seg_freq_val_all"
    _write_dataset(datasets_root, name, {"ADE_val_00000001": np.array([[0, 300, 846], [65535, 846, 300]])})
    evaluator = build_sem_seg_evaluator(None, name, None)
    res = _evaluate(evaluator, name, {"ADE_val_00000001": [[0, 300, 300], [5, 846, 300]]}, 847)
    # class 0: 1/1; class 300: tp 2, gt 2, pred 3 -> 2/3; class 846: tp 1, gt 2, pred 1 -> 1/2; the prediction
    # 5 sits on an ignored pixel.
    assert res["mIoU"] == pytest.approx(100 * (1 + 2 / 3 + 1 / 2) / 3)
    assert res["IoU-wall"] == pytest.approx(100.0)
    assert not any(key.startswith("BoundaryIoU") for key in res)  # detectron2 skips it past 254 classes


def test_pc459_ignore_459(datasets_root):
    name = "context_459_test_sem_seg"
    _write_dataset(datasets_root, name, {"2008_000003": np.array([[458, 459], [0, 0]])})
    res = _evaluate(build_sem_seg_evaluator(None, name, None), name, {"2008_000003": [[458, 3], [0, 458]]}, 459)
    # class 458: tp 1, gt 1, pred 2 -> 1/2; class 0: tp 1, gt 2, pred 1 -> 1/2
    assert res["mIoU"] == pytest.approx(50.0)


def test_background_variant_maps_context_classes_to_background(datasets_root):
    name = "voc_2012_test_background_sem_seg"
    _write_dataset(datasets_root, name, {"a": np.array([[20, 20, 0], [14, 255, 20]])})
    evaluator = build_sem_seg_evaluator(None, name, None)
    assert isinstance(evaluator, BackgroundSemSegEvaluator)
    # Argmax over the 59-name vocabulary: 25, 58 (context classes) -> background 20; 3 lies on an ignored pixel.
    res = _evaluate(evaluator, name, {"a": [[25, 0, 0], [14, 3, 58]]}, 59)
    # background: tp 2, gt 3, pred 2 -> 2/3; aeroplane: tp 1, gt 1, pred 2 -> 1/2; person: 1
    assert res["IoU-background"] == pytest.approx(100 * 2 / 3)
    assert res["mIoU"] == pytest.approx(100 * (2 / 3 + 1 / 2 + 1) / 3)


def test_merge_background_keeps_the_argmax_mapping_and_checks_the_vocabulary(datasets_root):
    _write_dataset(datasets_root, "voc_2012_test_background_sem_seg", {"a": np.zeros((2, 2))})
    evaluator = BackgroundSemSegEvaluator("voc_2012_test_background_sem_seg")
    scores = torch.rand(59, 5, 7)
    scores[4, 0, 0] = scores[30, 0, 0] = 2.0  # a tie between a VOC class and a background one
    merged = evaluator.merge_background(scores)
    assert merged.shape == (21, 5, 7)
    torch.testing.assert_close(merged.argmax(0), scores.argmax(0).clamp(max=20))
    assert merged.argmax(0)[0, 0] == 4
    with pytest.raises(ValueError, match="expected scores for at least 21 classes"):
        evaluator.merge_background(torch.rand(20, 2, 2))


def test_unknown_evaluator_type_is_rejected():
    supported = "\\['cityscapes_sem_seg', 'sem_seg', 'sem_seg_background'\\]"
    with pytest.raises(ValueError, match=f"has evaluator_type None; supported: {supported}"):
        build_sem_seg_evaluator(None, "sed_test_dataset_without_metadata", None)


def _evaluate_labels(evaluator, name, predictions, num_scores):
    records = {r["file_name"].rsplit("/", 1)[1][:-4]: r for r in DatasetCatalog.get(name)}
    evaluator.reset()
    for image_id, pred in predictions.items():
        evaluator.process(
            [{"file_name": records[image_id]["file_name"]}],
            [{"sem_seg_labels": torch.as_tensor(pred), "num_classes": num_scores}],
        )
    return evaluator.evaluate()["sem_seg"]


@pytest.mark.parametrize(
    "name,num_scores,gt,pred",
    [
        ("voc_2012_test_sem_seg", 20, [[0, 0, 1, 1], [0, 0, 1, 255]], [[0, 1, 1, 1], [0, 0, 1, 2]]),
        ("voc_2012_test_background_sem_seg", 59, [[20, 20, 0], [14, 255, 20]], [[25, 0, 0], [14, 3, 58]]),
    ],
)
def test_label_maps_evaluate_as_their_scores(datasets_root, name, num_scores, gt, pred):
    _write_dataset(datasets_root, name, {"a": np.array(gt)})
    from_scores = _evaluate(build_sem_seg_evaluator(None, name, None), name, {"a": pred}, num_scores)
    from_labels = _evaluate_labels(build_sem_seg_evaluator(None, name, None), name, {"a": pred}, num_scores)
    assert from_labels.keys() == from_scores.keys()
    np.testing.assert_array_equal([from_labels[k] for k in from_scores], list(from_scores.values()))  # NaN == NaN
    with pytest.raises(ValueError, match="the model scores 7 classes|at least 21 classes"):
        _evaluate_labels(build_sem_seg_evaluator(None, name, None), name, {"a": pred}, 7)


@pytest.mark.parametrize("value", [21, 254])
def test_ground_truth_outside_the_classes_is_refused_naming_the_file(datasets_root, value):
    """detectron2 would count such a value in a wrong cell of the confusion matrix: a wrong mIoU, no error."""
    name = "voc_2012_test_sem_seg"
    _write_dataset(datasets_root, name, {"a": np.array([[0, 1], [value, 255]])})
    with pytest.raises(
        OSError,
        match=rf"a\.png: label value\(s\) {value} are neither a class id \(0\.\.19: 20 "
        r"classes\) nor the ignore label 255",
    ):
        _evaluate(build_sem_seg_evaluator(None, name, None), name, {"a": [[0, 1], [1, 1]]}, 20)


def test_ground_truth_of_another_size_than_the_prediction_is_refused(datasets_root):
    name = "voc_2012_test_sem_seg"
    _write_dataset(datasets_root, name, {"a": np.zeros((2, 3))})
    with pytest.raises(OSError, match=r"a\.png: the label map is 3x2 but its image is 2x2"):
        _evaluate(build_sem_seg_evaluator(None, name, None), name, {"a": [[0, 1], [1, 1]]}, 20)


@pytest.mark.parametrize("name, num_scores", [("voc_2012_test_sem_seg", 20), ("voc_2012_test_background_sem_seg", 25)])
@pytest.mark.parametrize("labels", [False, True])
def test_non_finite_scores_are_refused_naming_the_image(datasets_root, name, num_scores, labels):
    from sed.modeling.postprocess import FINITE_KEY, LABELS_KEY, NonFiniteOutputError

    _write_dataset(datasets_root, name, {"a": np.zeros((2, 2))})
    [record] = DatasetCatalog.get(name)
    scores = _scores(np.zeros((2, 2), int), num_scores)
    scores[3, 1, 1] = float("nan")  # argmax would make it class 3, a confident answer
    output = (
        {LABELS_KEY: scores.argmax(0), "num_classes": num_scores, FINITE_KEY: False} if labels else {"sem_seg": scores}
    )
    evaluator = build_sem_seg_evaluator(None, name, None)
    evaluator.reset()
    with pytest.raises(NonFiniteOutputError, match=r"a\.jpg: the model's class scores hold NaN or Inf"):
        evaluator.process([{"file_name": record["file_name"]}], [output])
