"""A picture of a number -> its digits, left to right, each laid out like MNIST's.

`find_digits(gray)` takes the ink as `images.to_mnist` does (uneven light, a table
around the page, ruled lines), erases an underline touching the digits
(`underlines`), labels its connected pieces (`pieces.label_components`), drops
specks and bars lying flat (a dash, a minus sign: `marks.is_bar`; a bold hyphen:
`is_dash`; one touching the left of a digit, or its right with a digit after it,
is erased: `erase_dashes`), joins the strokes of one digit that lie apart (a 5
whose top bar is apart, a 4 drawn in two strokes: pieces above one another), splits
pieces too wide for one digit (touching digits) at the valleys of their column
profile, and groups the digits into lines.
Each digit is cropped to its own pieces' ink, so a neighbour reaching into its box
is left out, and laid out by `images.lay_out`: a picture of one
digit gives the same 28x28 input as `to_mnist`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from .images import DIGIT_BOX, MIN_SIZE, check_gray, crop_to_ink, lay_out, picture_ink
from .marks import is_bar, is_dot, is_solid
from .paper import runs
from .pieces import label_components
from .underlines import pieces_without_underlines

# A piece less high than PART_HEIGHT of the digits' height is part of a digit, joined
# to the piece it overlaps most, within JOIN_GAP of that height (`join_pieces`)
PART_HEIGHT = 0.75
JOIN_GAP = 0.15
# A piece shorter and narrower than DOT_SHARE of the digits' height is a dot or a
# speck (a decimal point, dust), not a digit
DOT_SHARE = 0.3
# A piece lower than that and DASH_ASPECT times as wide as high lying beside the
# digits (less than DASH_OVER of its columns under or over one), across the middle
# of the digit nearest it (DASH_BAND of its height from its top; a 5's bar apart
# from its body lies at the top) is a dash or a hyphen
DASH_ASPECT = 1.5
DASH_OVER = 0.5
DASH_BAND = (0.3, 0.8)
# ... and one touching the left of a digit is erased where it crosses the digit's
# middle rows alone, over DASH_LENGTH of the digits' height (a leading minus sign)
DASH_LENGTH = 0.25
# One touching the right of a digit, with another digit after it within the digits'
# height, is erased too unless it goes on left of the stroke it touches, at its
# rows, for CROSSBAR times its thickness: a 4's crossbar crosses the stem (MNIST's:
# 2.2 times or more in 9 of 10), a hyphen stops at the stroke of a 0, 2, 6 or 8
# (typed, bold: at most 1.5 times). A 3's middle arm or a 9's bowl goes on as far.
CROSSBAR = 1.8
# A piece wider than SPLIT_ASPECT times its height holds several touching digits, each
# about DIGIT_ASPECT times as wide as high (MNIST's mean is 0.64 without the ones)
SPLIT_ASPECT = 1.25
DIGIT_ASPECT = 0.7
# With the network's help (`best_split`), pieces wider than TRY_SPLIT times their
# height are read whole and cut in 2..MAX_PARTS, and the likeliest reading is kept.
# Bold typed digits are up to 0.87 times as wide as high (DejaVu Serif Bold Italic's
# 0, its 4 0.84), and the network reads their halves about as surely as the whole:
# at 0.8, a bold "4" was read "41"; touching MNIST digits read right are wider
TRY_SPLIT = 0.88
MAX_PARTS = 4
MAX_DIGITS = 20  # more candidates than this is likely not a number: say so


@dataclass
class Digit:
    """One digit found: its box (left, top, right, bottom; right and bottom
    exclusive) in the picture's pixels and its (28, 28) input for the network."""

    box: tuple[int, int, int, int]
    input: np.ndarray


@dataclass
class Reading:
    """What `find_digits` found: the digits of the first line, left to right, the
    number of lines, and the number of candidate digits in the whole picture."""

    digits: list[Digit] = field(default_factory=list)
    lines: int = 0
    candidates: int = 0


