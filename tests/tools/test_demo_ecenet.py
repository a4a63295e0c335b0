"""The predictor and tools/demo.py with a closed-vocabulary model, the tiny ECENet: it segments the classes of its
config's DATASETS.TEST[0] (the synthetic dataset's 8), at the input's size, from a checkpoint of its own."""

import json

import numpy as np
import pytest
import torch
from conftest import load_cfg, load_tool
from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model
from PIL import Image

from sed import OpenVocabSegmenter
from sed.data.synthetic import SYNTHETIC_CLASSES, render_sample
from sed.data.vocabulary import VocabularyError

CONFIG = "configs/ecenet/ecenet_tiny_cpu.yaml"
K = len(SYNTHETIC_CLASSES)

demo = load_tool("demo")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint of the tiny ECENet (random weights), saved as training saves them."""
    folder = tmp_path_factory.mktemp("ecenet")
    torch.manual_seed(0)
    DetectionCheckpointer(build_model(load_cfg("ecenet/ecenet_tiny_cpu.yaml")), str(folder)).save("model")
    return folder / "model.pth"


@pytest.fixture(scope="module")
def image():
    """A synthetic scene of 90x70 pixels: neither a multiple of the patch size nor the test size."""
    return render_sample(np.random.default_rng(0), 90, 70)[0]


def test_segmenter_gives_the_dataset_classes_at_the_input_size(checkpoint, image):
    segmenter = OpenVocabSegmenter(CONFIG, weights=str(checkpoint), device="cpu")
    assert not segmenter.open_vocabulary and segmenter.class_names == SYNTHETIC_CLASSES
    result = segmenter.segment(image, return_probabilities=True)
    assert result.label_map.shape == image.shape[:2] and result.class_names == SYNTHETIC_CLASSES
    assert 0 <= result.label_map.min() and result.label_map.max() < K
    assert result.probabilities.shape == (K, *image.shape[:2])
    np.testing.assert_allclose(result.probabilities.sum(0), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(result.label_map, result.probabilities.argmax(0))
    with pytest.raises(VocabularyError, match="closed-vocabulary model"):
        segmenter.segment(image, "cat, dog")


def test_demo_writes_label_maps_within_the_classes(checkpoint, image, tmp_path, capsys):
    Image.fromarray(image).save(tmp_path / "scene.png")
    status = demo.main(
        [
            "--config-file",
            CONFIG,
            "--input",
            str(tmp_path / "scene.png"),
            "--output",
            str(tmp_path / "out"),
            "--opts",
            "MODEL.WEIGHTS",
            str(checkpoint),
        ]
    )
    assert status == 0, capsys.readouterr().err
    labels = np.asarray(Image.open(tmp_path / "out" / "scene_labels.png"))
    assert labels.shape == image.shape[:2] and labels.max() < K
    assert (tmp_path / "out" / "scene_overlay.png").is_file()
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["class_names"] == SYNTHETIC_CLASSES and not summary["fast_inference"]
    assert {c["name"] for c in summary["images"][0]["classes"]} <= set(SYNTHETIC_CLASSES)


def test_non_finite_scores_are_refused(checkpoint, image):
    from sed.modeling.postprocess import NonFiniteOutputError

    segmenter = OpenVocabSegmenter(CONFIG, weights=str(checkpoint), device="cpu")
    with torch.no_grad():
        segmenter.model.sem_seg_head.conv_seg.weight.fill_(float("nan"))
    with pytest.raises(NonFiniteOutputError, match="image 1: the model's class scores hold NaN or Inf"):
        segmenter.segment(image)
