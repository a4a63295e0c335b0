"""MindSpore .ckpt files read and written with protobuf only: dtypes, shapes, sliced tensors, bad files, and files
that MindSpore itself wrote (crc_check trailer, append_dict strings, BFloat16)."""

import numpy as np
import pytest
from conftest import FIXTURES

from sed.checkpoint.mindspore_format import (
    MindSporeCheckpointError,
    _checkpoint_message_class,
    read_mindspore_checkpoint,
    write_mindspore_checkpoint,
)


def test_tensors_round_trip_with_their_dtype_and_shape(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {
        "fc.weight": rng.standard_normal((3, 4)).astype(np.float32),
        "bn.moving_mean": rng.standard_normal(3).astype(np.float16),
        "global_step": np.array([7], np.int32),
        "scalar": np.array(2.5, np.float64),
        "mask": np.array([[True, False]]),
    }
    write_mindspore_checkpoint(tmp_path / "a.ckpt", tensors)
    read, skipped = read_mindspore_checkpoint(tmp_path / "a.ckpt")
    assert skipped == {}
    assert list(read) == list(tensors)
    for tag, array in tensors.items():
        assert read[tag].dtype == array.dtype and read[tag].shape == array.shape
        np.testing.assert_array_equal(read[tag], array)


def test_slices_of_one_tag_are_joined_in_file_order(tmp_path):
    """MindSpore writes a large tensor as several messages with the same tag, appended to the file."""
    full = np.arange(24, dtype=np.float32).reshape(6, 4)
    Checkpoint = _checkpoint_message_class()
    with open(tmp_path / "sliced.ckpt", "wb") as f:
        for part in np.array_split(full, 3):
            message = Checkpoint()
            value = message.value.add(tag="big")
            value.tensor.dims.extend(full.shape)
            value.tensor.tensor_type = "Float32"
            value.tensor.tensor_content = part.tobytes()
            f.write(message.SerializeToString())
    np.testing.assert_array_equal(read_mindspore_checkpoint(tmp_path / "sliced.ckpt")[0]["big"], full)


def test_files_that_are_not_mindspore_checkpoints_are_named(tmp_path):
    (tmp_path / "model.pth").write_bytes(b"PK\x03\x04 a zip archive, as torch.save writes")
    with pytest.raises(MindSporeCheckpointError, match="not a MindSpore checkpoint"):
        read_mindspore_checkpoint(tmp_path / "model.pth")
    write_mindspore_checkpoint(tmp_path / "ok.ckpt", {"w": np.zeros((2, 3), np.float32)})
    (tmp_path / "cut.ckpt").write_bytes((tmp_path / "ok.ckpt").read_bytes()[:-8])
    with pytest.raises(MindSporeCheckpointError):
        read_mindspore_checkpoint(tmp_path / "cut.ckpt")


# Files written by MindSpore 2.10 itself (tests/fixtures/make_mindspore_fixtures.py); expected.npz holds the values
# MindSpore's own load_checkpoint reads back from them.
MINDSPORE_FILES = FIXTURES / "mindspore"
EXPECTED_TAGS = [
    "fc.weight",
    "fc.bias",
    "double",
    "sliced",
    "global_step",
    "count",
    "int8",
    "uint8",
    "int16",
    "mask",
    "bf16",
    "bf16_sliced",
]


@pytest.mark.parametrize("name", ["dtypes.ckpt", "crc.ckpt", "append_dict.ckpt"])
def test_files_written_by_mindspore_read_as_mindspore_reads_them(name):
    """Every dtype (BFloat16 as float32), tensors written as several slices, the crc_check trailer, append_dict."""
    tensors, skipped = read_mindspore_checkpoint(MINDSPORE_FILES / name)
    expected = np.load(MINDSPORE_FILES / "expected.npz")
    appended = ["epoch_num", "learning_rate"] if name == "append_dict.ckpt" else []
    assert list(tensors) == EXPECTED_TAGS + appended
    for tag, array in tensors.items():
        assert array.dtype == expected[tag].dtype and array.shape == expected[tag].shape, tag
        np.testing.assert_array_equal(array, expected[tag], err_msg=tag)
    assert skipped == ({"note": "string 'trained on ADE20K'"} if name == "append_dict.ckpt" else {})


def test_bfloat16_values_are_the_upper_half_of_float32():
    tensors, _ = read_mindspore_checkpoint(MINDSPORE_FILES / "dtypes.ckpt")
    np.testing.assert_array_equal(tensors["bf16"][:3], [1.0, -2.5, 3.140625])  # exact in bfloat16
    assert tensors["bf16"][3] != np.float32(1e-3) and abs(tensors["bf16"][3] - 1e-3) < 1e-3 / 128


def test_a_crc_trailer_that_does_not_match_is_named(tmp_path):
    data = bytearray((MINDSPORE_FILES / "crc.ckpt").read_bytes())
    data[40] ^= 1
    (tmp_path / "damaged.ckpt").write_bytes(bytes(data))
    with pytest.raises(MindSporeCheckpointError, match="CRC32 .* does not match .* damaged"):
        read_mindspore_checkpoint(tmp_path / "damaged.ckpt")