def join_pieces(boxes: np.ndarray, height: float) -> list[list[int]]:
    """Groups of piece indices that make one digit. A part (less high than
    PART_HEIGHT * `height`: a 5's bar, one stroke of a 4, a bit of a broken stroke)
    joins the piece it overlaps most in columns, or lies nearest to, if that is at
    most JOIN_GAP * `height` away across and down; two whole digits never join."""
    left, top, right, bottom = (boxes[:, k] for k in range(4))
    overlap = np.minimum(right[:, None], right) - np.maximum(left[:, None], left)
    gap = np.maximum(top[:, None], top) - np.minimum(bottom[:, None], bottom)
    near = (-overlap <= JOIN_GAP * height) & (gap <= JOIN_GAP * height)
    np.fill_diagonal(near, False)
    group = list(range(len(boxes)))
    for a in np.flatnonzero(bottom - top < PART_HEIGHT * height):
        if near[a].any():
            b = int(np.argmax(np.where(near[a], overlap[a], np.iinfo(np.int64).min)))
            old, new = group[a], group[b]
            group = [new if g == old else g for g in group]  # few pieces
    return [
        [i for i in range(len(boxes)) if group[i] == g] for g in dict.fromkeys(group)
    ]


def split_points(profile: np.ndarray, parts: int) -> list[int]:
    """Where to cut a piece whose column profile is `profile` into `parts` digits:
    at the emptiest column within a third of a digit's width of each even cut."""
    width = len(profile) / parts
    cuts = []
    for k in range(1, parts):
        lo, hi = round((k - 1 / 3) * width), round((k + 1 / 3) * width)
        # a piece a few columns wide: still one column to cut at
        lo = min(lo, len(profile) - 1)
        hi = max(hi, lo + 1)
        cuts.append(lo + int(np.argmin(profile[lo:hi])))
    return cuts


def find_digits(
    gray: np.ndarray,
    *,
    blur: float | None = None,
    threshold: float = 0.2,
    box: int = DIGIT_BOX,
    by_mass: bool = True,
    confidence=None,
) -> Reading:
    """Find the digits of the number in a gray picture (H, W), 1 = white.

    Returns a Reading of the first (top) line's digits, left to right; empty when
    the picture holds no digit. The keywords are `images.to_mnist`'s, and
    `confidence` is `best_split`'s (the network's say on touching digits).
    """
    layout = {"box": box, "by_mass": by_mass}
    gray = check_gray(gray, "find_digits")
    ink, labels, boxes = pieces_without_underlines(
        picture_ink(gray, blur=blur, threshold=threshold)
    )
    keep = big_pieces(boxes, gray.shape)
    if keep.size == 0:
        return Reading()
    heights = boxes[keep, 3] - boxes[keep, 1]
    height = float(np.median(heights[heights >= 0.5 * heights.max()]))
    if erase_dashes(ink, labels, boxes[keep], keep + 1, height):
        labels, boxes = label_components(ink > 0)
        keep = big_pieces(boxes, gray.shape)
    # a decimal point, an underline or a dash is dropped before it can join a digit
    keep = np.array(
        [i for i in keep if not is_mark(labels, i + 1, boxes[i], height)],
        dtype=np.int64,
    )
    keep = keep[~is_dash(boxes[keep], height)]
    if keep.size == 0:
        return Reading()
    groups = [[keep[i] for i in g] for g in join_pieces(boxes[keep], height)]
    digits = []  # (box, piece ids) of each candidate
    for group in groups:
        b = boxes[group]
        merged = (b[:, 0].min(), b[:, 1].min(), b[:, 2].max(), b[:, 3].max())
        w, h = merged[2] - merged[0], merged[3] - merged[1]
        if max(w, h) < DOT_SHARE * height:
            continue  # a dot or a speck beside digits
        ids = [i + 1 for i in group]
        if is_bar(own_ink(ink, labels, merged, ids)):
            continue  # a dash or a minus sign: cut by width, it made dozens of digits
        digits.extend(best_split(ink, labels, merged, ids, layout, confidence))
    if len(digits) == 1:  # a lone mark: to_mnist's test for a dot
        crop = crop_to_ink(own_ink(ink, labels, *digits[0]))
        if by_mass and is_dot(crop, gray.shape):
            digits = []
    lines = group_lines(digits)
    reading = Reading(lines=len(lines), candidates=len(digits))
    for (left, top, right, bottom), ids in sorted(lines[0] if lines else []):
        crop = own_ink(ink, labels, (left, top, right, bottom), ids)
        reading.digits.append(
            Digit(
                (int(left), int(top), int(right), int(bottom)),
                lay_out(crop_to_ink(crop), **layout),
            )
        )
    return reading


def big_pieces(boxes: np.ndarray, shape: tuple) -> np.ndarray:
    """Indices of the pieces `boxes` (n, 4) that are no specks in a picture of
    `shape`: at least 2 pixels and MIN_SIZE of its longer side on a side."""
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    return np.flatnonzero(sides >= max(2, MIN_SIZE * max(shape)))


