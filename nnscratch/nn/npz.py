"""Reading the zip of .npy arrays that a model file is, safely: only a regular file
of bounded size is opened, every member's header is checked before its data is read
(no Python objects, exactly the bytes it declares, floats, a bounded total), and
arrays are read straight into the memory that will hold them.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import stat
import tokenize
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import ModelFileError

MAX_DESCRIPTION_BYTES = 16 * 2**20  # the JSON description (a few KB in practice)
MAX_MODEL_BYTES = 2**31  # all weights: the cnn preset's take 1.7 MB, this 2 GiB
# the whole file, checked before a byte is read: weights, description and the zip's own
# headers (a few hundred bytes an array)
MAX_FILE_BYTES = MAX_MODEL_BYTES + MAX_DESCRIPTION_BYTES + 2**24
KERAS_SUFFIXES = (".h5", ".hdf5", ".keras")  # a model file of Keras', not ours
READ_CHUNK = 1 << 20  # bytes read from the file at a time
MAX_NPY_HEADER_BYTES = 10_000  # NumPy's own limit (max_header_size) for a header
NPY_HEADER_READERS = {  # .npy format version -> NumPy's reader of that header
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def _open_regular_file(path: Path):
    """`path` opened for reading in binary, if it is a regular file (after links) of at
    most MAX_FILE_BYTES. A device, FIFO or socket is refused before it is opened:
    /dev/zero would be read until memory runs out, a FIFO would block forever."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    if stat.S_ISDIR(mode):
        raise ModelFileError(f"{path}: is a directory, expected a .npz model file")
    if not stat.S_ISREG(mode):
        raise ModelFileError(
            f"{path}: not a regular file (a device, FIFO or socket), expected a .npz"
            " model file"
        )
    # O_NONBLOCK: should the path have become a FIFO since, opening it cannot block
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    f = os.fdopen(os.open(path, flags), "rb")
    try:
        info = os.fstat(f.fileno())  # what was opened, not what the path names now
        if not stat.S_ISREG(info.st_mode):
            raise ModelFileError(
                f"{path}: not a regular file, expected a .npz model file"
            )
        if info.st_size > MAX_FILE_BYTES:
            raise ModelFileError(
                f"{path}: {info.st_size:,} bytes, more than the {MAX_FILE_BYTES:,} a"
                " model file may take"
            )
    except BaseException:
        f.close()
        raise
    return f


class ModelArchive:
    """An open model file: `headers` maps each array name to its (shape, dtype), all
    checked; `read` and `read_into` read an array's data."""

    def __init__(self, path: Path, archive: zipfile.ZipFile, description_key: str):
        self.path, self.archive = path, archive
        self.members = zip_members(path, archive)
        description = self.members.pop(description_key, None)
        if description is None:
            raise ModelFileError(
                f"{path}: not an nnscratch model (no {description_key} entry)"
            )
        if description.file_size > MAX_DESCRIPTION_BYTES:
            raise ModelFileError(f"{path}: the model description is too large")
        read_npy_header(path, archive, description)
        self._description = description
        self.headers = self._weight_headers()

    def _weight_headers(self) -> dict[str, tuple]:
        """name -> (shape, dtype) of every weight array: floats, and no more than
        MAX_MODEL_BYTES in all (a small file cannot make loading allocate much)."""
        headers, total = {}, 0
        for name, member in self.members.items():
            shape, dtype, size = read_npy_header(self.path, self.archive, member)
            if not np.issubdtype(dtype, np.floating):
                raise ModelFileError(
                    f"{self.path}: array {name!r} has dtype {dtype}, expected float"
                )
            headers[name] = (shape, dtype)
            total += size
        if total > MAX_MODEL_BYTES:
            raise ModelFileError(
                f"{self.path}: the weights take {total:,} bytes, more than the"
                f" {MAX_MODEL_BYTES:,} a model file may hold"
            )
        return headers

    def description(self) -> np.ndarray:
        """The raw description array (checked to be small)."""
        with _reading(self.path), self.archive.open(self._description) as f:
            return np.lib.format.read_array(f, allow_pickle=False)

    def read(self, name: str) -> np.ndarray:
        """Array `name` as a new array (for the small ones: an optimiser's state)."""
        with _reading(self.path), self.archive.open(self.members[name]) as f:
            return np.lib.format.read_array(f, allow_pickle=False)

    def read_into(self, name: str, target: np.ndarray) -> None:
        """Fill `target` (of the array's shape) with array `name`: straight from the
        file into its memory when the layouts agree, else through a copy."""
        member = self.members[name]
        with _reading(self.path), self.archive.open(member) as f:
            version = np.lib.format.read_magic(f)
            _, fortran_order, dtype = NPY_HEADER_READERS[version](f)
            if fortran_order or dtype != target.dtype or not target.flags.c_contiguous:
                f.close()
                with self.archive.open(member) as again:
                    target[...] = np.lib.format.read_array(again, allow_pickle=False)
                return
            _read_exactly(f, memoryview(target.reshape(-1).view(np.uint8)))


