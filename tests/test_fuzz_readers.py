"""Property-based fuzzing of every reader of outside files: images, label maps, checkpoints (.pth and .pkl), configs,
vocabularies and dataset specs. Each gets random bytes, truncations and bit flips of a valid file; it must give
a correct result or its documented error in one line naming the file, never another exception or a hang.

The default run tries a few examples per reader (seconds); a longer run (minutes, thousands of examples):

    python -m pytest -q tests/test_fuzz_readers.py --hypothesis-profile long
"""

import io
import pickle

import numpy as np
import pytest
import torch
from conftest import REPO
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image
from torch import nn


def damaged(valid):
    """Bytes derived from the file `valid`: random bytes, a truncation, or up to 8 flipped bits."""

    def flip(bits):
        data = bytearray(valid)
        for bit in bits:
            data[bit // 8] ^= 1 << (bit % 8)
        return bytes(data)

    return st.one_of(
        st.binary(max_size=1024),
        st.integers(0, len(valid) - 1).map(lambda n: valid[:n]),
        st.lists(st.integers(0, 8 * len(valid) - 1), min_size=1, max_size=8).map(flip),
    )


def assert_one_line_naming(error, path):
    message = str(error)
    assert "\n" not in message.strip(), message
    assert str(path) in message, message


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def _png(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def _jpeg(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="JPEG")
    return buffer.getvalue()


_RNG = np.random.default_rng(0)
IMAGE = _RNG.integers(0, 256, (12, 16, 3), dtype=np.uint8)
LABELS = _RNG.integers(0, 8, (12, 16), dtype=np.uint8)


@given(data=st.one_of(damaged(_png(IMAGE)), damaged(_jpeg(IMAGE))))
def test_images(folder, data):
    from sed.data.image_io import ImageFileError
    from sed.predictor import load_image

    path = folder / "image.jpg"
    path.write_bytes(data)
    try:
        image = load_image(str(path))
    except ImageFileError as e:
        assert_one_line_naming(e, path)
    else:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3 and image.size > 0


@given(data=damaged(_png(LABELS)))
def test_label_maps(folder, data):
    from sed.data.image_io import ImageFileError
    from sed.data.label_maps import read_label_map

    path = folder / "labels.png"
    path.write_bytes(data)
    try:
        labels = read_label_map(str(path), 8, 255, image_size=LABELS.shape)
    except ImageFileError as e:
        assert_one_line_naming(e, path)
    else:
        assert labels.shape == LABELS.shape and set(np.unique(labels)) <= set(range(8)) | {255}


class _Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 2)


def _pth():
    buffer = io.BytesIO()
    torch.manual_seed(0)
    torch.save({"model": _Small().state_dict(), "iteration": 7}, buffer)
    return buffer.getvalue()


def _pkl():
    weights = {"fc.weight": np.ones((2, 3), np.float32), "fc.bias": np.zeros(2, np.float32)}
    return pickle.dumps({"model": weights, "__author__": "Detectron2 Model Zoo"}, protocol=2)


@pytest.mark.parametrize("suffix, valid", [(".pth", _pth()), (".pkl", _pkl())])
def test_checkpoints(folder, suffix, valid):
    from sed.checkpoint.loading import CheckpointError, UnsafeCheckpointError, load_checkpoint

    @given(data=damaged(valid))
    def check(data):
        path = folder / f"weights{suffix}"
        path.write_bytes(data)
        model = _Small()
        try:
            load_checkpoint(model, str(path))
        except (CheckpointError, UnsafeCheckpointError) as e:
            # a mismatch lists the tensors after its first line, which names the file
            assert_one_line_naming(str(e).splitlines()[0], path)
        else:  # it loaded: every tensor was in the file, with its shape
            assert all(torch.isfinite(p).all() for p in model.parameters())

    check()


CONFIG = f"_BASE_: {REPO / 'configs' / 'tiny_cpu.yaml'}\nSOLVER:\n  MAX_ITER: 20\n  BASE_LR: 0.001\n".encode()


@given(data=damaged(CONFIG))
def test_configs(folder, data):
    from sed.config import load_config

    path = folder / "config.yaml"
    path.write_bytes(data)
    try:
        cfg = load_config(str(path))
    except (ValueError, FileNotFoundError) as e:
        assert "\n" not in str(e).strip(), str(e)
    else:
        assert cfg.MODEL.META_ARCHITECTURE


VOCABULARY = b'["cat", "dog", "grass, lawn", "sky"]'


@given(data=damaged(VOCABULARY))
def test_vocabulary_files(folder, data):
    from sed.data.vocabulary import VocabularyError, parse_vocabulary

    path = folder / "vocabulary.json"
    path.write_bytes(data)
    try:
        names = parse_vocabulary(str(path))
    except VocabularyError as e:
        assert_one_line_naming(e, path)
    else:
        assert names and all(isinstance(n, str) and n.strip() for n in names)


@given(text=st.text(max_size=80))
def test_typed_vocabularies(text):
    from sed.data.vocabulary import VocabularyError, parse_vocabulary

    try:
        names = parse_vocabulary(text)
    except VocabularyError as e:
        assert "\n" not in str(e).strip()
    else:
        assert names and len(set(n.lower() for n in names)) == len(names)


SPEC = b"""name: fuzzed
classes: [cat, dog, sky]
ignore_label: 255
splits:
  train: {images: images/train, masks: masks/train}
"""


@given(data=damaged(SPEC))
def test_dataset_specs(folder, data):
    from detectron2.data import DatasetCatalog, MetadataCatalog

    from sed.data.datasets.register_custom import register_custom_dataset

    path = folder / "spec.yaml"
    path.write_bytes(data)
    before = set(DatasetCatalog.list())
    try:
        names = register_custom_dataset(str(path))
    except (ValueError, FileNotFoundError) as e:
        assert_one_line_naming(e, path)
    else:
        assert names and all(MetadataCatalog.get(n).stuff_classes for n in names)
    finally:
        for name in set(DatasetCatalog.list()) - before:  # leave the catalog as it was
            DatasetCatalog.remove(name)
            MetadataCatalog.remove(name)