def erase_dashes(ink, labels, boxes, ids, height: float) -> bool:
    """Zero, in place, the dashes touching digits `height` high in `ink` (H, W): in
    each digit-high piece (`ids` in `labels`, `boxes` (n, 4)), its `leading_dash`,
    and its `trailing_dash` if another digit starts within `height` after it.
    Whether any was erased (`labels` then no longer fit `ink`)."""
    erased = False
    tall = boxes[boxes[:, 3] - boxes[:, 1] >= PART_HEIGHT * height]
    for (left, top, right, bottom), label in zip(boxes.tolist(), ids.tolist()):
        if bottom - top < PART_HEIGHT * height:
            continue
        piece = labels[top:bottom, left:right] == label
        window = ink[top:bottom, left:right]  # a view: edits reach `ink`
        dash = np.zeros(piece.shape[1], dtype=bool)  # the columns to erase
        dash[: leading_dash(piece, height)] = True
        start = right - left - trailing_dash(piece, height)
        if np.any((tall[:, 0] > left + start) & (tall[:, 0] <= right + height)):
            dash[start:] = True  # a digit follows: a hyphen between two
        window[piece & dash] = 0.0
        erased |= bool(dash.any())
    return erased


def trailing_dash(piece: np.ndarray, height: float) -> int:
    """How many columns on the right of a digit-high piece's mask (h, w) are a
    hyphen touching it (0 if none): a `leading_dash` of the piece mirrored that
    does not go on left of the stroke it touches, at the rows where it meets it
    (half of them inked), for CROSSBAR times its thickness, as a 4's crossbar does.
    """
    stop = leading_dash(piece[:, ::-1], height)
    if not stop:
        return 0
    dash = piece[:, -stop:]
    rows = dash[:, 0]  # where it meets the digit
    along = piece[rows, :-stop].mean(axis=0)[::-1] >= 0.5  # nearest column first
    run = len(along) if along.all() else int(np.argmin(along))
    return stop if run < CROSSBAR * np.median(dash.sum(axis=0)) else 0


def leading_dash(piece: np.ndarray, height: float) -> int:
    """How many columns on the left of a digit-high piece's mask (h, w) are a
    dash or a hyphen touching it (0 if none): one straight stroke lying flat across
    the middle rows (DASH_BAND) at most DOT_SHARE of `height` thick, over at least
    DASH_LENGTH of it. On the right, that is as often a 4's crossbar: see
    `trailing_dash`."""
    h = piece.shape[0]
    strokes = np.count_nonzero(piece[1:] & ~piece[:-1], axis=0) + piece[0]
    first = np.argmax(piece, axis=0)
    last = h - np.argmax(piece[::-1], axis=0)
    middle = (first + last) / (2 * h)
    lone = (strokes == 1) & (last - first <= DOT_SHARE * height)
    lone &= (middle >= DASH_BAND[0]) & (middle <= DASH_BAND[1])
    stop = len(lone) if lone.all() else int(np.argmin(lone))
    flat = stop and np.ptp(middle[:stop]) * h <= DOT_SHARE * height / 2
    return stop if flat and DASH_LENGTH * height <= stop < len(lone) else 0


def is_mark(labels: np.ndarray, label: int, box, height: float) -> bool:
    """Whether piece `label` of `labels` (H, W), in `box` (left, top, right,
    bottom), is no part of digits `height` high: a dot (smaller than DOT_SHARE of
    them and solid, like `marks.is_dot`) or a
    line (lower than that, and wider than a digit is high: an underline). A
    stroke's fragment is thin and short, and joins its digit (`join_pieces`)."""
    left, top, right, bottom = (int(v) for v in box)
    w, h = right - left, bottom - top
    if h < DOT_SHARE * height and w > height:  # a "1" is thin too, but upright
        return True
    piece = labels[top:bottom, left:right] == label
    return max(w, h) < DOT_SHARE * height and is_solid(piece)


