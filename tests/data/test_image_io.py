"""Image files of every Pillow mode become correct 8-bit RGB (16-bit greyscale scaled, not clipped to white), and a
file that cannot be read raises an error naming it: in the demo's reader and in the training mapper alike."""

import numpy as np
import pytest
from PIL import Image

from sed.data.image_io import ImageFileError, read_image
from sed.predictor import load_image


def _sixteen_bit_png(path):
    values = np.array([[0, 257 * 64, 257 * 128, 65535]], np.uint16).repeat(2, axis=0)
    Image.fromarray(values).save(path)  # mode I;16
    return np.array([[0, 64, 128, 255]], np.uint8).repeat(2, axis=0)


def test_sixteen_bit_greyscale_is_scaled_not_clipped(tmp_path):
    expected = _sixteen_bit_png(tmp_path / "grey16.png")
    assert Image.open(tmp_path / "grey16.png").mode.startswith("I")
    for rgb in (
        read_image(tmp_path / "grey16.png"),
        load_image(str(tmp_path / "grey16.png")),
        load_image(Image.open(tmp_path / "grey16.png")),
    ):
        assert rgb.dtype == np.uint8 and rgb.shape == (2, 4, 3)
        np.testing.assert_array_equal(rgb[:, :, 1], expected)
    np.testing.assert_array_equal(read_image(tmp_path / "grey16.png", format="BGR")[:, :, 0], expected)
    assert read_image(tmp_path / "grey16.png", format=None).max() == 65535  # label maps keep their values


def test_float_images_are_refused_naming_the_mode(tmp_path):
    Image.fromarray(np.ones((4, 4), np.float32)).save(tmp_path / "float.tif")
    with pytest.raises(ImageFileError, match=r"float.tif: .*Pillow mode F"):
        read_image(tmp_path / "float.tif")


def test_unreadable_files_are_named_and_can_all_be_listed(tmp_path):
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "good.png")
    data = (tmp_path / "good.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:60])
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(ImageFileError, match=r"cut.png: truncated or corrupt .*replace the file"):
        read_image(tmp_path / "cut.png")
    with pytest.raises(ImageFileError, match=r"text.png: not an image file"):
        read_image(tmp_path / "text.png", format=None)


def test_an_error_re_raised_by_a_data_loader_keeps_its_line():
    wrapped = ImageFileError(
        "Caught ImageFileError in DataLoader worker process 0.\nOriginal Traceback (most "
        "recent call last):\n  ...\nsed.data.image_io.ImageFileError: x.jpg: truncated\n"
    )
    assert wrapped.one_line == "x.jpg: truncated"


def test_empty_arrays_are_refused():
    with pytest.raises(ValueError, match=r"The image is empty \(shape \(0, 5, 3\)\)"):
        load_image(np.zeros((0, 5, 3), np.uint8))
