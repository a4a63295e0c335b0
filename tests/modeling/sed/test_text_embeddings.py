import numpy as np
import open_clip
import pytest
import torch
import torch.nn.functional as F
from conftest import fill_disk

import sed  # noqa: F401  (registers the tiny CLIP config)
from sed.modeling.sed import text_embeddings
from sed.modeling.sed.text_embeddings import TextEmbeddingCache, encode_vocabulary

TEMPLATES = ("a photo of a {}.", "a drawing of the {}.")


@pytest.fixture(scope="module")
def clip_model():
    torch.manual_seed(0)
    return open_clip.create_model("sed_tiny_convnext", pretrained=None).eval()


def _encode(model, sentences):
    tokens = open_clip.get_tokenizer("sed_tiny_convnext")(sentences)
    with torch.no_grad():
        return F.normalize(model.encode_text(tokens), dim=-1)


def test_synonyms_are_averaged_per_template(clip_model):
    tokenizer = open_clip.get_tokenizer("sed_tiny_convnext")
    out = encode_vocabulary(clip_model, tokenizer, ["cat", "sky, heaven"], TEMPLATES, batch_size=3)
    assert out.shape == (2, 2, 64)
    torch.testing.assert_close(out[0], _encode(clip_model, [t.format("cat") for t in TEMPLATES]))
    sky, heaven = (_encode(clip_model, [t.format(w) for t in TEMPLATES]) for w in ("sky", "heaven"))
    torch.testing.assert_close(out[1], F.normalize(sky + heaven, dim=-1), atol=1e-6, rtol=1e-5)


def test_disk_cache_serves_a_second_process(clip_model, tmp_path, monkeypatch):
    first = TextEmbeddingCache("sed_tiny_convnext", str(tmp_path)).get(clip_model, ["cat", "dog"], TEMPLATES)
    assert len(list(tmp_path.glob("*.pt"))) == 1

    def fail(*args, **kwargs):
        raise AssertionError("embeddings recomputed despite the disk cache")

    monkeypatch.setattr(text_embeddings, "encode_vocabulary", fail)
    second = TextEmbeddingCache("sed_tiny_convnext", str(tmp_path)).get(clip_model, ["cat", "dog"], TEMPLATES)
    torch.testing.assert_close(first, second)


def test_a_full_disk_costs_the_cache_only(clip_model, tmp_path, monkeypatch, caplog):
    fill_disk(monkeypatch, paths=str(tmp_path))
    embeddings = TextEmbeddingCache("sed_tiny_convnext", str(tmp_path)).get(clip_model, ["cat", "dog"], TEMPLATES)
    assert embeddings.shape == (2, 2, 64)
    assert "Text embeddings not cached (no space left on the disk to write the text-embedding cache" in caplog.text
    assert not list(tmp_path.iterdir())


def test_disk_cache_is_keyed_by_the_weights(clip_model, tmp_path):
    cache = TextEmbeddingCache("sed_tiny_convnext", str(tmp_path))
    cache.get(clip_model, ["cat"], TEMPLATES)
    other = open_clip.create_model("sed_tiny_convnext", pretrained=None)
    TextEmbeddingCache("sed_tiny_convnext", str(tmp_path)).get(other, ["cat"], TEMPLATES)
    assert len(list(tmp_path.glob("*.pt"))) == 2


@pytest.mark.parametrize("damage", ["truncated", "random bytes", "empty", "another tensor", "nan"])
def test_a_damaged_cache_file_is_recomputed_with_a_warning(clip_model, tmp_path, caplog, damage):
    expected = TextEmbeddingCache("sed_tiny_convnext", str(tmp_path)).get(clip_model, ["cat", "dog"], TEMPLATES)
    [cached] = tmp_path.glob("*.pt")
    good = cached.read_bytes()
    if damage == "truncated":
        cached.write_bytes(good[: len(good) // 2])
    elif damage == "random bytes":
        cached.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, len(good), dtype=np.uint8)))
    elif damage == "empty":
        cached.write_bytes(b"")
    elif damage == "another tensor":
        torch.save(torch.zeros(3, 64), cached)
    else:
        torch.save(torch.full_like(expected, float("nan")), cached)
    again = TextEmbeddingCache("sed_tiny_convnext", str(tmp_path)).get(clip_model, ["cat", "dog"], TEMPLATES)
    torch.testing.assert_close(again, expected)
    assert f"Text-embedding cache file {cached} cannot be used" in caplog.text and "recomputing it" in caplog.text
    torch.testing.assert_close(torch.load(cached, weights_only=True), expected)  # rewritten whole


def test_embeddings_are_full_precision_under_autocast(clip_model):
    tokenizer = open_clip.get_tokenizer("sed_tiny_convnext")
    expected = encode_vocabulary(clip_model, tokenizer, ["cat"], TEMPLATES)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = encode_vocabulary(clip_model, tokenizer, ["cat"], TEMPLATES)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, expected)


def _sentences():
    return [
        "a photo of a cat.",
        "sky",
        "a " + "very " * 80 + "long sentence, cut at 77 tokens",
        "",
        "a drawing of the traffic light, on a rainy day in a large city.",
    ]


def _check_truncation_keeps_the_padded_embeddings(model, sentences, tokenizer):
    tokens = tokenizer(sentences)
    with torch.no_grad():
        padded = model.encode_text(tokens)
        for batch in (tokens, tokens[:2], tokens[1:2]):  # the length is set by each batch's longest sentence
            n = len(batch)
            start = next(i for i in range(len(tokens)) if torch.equal(tokens[i : i + n], batch))
            torch.testing.assert_close(
                text_embeddings.encode_tokens(model, batch), padded[start : start + n], atol=1e-5, rtol=0
            )


def test_truncated_text_tower_gives_the_padded_embeddings(clip_model):
    assert text_embeddings._truncatable(clip_model)
    _check_truncation_keeps_the_padded_embeddings(
        clip_model, _sentences(), open_clip.get_tokenizer("sed_tiny_convnext")
    )


def test_truncation_on_the_parity_fixture_text_tower(parity):
    model = parity.build().sem_seg_head.predictor.clip_model
    name = parity["open_clip_model_name"]
    sentences = [t.format(c) for c in parity["class_names"] for t in TEMPLATES] + _sentences()
    _check_truncation_keeps_the_padded_embeddings(model, sentences, open_clip.get_tokenizer(name))


def test_vocabulary_sorted_by_length_equals_sentence_by_sentence(clip_model):
    tokenizer = open_clip.get_tokenizer("sed_tiny_convnext")
    names = ["cat", "a very long class name with many words", "sky, heaven", "dog"]
    out = encode_vocabulary(clip_model, tokenizer, names, TEMPLATES, batch_size=3)
    for t, name in enumerate(names):
        if ", " not in name:
            torch.testing.assert_close(
                out[t], _encode(clip_model, [p.format(name) for p in TEMPLATES]), atol=1e-5, rtol=0
            )
