"""Pictures of whole numbers made from single MNIST digits, to test reading numbers.

`compose_number` lays digits side by side (gaps drawn at random, negative ones make
digits touch or overlap) on white paper and enlarges the result as if written on a
page; `photograph` lights it unevenly and adds sensor noise, as a phone photo does.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

DIGIT_HEIGHT = 20  # MNIST digits are about 20 pixels high in their 28x28 field


def compose_number(
    digits: np.ndarray,
    rng: np.random.Generator,
    *,
    gaps: tuple[float, float] = (-0.1, 0.5),
    scale: int = 6,
    margin: int = 8,
) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """(n, 28, 28) uint8 MNIST digits -> (picture, boxes).

    The picture is (H, W) float32 gray, dark ink on white (1 = white), `scale` times
    the digits' size; each gap is drawn uniformly from `gaps` (in digit heights,
    negative: the digits overlap); each digit moves up or down by up to 2 pixels.
    Boxes are (left, top, right, bottom) of each digit's ink in the picture.
    """
    crops = []
    for image in np.asarray(digits):
        rows, cols = np.flatnonzero(image.any(1)), np.flatnonzero(image.any(0))
        crops.append(image[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1])
    lefts, x = [], margin
    for i, crop in enumerate(crops):
        if i:
            x = max(x + round(rng.uniform(*gaps) * DIGIT_HEIGHT), lefts[-1] + 2)
        lefts.append(x)
        x += crop.shape[1]
    shifts = rng.integers(-2, 3, size=len(crops))
    height = max(c.shape[0] for c in crops) + 2 * margin
    canvas = np.zeros((height, x + margin), dtype=np.float32)
    boxes = []
    for crop, left, shift in zip(crops, lefts, shifts):
        top = margin + int(shift) + (height - 2 * margin - crop.shape[0]) // 2
        window = canvas[top : top + crop.shape[0], left : left + crop.shape[1]]
        np.maximum(window, crop / 255.0, out=window)  # touching strokes merge
        box = (left, top, left + crop.shape[1], top + crop.shape[0])
        boxes.append(tuple(scale * v for v in box))
    size = (canvas.shape[1] * scale, canvas.shape[0] * scale)
    big = Image.fromarray(canvas).resize(size, Image.Resampling.BICUBIC)
    return 1.0 - np.clip(np.asarray(big, dtype=np.float32), 0, 1), boxes


def photograph(gray: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """`gray` (H, W) lit from one corner to half as bright at the other, grey paper
    and a little noise: (H, W) float32 in [0, 1]."""
    h, w = gray.shape
    rows, cols = np.mgrid[0:h, 0:w] / max(h, w)
    light = 0.95 - 0.45 * (0.6 * rows / rows.max() + 0.4 * cols / cols.max())
    noise = 0.02 * rng.standard_normal(gray.shape)
    return np.clip(gray * light + noise, 0, 1).astype(np.float32)
