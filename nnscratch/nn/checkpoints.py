"""Checkpoint files: the whole state of a fit in one .npz, and the folder that keeps
the last few.

A checkpoint is written like a model file (`saving`): a zip of .npy arrays plus
"__checkpoint__", a JSON description as UTF-8 bytes; never pickle. The state it holds
(`trainer.Trainer.state`: position, weights, optimiser, random generators, callbacks;
and whatever the caller adds) is a nested dict whose arrays are stored as members
named by their path ("weights/0.W", "optimizer/state/all/m") and stand in the JSON as
{"__array__": name}. Reading checks every member as `loading` checks a model file
(no pickle, no Python objects, each header against the bytes it holds, a size limit).

In a folder they are "checkpoint-000007.npz", numbered in the order they were
written. Each is written atomically (`files.atomic_open`) and the older ones are
deleted only once it is complete: the folder always holds a whole checkpoint.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, ModelFileError, NnscratchError
from ..files import atomic_open, fsync_directory, remove_temp_files
from .npz import (
    MAX_DESCRIPTION_BYTES,
    MAX_MODEL_BYTES,
    READ_ERRORS,
    read_arrays,
    read_npy_array,
    read_npy_header,
    zip_members,
)
from .saving import write_npz

FORMAT = "nnscratch-checkpoint"
VERSION = 1
META_KEY = "__checkpoint__"
ARRAY_KEY = "__array__"
# weights, two optimiser moments and early stopping's best weights: four models' worth
MAX_CHECKPOINT_BYTES = 4 * MAX_MODEL_BYTES
NAME = re.compile(r"checkpoint-(\d{6,})\.npz")


# ----- one file -----------------------------------------------------------------------
def split_arrays(value, path: str = "") -> tuple[object, dict[str, np.ndarray]]:
    """(value with every array replaced by {"__array__": its path}, {path: array})."""
    arrays: dict[str, np.ndarray] = {}

    def walk(item, where: str):
        if isinstance(item, np.ndarray):
            if where in arrays:
                raise NnscratchError(f"checkpoint: two arrays named {where!r}")
            arrays[where] = item
            return {ARRAY_KEY: where}
        if isinstance(item, dict):
            return {str(k): walk(v, f"{where}/{k}" if where else str(k)) for k, v in item.items()}  # fmt: skip
        if isinstance(item, (list, tuple)):
            return [walk(v, f"{where}/{i}") for i, v in enumerate(item)]
        return item

    return walk(value, path), arrays


def join_arrays(value, arrays: dict[str, np.ndarray]):
    """`split_arrays` undone; every array must be used exactly once."""
    used = set()

    def walk(item):
        if isinstance(item, dict):
            if set(item) == {ARRAY_KEY}:
                name = item[ARRAY_KEY]
                # a hand-made description may give a list here: not a name to look up
                if not isinstance(name, str) or name not in arrays or name in used:
                    raise CheckpointError(f"no array {name!r} for the description")
                used.add(name)
                return arrays[name]
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    joined = walk(value)
    if used != set(arrays):
        extra = sorted(set(arrays) - used)[:3]
        raise CheckpointError(f"arrays {extra} are not in the description")
    return joined


class CheckpointWriteError(NnscratchError):
    """A checkpoint could not be written (a full disk): the ones before are whole."""


def write_checkpoint(path, state: dict) -> None:
    """Write `state` (JSON values and arrays, nested) to `path`, atomically.
    CheckpointWriteError if it cannot (a full disk): `path` is then as it was."""
    description, arrays = split_arrays(state)
    try:
        text = json.dumps({"format": FORMAT, "version": VERSION, "state": description})
    except TypeError as e:  # e.g. a callback's get_state holding a NumPy scalar
        raise NnscratchError(f"checkpoint: the state is not JSON and arrays ({e})")
    members = {META_KEY: np.frombuffer(text.encode("utf-8"), np.uint8), **arrays}
    try:
        with atomic_open(path, "wb") as f:
            write_npz(f, members)
    except NnscratchError as e:  # "cannot write PATH: No space left on device"
        raise CheckpointWriteError(str(e)) from None


def read_checkpoint(path, arrays: bool = True) -> dict:
    """The state `write_checkpoint` wrote. CheckpointError if the file is damaged
    (not a zip, a bad CRC, a bad header or description); NnscratchError if it is a
    checkpoint of another format version, or that cannot be opened (no
    permission): not damaged, `load_latest` keeps it. `arrays=False`: only the
    JSON part is read, every array left as its {"__array__": name}."""
    path = Path(path)
    try:  # is_zipfile says False for a file it cannot open
        open(path, "rb").close()
    except OSError as e:
        raise NnscratchError(f"cannot read {path}: {e.strerror or e}") from None
    try:
        if not zipfile.is_zipfile(path):
            raise CheckpointError("not a zip archive")
        with zipfile.ZipFile(path) as archive:
            members = zip_members(path, archive)
            meta = members.pop(META_KEY, None)
            if meta is None or meta.file_size > MAX_DESCRIPTION_BYTES:
                raise CheckpointError("no description")
            read_npy_header(path, archive, meta)
            description = _description(path, read_npy_array(archive, meta))
            if not arrays:
                return description["state"]
            found = read_arrays(path, archive, members, MAX_CHECKPOINT_BYTES)
        return join_arrays(description["state"], found)
    except (CheckpointError, ModelFileError) as e:  # ModelFileError: from `loading`
        raise CheckpointError(_damaged(path, e)) from None
    except READ_ERRORS as e:  # a bad CRC, an unreadable array, member or file
        raise CheckpointError(f"{path}: damaged checkpoint ({e})") from None


def _damaged(path: Path, error: Exception) -> str:
    """ "PATH: damaged checkpoint (what is wrong)" from an error that may name PATH."""
    text = str(error).removeprefix(f"{path}: ")
    return (
        text if text.startswith("damaged") else f"{path}: damaged checkpoint ({text})"
    )


def _description(path: Path, raw: np.ndarray) -> dict:
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise CheckpointError("the description is not JSON") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError("not an nnscratch checkpoint")
    if meta.get("version") != VERSION:
        raise NnscratchError(
            f"{path}: checkpoint format version {meta.get('version')!r}; this "
            f"nnscratch reads version {VERSION}"
        )
    if not isinstance(meta.get("state"), dict):
        raise CheckpointError("the description holds no state")
    return meta


# ----- a folder of them ---------------------------------------------------------------
def checkpoint_paths(folder) -> list[Path]:
    """The checkpoints in `folder`, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m[1]), p) for p in folder.iterdir() if (m := NAME.fullmatch(p.name))]
    return [p for _, p in sorted(found)]


