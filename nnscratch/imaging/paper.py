"""The paper under a digit: telling ink from paper in a user's picture (pure functions).

A scan or drawing has paper of one level, found at the image's border; a photo has
paper lit unevenly, whose level is found at every pixel by a closing wider than the
strokes. Also: a page lying on a table (the table is painted over with paper) and
the ruled lines of lined paper. `ink_from_background` gives the ink as (H, W) in
[0, 1], 0 where there is none; `images.to_mnist` does the rest. Images are (H, W)
float32 grayscale in [0, 1], 1 = white.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

MIN_CONTRAST = 0.08  # ink fainter than this (on a 0..1 scale) is noise, not a digit
# A border whose brightness varies by more than this is lit unevenly (a photo): the
# background is then measured locally, on a copy BACKGROUND_SIDE pixels on its
# shorter side, with a rank filter wider than a stroke: BACKGROUND_FILTER pixels,
# widened in steps of 4 up to MAX_FILTER while that still removes FILTER_GAIN more ink (a thick marker)
UNEVEN_LIGHT = 0.1
BACKGROUND_SIDE = 64
BACKGROUND_FILTER = 9
MAX_FILTER = 25
FILTER_GAIN = 0.1
# A border this far from the image's median level is not the page: a table around it
SURROUND_CONTRAST = 0.2
# Ink spanning this share of the image's width (or height) in a band of rows (columns)
# at most RULED_LINE of its longer side thick is a ruled line of the paper, not a digit
RULED_SPAN = 0.8
RULED_LINE = 0.02
# An upright ruled line (squared paper's) runs from edge to edge of the page: its ink
# reaches within RULED_END of the picture's height of its top and of its bottom
RULED_END = 0.04
# ... and squared paper's lines either way are as far apart, within this factor
GRID_SPACING = 1.5


def border_pixels(gray: np.ndarray) -> np.ndarray:
    """The pixels along the border (2% of the short side, at least 1 px), flat.

    The border is taken as background: a digit is drawn or photographed inside it.
    """
    h, w = gray.shape
    k = max(1, round(0.02 * min(h, w)))
    return np.concatenate(
        [gray[:k].ravel(), gray[-k:].ravel(), gray[:, :k].ravel(), gray[:, -k:].ravel()]
    )


def border_level(gray: np.ndarray) -> float:
    """The background's level on an evenly lit page: the median of its border."""
    return float(np.median(border_pixels(gray)))


def border_spread(gray: np.ndarray) -> float:
    """How unevenly the border is lit: 90th minus 10th percentile of its pixels."""
    low, high = np.percentile(border_pixels(gray), [10, 90])
    return float(high - low)


