"""MindSpore .ckpt files read and written with protobuf only: dtypes, shapes, sliced tensors, bad files."""
import numpy as np
import pytest

from sed.checkpoint.mindspore_format import (MindSporeCheckpointError, _checkpoint_message_class,
                                             read_mindspore_checkpoint, write_mindspore_checkpoint)


def test_tensors_round_trip_with_their_dtype_and_shape(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {"fc.weight": rng.standard_normal((3, 4)).astype(np.float32),
               "bn.moving_mean": rng.standard_normal(3).astype(np.float16),
               "global_step": np.array([7], np.int32), "scalar": np.array(2.5, np.float64),
               "mask": np.array([[True, False]])}
    write_mindspore_checkpoint(tmp_path / "a.ckpt", tensors)
    read = read_mindspore_checkpoint(tmp_path / "a.ckpt")
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
    np.testing.assert_array_equal(read_mindspore_checkpoint(tmp_path / "sliced.ckpt")["big"], full)


def test_files_that_are_not_mindspore_checkpoints_are_named(tmp_path):
    (tmp_path / "model.pth").write_bytes(b"PK\x03\x04 a zip archive, as torch.save writes")
    with pytest.raises(MindSporeCheckpointError, match="not a MindSpore checkpoint"):
        read_mindspore_checkpoint(tmp_path / "model.pth")
    write_mindspore_checkpoint(tmp_path / "ok.ckpt", {"w": np.zeros((2, 3), np.float32)})
    (tmp_path / "cut.ckpt").write_bytes((tmp_path / "ok.ckpt").read_bytes()[:-8])
    with pytest.raises(MindSporeCheckpointError):
        read_mindspore_checkpoint(tmp_path / "cut.ckpt")
