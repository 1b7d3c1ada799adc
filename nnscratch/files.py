"""Atomic file writes: a temporary file in the same directory, then a rename.

A reader (or a crash) never sees a half-written file under the final name.
"""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .errors import NnscratchError


@contextmanager
def atomic_open(path, mode: str = "wb"):
    """Open a temporary file next to `path`; on success it replaces `path`.

    An exception in the `with` block leaves `path` as it was, and no temporary file;
    an OSError (a missing folder, a full disk) becomes a NnscratchError naming `path`.
    The file gets the permissions any new file gets (the umask's), not mkstemp's 0600.
    """
    path = Path(path)
    if path.is_dir():  # else the rename's "Is a directory" or "Device or resource busy"
        raise NnscratchError(f"cannot write {path}: it is a folder")
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
    except FileNotFoundError:
        raise NnscratchError(
            f"cannot write {path}: folder {path.parent} does not exist"
        ) from None
    except OSError as e:
        raise NnscratchError(f"cannot write {path}: {e.strerror or e}") from None
    try:
        with os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            # on disk before the rename: no empty file after a crash
            os.fsync(f.fileno())
        usual_permissions(tmp)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        # a write's OSError (disk full) names no file: name the one being written
        raise NnscratchError(f"cannot write {path}: {e.strerror or e}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


TEMP_PATTERN = ".{name}.*.tmp"  # what `atomic_open` names the temporary file of name


def remove_temp_files(folder, name: str = "*") -> list[Path]:
    """Delete the temporary files that `atomic_open` leaves in `folder` when its
    process is killed mid-write (of files matching `name`: "checkpoint-*.npz", say;
    default all); returns them. Only safe while no other process writes there (the
    run directory's lock says so)."""
    removed = []
    for path in sorted(Path(folder).glob(TEMP_PATTERN.format(name=name))):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def fsync_directory(folder) -> None:
    """Make the renames and deletions in `folder` durable (a crash of the machine
    after this cannot lose a renamed file). Where folders cannot be opened (Windows),
    nothing."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def usual_permissions(path) -> None:
    """Give a file from `tempfile.mkstemp` (made 0600) the permissions a new file gets."""
    os.chmod(path, 0o666 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read the umask is to set it
    os.umask(mask)
    return mask


def make_folder_of(path, who: str) -> None:
    """Make the folder `path` is to be written in, as Keras' callbacks do ("logs/x.csv"
    needs no mkdir first); an OSError is one NnscratchError line naming `who`."""
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise NnscratchError(
            f"{who}: cannot make the folder of {path} ({e.strerror})"
        ) from None


def write_text(path, text: str) -> None:
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)


def write_bytes(path, data: bytes) -> None:
    """Write `data` to `path` atomically."""
    with atomic_open(path, "wb") as f:
        f.write(data)
