"""IDX files (the format of the MNIST files): read and write, gzip-compressed or raw.

Layout: two zero bytes, a type code, the number of dimensions, one big-endian 4-byte
size per dimension, then the items in C order, big-endian. The reader checks the whole
header and the exact payload length before it trusts the file, so a corrupt or hostile
file gives a `DataError` instead of a huge allocation or a silently wrong array.
"""

from __future__ import annotations

import gzip
import os
import stat
import zlib
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..files import atomic_open

# Type code -> native-endian dtype; on disk every multi-byte type is big-endian.
IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(np.int16),
    0x0C: np.dtype(np.int32),
    0x0D: np.dtype(np.float32),
    0x0E: np.dtype(np.float64),
}
TYPE_CODES = {dtype: code for code, dtype in IDX_TYPES.items()}
MAX_DIMS = 16  # real IDX files have 1 to 4; more means a corrupt header
MAX_DIM_SIZE = 2**31 - 1  # sizes are 4-byte ints; many readers take them as signed
DEFAULT_MAX_BYTES = 2 * 1024**3
# Deflate cannot expand data more than ~1032:1, so a gzip file can never inflate to
# more than this many times its own size: lets us refuse an impossible header early.
MAX_GZIP_RATIO = 1100
GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


def read_idx(
    path: str | os.PathLike, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw, detected by content) into an array.

    Returns a native-endian array of the file's type and shape, e.g. uint8 (N, 28, 28)
    for MNIST images or uint8 (N,) for labels. Raises `DataError` naming the file if
    it is missing, a device or FIFO (refused before it is opened), not IDX, truncated, has trailing bytes, is a corrupt gzip stream, or
    declares more than `max_bytes` of data.
    """
    path = Path(path)
    try:
        # a FIFO would block the open itself until a writer came; a device never ends
        if _is_special(path.stat().st_mode):
            raise DataError(
                f"{path}: not a regular file (a device, FIFO or socket), expected an"
                " IDX file"
            )
        raw = open(path, "rb")  # noqa: SIM115 (closed by the `with raw` below)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except OSError as err:
        raise DataError(f"{path}: cannot open ({err.strerror or err})") from None
    with raw:
        if raw.read(2) != GZIP_MAGIC:
            raw.seek(0)
            try:
                return _read_stream(
                    raw, path, max_bytes, os.fstat(raw.fileno()).st_size
                )
            except OSError as err:
                raise DataError(f"{path}: cannot read ({err})") from None
        raw.seek(0)
        limit = MAX_GZIP_RATIO * os.fstat(raw.fileno()).st_size
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                return _read_stream(stream, path, max_bytes, None, limit)
        except (OSError, EOFError, zlib.error) as err:
            # gzip reports bad CRCs, bad headers and cut streams with these types.
            raise DataError(f"{path}: corrupt or truncated gzip data ({err})") from None


def _is_special(mode: int) -> bool:
    """A device, FIFO or socket: neither a regular file nor a folder."""
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _read_stream(stream, path, max_bytes, file_size, gzip_limit=None) -> np.ndarray:
    """Parse the header, check it, then read exactly the payload it promises.

    `file_size` (raw files) or `gzip_limit` (most a gzip file can inflate to) lets a
    header be refused before anything is allocated.
    """
    dtype, shape = _read_header(stream, path)
    _check_declared_size(path, dtype, shape, max_bytes, file_size, gzip_limit)
    return _read_payload(stream, path, dtype, shape)


def _read_header(stream, path) -> tuple[np.dtype, tuple[int, ...]]:
    """Magic (two zero bytes, type code, number of dimensions) and the sizes."""
    head = _read_exact(stream, 4)
    if len(head) < 4:
        raise DataError(f"{path}: not an IDX file (only {len(head)} bytes)")
    if head[0] != 0 or head[1] != 0:
        raise DataError(
            f"{path}: not an IDX file (magic starts {head[:2].hex()}, expected 0000)"
        )
    code, ndim = head[2], head[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X}" for c in IDX_TYPES)
        raise DataError(f"{path}: unknown IDX type code 0x{code:02X} (known: {known})")
    if not 1 <= ndim <= MAX_DIMS:
        raise DataError(
            f"{path}: IDX header has {ndim} dimensions, expected 1..{MAX_DIMS}"
        )
    size_bytes = _read_exact(stream, 4 * ndim)
    if len(size_bytes) < 4 * ndim:
        raise DataError(
            f"{path}: truncated IDX header ({ndim} dimension sizes expected)"
        )
    shape = tuple(int(s) for s in np.frombuffer(size_bytes, dtype=">u4"))
    for axis, size in enumerate(shape):
        if size > MAX_DIM_SIZE:
            raise DataError(f"{path}: dimension {axis} has size {size}, above 2^31-1")
    return IDX_TYPES[code], shape


def _describe(dtype: np.dtype, shape: tuple) -> str:
    return f"{'x'.join(map(str, shape))} {dtype}"


def _payload_bytes(dtype: np.dtype, shape: tuple) -> int:
    return (
        int(np.prod(shape, dtype=object)) * dtype.itemsize
    )  # Python ints: no overflow


def _check_declared_size(path, dtype, shape, max_bytes, file_size, gzip_limit) -> None:
    """Refuse a header whose payload is over the limit, or cannot be in the file."""
    n_bytes, what = _payload_bytes(dtype, shape), _describe(dtype, shape)
    if n_bytes > max_bytes:
        raise DataError(
            f"{path}: IDX header declares {what} items ({n_bytes:,} bytes),"
            f" more than the {max_bytes:,}-byte limit (max_bytes)"
        )
    total = 4 + 4 * len(shape) + n_bytes  # header + payload
    if file_size is not None and file_size != total:
        problem = "truncated" if file_size < total else "has trailing bytes"
        raise DataError(
            f"{path}: file {problem}: header {what} needs {total:,} bytes, file has "
            f"{file_size:,}"
        )
    if gzip_limit is not None and total > gzip_limit:
        raise DataError(
            f"{path}: IDX header declares {n_bytes:,} bytes of data, more than this"
            " gzip file could possibly hold (truncated or corrupt)"
        )


def _read_payload(stream, path, dtype, shape) -> np.ndarray:
    """Exactly the declared bytes, as an array of `shape`; no byte more may follow."""
    n_bytes, what = _payload_bytes(dtype, shape), _describe(dtype, shape)
    data = np.empty(n_bytes, dtype=np.uint8)
    got = _read_into(stream, memoryview(data))
    if got < n_bytes:
        raise DataError(
            f"{path}: truncated: header {what} needs {n_bytes:,} bytes"
            f" of data, file holds {got:,}"
        )
    if stream.read(1):
        # One byte more is enough to know; never inflate the rest of a gzip bomb.
        raise DataError(
            f"{path}: trailing bytes after the {n_bytes:,} bytes of data"
            f" the header ({what}) declares"
        )
    array = data.view(dtype)
    if dtype.itemsize > 1 and np.little_endian:
        array.byteswap(inplace=True)  # disk is big-endian; swap without a copy
    return array.reshape(shape)


def _read_exact(stream, n: int) -> bytes:
    """Up to n bytes; fewer only at end of stream."""
    parts, got = [], 0
    while got < n:
        part = stream.read(n - got)
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _read_into(stream, buffer: memoryview) -> int:
    """Fill buffer from stream in chunks; returns the number of bytes read."""
    got = 0
    while got < len(buffer):
        n = stream.readinto(buffer[got : got + _CHUNK])
        if not n:
            break
        got += n
    return got


def write_idx(
    path: str | os.PathLike, array: np.ndarray, compress: bool | None = None
) -> Path:
    """Write an array as an IDX file, atomically; returns the path.

    Supported dtypes: uint8, int8, int16, int32, float32, float64, with 1 to 16
    dimensions. `compress=None` gzips when the name ends in ".gz". The file appears
    under its final name only once it is complete.
    """
    path = Path(path)
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in TYPE_CODES:
        names = ", ".join(str(d) for d in TYPE_CODES)
        raise DataError(
            f"write_idx: IDX cannot hold {array.dtype} data (supported: {names})"
        )
    if not 1 <= array.ndim <= MAX_DIMS:
        raise DataError(
            f"write_idx: IDX needs 1..{MAX_DIMS} dimensions, got shape {array.shape}"
        )
    if max(array.shape) > MAX_DIM_SIZE:
        raise DataError(
            f"write_idx: dimension sizes must be below 2^31, got {array.shape}"
        )
    if compress is None:
        compress = path.suffix.lower() == ".gz"

    header = bytes([0, 0, TYPE_CODES[native], array.ndim])
    header += np.asarray(array.shape, dtype=">u4").tobytes()
    payload = array.astype(native.newbyteorder(">"), copy=False).tobytes()
    with atomic_open(path, "wb") as raw:
        if compress:
            # mtime=0 and no file name inside: same array, same bytes.
            with gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as out:
                out.write(header)
                out.write(payload)
        else:
            raw.write(header)
            raw.write(payload)
    return path
