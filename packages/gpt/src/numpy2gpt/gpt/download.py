"""Checked downloads with a local cache, using only the standard library (urllib) and tqdm.

- :func:`download` streams a URL to a temporary file next to ``dest``, hashing as it goes; only a file whose
  SHA-256 matches is moved into place (``os.replace``, atomic), so ``dest`` never holds a partial or wrong file.
  A size cap (``max_bytes``) and an overall deadline bound what a server can make it do.
- :func:`cached_download` keeps files in ``$NUMPY2GPT_CACHE`` (default ``~/.cache/numpy2gpt``): a cached file
  whose hash matches is used with no network at all; one with a wrong hash is fetched again.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from numpy2gpt.nn.serialization import atomic_write, remove_stale_temporaries

__all__ = ["CACHE_ENV", "ChecksumError", "DownloadError", "cached_download", "download", "get_cache_dir", "sha256_file"]

CACHE_ENV = "NUMPY2GPT_CACHE"
_CHUNK = 1 << 16
_PROGRESS_MIN_BYTES = 1 << 20  # show a progress bar for files of 1 MiB or more (or of unknown size)
_HEX64 = re.compile(r"[0-9a-f]{64}")
MAX_BYTES = 1 << 30  # the largest download accepted by default (1 GiB)
DEADLINE = 600.0  # seconds a whole download may take by default


class DownloadError(OSError):
    """The file could not be fetched (network error, HTTP error, ...)."""


class ChecksumError(ValueError):
    """The fetched file's SHA-256 is not the expected one; nothing was kept."""


def _check_sha256(sha256: str) -> str:
    if not isinstance(sha256, str) or not _HEX64.fullmatch(sha256.lower()):
        raise ValueError(f"sha256 must be 64 hexadecimal characters, got {sha256!r}")
    return sha256.lower()


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def download(
    url: str,
    dest: str | os.PathLike[str],
    sha256: str,
    timeout: float = 30.0,
    progress: bool | None = None,
    max_bytes: int = MAX_BYTES,
    deadline: float = DEADLINE,
) -> Path:
    """Fetch ``url`` into ``dest`` and check its SHA-256.

    The bytes go to a temporary file in ``dest``'s folder (``nn.serialization.atomic_write``) and are hashed while
    streaming. On a mismatch the temporary file is deleted and :class:`ChecksumError` names the URL and both
    hashes; on success the file is moved onto ``dest`` atomically. Network and HTTP failures raise
    :class:`DownloadError` (temporary file removed too), and so does a download larger than ``max_bytes`` or one
    still running after ``deadline`` seconds (``timeout`` bounds each wait for the server). ``progress=None`` shows
    a tqdm bar for files of 1 MiB or more (or of unknown size). Returns ``dest`` as a ``Path``.
    """
    expected = _check_sha256(sha256)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(dest.parent)
    start = time.monotonic()
    try:
        response = urllib.request.urlopen(url, timeout=min(timeout, deadline))
    except (urllib.error.URLError, OSError, ValueError) as e:
        raise DownloadError(f"could not download {url}: {e}") from e
    from tqdm.auto import tqdm

    with response, atomic_write(dest) as out:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        if total is not None and total > max_bytes:
            raise DownloadError(f"{url} is {total:,} bytes, more than the {max_bytes:,} allowed; nothing was saved")
        show = progress if progress is not None else (total is None or total >= _PROGRESS_MIN_BYTES)
        h, received = hashlib.sha256(), 0
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name, disable=not show) as bar:
            while chunk := _read(response, url):
                received += len(chunk)
                if received > max_bytes:
                    raise DownloadError(f"{url} sent more than the {max_bytes:,} bytes allowed; nothing was saved")
                if time.monotonic() - start > deadline:
                    raise DownloadError(f"download of {url} took longer than {deadline:g} s; nothing was saved")
                h.update(chunk)
                out.write(chunk)
                bar.update(len(chunk))
        if total is not None and received != total:  # the server closed early: say so, not "bad checksum"
            raise DownloadError(f"download of {url} was interrupted: got {received} of the {total} bytes announced")
        if h.hexdigest() != expected:
            raise ChecksumError(
                f"checksum mismatch for {url}: expected sha256 {expected}, got {h.hexdigest()}; "
                f"the download was discarded (nothing was saved to {str(dest)!r})"
            )
    return dest


def _read(response: http.client.HTTPResponse, url: str) -> bytes:
    """The next chunk of the response, as soon as some bytes arrive (b"" at the end); a broken connection is a
    DownloadError. (``read1``: ``read(n)`` would wait for all n bytes, so a server sending a trickle could hold it
    far past the deadline.)"""
    try:
        return response.read1(_CHUNK)
    except (OSError, urllib.error.URLError, http.client.HTTPException) as e:
        raise DownloadError(f"download of {url} was interrupted: {e}") from e


def get_cache_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """The download cache: ``path`` if given, else ``$NUMPY2GPT_CACHE``, else ``~/.cache/numpy2gpt``."""
    if path is not None:
        return Path(path).expanduser()
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "numpy2gpt"


def cached_download(
    url: str,
    sha256: str,
    cache_dir: str | os.PathLike[str] | None = None,
    filename: str | None = None,
    timeout: float = 30.0,
    max_bytes: int = MAX_BYTES,
    deadline: float = DEADLINE,
) -> Path:
    """Path of a local copy of ``url`` whose SHA-256 is ``sha256``, downloading it only when needed.

    The file lives at ``<cache>/<sha256[:16]>-<filename>`` (``filename`` defaults to the URL's last path
    component), so different contents never share a name. A cached file with the right hash is returned without
    touching the network; a cached file with a wrong hash (corrupted, truncated) is downloaded again.
    """
    expected = _check_sha256(sha256)
    directory = get_cache_dir(cache_dir)
    if filename is None:
        filename = Path(urllib.parse.urlparse(url).path).name or "download"
    path = directory / f"{expected[:16]}-{filename}"
    if path.is_file() and sha256_file(path) == expected:
        return path
    return download(url, path, expected, timeout=timeout, max_bytes=max_bytes, deadline=deadline)
