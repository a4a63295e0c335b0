"""The browser demo's requests without a browser: skipped unreadable files, closed-vocabulary models."""
import pytest
from PIL import Image

from sed import OpenVocabSegmenter
from sed.data.synthetic import SYNTHETIC_CLASSES

pytest.importorskip("gradio", reason="the browser demo needs the web extra: pip install -e .[web]")
from sed.web.app import RequestError, WebDemo  # noqa: E402


@pytest.fixture(scope="module")
def demo():
    demo = WebDemo(OpenVocabSegmenter("configs/ecenet/ecenet_tiny_cpu.yaml"))  # closed vocabulary, 8 classes
    yield demo
    demo.close()


def test_closed_vocabulary_model_segments_its_classes_and_refuses_words(demo, tmp_path):
    Image.new("RGB", (40, 30), (90, 160, 60)).save(tmp_path / "field.png")
    (tmp_path / "notes.png").write_text("not an image")
    gallery, rows, downloads, status = demo.segment([str(tmp_path / "field.png"), str(tmp_path / "notes.png")])
    assert len(gallery) == 1 and {row[1] for row in rows} <= set(SYNTHETIC_CLASSES)
    assert "skipped notes.png: not an image file" in status
    assert [p.rsplit("/", 1)[-1] for p in downloads] == ["00_field_labels.png", "summary.json"]
    with pytest.raises(RequestError, match="closed-vocabulary model"):
        demo.segment([str(tmp_path / "field.png")], "cat, dog")
    with pytest.raises(RequestError, match="Nothing segmented: notes.png: not an image file"):
        demo.segment([str(tmp_path / "notes.png")])
