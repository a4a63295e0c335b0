"""OpenVocabSegmenter on the tiny random-weight SED (configs/tiny_cpu.yaml): one model for the module."""

import numpy as np
import pytest
import torch
from detectron2.data import MetadataCatalog
from detectron2.modeling import META_ARCH_REGISTRY
from PIL import Image

from sed import OpenVocabSegmenter
from sed.data.vocabulary import VocabularyError
from sed.predictor import CheckpointError, load_checkpoint, load_image
from sed.utils.class_names import load_class_names

# One prompt template instead of 80: the same model code at a fraction of the text-encoding time.
OPTS = ["MODEL.PROMPT_ENSEMBLE_TYPE", "single", "SEED", "0"]
VOCABULARY = "cat, dog, grass/lawn, sky"
CLASS_NAMES = ["cat", "dog", "grass, lawn", "sky"]


def make_image(height, width, seed):
    """A smooth random RGB image: blobs rather than noise, so that labels form regions."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (3, height // 16 + 1, width // 16 + 1))
    image = torch.nn.functional.interpolate(torch.tensor(coarse)[None], size=(height, width), mode="bilinear")
    return image[0].permute(1, 2, 0).numpy().astype(np.uint8)


@META_ARCH_REGISTRY.register()
class ClosedVocabularyToyModel(torch.nn.Module):
    """A closed-vocabulary stand-in (like ECENet): no `test_class_names`, maps over its dataset's 3 classes."""

    def __init__(self, cfg):
        super().__init__()
        self.head = torch.nn.Conv2d(3, 3, 1)

    def forward(self, batched_inputs):
        return [
            {
                "sem_seg": torch.nn.functional.interpolate(
                    self.head(x["image"][None] / 255), size=(x["height"], x["width"])
                )[0].softmax(0)
            }
            for x in batched_inputs
        ]


@pytest.fixture(scope="module")
def segmenter():
    return OpenVocabSegmenter("configs/tiny_cpu.yaml", opts=OPTS, device="cpu")


@pytest.fixture(scope="module")
def images():
    return [make_image(96, 128, 0), make_image(80, 112, 1)]


@pytest.fixture(scope="module")
def one_by_one(segmenter, images):
    return [segmenter.segment(image, VOCABULARY, return_probabilities=True) for image in images]


def test_package_exports_the_segmenter():
    import sed

    assert sed.OpenVocabSegmenter is OpenVocabSegmenter


def test_results_are_at_the_input_size_over_the_vocabulary(one_by_one, images):
    for result, image in zip(one_by_one, images):
        assert result.class_names == CLASS_NAMES
        assert result.label_map.shape == image.shape[:2] and result.label_map.dtype == np.int32
        assert 0 <= result.label_map.min() and result.label_map.max() < len(CLASS_NAMES)
        assert result.probabilities.shape == (len(CLASS_NAMES), *image.shape[:2])
        assert result.probabilities.dtype == np.float32
        assert 0 <= result.probabilities.min() and result.probabilities.max() <= 1
        np.testing.assert_array_equal(result.label_map, result.probabilities.argmax(0))
        areas = list(result.class_areas.values())
        assert sum(areas) == pytest.approx(1) and areas == sorted(areas, reverse=True)
        assert result.present_classes == list(result.class_areas)
        assert set(result.present_classes) == {CLASS_NAMES[i] for i in np.unique(result.label_map)}


def test_a_batch_equals_its_images_one_by_one(segmenter, images, one_by_one):
    batched = segmenter.segment(images, VOCABULARY, batch_size=2, return_probabilities=True)
    assert isinstance(batched, list) and len(batched) == 2
    for single, batch in zip(one_by_one, batched):
        np.testing.assert_allclose(batch.probabilities, single.probabilities, atol=1e-5)
        assert (batch.label_map == single.label_map).mean() > 0.999