def is_dash(boxes: np.ndarray, height: float) -> np.ndarray:
    """Which of the pieces `boxes` (n, 4) are a dash or a hyphen beside digits
    `height` high: (n,) bool. A piece lower than DOT_SHARE of them and DASH_ASPECT
    times as wide as high is no digit; it is a part of one (a 5's or a 7's bar, a
    4's crossbar) when digit-high pieces span DASH_OVER of its columns or it lies
    outside the middle rows (DASH_BAND) of the digit nearest it, else a dash (at a
    hyphen's 2 to 1, `marks.is_bar` leaves it: it was cut in digits and read)."""
    left, top, right, bottom = (boxes[:, k] for k in range(4))
    flat = (bottom - top < DOT_SHARE * height) & (
        right - left >= DASH_ASPECT * (bottom - top)
    )
    tall = np.flatnonzero(bottom - top >= PART_HEIGHT * height)
    out = np.zeros(len(boxes), dtype=bool)
    for i in np.flatnonzero(flat) if tall.size else []:
        covered = np.zeros(right[i] - left[i], dtype=bool)
        for j in tall:
            covered[max(left[j] - left[i], 0) : max(right[j] - left[i], 0)] = True
        # the digit nearest across: the dash lies across its middle rows
        j = tall[np.argmin(np.abs(left[tall] + right[tall] - left[i] - right[i]))]
        middle = (top[i] + bottom[i] - 2 * top[j]) / (2 * (bottom[j] - top[j]))
        out[i] = covered.mean() < DASH_OVER and DASH_BAND[0] <= middle <= DASH_BAND[1]
    return out


def own_ink(ink, labels, bbox, ids) -> np.ndarray:
    """The ink inside `bbox` (left, top, right, bottom) that belongs to pieces `ids`."""
    left, top, right, bottom = bbox
    window = (slice(top, bottom), slice(left, right))
    return np.where(np.isin(labels[window], ids), ink[window], 0.0)


def split_group(ink, labels, bbox, ids, parts: int) -> list[tuple[tuple, list[int]]]:
    """A group (bbox, ids) cut into `parts` digits at the valleys of its column
    profile, each part's box shrunk to its ink: a list of (bbox, ids). A part is
    at least 2 columns wide (a speck a few pixels wide has no valley to cut at)."""
    left, top, right, _ = bbox
    parts = min(parts, max(1, (right - left) // 2))
    if parts == 1:
        return [(bbox, ids)]
    mine = own_ink(ink, labels, bbox, ids)
    edges = [0, *split_points(mine.sum(axis=0), parts), right - left]
    out = []
    for start, stop in itertools.pairwise(edges):
        rows = np.flatnonzero(mine[:, start:stop].any(axis=1))
        if rows.size:
            out.append(
                ((left + start, top + rows[0], left + stop, top + rows[-1] + 1), ids)
            )
    return out


def best_split(ink, labels, bbox, ids, layout: dict, confidence) -> list:
    """How many digits a group holds. By width alone (SPLIT_ASPECT, DIGIT_ASPECT)
    without `confidence`; with it (a function: (k, 28, 28) inputs -> (k,) the
    network's probability of its best class), every count from one to what the
    narrowest digits would need is read, and the most probable reading (the product
    of its digits' probabilities) wins: a wide 0 stays whole, a 1 touching a 7 is cut.
    """
    left, top, right, bottom = bbox
    w, h = right - left, bottom - top
    by_width = max(2, round(w / (DIGIT_ASPECT * h))) if w > SPLIT_ASPECT * h else 1
    if confidence is None or w < TRY_SPLIT * h:
        return split_group(ink, labels, bbox, ids, by_width)
    options = [
        split_group(ink, labels, bbox, ids, n)
        for n in range(1, min(MAX_PARTS, max(2, round(w / (0.45 * h)))) + 1)
    ]
    # a part wider than SPLIT_ASPECT times its height is not one digit
    options = [
        option
        for option in options
        if all(b[2] - b[0] <= SPLIT_ASPECT * (b[3] - b[1]) for b, _ in option)
    ] or [split_group(ink, labels, bbox, ids, by_width)]
    inputs = [
        lay_out(crop_to_ink(own_ink(ink, labels, b, i)), **layout)
        for option in options
        for b, i in option
    ]
    probs = iter(confidence(np.stack(inputs)))
    scores = [np.prod([next(probs) for _ in option]) for option in options]
    return options[int(np.argmax(scores))]


def group_lines(digits: list) -> list[list]:
    """The digits (bbox, ids) grouped in lines, top to bottom: the rows covered by
    some digit's box, in runs; each digit joins the run holding its middle row."""
    if not digits:
        return []
    bottom = max(b[3] for b, _ in digits)
    covered = np.zeros(bottom + 1, dtype=bool)
    for b, _ in digits:
        covered[b[1] : b[3]] = True
    spans = runs(covered)
    lines = [[] for _ in spans]
    for d in digits:
        middle = (d[0][1] + d[0][3]) // 2
        lines[next(k for k, (s, e) in enumerate(spans) if s <= middle < e)].append(d)
    return lines
