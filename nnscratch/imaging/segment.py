"""A picture of a number -> its digits, left to right, each laid out like MNIST's.

`find_digits(gray)` takes the ink as `images.to_mnist` does (uneven light, a table
around the page, ruled lines), labels its connected pieces (`label_components`),
drops specks and bars lying flat (a dash, a minus sign: `marks.is_bar`), joins the strokes of one digit that lie apart (a 5 whose top bar is
apart, a 4 drawn in two strokes: pieces above one another), splits pieces too wide
for one digit (touching digits) at the valleys of their column profile, and groups
the digits into lines. Each digit is cropped to its own pieces' ink, so a neighbour
reaching into its box is left out, and laid out by `images.lay_out`: a picture of one
digit gives the same 28x28 input as `to_mnist`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from .images import DIGIT_BOX, MIN_SIZE, check_gray, crop_to_ink, lay_out, picture_ink
from .marks import is_bar, is_dot, is_solid
from .paper import erase_band, runs

# A piece less high than PART_HEIGHT of the digits' height is part of a digit, joined
# to the piece it overlaps most, within JOIN_GAP of that height (`join_pieces`)
PART_HEIGHT = 0.75
JOIN_GAP = 0.15
# A piece shorter and narrower than DOT_SHARE of the digits' height is a dot or a
# speck (a decimal point, dust), not a digit
DOT_SHARE = 0.3
# A piece wider than SPLIT_ASPECT times its height holds several touching digits, each
# about DIGIT_ASPECT times as wide as high (MNIST's mean is 0.64 without the ones)
SPLIT_ASPECT = 1.25
DIGIT_ASPECT = 0.7
# With the network's help (`best_split`), pieces wider than TRY_SPLIT times their
# height are read whole and cut in 2..MAX_PARTS, and the likeliest reading is kept
TRY_SPLIT = 0.8
MAX_PARTS = 4
MAX_DIGITS = 20  # more candidates than this is likely not a number: say so
# An underline touching the digits: a band of rows in the lowest UNDERLINE_LOW of a
# piece at least UNDERLINE_ASPECT times as wide as high, at most UNDERLINE_THICK of
# its height thick, inked without a gap across UNDERLINE_SPAN of its width
UNDERLINE_ASPECT = 1.0
UNDERLINE_LOW = 0.35
UNDERLINE_THICK = 0.25
UNDERLINE_SPAN = 0.9
# ... if without it the piece falls apart into digits, or is one digit that spans
# less than LONE_DIGIT of a piece LONE_LINE times as wide as high (on a longer line)
LONE_DIGIT = 0.6
LONE_LINE = 2.0


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


def label_components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label the 8-connected pieces of a bool mask (H, W).

    Returns (labels (H, W) int32, 0 = background and 1..n the pieces, and boxes
    (n, 4) int64 as left, top, right, bottom, right and bottom exclusive). Works on
    runs of pixels along rows, joined by union-find with the runs of the row above.
    """
    h, w = mask.shape
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    rows, starts = np.nonzero(edges == 1)
    stops = np.nonzero(edges == -1)[1]  # row-major order: the same runs
    parent = list(range(len(starts)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving
            i = parent[i]
        return i

    first = np.searchsorted(rows, np.arange(h + 1))
    for r in range(1, h):
        i, i_end, j, j_end = first[r - 1], first[r], first[r], first[r + 1]
        while i < i_end and j < j_end:
            # 8-connected: runs touch if they overlap or meet at a corner
            if starts[j] <= stops[i] and starts[i] <= stops[j]:
                a, b = root(i), root(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            if stops[i] < stops[j]:
                i += 1
            else:
                j += 1
    roots = np.array([root(i) for i in range(len(starts))], dtype=np.int64)
    _, ids = np.unique(roots, return_inverse=True)
    ids = ids.reshape(-1) + 1
    labels = np.zeros((h, w), dtype=np.int32)
    for r, s, e, k in zip(rows.tolist(), starts.tolist(), stops.tolist(), ids):
        labels[r, s:e] = k
    n = int(ids.max(initial=0))
    boxes = np.zeros((n, 4), dtype=np.int64)
    boxes[:, :2] = [w, h]
    np.minimum.at(boxes[:, 0], ids - 1, starts)
    np.minimum.at(boxes[:, 1], ids - 1, rows)
    np.maximum.at(boxes[:, 2], ids - 1, stops)
    np.maximum.at(boxes[:, 3], ids - 1, rows + 1)
    return labels, boxes


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
    sides = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    keep = np.flatnonzero(sides >= max(2, MIN_SIZE * max(gray.shape)))
    if keep.size == 0:
        return Reading()
    heights = boxes[keep, 3] - boxes[keep, 1]
    height = float(np.median(heights[heights >= 0.5 * heights.max()]))
    # a decimal point or an underline is dropped before it can join a digit
    keep = np.array(
        [i for i in keep if not is_mark(labels, i + 1, boxes[i], height)],
        dtype=np.int64,
    )
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


def drop_underlines(ink: np.ndarray) -> np.ndarray:
    """Zero the underline of digits that touch it: (H, W) -> (H, W), a copy.

    Joined by it, the digits are one piece, cut apart by guesswork. The underline is
    an `underline_band` of a wide piece; it is erased as a ruled line is, keeping
    the strokes that go on above it, if that leaves the piece in several digits or
    in one on a much longer line (`is_lone_digit_on_a_line`): a "2" keeps its base.
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


def own_ink(ink, labels, bbox, ids) -> np.ndarray:
    """The ink inside `bbox` (left, top, right, bottom) that belongs to pieces `ids`."""
    left, top, right, bottom = bbox
    window = (slice(top, bottom), slice(left, right))
    return np.where(np.isin(labels[window], ids), ink[window], 0.0)


def split_group(ink, labels, bbox, ids, parts: int) -> list[tuple[tuple, list[int]]]:
    """A group (bbox, ids) cut into `parts` digits at the valleys of its column
    profile, each part's box shrunk to its ink: a list of (bbox, ids)."""
    if parts == 1:
        return [(bbox, ids)]
    left, top, right, _ = bbox
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
