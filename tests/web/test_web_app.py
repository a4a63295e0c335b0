"""The browser demo's requests without a browser: vocabularies as the page sends them, one bad image costing only
itself, images larger than browsers show, full-resolution downloads, closed-vocabulary models."""

import json
import zipfile

import numpy as np
import pytest
from PIL import Image

from sed import OpenVocabSegmenter
from sed.data.synthetic import SYNTHETIC_CLASSES
from sed.utils.visualization import class_colors

pytest.importorskip("gradio", reason="the browser demo needs the web extra: pip install -e .[web]")
from sed.web.app import RequestError, WebDemo, benchmark_choices, build_app  # noqa: E402
from sed.web.render import PREVIEW_SIDE  # noqa: E402


@pytest.fixture(scope="module")
def closed_demo():
    demo = WebDemo(OpenVocabSegmenter("configs/ecenet/ecenet_tiny_cpu.yaml"))  # closed vocabulary, 8 classes
    yield demo
    demo.close()


@pytest.fixture(scope="module")
def demo():
    demo = WebDemo(OpenVocabSegmenter("configs/quickstart.yaml", opts=["SEED", "0"]))  # random weights
    yield demo
    demo.close()


@pytest.fixture
def field(tmp_path):
    path = tmp_path / "field.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(path)
    return str(path)


def test_closed_vocabulary_model_segments_its_classes_and_refuses_words(closed_demo, field, tmp_path):
    (tmp_path / "notes.png").write_text("not an image")
    response = closed_demo.segment([field, str(tmp_path / "notes.png")])
    assert {row[1] for row in response.rows} <= set(SYNTHETIC_CLASSES)
    assert "over the model's 8 classes" in response.status
    assert "skipped notes.png: not an image file" in response.status
    assert [p.rsplit("/", 1)[-1] for p in response.downloads] == [
        "segmentation_1_images.zip",
        "00_field_colored.png",
        "00_field_labels.png",
        "summary.json",
    ]
    with pytest.raises(RequestError, match="segments only its own 8 classes"):
        closed_demo.segment([field], "cat, dog")
    with pytest.raises(RequestError, match="Nothing segmented: notes.png: not an image file"):
        closed_demo.segment([str(tmp_path / "notes.png")])


def test_status_names_the_vocabulary_used(demo, field):
    assert "over your 3 classes (sky, grass, tree)" in demo.segment([field], "sky, grass/lawn, tree").status
    assert "over the ADE20K vocabulary (150 classes)" in demo.segment([field], benchmark="ade150").status
    with pytest.raises(RequestError, match="not both"):
        demo.segment([field], "cat, dog", benchmark="ade150")


@pytest.mark.parametrize(
    "words, message",
    [
        ("  ", "The vocabulary is empty"),
        ("sky", 'Type at least two classes, separated by commas: with "sky" alone'),
        ("sky;grass", "';' is not a separator"),
        ("sky,,grass", "the class at position 2 is empty"),
        ("/etc/passwd", "Type at least two classes"),  # typed text is never read as a file on the server
    ],
)
def test_typed_vocabulary_mistakes_get_a_visitors_message(demo, field, words, message):
    with pytest.raises(RequestError, match=message):
        demo.segment([field], words)


def test_benchmark_choices_are_readable_names_with_class_counts():
    choices = dict(benchmark_choices())
    assert choices["ADE20K, 150 classes"] == "ade150" and choices["PASCAL Context full, 459 classes"] == "pc459"
    assert "" not in choices.values()


def test_one_bad_image_costs_only_itself(demo, field, tmp_path, monkeypatch):
    Image.new("RGB", (1, 3000)).save(tmp_path / "thread.png")  # 1 px wide: segmented at its size
    Image.new("RGB", (20, 33)).save(tmp_path / "heavy.png")  # made to fail in the model, as out of memory would
    (tmp_path / "empty.jpg").write_bytes(b"")
    segment = demo.segmenter.segment

    def fails_on_33_rows(image, *args, **kwargs):
        if image.shape[0] == 33:
            raise RuntimeError("not enough memory: you tried to allocate 9 GB")
        return segment(image, *args, **kwargs)

    monkeypatch.setattr(demo.segmenter, "segment", fails_on_33_rows)
    paths = [str(tmp_path / name) for name in ("thread.png", "heavy.png", "empty.jpg")]
    response = demo.segment([paths[0], paths[1], field, paths[2]], "sky, grass")
    assert [f["input"] for f in response.failures] == ["heavy.png", "empty.jpg"]
    assert (
        response.status.startswith("Segmented 2 images")
        and "skipped heavy.png: the model cannot take it (not enough memory" in response.status
    )
    assert response.cards.count('class="sed-card sed-failed"') == 2 and response.cards.count("sed-mask") == 2


def test_image_wider_than_browsers_allow_gets_a_small_preview_and_full_size_files(demo, tmp_path):
    path = tmp_path / "panorama.png"
    Image.new("RGB", (16400, 40), (90, 160, 60)).save(path)
    response = demo.segment([str(path)], ", ".join(SYNTHETIC_CLASSES))
    assert f"shown at {PREVIEW_SIDE} × 5" in response.cards  # the preview fits every browser
    archive, colored, labels, summary = response.downloads
    label_map = np.asarray(Image.open(labels))
    assert label_map.shape == (40, 16400)
    colors = np.asarray(class_colors(len(SYNTHETIC_CLASSES)), np.uint8)
    assert np.array_equal(np.asarray(Image.open(colored).convert("RGB")), colors[label_map])  # the legend's colours
    with zipfile.ZipFile(archive) as zf:
        assert json.loads(zf.read("classes.json")) == SYNTHETIC_CLASSES
        assert sorted(zf.namelist()) == [
            "00_panorama_colored.png",
            "00_panorama_labels.png",
            "classes.json",
            "summary.json",
        ]
    assert json.load(open(summary))["images"][0]["size"] == [40, 16400]


def test_quickstart_examples_are_its_textures_with_its_classes(demo):
    examples = demo.examples()
    assert len(examples) == 3 and all(words == ", ".join(SYNTHETIC_CLASSES) for _, words in examples)
    sizes = {Image.open(path).size for path, _ in examples}
    assert any(w > h for w, h in sizes) and any(w < h for w, h in sizes)  # a landscape and a portrait
    assert "random weights" in demo.describe_model()


def test_pages_of_open_and_closed_vocabulary_models_build(demo, closed_demo):
    for page_demo in (demo, closed_demo):
        build_app(page_demo)


def test_non_finite_scores_are_an_error_naming_the_image(closed_demo, field, monkeypatch):
    """Broken (NaN) weights: no segmentation is shown as if it were one."""
    import torch

    head = closed_demo.segmenter.model.sem_seg_head.conv_seg
    monkeypatch.setattr(head, "weight", torch.nn.Parameter(torch.full_like(head.weight, float("nan"))))
    with pytest.raises(RequestError, match="field.png: the model's class scores hold NaN or Inf"):
        closed_demo.segment([field])