def test_paths_arrays_and_pil_images_give_the_same_result(segmenter, images, one_by_one, tmp_path):
    path = tmp_path / "image.png"
    Image.fromarray(images[0]).save(path)
    results = segmenter.segment(
        [str(path), images[0], Image.open(path)], CLASS_NAMES, batch_size=3, return_probabilities=True
    )
    for result in results:
        np.testing.assert_allclose(result.probabilities, one_by_one[0].probabilities, atol=1e-5)
        assert (result.label_map == one_by_one[0].label_map).mean() > 0.999  # near-ties of a random model


def test_vocabulary_forms(segmenter):
    assert segmenter.resolve_vocabulary(VOCABULARY) == CLASS_NAMES
    assert segmenter.resolve_vocabulary(["cat", "dog", "grass, lawn", "sky"]) == CLASS_NAMES
    assert segmenter.resolve_vocabulary("ade150") == load_class_names("datasets/ade150.json")
    # No vocabulary: the config's MODEL.SEM_SEG_HEAD.TEST_CLASS_JSON.
    assert segmenter.resolve_vocabulary() == load_class_names("datasets/coco.json") == segmenter.class_names
    with pytest.raises(VocabularyError, match="listed twice"):
        segmenter.segment(make_image(32, 32, 2), "cat, dog, Cat")


def test_fast_inference_is_on_for_large_vocabularies_unless_forced(segmenter, images, monkeypatch):
    assert not segmenter.uses_fast_inference(4) and segmenter.uses_fast_inference(150)
    model, seen = segmenter.model, []
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda inputs: seen.append(model.fast_inference) or forward(inputs))
    try:
        segmenter.fast_inference = False
        assert not segmenter.uses_fast_inference(150)
        segmenter.fast_inference = True
        before = model.fast_inference
        result = segmenter.segment(images[1], VOCABULARY)
        assert seen == [True] and result.label_map.shape == images[1].shape[:2]
        assert model.fast_inference == before  # the model's own setting again after the call
        assert result.probabilities is None  # unless asked for
    finally:
        segmenter.fast_inference = None


def test_checkpoints_load_and_mismatches_fail_before_any_image(segmenter, images, one_by_one, tmp_path):
    state = segmenter.model.state_dict()
    torch.save({"model": state}, tmp_path / "good.pth")
    reloaded = OpenVocabSegmenter("configs/tiny_cpu.yaml", weights=str(tmp_path / "good.pth"), opts=OPTS, device="cpu")
    np.testing.assert_allclose(
        reloaded.segment(images[0], VOCABULARY, return_probabilities=True).probabilities,
        one_by_one[0].probabilities,
        atol=1e-6,
    )

    bad = dict(state)
    bad.pop(next(iter(bad)))
    bad["not_a_module.weight"] = torch.zeros(2)
    torch.save({"model": bad}, tmp_path / "bad.pth")
    with pytest.raises(CheckpointError, match="does not fit this SED model"):
        OpenVocabSegmenter("configs/tiny_cpu.yaml", weights=str(tmp_path / "bad.pth"), opts=OPTS, device="cpu")
    with pytest.raises(FileNotFoundError, match="no such file"):
        OpenVocabSegmenter("configs/tiny_cpu.yaml", weights=str(tmp_path / "missing.pth"), opts=OPTS, device="cpu")


def test_any_model_with_an_unmatched_checkpoint_fails(tmp_path):
    """Models without SED's own check (e.g. ECENet) get the same error from `load_checkpoint`."""
    torch.save({"model": {"weight": torch.zeros(3, 2)}}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="1 of its tensors are missing or have other shapes"):
        load_checkpoint(torch.nn.Linear(2, 3), str(tmp_path / "other.pth"))


