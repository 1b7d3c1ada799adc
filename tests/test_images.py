"""Preprocessing of a user's image into an MNIST-style 28x28 digit."""

import io
import struct
import subprocess
import sys
import time
import tracemalloc
import zlib

import numpy as np
import pytest
from numpy.testing import assert_allclose
from PIL import Image, ImageDraw, ImageFilter, PngImagePlugin, features

from nnscratch.errors import DataError
from nnscratch.imaging import decode, images, paper

SEVEN = [(30, 25), (110, 25), (60, 150)]  # a "7" as a polyline, in a 160x180 field


def draw_seven(size=(160, 180), ink=0, paper=255, shift=(0, 0), width=12, mode="L"):
    """A "7" drawn with Pillow: `ink` strokes on `paper`, moved by `shift` (x, y)."""
    img = Image.new(mode, size, paper)
    points = [(x + shift[0], y + shift[1]) for x, y in SEVEN]
    ImageDraw.Draw(img).line(points, fill=ink, width=width, joint="curve")
    return img


def png_bytes(img, fmt="PNG", **kwargs) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def gray_of(img) -> np.ndarray:
    return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def bomb_png(width: int, height: int) -> bytes:
    """A valid tiny PNG whose header declares width x height pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    idat = zlib.compress(b"\x00" * 1024)  # far less data than declared
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", idat)
        + (chunk(b"IEND", b""))
    )


# ----- individual steps ---------------------------------------------------------------
def test_border_level_is_the_median_of_the_border():
    gray = np.full((50, 40), 0.9, dtype=np.float32)
    gray[20:30, 10:30] = 0.0  # ink inside does not count
    gray[0, :5] = 0.0  # a few dark border pixels do not move the median
    assert paper.border_level(gray) == pytest.approx(0.9)


def test_ink_from_background_inverts_dark_ink_on_light_paper():
    gray = np.full((10, 10), 0.8, dtype=np.float32)
    gray[4:6, 4:6] = 0.1
    ink = paper.ink_from_background(gray)
    assert_allclose(ink[4:6, 4:6], 0.7, atol=1e-6)
    assert ink[0, 0] == 0.0
    # the same picture as light ink on dark gives the same ink
    assert_allclose(paper.ink_from_background(1.0 - gray), ink, atol=1e-6)


def test_clean_ink_scales_to_one_zeroes_faint_values_and_drops_specks():
    ink = np.zeros((60, 60), dtype=np.float32)
    ink[10:50, 28:34] = 0.5  # a stroke
    ink[5, 5] = 0.05  # faint background noise
    cleaned = images.clean_ink(ink, threshold=0.2)
    assert cleaned.max() == pytest.approx(1.0) and cleaned[5, 5] == 0.0

    speck = ink.copy()
    speck[55, 55] = 0.5  # one-pixel sensor noise as strong as the stroke
    blurred = images.clean_ink(speck, blur=2.0, threshold=0.2)
    assert blurred[55, 55] == 0.0 and blurred[30, 30] > 0.9


def test_clean_ink_returns_zeros_below_the_contrast_floor():
    ink = np.full((20, 20), 0.01, dtype=np.float32)
    assert not images.clean_ink(ink).any()


def test_crop_to_ink_finds_the_bounding_box():
    ink = np.zeros((30, 30), dtype=np.float32)
    ink[5, 7] = ink[20, 12] = 1.0
    assert images.crop_to_ink(ink).shape == (16, 6)
    assert images.crop_to_ink(np.zeros((5, 5))) is None


@pytest.mark.parametrize("shape, expected", [((100, 25), (20, 5)), ((9, 60), (3, 20))])
def test_fit_in_box_keeps_the_aspect_ratio(shape, expected):
    out = images.fit_in_box(np.ones(shape, dtype=np.float32))
    assert out.shape == expected and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0


def test_place_by_mass_puts_the_centre_of_mass_at_14_and_peak_at_1():
    digit = np.zeros((16, 8), dtype=np.float32)
    digit[0:3, :] = 0.5  # top-heavy: the box must sit low
    digit[3:, 3] = 0.5
    out = images.place_by_mass(digit)
    r, c = images.center_of_mass(out)
    assert abs(r - 14) <= 0.5 and abs(c - 14) <= 0.5
    assert out.shape == (28, 28) and out.max() == pytest.approx(1.0)
    assert out.sum() == pytest.approx(digit.sum() / 0.5)  # no ink lost


def test_place_by_mass_never_pushes_ink_off_the_field():
    digit = np.zeros((20, 20), dtype=np.float32)
    digit[0, :] = 1.0  # all mass on the top row: centring would cut it off
    out = images.place_by_mass(digit)
    assert out.sum() == pytest.approx(20.0)


# ----- whole pipeline -------------------------------------------------------------
def test_an_off_centre_digit_is_centred_by_mass():
    for shift in [(-15, -10), (35, 25), (0, 0)]:
        img = draw_seven(size=(240, 240), shift=shift)
        x = images.to_mnist(gray_of(img))
        r, c = images.center_of_mass(x)
        assert abs(r - 14) <= 0.5 and abs(c - 14) <= 0.5, (shift, r, c)
        assert x.shape == (28, 28) and x.dtype == np.float32
        assert x.min() >= 0.0 and x.max() == pytest.approx(1.0)


def test_position_in_the_picture_does_not_matter():
    a = images.to_mnist(gray_of(draw_seven(size=(240, 240), shift=(-15, -10))))
    b = images.to_mnist(gray_of(draw_seven(size=(240, 240), shift=(35, 25))))
    assert_allclose(a, b, atol=1e-5)


def test_white_on_black_and_black_on_white_give_the_same_digit():
    dark_on_light = images.to_mnist(gray_of(draw_seven(ink=0, paper=255)))
    light_on_dark = images.to_mnist(gray_of(draw_seven(ink=255, paper=0)))
    assert_allclose(dark_on_light, light_on_dark, atol=1e-5)
    # the output is MNIST-like: light digit, black background
    assert dark_on_light[0, 0] == 0.0 and dark_on_light.max() == 1.0


def test_aspect_ratio_is_kept():
    img = Image.new("L", (200, 200), 255)
    ImageDraw.Draw(img).rectangle([85, 20, 114, 179], fill=0)  # 30 wide, 160 tall
    x = images.to_mnist(gray_of(img))
    box = images.crop_to_ink(x)
    assert box.shape == (20, 4)  # 30 * 20/160 = 3.75 -> 4, not stretched to 20


@pytest.mark.parametrize("paper", [255, 0, 128])
def test_an_empty_image_has_no_digit(paper):
    assert images.to_mnist(np.full((50, 80), paper / 255, dtype=np.float32)) is None


def test_faint_noise_and_a_lone_speck_are_not_a_digit():
    rng = np.random.default_rng(0)
    noise = (0.9 + 0.02 * rng.standard_normal((300, 300))).astype(np.float32)
    assert images.to_mnist(noise) is None
    speck = np.ones((300, 300), dtype=np.float32)
    speck[100, 100] = 0.0
    assert images.to_mnist(speck) is None


def test_noisy_photo_like_image_still_gives_the_digit():
    rng = np.random.default_rng(0)
    clean = gray_of(draw_seven(size=(320, 360), width=24))
    noisy = clean * 0.7 + 0.2 + 0.03 * rng.standard_normal(clean.shape)  # grey paper
    a = images.to_mnist(clean)
    b = images.to_mnist(np.clip(noisy, 0, 1).astype(np.float32))
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9


def lit(paper: np.ndarray, light: np.ndarray) -> np.ndarray:
    """A photo of `paper` (1 white) under `light` (H, W), with a little sensor noise."""
    noise = 0.02 * np.random.default_rng(1).standard_normal(paper.shape)
    return np.clip(paper * light + noise, 0, 1).astype(np.float32)


def light_field(shape, kind: str) -> np.ndarray:
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]] / max(shape)
    if (
        kind == "falling off"
    ):  # bright at the top left, half as bright at the bottom right
        return 0.95 - 0.45 * (0.6 * rows + 0.4 * cols)
    shadow = np.where(cols + 0.3 * rows < 0.45, 0.9, 0.45)  # a hard-edged shadow
    return (
        np.asarray(
            Image.fromarray((shadow * 255).astype(np.uint8)).filter(
                ImageFilter.GaussianBlur(4)
            ),
            dtype=np.float32,
        )
        / 255
    )


@pytest.mark.parametrize("kind", ["falling off", "shadow"])
def test_an_unevenly_lit_photo_gives_the_same_digit_as_an_even_one(kind):
    paper = gray_of(draw_seven(size=(400, 300), width=14, shift=(120, 60)))
    even = images.to_mnist(lit(paper, np.full(paper.shape, 0.85)))
    uneven = images.to_mnist(lit(paper, light_field(paper.shape, kind)))
    assert np.corrcoef(even.ravel(), uneven.ravel())[0, 1] > 0.9
    # the page's darker side is paper, not ink: the digit keeps its size
    assert abs(
        np.count_nonzero(uneven) - np.count_nonzero(even)
    ) < 0.2 * np.count_nonzero(even)


@pytest.mark.parametrize("towards", ["left", "top"])
def test_a_page_darkening_towards_an_edge_is_paper_not_ink(towards):
    # a phone's shadow: the light falls from 1 to a third across the page; the
    # closing repeated the dark edge's pixels and took a band along it for ink
    paper = gray_of(draw_seven(size=(400, 400), width=14, shift=(120, 100)))
    rows, cols = np.mgrid[0:400, 0:400] / 400
    ramp = cols if towards == "left" else rows
    even = images.to_mnist(lit(paper, np.full(paper.shape, 0.85)))
    shadowed = images.to_mnist(lit(paper, 0.33 + 0.65 * ramp))
    assert np.corrcoef(even.ravel(), shadowed.ravel())[0, 1] > 0.9
    blank = lit(np.ones((400, 400), np.float32), 0.33 + 0.65 * ramp)
    assert images.to_mnist(blank) is None


def on_table(margin: int, table=60, paper=235) -> np.ndarray:
    """A photo of a sheet with a black "7" lying on a darker table, seen `margin` px
    around it: (800, 600) gray, with a little sensor noise."""
    img = Image.new("L", (600, 800), table)
    draw = ImageDraw.Draw(img)
    draw.rectangle([margin, margin, 599 - margin, 799 - margin], fill=paper)
    draw.line([(200, 250), (400, 250), (270, 560)], fill=20, width=22)
    noise = 0.015 * np.random.default_rng(0).standard_normal((800, 600))
    return np.clip(gray_of(img) + noise, 0, 1).astype(np.float32)


@pytest.mark.parametrize("margin", [30, 80])
def test_a_sheet_on_a_darker_table_gives_the_digit_on_the_sheet(margin):
    # the border is the table: taken as the paper, the whole sheet was the "ink"
    reference = images.to_mnist(on_table(margin, table=235))  # no table in view
    x = images.to_mnist(on_table(margin))
    assert np.corrcoef(reference.ravel(), x.ravel())[0, 1] > 0.95
    assert (
        x[0, 0] == 0.0 and np.count_nonzero(x) < 0.3 * x.size
    )  # a stroke, not a sheet


def test_a_sheet_on_a_table_under_uneven_light_gives_the_digit():
    sheet = on_table(60, table=235)
    rows, cols = np.mgrid[0:800, 0:600] / 800
    on_sheet = (rows * 800 >= 60) & (rows * 800 < 740) & (cols * 800 >= 60)
    on_sheet &= cols * 800 < 540
    light = 0.95 - 0.4 * cols - 0.2 * rows
    x = images.to_mnist(np.where(on_sheet, sheet, 0.25) * light)
    reference = images.to_mnist(sheet)
    assert np.corrcoef(reference.ravel(), x.ravel())[0, 1] > 0.9


def test_tight_crops_of_mnist_digits_have_no_table_around_them(data_dir):
    # the median of a tight crop is often a grey between ink and paper, not a page
    from nnscratch.data.loading import load_dataset

    (_, _), (x_test, _) = load_dataset("mnist", data_dir / "mnist")
    for original in x_test[:40]:
        big = np.asarray(Image.fromarray(original).resize((280, 280)), np.float32)
        rows, cols = np.flatnonzero(big.max(1) > 50), np.flatnonzero(big.max(0) > 50)
        crop = big[rows[0] - 3 : rows[-1] + 4, cols[0] - 3 : cols[-1] + 4]
        gray = np.clip(1 - crop / 255, 0, 1).astype(np.float32)
        assert paper.paint_over_surround(gray) is gray


def thick_zero(stroke: float, paper: np.ndarray) -> np.ndarray:
    """A "0" with strokes `stroke` of the side wide, dark on `paper` (H, H)."""
    side = paper.shape[0]
    img = Image.new("L", (side, side), 0)
    box = [0.3 * side, 0.2 * side, 0.7 * side, 0.8 * side]
    ImageDraw.Draw(img).ellipse(box, outline=255, width=int(stroke * side))
    return (paper * (1 - 0.8 * gray_of(img))).astype(np.float32)


@pytest.mark.parametrize("stroke", [0.13, 0.2])  # of the side: a marker
def test_thick_strokes_under_uneven_light_are_not_hollowed_out(stroke):
    rows, cols = np.mgrid[0:400, 0:400] / 400
    even = images.to_mnist(thick_zero(stroke, np.full((400, 400), 0.9)))
    uneven = images.to_mnist(thick_zero(stroke, 0.45 + 0.45 * cols - 0.1 * rows))
    # light ink was seen on dark, or a closing narrower than the stroke kept its
    # middle as paper
    assert np.count_nonzero(uneven) > 0.8 * np.count_nonzero(even)
    assert np.corrcoef(even.ravel(), uneven.ravel())[0, 1] > 0.9


def test_ruled_lines_are_dropped_but_strokes_crossing_them_kept():
    plain = Image.new("L", (400, 400), 250)
    lined = plain.copy()
    for y in range(20, 400, 40):  # the "7"'s bar lies on the line at y = 100
        ImageDraw.Draw(lined).line([(0, y), (400, y)], fill=175, width=2)
    for img in (plain, lined):
        ImageDraw.Draw(img).line(
            [(120, 100), (280, 100), (180, 320)], fill=25, width=16
        )
    a, b = images.to_mnist(gray_of(plain)), images.to_mnist(gray_of(lined))
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.98


def test_drop_ruled_lines_keeps_a_lone_bar_and_a_lone_line():
    ink = np.zeros((100, 100), dtype=np.float32)
    ink[10, :] = ink[50, :] = 1.0  # two ruled lines ...
    ink[20:80, 30:34] = 1.0  # ... and a stroke crossing one of them
    expected = np.zeros_like(ink)
    expected[20:80, 30:34] = 1.0
    assert_allclose(paper.drop_ruled_lines(ink), expected)
    bar = np.zeros((100, 100), dtype=np.float32)
    bar[10, :] = 1.0  # one thin bar across (a "7" drawn with a fine pen)
    bar[10:90, 60] = 1.0
    assert_allclose(paper.drop_ruled_lines(bar), bar)
    line = np.zeros((100, 100), dtype=np.float32)
    line[5:95, 50] = line[5:95, 70] = 1.0  # nothing else: a "11", not paper
    assert_allclose(paper.drop_ruled_lines(line), line)


def test_drop_ruled_lines_keeps_thin_upright_strokes_stopping_short_of_an_edge():
    # two thin straight strokes over 85% of the height were squared paper's upright
    # lines, on plain paper and on lined paper alike: a "11" was erased
    strokes = np.zeros((280, 700), dtype=np.float32)
    strokes[21:259, 280:286] = strokes[21:259, 420:426] = 1.0
    lined = strokes.copy()
    lined[10::40] = 1.0
    assert_allclose(paper.drop_ruled_lines(lined), strokes)
    five = strokes.copy()
    five[21:27, 500:600] = five[21:140, 500:506] = 1.0  # something else beside them
    assert_allclose(paper.drop_ruled_lines(five), five)
    squared = lined.copy()
    squared[:, 10::40] = 1.0  # upright lines from edge to edge: still paper
    assert_allclose(paper.drop_ruled_lines(squared), strokes)


def test_a_blank_page_of_lined_paper_has_no_digit():
    # its ruled lines were kept when nothing else was left, and read as an "8"
    lined = np.ones((600, 600), dtype=np.float32)
    lined[20::40] = 0.3
    assert not paper.drop_ruled_lines(1 - lined).any()
    assert images.to_mnist(lined) is None


def squared_paper(size, step=40, width=2, fill=175) -> Image.Image:
    """A page of squared paper: lines every `step` px both ways."""
    img = Image.new("L", size, 250)
    draw = ImageDraw.Draw(img)
    for at in range(10, max(size), step):
        draw.line([(0, at), (size[0], at)], fill=fill, width=width)
        draw.line([(at, 0), (at, size[1])], fill=fill, width=width)
    return img


@pytest.mark.parametrize(
    "size, step, width, fill",
    [((600, 600), 40, 2, 175), ((600, 600), 50, 3, 200), ((800, 600), 40, 2, 120)],
)
def test_squared_paper_is_dropped_where_its_lines_cross(size, step, width, fill):
    # the blur summed crossing lines into blobs wider than the lines, whose edges
    # stayed: a blank page was read as a digit, and a 7 on it was a smudged one
    blank = squared_paper(size, step, width, fill)
    assert images.to_mnist(gray_of(blank)) is None
    plain = Image.new("L", size, 250)
    for img in (plain, blank):
        ImageDraw.Draw(img).line(
            [(120, 100), (280, 100), (180, 320)], fill=25, width=16
        )
    a, b = images.to_mnist(gray_of(plain)), images.to_mnist(gray_of(blank))
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.95


@pytest.mark.parametrize("lined", ["rows", "squares"])
@pytest.mark.parametrize("top", [36, 38, 40])
def test_ruled_lines_are_dropped_beside_tall_thick_strokes(lined, top):
    # the middles of tall "1"s drawn with a thick pen were taken for ruled lines
    # too; the paper's own lines must still go, and the strokes stay whole
    size, pen = (700, 280), 20
    plain = Image.new("L", size, 250)
    paper_ = squared_paper(size, fill=120) if lined == "squares" else plain.copy()
    if lined == "rows":
        for y in range(10, 280, 40):
            ImageDraw.Draw(paper_).line([(0, y), (700, y)], fill=120, width=2)
    for img in (plain, paper_):
        draw = ImageDraw.Draw(img)
        for x in (300, 420):
            draw.line([(x, top), (x, 279 - top)], fill=25, width=pen)
            for y in (top, 279 - top):
                draw.ellipse([x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2], 25)
    a, b = (images.picture_ink(gray_of(img)) for img in (plain, paper_))
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.95
    assert np.count_nonzero(b) < 1.1 * np.count_nonzero(a)  # no line left


def test_thick_tilted_ruled_lines_in_a_blurred_photo_are_still_dropped():
    # with their blurred edges and a tilt such lines are inked thicker across than
    # the band reaching RULED_SPAN is: they are still lines, not strokes' middles
    plain = Image.new("L", (700, 280), 245)
    lined = plain.copy()
    draw = ImageDraw.Draw(lined)
    for at in range(10, 700, 33):
        draw.line([(0, at), (700, at + 3.6)], fill=101, width=5)
        draw.line([(at, 0), (at + 3.6, 280)], fill=101, width=5)
    for img in (plain, lined):
        ImageDraw.Draw(img).line([(210, 56), (420, 56), (280, 224)], fill=30, width=11)
    a, b = (
        images.picture_ink(gray_of(img.filter(ImageFilter.GaussianBlur(2))))
        for img in (plain, lined)
    )
    assert np.count_nonzero(b) < 2 * np.count_nonzero(a)


def test_a_lone_dot_is_no_digit_but_a_small_digit_in_a_large_photo_is():
    tap = Image.new("L", (280, 280), 255)  # a tap on the drawing page
    ImageDraw.Draw(tap).ellipse([130, 130, 150, 150], fill=0)
    assert images.to_mnist(gray_of(tap)) is None
    small = draw_seven(size=(1000, 750), width=3, shift=(600, 400)).resize(
        (500, 375)
    )  # a 7 a tenth of the picture's width
    x = images.to_mnist(gray_of(small))
    assert x is not None and images.crop_to_ink(x).shape[0] == 20
    # a solid item is what Fashion-MNIST pictures are made of: kept in its layout
    assert (
        images.to_mnist(gray_of(tap), **images.layout_for("fashion-mnist")) is not None
    )


def test_drop_stray_ink_removes_specks_apart_from_the_digit_only():
    ink = np.zeros((60, 60), dtype=np.float32)
    ink[10:40, 28:32] = 1.0  # a stroke: 120 units of ink
    ink[10:13, 36:50] = 1.0  # a detached bar beside it (like a 5's top): 42 units
    ink[55, 2] = ink[3, 57] = 1.0  # specks in corners: under 3% of the ink each
    expected = ink.copy()
    expected[55, 2] = expected[3, 57] = 0.0
    assert_allclose(images.drop_stray_ink(ink), expected)


def test_to_mnist_rejects_bad_arrays():
    with pytest.raises(DataError, match="2-D"):
        images.to_mnist(np.zeros((3, 4, 5)))
    with pytest.raises(DataError, match="NaN"):
        images.to_mnist(np.full((4, 4), np.nan))


def test_mnist_digits_drawn_big_come_back_as_themselves(data_dir):
    """A real MNIST digit, enlarged 10x as if drawn on a pad, is preprocessed back to
    (nearly) itself: same placement (up to MNIST's own rounding) and the same scale."""
    from nnscratch.data.loading import load_dataset

    (_, _), (x_test, _) = load_dataset("mnist", data_dir / "mnist")
    scores = []
    for original in x_test[:50].astype(np.float32) / 255.0:
        big = Image.fromarray(original).resize((280, 280), Image.Resampling.BICUBIC)
        paper = 1.0 - np.clip(np.asarray(big), 0, 1)  # black ink on white paper
        x = images.to_mnist(paper)
        # MNIST rounded its centring shift: allow the same one-pixel ambiguity
        best = max(
            np.corrcoef(original.ravel(), np.roll(x, (dr, dc), (0, 1)).ravel())[0, 1]
            for dr in (-1, 0, 1)
            for dc in (-1, 0, 1)
        )
        scores.append(best)
        assert 0.7 < x.sum() / original.sum() < 1.4  # same ink scale as uint8 / 255
    assert np.mean(scores) > 0.9 and np.min(scores) > 0.7


def test_fashion_items_photographed_come_back_laid_out_as_in_fashion_mnist(data_dir):
    """A real Fashion-MNIST item, enlarged and printed dark on white paper, comes back
    laid out like the dataset's: longest side filling 28 pixels, bounding box centred."""
    from nnscratch.data.loading import load_dataset

    (_, _), (x_test, _) = load_dataset("fashion-mnist", data_dir / "fashion-mnist")
    layout = images.layout_for("fashion-mnist")
    scores = []
    for original in x_test[:30].astype(np.float32) / 255.0:
        big = Image.fromarray(original).resize((280, 280), Image.Resampling.BICUBIC)
        paper = np.ones((400, 360), dtype=np.float32)
        paper[60:340, 40:320] = 1.0 - np.clip(np.asarray(big), 0, 1)
        x = images.to_mnist(paper, **layout)
        rows, cols = np.flatnonzero(x.any(axis=1)), np.flatnonzero(x.any(axis=0))
        assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 >= 27  # fills the field
        # faint edges fall under the ink threshold, so the box can differ by a pixel
        scores.append(
            max(
                np.corrcoef(original.ravel(), np.roll(x, shift, (0, 1)).ravel())[0, 1]
                for shift in [(dr, dc) for dr in (-1, 0, 1) for dc in (-1, 0, 1)]
            )
        )
    assert np.mean(scores) > 0.9 and np.min(scores) > 0.6


def test_layout_for_knows_the_datasets_and_defaults_to_mnist():
    assert images.layout_for("mnist") == {"box": 20, "by_mass": True}
    assert images.layout_for("fashion-mnist") == {"box": 28, "by_mass": False}
    assert images.layout_for(None) == images.layout_for("mnist")
    item = np.ones((10, 4), dtype=np.float32)
    placed = images.place_centred(item)
    assert placed[9:19, 12:16].all() and placed.sum() == 40


# ----- decoding files -------------------------------------------------------------
def rgba_drawing(ink_rgb):
    """A transparent canvas with opaque strokes of colour `ink_rgb`."""
    img = Image.new("RGBA", (160, 180), (0, 0, 0, 0))
    ImageDraw.Draw(img).line(SEVEN, fill=(*ink_rgb, 255), width=12, joint="curve")
    return img


@pytest.mark.parametrize("ink_rgb", [(0, 0, 0), (255, 255, 255), (30, 60, 200)])
def test_transparent_drawing_works_whatever_the_ink_colour(ink_rgb):
    reference = images.to_mnist(gray_of(draw_seven()))
    gray = decode.load_image(png_bytes(rgba_drawing(ink_rgb)))
    x = images.to_mnist(gray)
    assert x is not None
    assert np.corrcoef(reference.ravel(), x.ravel())[0, 1] > 0.98


def test_transparent_la_and_palette_images():
    la = rgba_drawing((255, 255, 255)).convert("LA")
    p = draw_seven(mode="P", ink=1, paper=0)
    p.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    reference = images.to_mnist(gray_of(draw_seven()))
    for data in (png_bytes(la), png_bytes(p, "GIF", transparency=0)):
        x = images.to_mnist(decode.load_image(data))
        assert np.corrcoef(reference.ravel(), x.ravel())[0, 1] > 0.98


def test_fully_transparent_image_has_no_digit():
    empty = Image.new("RGBA", (50, 50), (0, 0, 0, 0))
    assert images.to_mnist(decode.load_image(png_bytes(empty))) is None


FORMATS = ["PNG", "JPEG", "GIF", "BMP", "TIFF"] + (
    ["WEBP"] if features.check("webp") else []
)


@pytest.mark.parametrize("fmt", FORMATS)
def test_common_formats_load_from_bytes_and_paths(fmt, tmp_path):
    reference = images.to_mnist(gray_of(draw_seven()))
    img = draw_seven().convert("RGB")
    data = png_bytes(img, fmt)
    path = tmp_path / f"digit.{fmt.lower()}"
    path.write_bytes(data)
    for source in (data, path, str(path)):
        gray = decode.load_image(source)
        assert gray.shape == (180, 160) and gray.dtype == np.float32
        assert 0.0 <= gray.min() and gray.max() <= 1.0
        x = images.to_mnist(gray)
        assert np.corrcoef(reference.ravel(), x.ravel())[0, 1] > 0.95


def test_exif_orientation_is_applied():
    img = draw_seven().convert("RGB")  # 160 wide, 180 tall
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    gray = decode.load_image(png_bytes(img, "JPEG", exif=exif))
    assert gray.shape == (160, 180)
    expected = gray_of(img.transpose(Image.Transpose.ROTATE_270))
    assert np.abs(gray - expected).mean() < 0.02


def test_sixteen_bit_grayscale_is_scaled_not_clipped():
    a = np.full((40, 40), 60000, dtype=np.uint16)
    a[10:30, 18:22] = 1000
    gray = decode.load_image(png_bytes(Image.fromarray(a)))
    assert gray[0, 0] == pytest.approx(60000 / 65535, abs=1e-3)
    assert gray[15, 20] == pytest.approx(1000 / 65535, abs=1e-3)


def test_a_large_sixteen_bit_image_is_shrunk_before_any_float_copy():
    # near --max-pixels, its full-size float copies peaked at ~650 MB (now ~390)
    a = np.full((2000, 3000), 60000, dtype=np.uint16)
    a[500:1500, 1400:1600] = 1000
    data = png_bytes(Image.fromarray(a))
    tracemalloc.start()  # sees NumPy's arrays, not Pillow's own buffers
    try:
        gray = decode.load_image(data)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert gray.shape == (683, 1024)
    assert peak < 4 * a.size  # less than one full-size float32 array
    assert gray[0, 0] == pytest.approx(60000 / 65535, abs=1e-3)
    assert gray[341, 512] == pytest.approx(1000 / 65535, abs=1e-3)


def test_a_large_photo_is_downscaled_early_and_fast():
    photo = Image.new("RGB", (3000, 4000), (225, 220, 210))
    ImageDraw.Draw(photo).line(
        [(1300, 900), (1500, 3100)], fill=(30, 30, 40), width=160
    )
    data = png_bytes(photo, "JPEG", quality=90)
    start = time.perf_counter()
    gray = decode.load_image(data)
    x = images.to_mnist(gray)
    elapsed = time.perf_counter() - start
    assert max(gray.shape) <= decode.WORKING_SIDE
    assert x is not None and images.crop_to_ink(x).shape[0] == 20
    assert elapsed < 2.0, f"took {elapsed:.2f} s"


MEASURE_PEAK = """
import sys
from nnscratch.imaging import decode
def kb(field):  # Linux: the peak (VmHWM) is this program's, not inherited by fork
    return int(open("/proc/self/status").read().split(field + ":")[1].split()[0])
before = kb("VmRSS")
decode.load_image(sys.argv[1])
print((kb("VmHWM") - before) * 1024)
"""


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_a_large_png_is_not_copied_whole_while_decoding(tmp_path, mode):
    # a PNG is decoded at full size; the EXIF step and the RGBA conversion each copied
    # it again: a 50 MP picture (the limit) cost 420 MB (RGB) or 625 MB (RGBA), 3.0
    # and 3.3 times its pixels; now 1.8 and 2.3 (an RGBA resize premultiplies a copy)
    path = tmp_path / "large.png"
    Image.new(mode, (4000, 4000), "white").save(path, compress_level=1)
    decoded = 4000 * 4000 * len(mode)
    peak = subprocess.run(
        [sys.executable, "-c", MEASURE_PEAK, str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert int(peak) < 2.6 * decoded, f"{int(peak) / decoded:.1f} times the pixels"


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "empty"),
        (b"this is not an image at all", "not an image"),
        (png_bytes(draw_seven())[:200], "cannot (read|decode)"),  # truncated PNG
    ],
)
def test_bad_bytes_raise_data_error(data, message):
    with pytest.raises(DataError, match=message):
        decode.load_image(data)


