"""Reading a whole number: finding its digits (imaging/segment.py), the synthetic
numbers made from MNIST digits (data/numbers.py)."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from PIL import Image, ImageDraw, ImageFont

from nnscratch.data.numbers import compose_number, photograph
from nnscratch.imaging import images, pieces, segment, underlines

FONTS = "/usr/share/fonts/truetype"  # DejaVu and Liberation (fonts-dejavu-core, ...)


def typed(text: str, size=(520, 200), font_size=120, xy=(30, 20)) -> np.ndarray:
    """`text` typed dark on white in Pillow's built-in font: (H, W) gray."""
    img = Image.new("L", size, 255)
    font = ImageFont.load_default(size=font_size)
    ImageDraw.Draw(img).text(xy, text, fill=0, font=font)
    return np.asarray(img, dtype=np.float32) / 255


def drawn(lines, size=(400, 200), width=10) -> np.ndarray:
    """Polylines drawn dark on white: (H, W) gray."""
    img = Image.new("L", size, 255)
    draw = ImageDraw.Draw(img)
    for points in lines:
        draw.line(points, fill=0, width=width, joint="curve")
    return np.asarray(img, dtype=np.float32) / 255


def pad_drawing(strokes, size=(700, 280)) -> np.ndarray:
    """Polylines drawn as the page's number pad draws them (a pen 1/14 of the
    height, round ends and joints), dark on white: (H, W) gray."""
    img = Image.new("L", size, 255)
    draw, pen = ImageDraw.Draw(img), size[1] / 14
    for points in strokes:
        draw.line(points, fill=0, width=round(pen), joint="curve")
        for x, y in (points[0], points[-1]):
            draw.ellipse([x - pen / 2, y - pen / 2, x + pen / 2, y + pen / 2], fill=0)
    return np.asarray(img, dtype=np.float32) / 255


def tall_ones(count: int, top: int) -> list:
    """`count` "1"s (a flag, then down, leaning a little) from `top` to the pad's
    bottom less `top`, 140 px apart, centred on a 700 x 280 pad: polylines."""
    xs = [350 + (i - (count - 1) / 2) * 140 for i in range(count)]
    return [[(x - 25, top + 35), (x, top), (x + 3, 279 - top)] for x in xs]


def test_label_components_joins_diagonal_neighbours_and_gives_boxes():
    mask = np.zeros((6, 8), dtype=bool)
    mask[0, 0] = mask[1, 1] = mask[2, 2] = True  # one diagonal piece
    mask[4:6, 5:8] = True
    mask[0, 6] = True
    labels, boxes = pieces.label_components(mask)
    assert labels.max() == 3 and (labels > 0).sum() == mask.sum()
    assert labels[0, 0] == labels[2, 2] != labels[5, 7]
    assert sorted(map(tuple, boxes.tolist())) == [
        (0, 0, 3, 3),
        (5, 4, 8, 6),
        (6, 0, 7, 1),
    ]
    assert pieces.label_components(np.zeros((3, 3), bool))[1].shape == (0, 4)


def test_a_typed_number_is_read_left_to_right():
    reading = segment.find_digits(typed("2026"))
    assert len(reading.digits) == 4 and reading.lines == 1
    lefts = [d.box[0] for d in reading.digits]
    assert lefts == sorted(lefts)
    assert all(d.input.shape == (28, 28) for d in reading.digits)


def test_one_digit_gives_the_same_input_as_to_mnist():
    seven = drawn([[(30, 25), (110, 25), (60, 150)]], size=(160, 180), width=12)
    reading = segment.find_digits(seven)
    assert len(reading.digits) == 1
    assert_array_equal(reading.digits[0].input, images.to_mnist(seven))


def test_strokes_apart_are_joined_and_touching_digits_split():
    five = [[(80, 40), (40, 40), (35, 95)], [(35, 95), (90, 105), (85, 160), (30, 160)]]
    bar_apart = [
        [(62, 30), (105, 30)],
        [(55, 45), (45, 95), (95, 105), (90, 160), (40, 165)],
    ]
    four = [[(200, 30), (185, 110), (250, 110)], [(235, 60), (235, 170)]]
    reading = segment.find_digits(drawn(bar_apart + four))
    assert len(reading.digits) == 2, [d.box for d in reading.digits]
    # two typed digits drawn into each other: one piece, cut in two by its width
    touching = typed("0", font_size=150, xy=(20, 0)) * typed(
        "0", font_size=150, xy=(90, 0)
    )
    labels, _ = pieces.label_components(images.picture_ink(touching) > 0)
    assert labels.max() == 1
    assert len(segment.find_digits(touching).digits) == 2
    assert five  # a five drawn whole is one digit too
    assert len(segment.find_digits(drawn(five)).digits) == 1


