"""Underlines touching a number's digits (H, W ink, 1 = ink): found as a thin band
at the bottom of a wide piece and erased as a ruled line is (`paper.erase_band`), so
that `segment` sees the digits apart. An underline apart from the digits is a mark
(`segment.is_mark`)."""

from __future__ import annotations

import numpy as np

from .paper import erase_band, runs
from .pieces import label_components

# An underline touching the digits: a band of rows in the lowest UNDERLINE_LOW of a
# piece at least UNDERLINE_ASPECT times as wide as high, at most UNDERLINE_THICK of
# its height thick, inked without a gap across UNDERLINE_SPAN of its width
UNDERLINE_ASPECT = 1.0
UNDERLINE_LOW = 0.35
UNDERLINE_THICK = 0.25
UNDERLINE_SPAN = 0.9
# ... is erased if it reaches past the digits above it (`reaches_past`) and, without
# it, the piece falls apart into digits or is one digit that spans less than
# LONE_DIGIT of a piece LONE_LINE times as wide as high (on a longer line)
LONE_DIGIT = 0.6
LONE_LINE = 2.0


def drop_underlines(ink: np.ndarray) -> np.ndarray:
    """Zero the underline of digits that touch it: (H, W) -> (H, W), a copy.

    Joined by it, the digits are one piece, cut apart by guesswork. The underline is
    an `underline_band` of a wide piece; it is erased as a ruled line is, keeping
    the strokes that go on above it, if it `reaches_past` the digits and that leaves
    the piece in several digits or in one on a much longer line
    (`is_lone_digit_on_a_line`): a "2" keeps its base.
    An underline apart from the digits is `is_mark`'s.
    """
    return pieces_without_underlines(ink)[0]


def pieces_without_underlines(ink: np.ndarray):
    """(`drop_underlines(ink)`, and its pieces as `label_components` gives them):
    the pieces of `ink` itself when no underline was erased, the usual case, which
    are then not labelled a second time."""
    out = np.array(ink, dtype=np.float32)
    labels, boxes = label_components(out > 0)
    erased_any = False
    for left, top, right, bottom in boxes.tolist():
        if right - left < UNDERLINE_ASPECT * (bottom - top):
            continue
        window = out[top:bottom, left:right]  # a view: edits reach `out`
        band = underline_band(window > 0)
        if band is None:
            continue
        erased = window.copy()
        erase_band(erased, window > 0, *band)
        _, parts = label_components(erased > 0)
        # digits: half as high as the piece above the band, not bits it cut off
        parts = parts[parts[:, 3] - parts[:, 1] >= 0.5 * band[0]]
        if not reaches_past(window[band[0] : band[1]] > 0, parts):
            continue  # the digits' own strokes: a "2"'s base touching a "1"
        if len(parts) > 1 or is_lone_digit_on_a_line(parts, *window.shape):
            window[...] = erased
            erased_any = True
    if erased_any:
        labels, boxes = label_components(out > 0)
    return out, labels, boxes


def is_lone_digit_on_a_line(parts: np.ndarray, h: int, w: int) -> bool:
    """Whether the one digit-sized part left of an (h, w) piece without its band
    stood on a line much longer than itself: the piece LONE_LINE times as wide as
    high, the part spanning less than LONE_DIGIT of its width. A "2" is never that
    wide (MNIST's widest are about 1.3 times as wide as high) and keeps its base."""
    return (
        len(parts) == 1
        and w >= LONE_LINE * h
        and parts[0, 2] - parts[0, 0] < LONE_DIGIT * w
    )


def reaches_past(band: np.ndarray, parts: np.ndarray) -> bool:
    """Whether the band's ink (its rows of a piece's mask: (t, w)) reaches past the
    digits above it (`parts` (n, 4), boxes in the piece) by its thickness t, on the
    left or the right, as a line drawn under them does. Where a tightly typed "12"
    touches, the 2's base and the 1's foot make such a band, but no longer than the
    digits are wide: erased, the "2" lost its base and was read as a "7"."""
    if len(parts) == 0:
        return True
    cols = np.flatnonzero(band.any(axis=0))
    t = band.shape[0]
    return bool(
        cols[0] <= parts[:, 0].min() - t or cols[-1] + 1 >= parts[:, 2].max() + t
    )


def underline_band(mask: np.ndarray) -> tuple[int, int] | None:
    """(start, stop) of the lowest band of rows of a piece's mask (h, w) that may be
    an underline (see UNDERLINE_*), or None."""
    h, w = mask.shape
    longest = np.array([max((b - a for a, b in runs(row)), default=0) for row in mask])
    bands = [
        (start, stop)
        for start, stop in runs(longest >= UNDERLINE_SPAN * w)
        if stop - start <= UNDERLINE_THICK * h and start >= (1 - UNDERLINE_LOW) * h
    ]
    return bands[-1] if bands else None