def test_bad_images_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        load_image(str(tmp_path / "missing.jpg"))
    with pytest.raises(ValueError, match="uint8"):
        load_image(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        load_image(np.zeros((8, 8, 2), np.uint8))
    assert load_image(np.zeros((8, 8), np.uint8)).shape == (8, 8, 3)


def test_closed_vocabulary_models_segment_their_dataset_classes(images):
    MetadataCatalog.get("closed_vocabulary_toy").set(stuff_classes=["road", "car", "sky"])
    segmenter = OpenVocabSegmenter(
        "configs/tiny_cpu.yaml",
        device="cpu",
        opts=["MODEL.META_ARCHITECTURE", "ClosedVocabularyToyModel", "DATASETS.TEST", "('closed_vocabulary_toy',)"],
    )
    assert not segmenter.open_vocabulary and segmenter.class_names == ["road", "car", "sky"]
    result = segmenter.segment(images[0])
    assert result.class_names == ["road", "car", "sky"] and result.label_map.shape == images[0].shape[:2]
    assert segmenter.resolve_vocabulary("road, car, sky") == ["road", "car", "sky"]
    with pytest.raises(
        VocabularyError, match="closed-vocabulary model: it segments the 3 classes of closed_vocabulary_toy only"
    ):
        segmenter.segment(images[0], VOCABULARY)


def test_label_maps_without_probabilities_equal_their_argmax(segmenter, images, one_by_one):
    for image, expected in zip(images, one_by_one):
        result = segmenter.segment(image, VOCABULARY)
        assert result.probabilities is None
        np.testing.assert_array_equal(result.label_map, expected.probabilities.argmax(0))
        np.testing.assert_array_equal(result.label_map, expected.label_map)


def test_build_error_message_tells_an_unreadable_checkpoint_from_a_mismatch():
    from sed.checkpoint.loading import UnreadableCheckpointError
    from sed.predictor import build_error_message

    unreadable = build_error_message(UnreadableCheckpointError("model.pth is truncated"), "cfg.yaml")
    assert unreadable == "model.pth is truncated"
    mismatch = build_error_message(CheckpointError("head.weight: shape (3,) vs (4,)"), "cfg.yaml", "nothing done")
    assert (
        mismatch == "The checkpoint does not match the config cfg.yaml; nothing done.\nhead.weight: shape (3,) vs (4,)"
    )
    assert build_error_message(ValueError("bad option"), "cfg.yaml", "nothing done") == "bad option"


@pytest.mark.parametrize("return_probabilities", [False, True])
def test_non_finite_scores_are_refused_naming_the_image(segmenter, images, monkeypatch, tmp_path, return_probabilities):
    """NaN scores would give a confident-looking label map (argmax picks the NaN's class)."""
    from sed.modeling.postprocess import NonFiniteOutputError

    compute = segmenter.model._probabilities

    def with_a_nan(batch):
        probabilities = compute(batch)
        probabilities[-1, 0, 0, 0] = float("nan")  # the last image of the batch only
        return probabilities

    monkeypatch.setattr(segmenter.model, "_probabilities", with_a_nan)
    Image.fromarray(images[1]).save(tmp_path / "b.png")
    with pytest.raises(NonFiniteOutputError, match=r"^image 2: the model's class scores hold NaN or Inf"):
        segmenter.segment(images, VOCABULARY, return_probabilities=return_probabilities)
    with pytest.raises(NonFiniteOutputError, match=r"b\.png: the model's class scores hold NaN or Inf") as error:
        segmenter.segment([images[0], str(tmp_path / "b.png")], VOCABULARY)
    assert error.value.position == 2


def test_non_finite_scores_of_a_closed_vocabulary_model_are_refused(images):
    from sed.modeling.postprocess import NonFiniteOutputError

    MetadataCatalog.get("closed_vocabulary_toy").set(stuff_classes=["road", "car", "sky"])
    segmenter = OpenVocabSegmenter(
        "configs/tiny_cpu.yaml",
        device="cpu",
        opts=["MODEL.META_ARCHITECTURE", "ClosedVocabularyToyModel", "DATASETS.TEST", "('closed_vocabulary_toy',)"],
    )
    with torch.no_grad():
        segmenter.model.head.weight[0, 0] = float("inf")
    with pytest.raises(NonFiniteOutputError, match="image 1: the model's class scores hold NaN or Inf"):
        segmenter.segment(images[0])


@pytest.mark.parametrize("shape", [(1, 1), (1, 5000), (5000, 1)])
def test_degenerate_sizes_segment_at_their_size(segmenter, images, one_by_one, shape):
    """Any size from 1 x 1 px and any aspect ratio: a side the test resize would round to 0 px stays 1 px; in a
    batch such an image changes nothing of the others, nor they of it."""
    image = make_image(max(shape[0], 16), max(shape[1], 16), 3)[: shape[0], : shape[1]]
    alone = segmenter.segment(image, VOCABULARY, return_probabilities=True)
    assert alone.label_map.shape == shape and set(np.unique(alone.label_map)) <= set(range(4))
    assert alone.probabilities.shape == (4, *shape) and np.isfinite(alone.probabilities).all()
    batch = segmenter.segment([images[0], image], VOCABULARY, batch_size=2, return_probabilities=True)
    for result, expected in zip(batch, [one_by_one[0], alone]):  # as test_a_batch_equals_its_images_one_by_one
        np.testing.assert_allclose(result.probabilities, expected.probabilities, atol=1e-5)
        assert (result.label_map == expected.label_map).mean() > 0.999


def test_the_resize_keeps_one_pixel_where_detectron2_rounds_to_zero(segmenter):
    from detectron2.data import transforms as T

    image = np.zeros((1, 5000, 3), np.uint8)
    assert T.ResizeShortestEdge([384] * 2, 1333).get_transform(image).new_h == 0  # detectron2's: fails later
    transform = segmenter.resize.get_transform(image)
    assert (transform.new_h, transform.new_w) == (1, 1333)
    assert transform.apply_image(image).shape == (1, 1333, 3)


def test_report_mode_gives_a_failure_in_place_of_each_bad_image(segmenter, images, one_by_one, tmp_path, monkeypatch):
    (tmp_path / "notes.jpg").write_text("not an image")
    bad_size = make_image(40, 50, 2)
    forward = segmenter.model.forward

    def fails_on_40_rows(batched_inputs):  # a model error (e.g. out of memory) on one image of the batch
        if any(x["height"] == 40 for x in batched_inputs):
            raise RuntimeError("CPU out of memory\nwhile allocating")
        return forward(batched_inputs)

    monkeypatch.setattr(segmenter.model, "forward", fails_on_40_rows)
    inputs = [images[0], str(tmp_path / "notes.jpg"), bad_size, np.zeros((0, 5, 3), np.uint8), images[1]]
    results = segmenter.segment(inputs, VOCABULARY, batch_size=2, return_probabilities=True, errors="report")
    assert [type(r).__name__ for r in results] == [
        "SegmentationResult",
        "SegmentationFailure",
        "SegmentationFailure",
        "SegmentationFailure",
        "SegmentationResult",
    ]
    assert results[1].input == str(tmp_path / "notes.jpg") and "not an image file" in results[1].error
    assert results[2].input == "image 3"
    assert results[2].error == "the model failed on it (RuntimeError: CPU out of memory while allocating)"
    assert results[3].input == "image 4" and "empty" in results[3].error
    for result, alone in zip([results[0], results[4]], one_by_one):
        np.testing.assert_allclose(result.probabilities, alone.probabilities, atol=1e-5)
        assert (result.label_map == alone.label_map).mean() > 0.999
    with pytest.raises(RuntimeError, match="out of memory"):  # the default: raise
        segmenter.segment([images[0], bad_size], VOCABULARY)
    with pytest.raises(ValueError, match="errors must be 'raise' or 'report'"):
        segmenter.segment(images, VOCABULARY, errors="skip")