def test_dots_specks_and_blank_pictures():
    reading = segment.find_digits(typed("3.14"))
    assert len(reading.digits) == 3  # the decimal point is dropped
    speckled = typed("42").copy()
    speckled[5, 5] = speckled[190, 500] = 0.0
    assert len(segment.find_digits(speckled).digits) == 2
    empty = segment.find_digits(np.ones((100, 200), np.float32))
    assert empty.digits == [] and empty.lines == 0
    dot = Image.new("L", (400, 200), 255)
    ImageDraw.Draw(dot).ellipse([100, 100, 118, 118], fill=0)  # a tap, a blot
    assert segment.find_digits(np.asarray(dot, np.float32) / 255).digits == []


@pytest.mark.parametrize("shape", [(2, 2), (2, 3), (3, 5)])
def test_a_picture_a_few_pixels_wide_is_read_without_error(shape):
    # `predict --number` of a 2x2 checkerboard PNG: a piece two pixels wide tried as
    # two digits asked for the emptiest column of an empty slice (a ValueError)
    checker = (np.indices(shape).sum(axis=0) % 2).astype(np.float32)
    reading = segment.find_digits(checker, confidence=lambda x: np.full(len(x), 0.5))
    assert all(d.input.shape == (28, 28) for d in reading.digits)


THREE_ONE_FOUR = [
    [(40, 40), (90, 45), (60, 95), (95, 120), (85, 160), (35, 160)],
    [(150, 40), (150, 160)],
    [(220, 40), (195, 120), (260, 120)],
    [(245, 70), (245, 160)],
]


@pytest.mark.parametrize("speck", [(3, 2), (2, 2), (5, 1)])
def test_a_speck_alone_is_not_cut_in_parts(speck):
    # in a 60x60 picture, a speck 3 pixels wide was cut in two with the
    # network's help: argmin of an empty column profile, a traceback
    gray = np.ones((60, 60), dtype=np.float32)
    w, h = speck
    gray[30 : 30 + h, 30 : 30 + w] = 0.0
    reading = segment.find_digits(gray, confidence=lambda x: np.ones(len(x)))
    alone = segment.find_digits(gray)  # without the network: never cut
    assert [d.box for d in reading.digits] == [d.box for d in alone.digits]
    assert len(alone.digits) <= 1


@pytest.mark.parametrize(
    "mark",
    [
        # "3.14" by hand: the point nearer the 3 than a 5's bar to its body
        lambda draw: draw.ellipse([104, 150, 118, 164], fill=0),
        lambda draw: draw.line([(30, 174), (270, 174)], fill=0, width=4),  # underline
    ],
    ids=["decimal point", "underline"],
)
def test_a_point_or_an_underline_close_to_digits_does_not_join_them(mark):
    # joined to the digit beside it, it stretched its crop, or was cut off again by
    # the network's split and read as another digit ("3.14" as 3114)
    without = drawn(THREE_ONE_FOUR)
    img = Image.fromarray((without * 255).astype(np.uint8))
    mark(ImageDraw.Draw(img))
    reading = segment.find_digits(np.asarray(img, np.float32) / 255)
    expected = segment.find_digits(without)
    assert [d.box for d in reading.digits] == [d.box for d in expected.digits]
    for digit, same in zip(reading.digits, expected.digits):
        assert_array_equal(digit.input, same.input)
    # a "1" taller than the other digits is as thin, but upright: a digit
    tall_one = [THREE_ONE_FOUR[0], [(150, 15), (150, 185)], *THREE_ONE_FOUR[2:]]
    assert len(segment.find_digits(drawn(tall_one)).digits) == 3


