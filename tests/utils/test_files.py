"""Atomic writes on a full disk: one line naming the file and the space it needs; the old file stays whole."""

import errno

import pytest
import torch
from conftest import fill_disk

from sed.utils.files import DiskFullError, atomic_write


def test_a_full_disk_is_one_line_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "model.pth"
    atomic_write(str(path), lambda f: f.write(b"old contents"))
    fill_disk(monkeypatch, 1000)
    with pytest.raises(DiskFullError) as error:
        atomic_write(str(path), lambda f: f.write(b"x" * 3 * 2**20), "checkpoint", 3 * 2**20)
    message = str(error.value)
    assert "\n" not in message and error.value.errno == errno.ENOSPC
    assert message.startswith(f"no space left on the disk to write the checkpoint {path} (")
    assert "it needs about 3.0 MB, " in message and " free there; free some space" in message
    assert path.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["model.pth"]  # the partial temporary file is removed


def test_without_a_size_the_message_says_what_was_written(tmp_path, monkeypatch):
    fill_disk(monkeypatch, 2 * 2**20)
    with pytest.raises(DiskFullError, match=r"it needs more than the 2.0 MB written"):
        atomic_write(str(tmp_path / "results.json"), lambda f: [f.write(b"y" * 2**20) for _ in range(3)], "results")
    assert not list(tmp_path.iterdir())


def test_other_errors_pass_unchanged(tmp_path):
    def fail(f):
        raise OSError(errno.EIO, "Input/output error")

    with pytest.raises(OSError) as error:
        atomic_write(str(tmp_path / "a"), fail)
    assert type(error.value) is OSError and error.value.errno == errno.EIO
    assert not list(tmp_path.iterdir())


def test_a_checkpoint_save_on_a_full_disk_keeps_the_previous_checkpoint_named(tmp_path, monkeypatch):
    from sed.checkpoint.loading import SafeCheckpointer

    checkpointer = SafeCheckpointer(torch.nn.Linear(100, 100), str(tmp_path))
    checkpointer.save("model_0000001")
    before = (tmp_path / "model_0000001.pth").read_bytes()
    fill_disk(monkeypatch, 5000)
    with pytest.raises(DiskFullError, match=r"checkpoint .*model_0000003.pth .*it needs about 39.5 KB"):
        checkpointer.save("model_0000003")
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000001.pth"
    assert (tmp_path / "model_0000001.pth").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last_checkpoint", "model_0000001.pth"]
