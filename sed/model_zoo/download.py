"""Downloads a zoo checkpoint once into the cache and hands out its local path.

The cache is `$SED_HOME/checkpoints/` (default `$XDG_CACHE_HOME/sed`, i.e. `~/.cache/sed`). A file appears under
its final name only complete and checked (written as `<name>.part`, then renamed), so a file found there is a
cache hit, whatever happened to earlier downloads. An interrupted transfer is resumed with an HTTP Range request
where the server allows it, and started again from zero where it does not. Google Drive files (the authors'
hosting) go through gdown, the `zoo` extra, which resumes the same way.

Every failure is a `WeightsUnavailableError` whose one-line message names the file, its size, where to put a
copy by hand and the variable (SED_HOME) that points at local copies; it is a FileNotFoundError, which is what
callers already report in one line for a missing weights file.
"""

import hashlib
import http.client
import logging
import os
import re
import sys
import urllib.error
import urllib.request

from iopath.common.file_io import file_lock
from tqdm import tqdm

from .entries import Checkpoint, get_entry

__all__ = [
    "WeightsUnavailableError",
    "cache_dir",
    "cached_checkpoint_path",
    "fetch_checkpoint",
    "format_size",
    "short_reason",
]

logger = logging.getLogger(__name__)

TIMEOUT_S = 60  # per socket operation: a stalled server fails instead of hanging a job
_CHUNK = 1 << 20
_GOOGLE_DRIVE = re.compile(r"https://drive\.google\.com/file/d/([\w-]+)")


class WeightsUnavailableError(FileNotFoundError):
    """A zoo file is not in the cache and could not be downloaded (offline, blocked, refused, or corrupt)."""


class _Interrupted(Exception):
    """A transfer that ended before the whole file arrived (the bytes so far are kept for a resume)."""


def cache_dir():
    """The zoo's cache folder: $SED_HOME, else $XDG_CACHE_HOME/sed, else ~/.cache/sed."""
    if os.environ.get("SED_HOME"):
        return os.path.expanduser(os.environ["SED_HOME"])
    return os.path.join(os.path.expanduser(os.environ.get("XDG_CACHE_HOME") or "~/.cache"), "sed")


def cached_checkpoint_path(entry):
    """Where the checkpoint of `entry` lives in the cache (whether or not it is there yet)."""
    return os.path.join(cache_dir(), "checkpoints", entry.filename)


def format_size(size):
    return "size not yet known" if size is None else f"{size / 1e9:.2f} GB" if size >= 1e8 else f"{size / 1e6:.1f} MB"


def fetch_checkpoint(name, progress=True):
    """The local path of zoo checkpoint `name`, downloaded into the cache first if it is not there.

    Raises:
        WeightsUnavailableError: unknown name, download impossible, or a file that fails its size or checksum.
    """
    try:
        entry = get_entry(name)
    except KeyError as e:
        raise WeightsUnavailableError(e.args[0]) from None
    if not isinstance(entry, Checkpoint):
        raise WeightsUnavailableError(
            f"{name!r} is not a checkpoint of the model zoo but {type(entry).__name__}: "
            "fetch it with python tools/download.py " + name
        )
    final = cached_checkpoint_path(entry)
    if os.path.isfile(final):
        return final
    # One download at a time per file (several processes of one job may ask together).
    with file_lock(final):
        if os.path.isfile(final):
            return final
        part = final + ".part"
        try:
            match = _GOOGLE_DRIVE.match(entry.url)
            if match:
                _download_google_drive(match.group(1), part, entry, progress)
            else:
                _download_http(entry.url, part, entry.name, progress)
        except WeightsUnavailableError:
            raise
        except Exception as e:  # network libraries fail with many types; each means "not downloaded"
            raise WeightsUnavailableError(_unavailable(entry, final, short_reason(e))) from e
        _verify(entry, part, final)
        os.replace(part, final)
    return final


def short_reason(error):
    """An exception's message on one line, cut to 160 characters (network errors can be long)."""
    text = " ".join(str(error).split()) or type(error).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _unavailable(entry, final, reason):
    return (
        f"{entry.name}: could not download {entry.filename} ({format_size(entry.size)}) from {entry.url} "
        f"({reason}). Download it by hand and save it as {final}, or save it as DIR/checkpoints/"
        f"{entry.filename} and set SED_HOME=DIR, or give the file itself: MODEL.WEIGHTS /path/to/{entry.filename}"
    )


def _download_http(url, part, label, progress, attempts=3):
    """Downloads `url` into `part`, continuing an earlier `part` where the server answers Range requests."""
    for attempt in range(1, attempts + 1):
        try:
            _transfer(url, part, label, progress)
            return
        except _Interrupted as e:
            if attempt == attempts:
                raise
            logger.warning(
                "Download of %s interrupted (%s); resuming (attempt %d of %d).", label, e, attempt + 1, attempts
            )


def _transfer(url, part, label, progress):
    start = os.path.getsize(part) if os.path.isfile(part) else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={start}-"} if start else {})
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:  # the kept bytes do not fit this file any more: start again from zero
            os.remove(part)
            raise _Interrupted("the server refused to resume; starting again") from e
        raise
    with response:
        if start and response.status != 206:
            start = 0  # the server ignores Range and sends the whole file: start again from zero
        elif start and not (response.headers.get("Content-Range") or "").startswith(f"bytes {start}-"):
            os.remove(part)  # resumed elsewhere than asked: the kept bytes cannot be trusted to fit
            raise _Interrupted("the server resumed at another offset; starting again")
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        received = start
        with (
            open(part, "ab" if start else "wb") as f,
            tqdm(
                total=total, initial=start, unit="B", unit_scale=True, desc=label, disable=not progress, file=sys.stderr
            ) as bar,
        ):
            try:
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    f.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as e:
                raise _Interrupted(f"{received} bytes received: {short_reason(e)}") from e
    if total is not None and received != total:
        raise _Interrupted(f"{received} of {total} bytes received")


def _download_google_drive(file_id, part, entry, progress):
    try:
        import gdown
    except ImportError:
        raise WeightsUnavailableError(
            _unavailable(
                entry,
                part[: -len(".part")],
                'Google Drive downloads need gdown: pip install -e ".[zoo]" (or pip install gdown)',
            )
        ) from None
    if not gdown.download(id=file_id, output=part, quiet=not progress, resume=True):
        raise RuntimeError("gdown returned no file")


def _verify(entry, part, final):
    size = os.path.getsize(part)
    problem = None
    if entry.size is not None and size != entry.size:
        problem = f"it has {size} bytes, the zoo says {entry.size}"
    elif entry.sha256 is not None:
        digest = hashlib.sha256()
        with open(part, "rb") as f:
            for chunk in iter(lambda: f.read(_CHUNK), b""):
                digest.update(chunk)
        if digest.hexdigest() != entry.sha256:
            problem = f"its sha256 is {digest.hexdigest()}, the zoo says {entry.sha256}"
    if problem:
        os.remove(part)
        raise WeightsUnavailableError(
            f"{entry.name}: the downloaded {entry.filename} is not the zoo's file ({problem}); it was deleted. Run "
            f"again to download it again, or download it by hand from {entry.url} and save it as {final}"
        )