@pytest.mark.parametrize(
    "underline",
    [(20, 164, 285, 164), (20, 167, 285, 167), (170, 164, 480, 164)],
    ids=["touching every digit", "touching the 3", "touching the 4, long"],
)
def test_an_underline_touching_the_digits_is_dropped(underline):
    # the digits and the line were one piece, cut apart by guesswork: 314 read as
    # other digits, or as a 3 and a line
    without = drawn(THREE_ONE_FOUR, size=(500, 200))
    img = Image.fromarray((without * 255).astype(np.uint8))
    ImageDraw.Draw(img).line(underline, fill=0, width=8)  # the digits end at ~165
    reading = segment.find_digits(np.asarray(img, np.float32) / 255)
    expected = segment.find_digits(without)
    assert len(reading.digits) == len(expected.digits) == 3
    for digit, same in zip(reading.digits, expected.digits):
        (left, top, right, bottom), box = digit.box, same.box
        # the stroke touching the line keeps a stub of it, as on ruled paper
        assert abs(left - box[0]) <= 2 and abs(right - box[2]) <= 2
        assert top == box[1] and box[3] <= bottom <= box[3] + 12


def test_a_wide_two_keeps_its_base():
    # as wide as an underlined digit, but nothing is left apart without its base
    two = drawn([[(40, 60), (110, 30), (180, 60), (150, 100), (40, 160), (195, 160)]])
    reading = segment.find_digits(two)
    assert len(reading.digits) == 1
    assert_array_equal(
        reading.digits[0].input, segment.find_digits(two).digits[0].input
    )
    ink = images.picture_ink(two)
    assert_array_equal(underlines.drop_underlines(ink), ink)


@pytest.mark.parametrize(
    ("font", "squeeze"),
    [
        ("dejavu/DejaVuSans.ttf", 20),
        ("dejavu/DejaVuSansMono-Bold.ttf", 10),
        ("liberation/LiberationSans-Bold.ttf", 5),
        ("liberation/LiberationSerif-Regular.ttf", 15),
    ],
)
def test_a_two_typed_tight_against_a_one_keeps_its_base(font, squeeze):
    # the 1's foot touching the 2's base made a band across the piece's bottom,
    # erased as an underline: the "2" without its base was read as a "7"
    font = ImageFont.truetype(f"{FONTS}/{font}", 120)
    img = Image.new("L", (400, 200), 245)
    draw = ImageDraw.Draw(img)
    draw.text((40, 20), "1", fill=25, font=font)
    x = 40 + draw.textlength("1", font=font) - squeeze
    draw.text((x, 20), "2", fill=25, font=font)
    ink = images.picture_ink(np.asarray(img, dtype=np.float32) / 255)
    assert pieces.label_components(ink > 0)[1].shape[0] == 1  # they touch
    assert_array_equal(underlines.drop_underlines(ink), ink)


def test_digits_on_two_lines_read_the_first():
    page = typed("12", size=(400, 400)) * typed("345", size=(400, 400), xy=(30, 220))
    reading = segment.find_digits(page)
    assert reading.lines == 2 and reading.candidates == 5
    assert len(reading.digits) == 2