def save_next(folder, state: dict, keep: int = 2) -> Path:
    """Write `state` as the next checkpoint in `folder` (made if missing), then
    delete all but the last `keep`; returns its path."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # mkdir's "File exists" would not say which is wrong
        raise CheckpointWriteError(
            f"cannot write checkpoints in {folder}: it is a file, not a folder"
        ) from None
    except OSError as e:
        raise CheckpointWriteError(
            f"cannot write {folder}: {e.strerror or e}"
        ) from None
    paths = checkpoint_paths(folder)
    number = int(NAME.fullmatch(paths[-1].name)[1]) + 1 if paths else 1
    path = folder / f"checkpoint-{number:06d}.npz"
    write_checkpoint(path, state)
    fsync_directory(folder)  # the new one is there for good before the old ones go
    for old in paths[: max(len(paths) + 1 - keep, 0)]:
        old.unlink(missing_ok=True)
    return path


def load_latest(folder, say: Callable[[str], None]) -> tuple[Path, dict] | None:
    """(path, state) of the newest readable checkpoint in `folder`; None if there is
    none. A damaged one is deleted, saying so with `say`, and the one before it is
    used; CheckpointError if every one is damaged. One that cannot be opened is an
    NnscratchError, and stays (`read_checkpoint`)."""
    folder = Path(folder)
    if folder.is_dir():
        # of a write that was killed; only its own: the folder may be the user's
        remove_temp_files(folder, "checkpoint-*.npz")
    damaged = []
    for path in reversed(checkpoint_paths(folder)):
        try:
            state = read_checkpoint(path)
        except CheckpointError as e:
            damaged.append((path, e))
            continue
        for bad, error in damaged:
            say(f"{error}; continuing from {path.name}, the checkpoint before it")
            bad.unlink(missing_ok=True)
        return path, state
    if damaged:
        raise CheckpointError(f"{damaged[0][1]}, and no checkpoint before it is whole")
    return None