@contextlib.contextmanager
def open_model_archive(path: Path, description_key: str) -> Iterator[ModelArchive]:
    """The model file at `path`, opened and its headers checked (see ModelArchive)."""
    with _open_regular_file(path) as f:
        try:
            archive, reader = _read_headers(path, f, description_key)
        except ModelFileError as e:
            if path.suffix.lower() not in KERAS_SUFFIXES:
                raise
            raise ModelFileError(
                f"{e}; nnscratch reads the .npz files it saves, not Keras' "
                f"{path.suffix} files"
            ) from None
        with archive:
            yield reader


def _read_headers(path: Path, f, description_key: str) -> tuple:
    """(the open zip, its ModelArchive) of the open file `f`; the zip is closed if
    it is not a model file."""
    if not zipfile.is_zipfile(f):
        # np.load would try other formats (including pickle) on a non-zip file
        raise ModelFileError(f"{path}: not a valid .npz model file (not a zip archive)")
    # ZipFile() reads the central directory: BadZipFile if it is damaged, and
    # NotImplementedError (a RuntimeError) if it asks for a zip reader past 6.3
    with _reading(path):
        archive = zipfile.ZipFile(f)
    try:
        with _reading(path):
            return archive, ModelArchive(path, archive, description_key)
    except BaseException:
        archive.close()
        raise


# what reading a damaged zip raises besides BadZipFile: unreadable arrays (ValueError),
# encrypted members and unknown compression methods (RuntimeError, and its subclass
# NotImplementedError), data that cannot be inflated (zlib.error), a file cut short
READ_ERRORS = (zipfile.BadZipFile, ValueError, RuntimeError, zlib.error, OSError, EOFError)  # fmt: skip


@contextlib.contextmanager
def _reading(path: Path):
    """Errors of a damaged archive as one ModelFileError line."""
    try:
        yield
    except ModelFileError:
        raise
    except zipfile.BadZipFile as e:
        raise ModelFileError(f"{path}: not a valid .npz model file ({e})") from None
    except (ValueError, RuntimeError, zlib.error) as e:
        # unreadable arrays, encrypted members, unknown compression methods
        # (NotImplementedError, a RuntimeError), data that cannot be inflated
        raise ModelFileError(f"{path}: unreadable model file ({e})") from None
    except (OSError, EOFError) as e:
        raise ModelFileError(f"{path}: cannot read model file ({e})") from None


