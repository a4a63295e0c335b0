"""Zoo checkpoints downloaded from a local HTTP server: cache, progress, checksum, resume, offline message."""

import os
from pathlib import Path

import pytest
from zoo_server import ZooServer

from sed import model_zoo
from sed.model_zoo import MODEL_ZOO, WeightsUnavailableError, fetch_checkpoint

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


@pytest.fixture
def zoo_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SED_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
def serve(monkeypatch):
    """serve(payload, mode, drop_first, **entry) -> the running server, its entry registered as "tiny-test"."""
    servers = []

    def start(payload=PAYLOAD, mode="range", drop_first=False, **entry):
        server = ZooServer(payload, mode, drop_first)
        servers.append(server)
        monkeypatch.setitem(MODEL_ZOO, "tiny-test", server.entry(**entry))
        return server

    yield start
    for server in servers:
        server.stop()


def test_downloads_once_into_the_cache_with_a_progress_bar(zoo_home, serve, capsys):
    server = serve()
    path = fetch_checkpoint("tiny-test")
    assert path == str(zoo_home / "checkpoints" / "tiny-test.pth")
    assert Path(path).read_bytes() == PAYLOAD
    assert "tiny-test" in capsys.readouterr().err  # tqdm's bar, labelled with the name
    assert not list((zoo_home / "checkpoints").glob("*.part"))
    server.stop()
    assert fetch_checkpoint("tiny-test") == path  # cache hit with the server gone
    assert server.requests == [None]


def test_checksum_mismatch_is_refused_and_nothing_is_cached(zoo_home, serve):
    serve(sha256="0" * 64)
    with pytest.raises(WeightsUnavailableError, match="not the zoo's file.*sha256.*deleted") as error:
        fetch_checkpoint("tiny-test")
    assert "\n" not in str(error.value)
    assert not [f for f in os.listdir(zoo_home / "checkpoints") if not f.endswith(".lock")]


def test_size_mismatch_is_refused(zoo_home, serve):
    serve(size=len(PAYLOAD) + 1)
    with pytest.raises(WeightsUnavailableError, match=f"has {len(PAYLOAD)} bytes"):
        fetch_checkpoint("tiny-test")


def test_an_interrupted_download_resumes_with_a_range_request(zoo_home, serve):
    server = serve(drop_first=True)
    assert Path(fetch_checkpoint("tiny-test")).read_bytes() == PAYLOAD
    assert server.requests[0] is None and server.requests[1] == f"bytes={len(PAYLOAD) // 2}-"


def test_a_server_without_range_support_restarts_cleanly(zoo_home, serve):
    server = serve(mode="no-range", drop_first=True)
    assert Path(fetch_checkpoint("tiny-test")).read_bytes() == PAYLOAD
    assert len(server.requests) == 2


def test_a_resume_at_another_offset_restarts_cleanly(zoo_home, serve):
    server = serve(mode="wrong-offset", drop_first=True)
    assert Path(fetch_checkpoint("tiny-test")).read_bytes() == PAYLOAD
    assert server.requests == [None, f"bytes={len(PAYLOAD) // 2}-", None]


def test_a_part_left_by_an_earlier_run_is_resumed(zoo_home, serve):
    server = serve()
    (zoo_home / "checkpoints").mkdir(parents=True)
    (zoo_home / "checkpoints" / "tiny-test.pth.part").write_bytes(PAYLOAD[:1000])
    assert Path(fetch_checkpoint("tiny-test")).read_bytes() == PAYLOAD
    assert server.requests == ["bytes=1000-"]


def test_offline_gives_one_line_naming_file_size_place_and_variable(zoo_home, serve):
    server = serve(size=len(PAYLOAD))
    server.stop()  # nothing listens on the port any more
    with pytest.raises(WeightsUnavailableError) as error:
        fetch_checkpoint("tiny-test")
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    for part in [
        "tiny-test.pth",
        "1.0 MB",
        str(zoo_home / "checkpoints" / "tiny-test.pth"),
        "SED_HOME",
        "MODEL.WEIGHTS /path/to/tiny-test.pth",
        "refused",
    ]:
        assert part in message


def test_a_file_put_there_by_hand_is_used_without_network(zoo_home):
    entry = MODEL_ZOO["sed-b"]
    (zoo_home / "checkpoints").mkdir(parents=True)
    (zoo_home / "checkpoints" / entry.filename).write_bytes(b"by hand")
    assert fetch_checkpoint("sed-b") == str(zoo_home / "checkpoints" / entry.filename)


def test_unknown_names_list_the_zoo():
    with pytest.raises(WeightsUnavailableError, match="not in the model zoo.*sed-b"):
        fetch_checkpoint("sed-x")


def test_cache_defaults_to_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.delenv("SED_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert model_zoo.cache_dir() == str(tmp_path / "sed")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert model_zoo.cache_dir() == os.path.expanduser("~/.cache/sed")