def test_missing_file_raises_data_error(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        decode.load_image(tmp_path / "nope.png")
    with pytest.raises(DataError, match="is a directory, expected an image file"):
        decode.load_image(tmp_path)  # not "no such file": it is there
    (tmp_path / "empty.png").touch()  # an upload or a copy that failed
    with pytest.raises(DataError) as error:
        decode.load_image(tmp_path / "empty.png")
    assert (
        str(error.value) == f"{tmp_path / 'empty.png'}: empty file, expected an image"
    )


def test_errors_about_bytes_leave_naming_them_to_the_caller(tmp_path):
    # an upload's errors were "image: image is 160x180 ...", "image: not an image"
    # (and on the page "notes.txt: image: not an image")
    with pytest.raises(DataError) as error:
        decode.load_image(b"hello")
    assert str(error.value) == "not an image (Pillow cannot identify it)"
    with pytest.raises(DataError) as error:
        decode.load_image(png_bytes(draw_seven()), max_pixels=10)
    assert str(error.value).startswith("image is 160x180 = 28800 pixels")
    (tmp_path / "notes.png").write_bytes(b"hello")
    with pytest.raises(DataError) as error:
        decode.load_image(tmp_path / "notes.png")
    assert str(error.value).startswith(f"{tmp_path / 'notes.png'}: not an image")


@pytest.mark.parametrize("size", [(3, 3), (1, 20), (20, 7)])
def test_an_image_of_a_few_pixels_is_refused_as_too_small(size, tmp_path):
    # a 3x3 picture was read as an 8 at 87%, a 1x20 one as a 1 at 100%
    path = tmp_path / "tiny.png"
    Image.new("L", size, 255).save(path)
    w, h = size
    with pytest.raises(DataError) as error:
        decode.load_image(path)
    assert str(error.value) == (
        f"{path}: image is {w}x{h} pixels, too small to hold a digit: "
        "at least 8x8 is needed"
    )
    assert decode.load_image(png_bytes(Image.new("L", (8, 8), 255))).shape == (8, 8)


def tiff_with_a_tag_past_its_end() -> bytes:
    """A good 20x30 TIFF whose description tag claims a million bytes: Pillow skips
    the tag with a UserWarning ("Tag data larger than file") and reads the pixels."""
    buffer = io.BytesIO()
    Image.new("L", (20, 30), 255).save(buffer, "TIFF", description="a description")
    data = bytearray(buffer.getvalue())
    ifd = struct.unpack("<I", data[4:8])[0]
    for entry in range(ifd + 2, ifd + 2 + 12 * data[ifd], 12):
        if struct.unpack("<H", data[entry : entry + 2])[0] == 270:  # description
            data[entry + 4 : entry + 8] = struct.pack("<I", 10**6)
    return bytes(data)


def test_damaged_metadata_gives_no_warnings_of_pillows(tmp_path, recwarn):
    """Pillow warns about tags it skips (and about each format it tries on a file it
    cannot identify): `nnscratch predict` printed those lines of its source code on
    stderr around its own one line. The pixels are read, or one DataError raised."""
    path = tmp_path / "scan.tiff"
    path.write_bytes(tiff_with_a_tag_past_its_end())
    assert decode.load_image(path).shape == (30, 20)
    path.write_bytes(tiff_with_a_tag_past_its_end()[:200])  # cut before the pixels
    with pytest.raises(DataError, match="scan.tiff: "):
        decode.load_image(path)
    assert [str(w.message) for w in recwarn] == []


def test_decompression_bomb_is_refused_without_decoding():
    data = bomb_png(50_000, 50_000)
    assert len(data) < 200
    start = time.perf_counter()
    with pytest.raises(decode.ImageTooLargeError, match="bomb|limit"):
        decode.load_image(data)
    assert time.perf_counter() - start < 0.5


def test_the_pixel_limit_is_ours_not_pillows():
    # Pillow's own limit (89,478,485 pixels, a warning made fatal) answered first,
    # naming its limit, not ours, and overruled a max_pixels raised above it
    data = bomb_png(12_000, 12_000)
    with pytest.raises(decode.ImageTooLargeError) as error:
        decode.load_image(data)
    assert str(error.value) == (
        "image is 12000x12000 = 144000000 pixels, more than the limit of 50000000"
    )
    with pytest.raises(DataError, match="cannot decode image") as error:
        decode.load_image(data, max_pixels=150_000_000)  # allowed: read, but truncated
    assert not isinstance(error.value, decode.ImageTooLargeError)


def test_pixel_limit_is_explicit():
    data = png_bytes(draw_seven())  # 160 x 180 = 28,800 pixels
    with pytest.raises(decode.ImageTooLargeError, match="more than the limit of 10000"):
        decode.load_image(data, max_pixels=10_000)
    assert decode.load_image(data, max_pixels=28_800).shape == (180, 160)


# ----- from_array -------------------------------------------------------------------
def test_from_array_accepts_uint8_and_unit_floats():
    a = np.arange(784, dtype=np.int64).reshape(28, 28) % 256
    assert_allclose(images.from_array(a.astype(np.uint8)), a / 255, atol=1e-6)
    x = images.from_array((a / 255).tolist())
    assert x.dtype == np.float32 and x.shape == (28, 28)


@pytest.mark.parametrize(
    "value, message",
    [
        (np.zeros((28, 27)), "shape"),
        (np.zeros(784), "shape"),
        (np.full((28, 28), np.nan), "finite"),
        (np.full((28, 28), np.inf), "finite"),
        (np.full((28, 28), 1.5), r"\[0, 1\]"),
        (np.full((28, 28), -0.1), r"\[0, 1\]"),
        ([["a"] * 28] * 28, "numbers"),
        ([[0.0] * 28] * 27 + [[0.0] * 3], "rectangular|shape"),
    ],
)
def test_from_array_rejects_bad_input(value, message):
    with pytest.raises(DataError, match=message):
        images.from_array(value)


def test_a_png_text_chunk_bomb_is_a_data_error():
    # 2 KB of PNG whose compressed text chunk would unpack to 2 MB: Pillow refuses
    # it with a ValueError, which must reach the user as one line, not a traceback
    info = PngImagePlugin.PngInfo()
    info.add_text("bomb", "0" * 2_000_000, zip=True)
    buffer = io.BytesIO()
    Image.new("L", (28, 28), 255).save(buffer, "PNG", pnginfo=info)
    with pytest.raises(
        DataError, match="cannot read image: Decompressed data too large"
    ):
        decode.load_image(buffer.getvalue())