def _small_copy(gray: np.ndarray) -> Image.Image:
    """`gray` shrunk (area-averaged) so its shorter side is at most BACKGROUND_SIDE
    pixels (and its longer one at most 4 times that): a wide picture (a number)
    keeps enough rows for the filters, which are sized for a square one."""
    h, w = gray.shape
    scale = min(1.0, BACKGROUND_SIDE / min(h, w), 4 * BACKGROUND_SIDE / max(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    image = Image.fromarray(np.ascontiguousarray(gray, dtype=np.float32))
    return image.resize(size, Image.Resampling.BOX)


def paint_over_surround(gray: np.ndarray) -> np.ndarray:
    """Paint what lies around the page (a table) with the page's paper: (H, W) -> same.

    The page is the image's majority: its level is the median of all pixels, and
    most pixels lie near it (in a tight crop of a bold digit, the median is only a
    grey between ink and paper). A border far from that (SURROUND_CONTRAST) is not
    paper, and the pixels at the border's level connected to it are the surround.
    It is found on the small copy and widened by one of its pixels (those straddle
    the page's blurred edge), then filled with the paper next to it, so the page
    seems to fill the picture and an uneven light on it stays as it was. A page
    filling the picture is left alone.
    """
    page, edge = float(np.median(gray)), border_level(gray)
    on_page = np.mean(np.abs(gray - page) < SURROUND_CONTRAST)
    if abs(page - edge) < SURROUND_CONTRAST or on_page < 0.5:
        return gray
    small = np.asarray(_small_copy(gray), dtype=np.float32)
    outside = flood_from_border(np.abs(small - edge) < np.abs(small - page))
    outside = _as_image(outside).filter(ImageFilter.MaxFilter(3))
    if np.asarray(outside).all():
        return gray
    paper = extend_outward(small, np.asarray(outside) == 0)
    size = gray.shape[::-1]
    mask = np.asarray(outside.resize(size, Image.Resampling.NEAREST)) > 0
    paper = np.asarray(_as_image(paper).resize(size, Image.Resampling.BILINEAR))
    return np.where(mask, paper, gray).astype(np.float32)


def _as_image(a: np.ndarray) -> Image.Image:
    """A bool array as a 0/255 "L" image, a float one as an "F" image (for filters)."""
    if a.dtype == bool:
        return Image.fromarray(a.astype(np.uint8) * 255)
    return Image.fromarray(np.ascontiguousarray(a, dtype=np.float32))


def flood_from_border(mask: np.ndarray) -> np.ndarray:
    """The pixels of `mask` (h, w) bool joined to the image's border through others
    of `mask` (4-neighbours): (h, w) bool."""
    # the frame joins the border's pixels; a copy, as fromarray's image is read-only
    framed = _as_image(np.pad(mask, 1, constant_values=True)).copy()
    ImageDraw.floodfill(framed, (0, 0), 128)
    return (np.asarray(framed) == 128)[1:-1, 1:-1]


def extend_outward(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Fill the pixels of `values` (h, w) where `known` (h, w) bool is False, ring by
    ring from the known ones: each takes the mean of its known 4-neighbours.

    `known` must hold at least one True. Returns (h, w) float32.
    """
    values = np.where(known, values, 0.0).astype(np.float32)
    known = known.copy()

    def neighbours(a):  # sum over the 4-neighbours, zero outside the image
        a = np.pad(a, 1)
        return a[:-2, 1:-1] + a[2:, 1:-1] + a[1:-1, :-2] + a[1:-1, 2:]

    while not known.all():
        total, count = neighbours(values * known), neighbours(known.astype(np.float32))
        ring = ~known & (count > 0)
        values[ring] = total[ring] / count[ring]
        known |= ring
    return values


def ink_is_dark(small: Image.Image) -> bool:
    """Whether the ink is darker than the paper, for a page lit unevenly.

    The brightness of the page as a whole cannot tell (paper in a deep shadow is
    darker than mid-grey): the ink is what stands out most from the paper around it,
    measured from a median filter, which follows the paper and ignores strokes (up to
    a marker's: MAX_FILTER wide, as a narrower one takes thick strokes for paper).
    """
    paper = np.asarray(small.filter(ImageFilter.MedianFilter(MAX_FILTER)))
    deviation = np.asarray(small, dtype=np.float32) - paper
    return float(np.percentile(-deviation, 99)) > float(np.percentile(deviation, 99))


def closing(small: Image.Image, size: int, dark_ink: bool) -> Image.Image:
    """A maximum then a minimum filter, `size` pixels square (the reverse for light
    ink): ink narrower than `size` is replaced by the paper around it, and the edges
    of larger shapes (shadows) are put back where they were. Same size as `small`.

    The image is first extended past its edges by point reflection (2 * edge - the
    pixel mirrored), which continues a gradient: Pillow's filters repeat the edge
    pixel, and a page darkening towards an edge then looks like a wide stroke there.
    """
    first, second = ImageFilter.MaxFilter, ImageFilter.MinFilter
    if not dark_ink:
        first, second = second, first
    pad = 2 * (size // 2)  # the reach of both filters together
    pixels = np.asarray(small, dtype=np.float32)
    extended = np.pad(pixels, pad, mode="reflect", reflect_type="odd")
    closed = _as_image(extended).filter(first(size)).filter(second(size))
    return _as_image(np.asarray(closed)[pad:-pad, pad:-pad])


def closing_size(small: Image.Image, dark_ink: bool) -> int:
    """The filter size for `background_map`: wider than the strokes on `small`.

    BACKGROUND_FILTER covers a pen; a marker's strokes can be wider, and would be
    kept as paper (the digit hollowed out). The filter is widened, 4 pixels at a
    time up to MAX_FILTER, while that removes FILTER_GAIN more ink: once it is wider
    than the strokes, widening it only takes in the paper's lighting, which a closing
    leaves nearly unchanged.
    """
    pixels = np.asarray(small, dtype=np.float32)

    def removed(size):  # how much ink the closing of this size takes away
        return float(np.abs(np.asarray(closing(small, size, dark_ink)) - pixels).sum())

    size, ink = BACKGROUND_FILTER, removed(BACKGROUND_FILTER)
    while size < MAX_FILTER:
        wider = removed(size + 4)
        if wider < (1 + FILTER_GAIN) * ink:
            break
        size, ink = size + 4, wider
    return size


def background_map(small: Image.Image, shape: tuple, dark_ink: bool) -> np.ndarray:
    """The paper's level at every pixel of an unevenly lit page, ink removed: `shape`.

    Worked out on `small` (the page shrunk by `_small_copy`) by a
    `closing` wider than the strokes (`closing_size`); the result is smoothed and
    scaled back to full size.
    """
    small = closing(small, closing_size(small, dark_ink), dark_ink)
    paper = Image.fromarray(gaussian_blur(np.asarray(small, np.float32), 1.0))
    return np.asarray(paper.resize(shape[::-1], Image.Resampling.BILINEAR), np.float32)


def ink_from_background(gray: np.ndarray) -> np.ndarray:
    """Gray (1 = white) -> ink (H, W): how far each pixel is from the background.

    Dark ink on a light background is inverted, so the result is always light ink on
    black like MNIST. Pixels on the background's side of its level count as 0. An
    evenly lit background (a scan, a drawing) is one level, the border's median; an
    unevenly lit one (a photo) is measured locally (`background_map`), and dark ink
    is taken relative to it, so ink in a shadow is as strong as ink in full light.
    """
    if border_spread(gray) <= UNEVEN_LIGHT:
        background = border_level(gray)
        ink = background - gray if background > 0.5 else gray - background
        return np.clip(ink, 0.0, None).astype(np.float32)
    small = _small_copy(gray)
    dark_ink = ink_is_dark(small)
    paper = background_map(small, gray.shape, dark_ink)
    if dark_ink:  # ink reflects a share of the light falling on it: divide by that
        ink = (paper - gray) / np.maximum(paper, MIN_CONTRAST)
    else:
        ink = gray - paper
    return np.clip(ink, 0.0, None).astype(np.float32)


def gaussian_blur(a: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of a 2-D float array, edges padded by replication.

    (Pillow's GaussianBlur does not take float images.)
    """
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    taps = (taps / taps.sum()).astype(np.float32)
    out = np.asarray(a, dtype=np.float32)
    for axis in (0, 1):
        pad = [(0, 0), (0, 0)]
        pad[axis] = (radius, radius)
        padded = np.pad(out, pad, mode="edge")
        n = out.shape[axis]
        out = sum(
            t * np.take(padded, np.arange(i, i + n), axis=axis)
            for i, t in enumerate(taps)
        )
    return out.astype(np.float32)


def drop_ruled_lines(ink: np.ndarray) -> np.ndarray:
    """Zero the ruled lines of lined or squared paper: (H, W) -> (H, W), a copy.

    A line is a band of rows (columns) at most RULED_LINE of the longer side thick
    with ink across RULED_SPAN of the width (height), through which the ink is at
    most twice RULED_LINE of the shorter side thick along most of its length
    (`thin_across`: the middle of a tall thick stroke, a "1" drawn with a marker, is
    inked as far), and paper has two or more: one alone may be the thin bar of a
    "7". An upright line (squared paper's) also runs from the top of the picture to
    its bottom (`reaches_ends`: a tall "1" written with a thin pen stops short), and
    lines across as far apart were found (`is_grid`: tall "1"s reaching the edges
    of a tight picture stand on plain paper or on lines closer together). Each line
    is erased (`erase_band`), with its blurred edges, except where a stroke crosses
    it or lies along it. A page of nothing but ruled lines across (lined or squared
    paper) is blank.
    """
    out = np.array(ink, dtype=np.float32)
    # the ink through a line with its blurred edges (erase_band's: half the band's
    # thickness either side), from the shorter side: a line is as thin whichever way
    # it runs, while the band's limit from the width would let a 700 x 280 number
    # pad's pen (1/14 of the height) pass
    widest = 2 * max(1, round(RULED_LINE * min(out.shape)))
    # the band itself, from the longer side whichever way it runs: squared paper's
    # 5 px lines on a 500 x 200 picture were upright lines but no lines across
    thickest = max(1, round(RULED_LINE * max(out.shape)))
    across = []  # the lines across the page, (start, stop) each
    for lines in (out, out.T):  # rows, then columns (a view: edits reach `out`)
        inked = lines > 0
        bands = runs(inked.mean(axis=1) >= RULED_SPAN)
        bands = [
            (start, stop)
            for start, stop in bands
            if stop - start <= thickest
            and thin_across(inked, start, stop, widest)
            and (lines is out or reaches_ends(inked, start, stop))
        ]
        if len(bands) < 2 or lines is not out and not is_grid(bands, across):
            continue
        if lines is out:
            across = bands
        for start, stop in bands:
            erase_band(lines, inked, start, stop)
    return out  # upright lines go only with lines across: "11" is no squared paper


def is_grid(upright: list, across: list) -> bool:
    """Whether `upright` lines ((start, stop) each, two or more) may be squared
    paper's: lines `across` were found too, spaced as far apart (within GRID_SPACING
    of each other's median gap). Tall "1"s reaching within RULED_END of the top and
    bottom of a tight picture are as straight and thin, but stand on plain paper,
    or on lined paper further apart than its lines: "115" was read "5"."""
    if len(across) < 2:
        return False
    gaps = [np.median(np.diff([start for start, _ in b])) for b in (upright, across)]
    return 1 / GRID_SPACING <= gaps[0] / gaps[1] <= GRID_SPACING


def thin_across(inked: np.ndarray, start: int, stop: int, widest: int) -> bool:
    """Whether the ink through rows start:stop of `inked` (H, W) bool is at most
    `widest` rows thick along most of the band's length (in more than half of the
    columns where the band is inked).

    A ruled line is: ink runs on past it only where a stroke crosses it or lies
    along it. The middle of a tall thick stroke is not, though it may be inked
    across as much of the picture: the rest of the stroke flanks it all along.
    """
    above = inked[max(0, start - widest) : start][::-1]
    below = inked[stop : stop + widest]
    # rows inked next to the band on either side, up to the first row of paper
    flanks = [np.cumprod(side, axis=0).sum(axis=0) for side in (above, below)]
    across = (stop - start + sum(flanks))[inked[start:stop].any(axis=0)]
    return bool(np.mean(across <= widest) > 0.5)


def reaches_ends(inked: np.ndarray, start: int, stop: int) -> bool:
    """Whether rows start:stop of `inked` (H, W) bool hold ink within RULED_END of
    the width of both ends (columns 0 and W - 1).

    Squared paper's upright lines run from the top of the page to its bottom; a
    tall "1" written with a thin pen is as thin, straight and upright over most of
    the height, but stops short of an edge. (The lines across are erased by then,
    save where a stroke goes on past them: they do not reach the ends for it. A
    line tilted enough to leave the band before an end is not inked over RULED_SPAN
    of the band's rows.)
    """
    end = max(1, round(RULED_END * inked.shape[1]))
    along = np.flatnonzero(inked[start:stop].any(axis=0))
    return bool(along[0] < end and along[-1] >= inked.shape[1] - end)


def erase_band(lines: np.ndarray, inked: np.ndarray, start: int, stop: int) -> None:
    """Zero rows start:stop of `lines` (H, W), in place, and half the band's
    thickness on either side (its blurred edges: where lines cross, on squared
    paper, the blur sums them into blobs wider than either line), except in the
    columns where `inked` (H, W) bool goes on past that, on either side, for at
    least the band's thickness: a stroke crossing the band or lying along it."""
    width = stop - start
    start, stop = max(0, start - (width + 1) // 2), stop + (width + 1) // 2
    before, after = inked[max(0, start - width) : start], inked[stop : stop + width]
    goes_on = (len(before) == width) & before.all(axis=0)
    goes_on |= (len(after) == width) & after.all(axis=0)
    lines[start:stop, ~goes_on] = 0.0


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True in a 1-D bool array."""
    padded = np.concatenate([[False], flags, [False]])
    starts = np.flatnonzero(padded[1:] & ~padded[:-1])
    stops = np.flatnonzero(~padded[1:] & padded[:-1])
    return list(zip(starts.tolist(), stops.tolist()))
