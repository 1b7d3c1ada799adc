"""A user's image -> the 28x28 input an MNIST model expects (pure functions).

`decode.load_image` decodes a file or bytes into a grayscale float array (1 = white)
and refuses decompression bombs; `to_mnist` turns that array into an MNIST-style digit:
light ink on black, cropped, fitted in 20x20 with its aspect ratio kept, placed in
28x28 with its centre of mass at (14, 14), values in [0, 1] like uint8 / 255.
Each step is its own function so it can be tested and reused (the drawing page and
`nnscratch predict` both go through `to_mnist`); telling the ink from the paper (even
or uneven light, a table around the page, ruled lines) is in `paper`.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from ..errors import DataError
from ..nn.batches import prepare_inputs
from .marks import is_bar, is_dot
from .paper import (
    MIN_CONTRAST,
    drop_ruled_lines,
    gaussian_blur,
    ink_from_background,
    paint_over_surround,
    runs,
)

DIGIT_BOX = 20  # MNIST fits each digit in 20x20 ...
IMAGE_SIZE = 28  # ... inside a 28x28 field
# Measured on the MNIST training set: the mean centre of mass is (14.00, 14.01) with a
# standard deviation of 0.29 px, exactly that of a rounded (whole-pixel) shift.
MNIST_CENTER = 14.0
LAYOUTS = {
    "mnist": {"box": DIGIT_BOX, "by_mass": True},
    "fashion-mnist": {"box": IMAGE_SIZE, "by_mass": False},
}
MIN_SIZE = 0.02  # ink smaller than this share of the image's longer side is a speck
STRAY_INK = 0.03  # ink apart from the digit and lighter than this share of it is noise


def clean_ink(
    ink: np.ndarray, *, blur: float = 0.0, threshold: float = 0.2
) -> np.ndarray:
    """Blur (radius `blur` px, for photos), scale so the strongest ink is 1, and zero
    values below `threshold`. Returns all zeros when the contrast is below MIN_CONTRAST.

    The blur spreads isolated specks (sensor noise, paper grain) below the threshold
    while strokes, many pixels wide, keep their level.
    """
    if blur > 0:
        ink = gaussian_blur(ink, blur)
    peak = float(ink.max(initial=0.0))
    if peak < MIN_CONTRAST:
        return np.zeros_like(ink, dtype=np.float32)
    ink = ink / peak
    ink[ink < threshold] = 0.0
    return ink.astype(np.float32)


def drop_stray_ink(ink: np.ndarray, fraction: float = STRAY_INK) -> np.ndarray:
    """Zero the bits of ink that lie apart from the digit: (H, W) -> (H, W), a copy.

    A band of rows (or columns) holding ink, cut off from the rest by empty rows (or
    columns), is noise when it holds less than `fraction` of all the ink: a speck, the
    edge of a shadow, a mark at the paper's border. It would otherwise stretch the crop
    and shrink the digit.
    """
    ink = np.array(ink, dtype=np.float32)
    total = float(ink.sum())
    for axis in (1, 0, 1, 0):  # rows, columns, then again: a speck can hide behind one
        profile = ink.sum(axis=axis)
        for start, stop in runs(profile > 0):
            if profile[start:stop].sum() < fraction * total:
                index = (slice(start, stop), slice(None))[:: 1 if axis == 1 else -1]
                ink[index] = 0.0
    return ink


def crop_to_ink(ink: np.ndarray) -> np.ndarray | None:
    """The smallest rectangle holding every non-zero pixel, or None if there is none."""
    rows = np.flatnonzero(ink.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(ink.any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def fit_in_box(ink: np.ndarray, size: int = DIGIT_BOX) -> np.ndarray:
    """Resize so the longer side is `size`, keeping the aspect ratio (anti-aliased).

    Shapes: (h, w) -> (size, round(w * size / h)) or (round(h * size / w), size).
    """
    h, w = ink.shape
    scale = size / max(h, w)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    img = Image.fromarray(np.ascontiguousarray(ink, dtype=np.float32))
    # Lanczos widens its kernel when shrinking (area-like averaging, as MNIST's
    # anti-aliasing) and stays sharp when enlarging; clip its small overshoots
    resized = img.resize((new_w, new_h), Image.Resampling.LANCZOS)
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def center_of_mass(a: np.ndarray) -> tuple[float, float]:
    """(row, col) centre of mass of a non-negative 2-D array with a positive sum."""
    total = float(a.sum())
    rows = np.arange(a.shape[0], dtype=np.float64)
    cols = np.arange(a.shape[1], dtype=np.float64)
    return float(a.sum(axis=1) @ rows) / total, float(a.sum(axis=0) @ cols) / total


def place_by_mass(
    digit: np.ndarray, size: int = IMAGE_SIZE, center: float = MNIST_CENTER
) -> np.ndarray:
    """Put `digit` (h, w <= size) in a (size, size) field, centre of mass at `center`.

    The shift is rounded to whole pixels (the MNIST recipe: no interpolation blur), and
    clamped so no ink falls off the field; finally the peak is scaled to 1, as most
    MNIST digits reach 255.
    """
    h, w = digit.shape
    if h > size or w > size:
        raise DataError(f"digit of shape {digit.shape} does not fit in {size}x{size}")
    out = np.zeros((size, size), dtype=np.float32)
    peak = float(digit.max(initial=0.0))
    if peak <= 0:
        return out
    r, c = center_of_mass(digit)
    top = min(max(int(np.floor(center - r + 0.5)), 0), size - h)
    left = min(max(int(np.floor(center - c + 0.5)), 0), size - w)
    out[top : top + h, left : left + w] = digit / peak
    return out


def place_centred(item: np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """Put `item` (h, w <= size) in the middle of a (size, size) field, peak scaled
    to 1: how Fashion-MNIST placed its products (bounding box centred)."""
    h, w = item.shape
    if h > size or w > size:
        raise DataError(f"item of shape {item.shape} does not fit in {size}x{size}")
    out = np.zeros((size, size), dtype=np.float32)
    peak = float(item.max(initial=0.0))
    if peak > 0:
        top, left = (size - h) // 2, (size - w) // 2
        out[top : top + h, left : left + w] = item / peak
    return out


def layout_for(dataset: str | None) -> dict:
    """The `to_mnist` keywords that lay an image out like `dataset`'s (MNIST if not
    known): MNIST fitted each digit in 20x20 and centred it by mass; Fashion-MNIST
    scaled each product to fill 28 pixels and centred its bounding box."""
    return dict(LAYOUTS.get(dataset, LAYOUTS["mnist"]))


def auto_blur(shape: tuple[int, int]) -> float:
    """Blur radius suited to an image of this shape: none for small drawings."""
    side = max(shape)
    return 0.0 if side < 200 else side / 400.0


def to_mnist(
    gray: np.ndarray,
    *,
    blur: float | None = None,
    threshold: float = 0.2,
    box: int = DIGIT_BOX,
    by_mass: bool = True,
) -> np.ndarray | None:
    """Grayscale image (H, W) in [0, 1], 1 = white -> (28, 28) float32 digit in [0, 1].

    Returns None when there is no digit: a blank image, ink too faint to tell from
    noise, a speck smaller than 2% of the image's longer side, or (MNIST layout,
    `by_mass`) a lone dot such as a tap on the drawing page (`is_dot`) or a bar lying
    flat such as a dash (`is_bar`). `blur=None` picks a
    radius from the image size (`auto_blur`). The ink is fitted in a `box` x `box`
    square and centred by mass (MNIST) or, with `by_mass=False`, by its bounding box
    (`layout_for` gives both for a dataset).
    """
    gray = check_gray(gray, "to_mnist")
    ink = picture_ink(gray, blur=blur, threshold=threshold)
    crop = crop_to_ink(drop_stray_ink(ink))
    if crop is None or max(crop.shape) < MIN_SIZE * max(gray.shape):
        return None
    if by_mass and (is_dot(crop, gray.shape) or is_bar(crop)):  # no digit is either
        return None
    return lay_out(crop, box=box, by_mass=by_mass)


def check_gray(gray, caller: str) -> np.ndarray:
    """`gray` as (H, W) float32 clipped to [0, 1]; DataError if not 2-D or not finite."""
    gray = np.asarray(gray)
    if gray.ndim != 2 or gray.size == 0:
        raise DataError(f"{caller}: expected a 2-D (H, W) gray image, got {gray.shape}")
    if not np.all(np.isfinite(gray)):
        raise DataError(f"{caller}: image has NaN or infinite values")
    return np.clip(gray.astype(np.float32), 0.0, 1.0)


def picture_ink(
    gray: np.ndarray, *, blur: float | None = None, threshold: float = 0.2
) -> np.ndarray:
    """The ink of a checked gray picture (H, W), light on black, peak 1: the paper
    (a table around it, uneven light, ruled lines) taken away and faint values
    zeroed (`clean_ink`). Shared by single digits and numbers (`segment`)."""
    ink = ink_from_background(paint_over_surround(gray))
    ink = clean_ink(
        ink, blur=auto_blur(gray.shape) if blur is None else blur, threshold=threshold
    )
    return drop_ruled_lines(ink)


def lay_out(crop: np.ndarray, *, box: int = DIGIT_BOX, by_mass: bool = True):
    """A digit's cropped ink (h, w) -> (28, 28): fitted in `box` x `box`, then centred
    by mass (MNIST) or by its bounding box (Fashion-MNIST)."""
    fitted = fit_in_box(crop, box)
    return place_by_mass(fitted) if by_mass else place_centred(fitted)


def from_array(a) -> np.ndarray:
    """A 28x28 array (uint8 0..255, or floats in [0, 1]) -> (28, 28) float32 in [0, 1].

    The array is taken as already MNIST-style (light digit on black); it is checked,
    not preprocessed.
    """
    try:
        arr = np.asarray(a)
    except (ValueError, TypeError) as e:
        raise DataError(f"pixels: not a rectangular array of numbers ({e})") from None
    if arr.shape != (IMAGE_SIZE, IMAGE_SIZE):
        raise DataError(f"pixels: expected shape (28, 28), got {arr.shape}")
    if arr.dtype == np.uint8:  # the same floats as training's batches
        return prepare_inputs(arr)
    if arr.dtype.kind not in "iuf":
        raise DataError(f"pixels: expected numbers, got dtype {arr.dtype}")
    arr = arr.astype(np.float64)
    if not np.all(np.isfinite(arr)):
        raise DataError("pixels: values must be finite (found NaN or infinity)")
    if arr.min() < 0.0 or arr.max() > 1.0:
        raise DataError(
            f"pixels: values must be in [0, 1], got [{arr.min():g}, {arr.max():g}]"
        )
    return arr.astype(np.float32)