def test_compose_number_places_every_digit_in_its_box():
    rng = np.random.default_rng(0)
    digits = np.zeros((3, 28, 28), np.uint8)
    digits[:, 4:24, 10:18] = 255
    gray, boxes = compose_number(digits, rng, gaps=(0.5, 0.5), scale=4)
    assert len(boxes) == 3 and gray.dtype == np.float32
    for left, top, right, bottom in boxes:
        assert gray[(top + bottom) // 2, (left + right) // 2] < 0.1  # ink
    assert gray[0, 0] == pytest.approx(1.0)
    photo = photograph(gray, rng)
    assert photo.shape == gray.shape and photo[-1, -1] < 0.8  # the far corner is dim


def test_numbers_made_of_mnist_digits_are_segmented(data_dir):
    """Without a network: the right count of digits in most numbers of 2 to 8 MNIST
    digits (gaps from touching to half a digit, half of them photographed)."""
    from nnscratch.data.loading import load_dataset

    _, (x, _) = load_dataset("mnist", data_dir / "mnist")
    rng = np.random.default_rng(1)
    right = 0
    for k in range(30):
        n = int(rng.integers(2, 9))
        gray, _ = compose_number(x[rng.choice(len(x), n, replace=False)], rng)
        if k % 2:
            gray = photograph(gray, rng)
        right += len(segment.find_digits(gray).digits) == n
    assert right >= 0.65 * 30


@pytest.mark.parametrize(
    "stroke",
    [
        [(50, 100), (550, 100)],  # a dash, a lone underline
        [(50, 96), (550, 110)],  # slanted, as photographed
        [(50, 100), (300, 108), (550, 98)],  # drawn by hand
        [(60, 90), (80, 100), (550, 100)],  # a "1" lying flat, its hook included
    ],
    ids=["flat", "slanted", "bent", "flat one"],
)
def test_a_lone_bar_is_no_digit(stroke):
    # it was cut in dozens of one-pixel "digits" and read as 888...8
    bar = drawn([stroke], size=(600, 200), width=10)
    reading = segment.find_digits(bar)
    assert reading.digits == [] and reading.candidates == 0
    assert images.to_mnist(bar) is None  # one digit: the same answer


def test_a_minus_sign_is_left_out():
    # "-314": the minus sign was read as a fourth digit
    shifted = [[(x + 100, y) for x, y in line] for line in THREE_ONE_FOUR]
    reading = segment.find_digits(drawn([[(20, 100), (90, 100)], *shifted]))
    expected = segment.find_digits(drawn(shifted))
    assert [d.box for d in reading.digits] == [d.box for d in expected.digits]


def bold(text: str, width=700, paint_out="") -> np.ndarray:
    """`text` typed bold (Pillow's font, stroked) dark on white: (H, W) gray;
    the characters of `paint_out` are then typed over in white."""
    img = Image.new("L", (width, 200), 255)
    draw, font = ImageDraw.Draw(img), ImageFont.load_default(size=120)
    draw.text((30, 20), text, fill=0, font=font, stroke_width=4, stroke_fill=0)
    for k, char in enumerate(text):
        if char in paint_out:  # at the place it had in the text
            x = 30 + draw.textlength(text[:k], font=font)
            draw.text(
                (x, 20), char, fill=255, font=font, stroke_width=6, stroke_fill=255
            )
    return np.asarray(img, dtype=np.float32) / 255


@pytest.mark.parametrize("text", ["12-5", "-2024", "7-1"])
def test_a_bold_hyphen_is_left_out(text):
    # a bold hyphen, twice as wide as high, was no bar: cut by its width in
    # "digits" ("12-5" gave 6), or joined to a digit close to it
    reading = segment.find_digits(bold(text))
    expected = segment.find_digits(bold(text, paint_out="-"))
    assert len(expected.digits) == len(text) - 1
    assert [d.box for d in reading.digits] == [d.box for d in expected.digits]


HYPHEN_FONTS = {  # 2.0 and 1.45 times as wide as high, the narrowest hyphen found
    "DejaVu Sans Bold": "dejavu/DejaVuSans-Bold.ttf",
    "Liberation Sans Narrow Bold": "liberation/LiberationSansNarrow-Bold.ttf",
}


def lone_hyphen(kind: str, how: str) -> np.ndarray:
    """A bold hyphen alone, 1.45 to 2.7 times as wide as high: typed in a bold
    TrueType font, in Pillow's font stroked, or drawn with a thick pen; as it is,
    photographed (uneven light, grey paper) or turned 5 degrees: (H, W) gray."""
    if kind in HYPHEN_FONTS:
        img = Image.new("L", (300, 200), 245)
        font = ImageFont.truetype(f"{FONTS}/{HYPHEN_FONTS[kind]}", 120)
        ImageDraw.Draw(img).text((40, 20), "-", fill=25, font=font)
        gray = np.asarray(img, dtype=np.float32) / 255
    elif kind == "stroked":
        gray = bold("-", width=300)
    else:
        gray = drawn([[(100, 100), (180, 100)]], size=(300, 200), width=30)
    if how == "photographed":
        return photograph(gray, np.random.default_rng(3))
    if how == "turned":
        return np.asarray(
            Image.fromarray(gray).rotate(5, Image.Resampling.BICUBIC, fillcolor=1.0)
        )
    return gray


@pytest.mark.parametrize("how", ["flat", "photographed", "turned"])
@pytest.mark.parametrize(
    "kind",
    [*HYPHEN_FONTS, "stroked", "drawn thick"],
)
def test_a_lone_bold_hyphen_is_no_digit(kind, how):
    # less than 3 times as wide as high, it was no bar: cut by its width in 2 to 4
    # "digits" and read "888" or "1881"; one digit, it was read as one
    hyphen = lone_hyphen(kind, how)
    reading = segment.find_digits(hyphen)
    assert reading.digits == [] and reading.candidates == 0
    assert images.to_mnist(hyphen) is None


def typed_bold(text: str, font: str, hyphen=True) -> np.ndarray:
    """`text` typed in TrueType `font` (under FONTS) at 120 px, stroked 4 px (its
    hyphen touches the digit before it), dark on white: (H, W) gray. Without
    `hyphen`, the hyphen's own ink is left out (what its neighbours share is kept)."""
    font = ImageFont.truetype(f"{FONTS}/{font}", 120)
    glyphs = []  # each character's ink alone, at its place in the text
    for k, char in enumerate(text):
        img = Image.new("L", (60 * len(text) + 200, 200), 0)
        x = 40 + ImageDraw.Draw(img).textlength(text[:k], font=font)
        ImageDraw.Draw(img).text((x, 20), char, fill=255, font=font, stroke_width=4)
        glyphs.append((char, np.asarray(img) > 0))
    ink = np.any([g for c, g in glyphs if hyphen or c != "-"], axis=0)
    return np.where(ink, 0.1, 0.96).astype(np.float32)


@pytest.mark.parametrize(
    ("text", "font"),
    [
        ("6-1", "liberation/LiberationSans-Bold.ttf"),
        ("8-7", "liberation/LiberationSerif-Bold.ttf"),
        ("3-2", "liberation/LiberationSans-BoldItalic.ttf"),
        ("0-5", "liberation/LiberationSerif-Regular.ttf"),
        ("30-6", "dejavu/DejaVuSansCondensed-BoldOblique.ttf"),
    ],
)
def test_a_hyphen_touching_the_right_of_a_digit_is_left_out(text, font):
    # only a hyphen touching the left of a digit was erased: on its right, it was
    # read as part of the digit, or cut off it and read as a "1"
    reading = segment.find_digits(typed_bold(text, font))
    expected = segment.find_digits(typed_bold(text, font, hyphen=False))
    assert len(reading.digits) == len(expected.digits) == len(text) - 1
    for digit, alone in zip(reading.digits, expected.digits):
        assert np.abs(np.subtract(digit.box, alone.box)).max() <= 3


def test_a_fours_crossbar_past_its_stem_is_kept():
    # flat across the middle like a hyphen touching the 4's stem, with a digit
    # after it; but it goes on left through the stem: MNIST's 4s lost it
    four = [[(70, 35), (40, 120), (165, 120)], [(110, 60), (110, 170)]]
    one = [[(195, 55), (220, 35), (220, 170)]]
    reading = segment.find_digits(drawn([*four, *one], size=(300, 200)))
    assert [d.box[2] for d in reading.digits] == [167, 227]


def test_a_five_keeps_its_bar_apart_from_its_body():
    # flat and low like a hyphen, but at the top of the digit: part of it
    body = [(60, 50), (60, 95), (110, 100), (115, 150), (50, 165)]
    reading = segment.find_digits(drawn([[(100, 25), (185, 25)], body]))
    assert len(reading.digits) == 1 and reading.digits[0].box[2] > 185


def test_a_bold_wide_digit_is_not_cut_in_two():
    # a bold "4" 0.86 times as wide as high, read "41" when the network read its
    # halves about as surely as the whole (0.88 and 0.93 against 0.80)
    four = Image.fromarray(bold("4", width=300)).resize((330, 200))
    four = np.asarray(four, dtype=np.float32)
    left, top, right, bottom = segment.find_digits(four).digits[0].box
    assert 0.84 < (right - left) / (bottom - top) < 0.88

    def confidence(inputs):  # the whole first, then the parts of each cut
        return np.array([0.8] + [0.9] * (len(inputs) - 1))

    reading = segment.find_digits(four, confidence=confidence)
    assert [d.box for d in reading.digits] == [(left, top, right, bottom)]


def test_digits_as_wide_as_a_bar_are_still_read():
    # touching zeros cross two strokes in most columns: digits, cut by their width
    zeros = typed("0000000", size=(700, 200))
    assert len(segment.find_digits(zeros).digits) == 7


@pytest.mark.parametrize("top", range(36, 42))
def test_tall_thick_strokes_are_not_taken_for_ruled_lines(top):
    # the middle columns of a stroke over 80% of the pad's height were two or more
    # ruled lines of the paper: erased, each stroke was read as two thin digits
    bars = pad_drawing(
        [[(40 + 80 * i, top), (40 + 80 * i, 279 - top)] for i in range(8)]
    )
    digits = segment.find_digits(bars).digits
    assert len(digits) == 8
    assert all(d.box[2] - d.box[0] >= 20 for d in digits)


@pytest.mark.parametrize("count", [2, 4])
@pytest.mark.parametrize("top", [36, 37, 38])
def test_tall_ones_on_the_number_pad_are_read_whole(count, top):
    # "11" and "1111" lost the middle of each stroke (as in the test above), and
    # what was left (the flag and two slivers) no longer looked like a "1"
    ones = tall_ones(count, top)
    digits = segment.find_digits(pad_drawing(ones)).digits
    assert len(digits) == count
    for digit, one in zip(digits, ones):
        alone = segment.find_digits(pad_drawing([one])).digits[0]
        assert np.corrcoef(digit.input.ravel(), alone.input.ravel())[0, 1] > 0.95


def thin_number(text: str, pen: int, top=21) -> np.ndarray:
    """Digits "1" and "5" drawn with a `pen` px pen from `top` to 279 - `top` (85% of
    the height), 140 px apart, centred on a 700 x 280 page: (H, W) gray."""
    bottom, strokes = 279 - top, []
    for i, char in enumerate(text):
        x = 350 + (i - (len(text) - 1) / 2) * 140
        if char == "1":
            strokes.append([(x - 25, top + 35), (x, top), (x + 3, bottom)])
        else:  # a "5": its bar, down, then the bowl
            strokes.append([(x + 40, top), (x - 35, top), (x - 40, 130)])
            bowl = [(x - 40, 130), (x + 20, 115), (x + 45, 170), (x + 30, 235)]
            strokes.append(bowl + [(x - 10, bottom), (x - 45, 235)])
    return drawn(strokes, size=(700, 280), width=pen)


@pytest.mark.parametrize("text", ["115", "11"])
@pytest.mark.parametrize("pen", [6, 8, 10])
def test_tall_ones_drawn_with_a_thin_pen_are_not_ruled_lines(text, pen):
    # straight, thin and upright over 80% of the height, two such strokes were
    # taken for squared paper's upright lines and erased: "115" read "5"
    digits = segment.find_digits(thin_number(text, pen)).digits
    assert len(digits) == len(text)
    for digit, char in zip(digits, text):
        alone = segment.find_digits(thin_number(char, pen)).digits[0]
        assert np.corrcoef(digit.input.ravel(), alone.input.ravel())[0, 1] > 0.95


@pytest.mark.parametrize("top", [4, 8])
@pytest.mark.parametrize("ruled", ["plain", "lined"])
def test_tall_ones_reaching_the_edges_are_not_squared_paper(top, ruled):
    # within 4% of the top and bottom of a tight picture, two straight thin "1"s
    # were squared paper's upright lines, though no line ran across: "115" read "5"
    gray = thin_number("115", 8, top=top)
    if ruled == "lined":  # lines across, but 40 px apart, the 1s 140 px
        gray[10::40] = np.minimum(gray[10::40], 0.6)
    digits = segment.find_digits(gray).digits
    assert len(digits) == 3
    for digit, char in zip(digits, "115"):
        alone = segment.find_digits(thin_number(char, 8, top=top)).digits[0]
        assert np.corrcoef(digit.input.ravel(), alone.input.ravel())[0, 1] > 0.95


@pytest.mark.parametrize("width", [5, 6])
def test_a_number_on_squared_paper_with_thick_sharp_lines(width):
    # lines 5 px thick on a 500 x 200 picture: over 2% of its height, the lines
    # across were kept (only the upright ones went): "2026" read "32028533"
    font = ImageFont.truetype(f"{FONTS}/dejavu/DejaVuSans.ttf", 110)
    pages = []
    for squared in (False, True):
        img = Image.new("L", (500, 200), 250)
        draw = ImageDraw.Draw(img)
        for at in range(10, 500, 40) if squared else []:
            draw.rectangle([at, 0, at + width - 1, 200], fill=150)
            draw.rectangle([0, at, 500, at + width - 1], fill=150)
        draw.text((60, 30), "2026", fill=20, font=font)
        pages.append(segment.find_digits(np.asarray(img, np.float32) / 255))
    plain, squared = pages
    assert len(squared.digits) == len(plain.digits) == 4
    for digit, alone in zip(squared.digits, plain.digits):
        # a stroke lying along a line keeps a stub of it, as on ruled paper
        assert np.abs(np.subtract(digit.box, alone.box)).max() <= width + 2
