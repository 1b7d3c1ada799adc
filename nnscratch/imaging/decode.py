"""An image file or its bytes -> a gray picture (H, W) float32, 0 black, 1 white:
any format Pillow reads, EXIF orientation applied, transparency composited, 16-bit
and float images scaled, shrunk while decoding; decompression bombs, tiny and
damaged images refused in one line (`load_image`). `images` takes it from there."""

from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import DataError

MAX_PIXELS = 50_000_000  # a 48 MP phone photo passes; a 50000x50000 bomb does not
MIN_SIDE = 8  # fewer pixels a side hold no readable digit (scikit-learn's are 8x8)
WORKING_SIDE = 1024  # decode/downscale to at most this; a digit needs far less


class ImageTooLargeError(DataError):
    """The image declares more pixels than allowed (checked before decoding)."""


# warnings.catch_warnings swaps process-wide state: serialise its users (the web app
# decodes in a thread pool).
_WARNINGS_LOCK = threading.Lock()


@contextlib.contextmanager
def _quiet_pillow():
    """Pillow's warnings silenced: between its limit and twice it, its bomb warning
    (max_pixels decides, up to twice Pillow's, where Pillow raises); and its
    UserWarnings about damaged metadata (a TIFF tag past the end of the file, corrupt
    EXIF), given for tags it skips and for each format it tries on a file it cannot
    identify: the pixels are read or a DataError says why not, and the CLI printed
    them as lines of Pillow's source code around its one line."""
    with _WARNINGS_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        warnings.simplefilter("ignore", UserWarning)
        yield


def load_image(
    source: str | os.PathLike | bytes,
    *,
    max_pixels: int = MAX_PIXELS,
    max_side: int = WORKING_SIDE,
) -> np.ndarray:
    """Decode an image file or its bytes into grayscale: (H, W) float32, 0 black, 1 white.

    Anything Pillow reads works (PNG, JPEG, GIF, BMP, WebP, TIFF...; first frame only).
    EXIF orientation is applied; transparency is composited onto a background that
    contrasts with the opaque pixels (dark ink on white, light ink on black), so a
    drawing on a transparent canvas works whatever its ink colour. Images are shrunk
    to at most `max_side` pixels a side while decoding (JPEG decodes at 1/2..1/8
    scale directly), so a 4000x3000 photo costs little.

    Raises DataError for a missing file, data that is not an image, a truncated
    image, one less than MIN_SIDE pixels on a side; ImageTooLargeError (a
    DataError) for one declaring more than `max_pixels` pixels (checked from the
    header, before any pixel is decoded: a decompression bomb is never expanded).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        # bytes (an upload): the caller names them, so no name here
        prefix, fp = "", io.BytesIO(source)
        if len(fp.getbuffer()) == 0:
            raise DataError("empty data, expected an image file")
    else:
        prefix = f"{source}: "
        if Path(source).is_dir():
            raise DataError(f"{prefix}is a directory, expected an image file")
        if not Path(source).is_file():
            raise DataError(f"{prefix}no such file")
        if Path(source).stat().st_size == 0:  # Pillow: "cannot identify"
            raise DataError(f"{prefix}empty file, expected an image")
        fp = source
    try:
        with _quiet_pillow():
            img = Image.open(fp)
    except UnidentifiedImageError:
        raise DataError(f"{prefix}not an image (Pillow cannot identify it)") from None
    except Image.DecompressionBombError as e:
        raise ImageTooLargeError(
            f"{prefix}refused as a decompression bomb: {e}"
        ) from None
    except (OSError, ValueError) as e:
        # ValueError: Pillow's refusal of oversized text or colour-profile chunks
        raise DataError(f"{prefix}cannot read image: {e}") from None
    with img:
        width, height = img.size
        if width < 1 or height < 1:
            raise DataError(f"{prefix}image has no pixels ({width}x{height})")
        if min(width, height) < MIN_SIDE:
            raise DataError(
                f"{prefix}image is {width}x{height} pixels, too small to hold a "
                f"digit: at least {MIN_SIDE}x{MIN_SIDE} is needed"
            )
        if width * height > max_pixels:
            raise ImageTooLargeError(
                f"{prefix}image is {width}x{height} = {width * height} pixels, "
                f"more than the limit of {max_pixels}"
            )
        try:
            with _quiet_pillow():
                return _decode(img, max_side)
        except DataError as e:  # a check of the pixels: say which file
            raise DataError(f"{prefix}{e}") from None
        except (OSError, SyntaxError, ValueError, EOFError, IndexError) as e:
            # Pillow's decoders report corrupt or truncated data with any of these
            raise DataError(f"{prefix}cannot decode image: {e}") from None


def _decode(img: Image.Image, max_side: int) -> np.ndarray:
    """Pixels of an opened image as (H, W) float32 gray in [0, 1], shrunk to max_side."""
    img.draft("RGB", (max_side, max_side))  # JPEG only: decode at a reduced scale
    # loads the pixels; in place, as each copy of a 50 MP picture costs up to 200 MB
    ImageOps.exif_transpose(img, in_place=True)
    has_alpha = img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        "transparency" in img.info
    )
    if has_alpha:
        if img.mode != "RGBA":  # convert copies even to the same mode
            img = img.convert("RGBA")
    elif img.mode in ("I", "F") or img.mode.startswith("I;"):
        return _high_depth_gray(img, max_side)
    elif img.mode != "L":
        img = img.convert("L")  # ITU-R 601 luma; also 1, P, RGB, CMYK, YCbCr
    if max(img.size) > max_side:
        # Pillow resizes RGBA with premultiplied alpha, so the edges stay clean
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    if has_alpha:
        return composite_alpha(np.asarray(img))
    gray = np.asarray(img, dtype=np.float32)
    if img.mode == "L":
        gray = gray / 255.0
    return np.clip(gray, 0.0, 1.0)


def _high_depth_gray(img: Image.Image, max_side: int) -> np.ndarray:
    """A 16/32-bit or float image -> (H, W) float32 gray in [0, 1], shrunk to
    max_side (Pillow's "L" would clip its values). It is shrunk as mode F, before
    any array is made: at the pixel limit each full-size float copy costs 200 MB."""
    if img.mode != "F":
        img = img.convert("F")  # Pillow resizes no 16-bit mode
    top = img.getextrema()[1]  # of the full image: shrinking would lower it
    if max(img.size) > max_side:
        img.thumbnail((max_side, max_side), Image.Resampling.LANCZOS, reducing_gap=3.0)
    a = np.array(img, dtype=np.float32)
    if not (np.isfinite(top) and np.all(np.isfinite(a))):
        raise DataError("image has non-finite pixel values")
    scale = 65535.0 if top > 255 else 255.0 if top > 1 else 1.0
    return np.clip(a / scale, 0.0, 1.0)


def composite_alpha(rgba: np.ndarray) -> np.ndarray:
    """(H, W, 4) uint8 RGBA -> (H, W) float32 gray, transparency filled by contrast.

    The background is white when the opaque pixels are mostly dark (ink on a
    transparent canvas, or a dark logo) and black when they are light, so transparent
    drawings work with black strokes as well as white ones.
    """
    rgb = rgba[..., :3].astype(np.float32) / 255.0
    alpha = rgba[..., 3].astype(np.float32) / 255.0
    luma = rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # as Pillow's "L"
    weight = float(alpha.sum())
    ink_luma = float((alpha * luma).sum()) / weight if weight > 0 else 0.0
    background = 1.0 if ink_luma < 0.5 else 0.0
    return (alpha * luma + (1.0 - alpha) * background).astype(np.float32)