def zip_members(path: Path, archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Array name -> zip member: only .npy members, each name once."""
    members = {}
    for member in archive.infolist():
        if not member.filename.endswith(".npy"):
            raise ModelFileError(f"{path}: holds {member.filename!r}, not a .npy array")
        name = member.filename.removesuffix(".npy")
        if name in members:
            raise ModelFileError(f"{path}: holds {member.filename!r} twice")
        members[name] = member
    return members


def read_npy_header(path: Path, archive, member) -> tuple[tuple, np.dtype, int]:
    """(shape, dtype, data bytes) from a .npy member's header, the data unread. The
    header must promise exactly the bytes the member holds, and no Python objects."""
    with archive.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version not in NPY_HEADER_READERS:
            raise ModelFileError(
                f"{path}: {member.filename!r} has an unknown .npy version"
            )
        shape, dtype = _parse_npy_header(path, member, version, f)
        data_bytes = member.file_size - f.tell()
    if dtype.hasobject:
        raise ModelFileError(f"{path}: array {member.filename!r} holds Python objects")
    if math.prod(shape) * dtype.itemsize != data_bytes:
        raise ModelFileError(
            f"{path}: array {member.filename!r} declares shape {shape} of {dtype} but"
            f" holds {data_bytes:,} bytes"
        )
    return shape, dtype, data_bytes


def _parse_npy_header(path: Path, member, version: tuple, f) -> tuple:
    """(shape, dtype) of the header that follows the magic in `f`. Its length is
    checked before it is read: NumPy would read all of a 4 GB header (a deflated
    file of 4 MB) before refusing it."""
    length_bytes = f.read(2 if version == (1, 0) else 4)
    length = int.from_bytes(length_bytes, "little")
    if length > MAX_NPY_HEADER_BYTES:
        raise ModelFileError(
            f"{path}: {member.filename!r} has a .npy header of {length:,} bytes, more"
            f" than the {MAX_NPY_HEADER_BYTES:,} NumPy reads"
        )
    header = io.BytesIO(length_bytes + f.read(length))
    try:
        shape, _, dtype = NPY_HEADER_READERS[version](header)
    except (ValueError, SyntaxError, tokenize.TokenError) as e:
        # TokenError: NumPy's parser of Python 2 headers, on unbalanced brackets;
        # its text is its first argument ("EOF in multi-line statement")
        text = e.args[0] if isinstance(e, tokenize.TokenError) and e.args else str(e)
        reason = str(text).splitlines()[0] if str(text) else type(e).__name__
        raise ModelFileError(
            f"{path}: {member.filename!r} has an unreadable .npy header ({reason})"
        ) from None
    return shape, dtype


def _read_exactly(f, buffer: memoryview) -> None:
    """Fill `buffer` from the open member `f`; a member that ends early is an error."""
    filled = 0
    while filled < len(buffer):
        # in chunks: a zip member's readinto reads the whole request into a
        # temporary bytes object first, which would double the memory of a big array
        n = f.readinto(buffer[filled : filled + READ_CHUNK])
        if not n:
            raise EOFError(f"the array ends after {filled:,} of {len(buffer):,} bytes")
        filled += n


def read_arrays(
    path: Path, archive: zipfile.ZipFile, members: dict, max_bytes: int
) -> dict[str, np.ndarray]:
    """name -> array of every member in `members` (name -> zip member): all their
    headers checked first (`read_npy_header`), then, if together they hold no more
    than `max_bytes`, their data. ModelFileError naming `path` otherwise."""
    total = sum(read_npy_header(path, archive, m)[2] for m in members.values())
    if total > max_bytes:
        raise ModelFileError(
            f"{path}: the arrays take {total:,} bytes, more than the {max_bytes:,}"
            " allowed"
        )
    return {name: read_npy_array(archive, m) for name, m in members.items()}


def read_npz(path: Path, max_bytes: int, what: str) -> dict[str, np.ndarray]:
    """Every array of the .npz file at `path`, read as `read_arrays` reads them; a
    missing or damaged file is one ModelFileError line naming it as `what`."""
    try:
        with zipfile.ZipFile(path) as archive:
            return read_arrays(path, archive, zip_members(path, archive), max_bytes)
    except FileNotFoundError:
        raise ModelFileError(f"{path}: {what} not found") from None
    except READ_ERRORS as e:
        raise ModelFileError(f"{path}: not a readable {what} ({e})") from None


def read_npy_array(archive: zipfile.ZipFile, member) -> np.ndarray:
    """A .npy member whose header `read_npy_header` has checked, as a new array."""
    with archive.open(member) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def parse_description_json(path: Path, raw: np.ndarray):
    """The JSON value of a file's description array (checked to be UTF-8 bytes)."""
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError(f"{path}: the description must be a 1-D uint8 array")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        # ValueError: bad JSON, or an integer of thousands of digits
        reason = "nested too deeply" if isinstance(e, RecursionError) else e
        raise ModelFileError(
            f"{path}: the model description is not valid JSON ({reason})"
        ) from None
    return meta
