"""Downloading a dataset's four files (or only its test files): from its mirrors,
each checked against its published MD5 checksum, written atomically (a temporary
file, then a rename).

For users' machines; the tests run it against a local HTTP server.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from ..errors import DataError
from ..files import atomic_open
from .catalog import FILE_NAMES, dataset_info, missing_files_hint
from .catalog import cache_dir as default_cache_dir
from .idx import read_idx


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_dataset(
    name: str,
    cache_dir: str | os.PathLike | None = None,
    mirrors: list[str] | tuple[str, ...] | None = None,
    timeout: float = 30,
    progress: bool = True,
    checksums: dict[str, str] | None = None,
    files: tuple[str, ...] = FILE_NAMES,
) -> Path:
    """Download the missing ones of `files` (default: all four; `catalog.TEST_FILES`:
    the test set's two) of `name` into cache_dir/<name>/; returns that folder.

    `cache_dir` defaults to `cache_dir()`; `mirrors` (base URLs) and `checksums` (file
    name -> MD5) default to the dataset's own. Each file is tried on every mirror in
    order until one gives the right MD5; it is written to a temporary file in the
    target folder and renamed, so an interrupted download never leaves a file under
    its final name. Files already present are kept if they are the published files
    or valid IDX files, and downloaded again if damaged. Raises `DataError`
    listing every attempt if a file cannot be had from any mirror. `progress`: a bar
    per file on stderr if it is a terminal, else a line per file fetched (a log).
    """
    info = dataset_info(name)
    root = (
        Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    )
    target = root / info.name
    if isinstance(mirrors, str):
        mirrors = [mirrors]  # one base URL, not a sequence of one-letter ones
    mirrors = tuple(mirrors) if mirrors is not None else info.mirrors
    checksums = {**info.md5, **(checksums or {})}
    unknown = [f for f in files if f not in FILE_NAMES]
    if unknown or not files:
        raise DataError(f"files: expected some of {FILE_NAMES}, got {files!r}")
    for mirror in mirrors:
        _check_mirror(mirror)
    if not mirrors:
        raise DataError(
            f"no mirrors to download {info.name} from; "
            + missing_files_hint(target, files)
        )
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        reason = err.strerror or err  # the OSError repeats the path otherwise
        raise DataError(f"cannot create download folder {target}: {reason}") from None
    show = progress and sys.stderr.isatty()
    for file_name in files:
        if _usable(target / file_name, checksums[file_name]):
            continue
        failures = []
        for mirror in mirrors:
            url = mirror if mirror.endswith("/") else mirror + "/"
            url += file_name
            if progress and not show:  # a log: a line instead of a bar
                print(f"downloading {url}", file=sys.stderr, flush=True)
            problem = _fetch(
                url, target / file_name, checksums[file_name], timeout, show
            )
            if problem is None:
                break
            failures.append(f"{url} ({problem})")
        else:
            raise DataError(
                f"could not download {file_name} of {info.name}; tried: "
                + "; ".join(failures)
                + f". Without internet, {missing_files_hint(target, files)}"
            )
    return target


URL_SCHEMES = ("http", "https", "ftp", "file")  # what urllib fetches from


def _check_mirror(mirror) -> None:
    """DataError unless `mirror` is a URL urllib can fetch from: a scheme it knows
    and a host (none for file:), so that a typo is not reported as a failed
    download of each file."""
    try:
        parts = urllib.parse.urlsplit(mirror) if isinstance(mirror, str) else None
    except ValueError:  # e.g. an unclosed [ of an IPv6 address
        parts = None
    if (
        parts is None
        or parts.scheme not in URL_SCHEMES
        or not (parts.netloc or parts.scheme == "file")
    ):
        raise DataError(
            f"mirror {mirror!r}: expected a base URL such as https://host/mnist/"
        )


def _usable(path: Path, md5: str) -> bool:
    """Whether a file already in the download folder can stay: the published one (its
    MD5), or another valid IDX file (e.g. recompressed); a damaged one is fetched again."""
    if not path.is_file():
        return False
    if _md5(path) == md5:
        return True
    try:
        read_idx(path)
    except DataError:
        return False
    return True


class _Refused(Exception):
    """A mirror did not give the right file; the message says why."""


def _fetch(url: str, dest: Path, md5: str, timeout: float, show: bool) -> str | None:
    """Download url to dest atomically if its MD5 matches; returns None or the problem."""
    try:
        with atomic_open(dest) as out:  # left untouched if the `with` raises
            _copy_checked(url, out, md5, timeout, dest.name if show else None)
    except _Refused as problem:
        return str(problem)
    return None


def _copy_checked(url: str, out, md5: str, timeout: float, bar: str | None) -> None:
    """Write url's body into the file `out`, with a progress bar labelled `bar` (None:
    no bar); _Refused if it cannot be had whole with this MD5 (an HTTP error, a dropped
    connection, a timeout, a bad URL...)."""
    from tqdm import tqdm  # only to download: `import nnscratch` goes without

    try:
        digest = hashlib.md5(usedforsecurity=False)
        received = 0
        with urllib.request.urlopen(url, timeout=timeout) as response:
            expected = response.headers.get("Content-Length")
            expected = int(expected) if expected and expected.isdigit() else None
            progress = tqdm(
                total=expected,
                unit="B",
                unit_scale=True,
                desc=bar,
                disable=bar is None,
                leave=False,
            )
            with progress:
                while block := response.read(1 << 16):
                    out.write(block)
                    digest.update(block)
                    received += len(block)
                    progress.update(len(block))
    except urllib.error.HTTPError as err:
        raise _Refused(f"HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise _Refused(f"cannot connect: {err.reason}") from None
    except (http.client.HTTPException, OSError, ValueError) as err:
        # Dropped connections, timeouts (TimeoutError is an OSError), bad URLs.
        raise _Refused(
            f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
        ) from None
    if expected is not None and received != expected:
        raise _Refused(f"connection closed after {received:,} of {expected:,} bytes")
    if digest.hexdigest() != md5:
        raise _Refused(f"MD5 {digest.hexdigest()} does not match the expected {md5}")
