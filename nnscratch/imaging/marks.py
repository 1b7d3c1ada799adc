"""Ink that is a mark, not a digit: a lone dot (a tap on the drawing page, a blot) or
a bar lying flat (a dash, a minus sign, a lone underline). `images.to_mnist` refuses
such ink as a digit; `segment` leaves such pieces out of a whole number."""

from __future__ import annotations

import numpy as np

# Ink filling more than DOT_FILL of a near-square box (sides within DOT_ASPECT) and
# smaller than DOT_SIZE of the image's longer side is a dot (a tap), not a digit. Of
# MNIST's digits 18 in 20,000 are that solid, but none is small in its picture.
DOT_FILL = 0.7
DOT_ASPECT = 1.3
DOT_SIZE = 0.15
# Ink at least BAR_ASPECT times as wide as high that crosses a single stroke in
# BAR_COLUMNS of its columns is a bar (a dash, a minus sign, a lone underline, a "1"
# lying flat), not digits: touching digits that wide cross two strokes or more in most
# columns (a 0's top and bottom, a 7's bar and stem), and a "1" stands upright.
BAR_ASPECT = 3.0
BAR_COLUMNS = 0.9
# ... and so is ink only BLOCK_ASPECT times as wide as high if it fills more than
# BLOCK_FILL of its box: a bold hyphen (a typed one is 1.45 to 2.7 times as wide as
# high). Of MNIST's 70,000 digits none is a block (crossing one stroke in
# BAR_COLUMNS of its columns) that wide and solid; 12 fill 0.6 at 1.3 times, 0.5 at 1.2.
BLOCK_ASPECT = 1.3
BLOCK_FILL = 0.6


def is_dot(crop: np.ndarray, shape: tuple) -> bool:
    """Whether the cropped ink (h, w) of an image of `shape` is a lone dot (a tap on
    the drawing page, a blot), not a digit: small in the picture, and solid."""
    return max(crop.shape) < DOT_SIZE * max(shape) and is_solid(crop)


def is_solid(crop: np.ndarray) -> bool:
    """Whether the cropped ink (h, w) is about as wide as high and fills most of its
    box, as no stroke bent into a digit does (a dot's shape, whatever its size)."""
    h, w = crop.shape
    return max(h, w) <= DOT_ASPECT * min(h, w) and (
        np.count_nonzero(crop) > DOT_FILL * crop.size
    )


def is_bar(crop: np.ndarray) -> bool:
    """Whether the cropped ink (h, w) is a bar lying flat, not a digit or digits:
    BAR_ASPECT times as wide as high (or BLOCK_ASPECT times and filling BLOCK_FILL
    of its box: a bold hyphen), one stroke deep in BAR_COLUMNS of its columns
    (slanted, bent or wavy, a drawn line still is)."""
    h, w = crop.shape
    ink = crop > 0
    block = w >= BLOCK_ASPECT * h and np.count_nonzero(ink) > BLOCK_FILL * ink.size
    if w < BAR_ASPECT * h and not block:
        return False
    strokes = np.count_nonzero(ink[1:] & ~ink[:-1], axis=0) + ink[0]  # runs a column
    return np.count_nonzero(strokes == 1) >= BAR_COLUMNS * np.count_nonzero(strokes)
