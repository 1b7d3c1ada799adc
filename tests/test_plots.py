"""Every plot from small synthetic data: a PNG of the expected size that is not blank."""

import io

import numpy as np
import pytest
from PIL import Image
from readable import text_too_small

from nnscratch.errors import DataError, NnscratchError
from nnscratch.reporting import confusion, curves, figures, image_grids
from nnscratch.reporting.metrics import confusion_matrix

NAMES = ["zero", "one", "two"]


def _data(n=12, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, 28, 28)).astype(np.uint8)
    labels = np.arange(n) % 3
    probs = rng.dirichlet(np.ones(3), size=n)
    return images, labels, probs


def _check_png(fig, path, min_std=10.0):
    """Saves fig; asserts the pixel size matches figsize x DPI and the image is not blank."""
    figures.save_figure(fig, path)
    with Image.open(path) as image:
        assert image.format == "PNG"
        width, height = fig.get_size_inches() * figures.DPI
        assert abs(image.width - width) <= 2 and abs(image.height - height) <= 2
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    assert pixels.std() > min_std
    return pixels


def test_learning_curves_with_batches(tmp_path):
    history = {
        "loss": [1.0, 0.6, 0.4],
        "accuracy": [0.6, 0.8, 0.9],
        "val_loss": [1.1, 0.7, 0.6],
        "val_accuracy": [0.55, 0.75, 0.8],
    }
    batch_losses = np.linspace(2.0, 0.3, 30)
    fig = curves.learning_curves(history, batch_losses)
    assert len(fig.axes) >= 3  # loss, accuracy, per batch
    _check_png(fig, tmp_path / "curves.png")


def test_learning_curves_from_csv_rows_without_validation(tmp_path):
    rows = [
        {"loss": "0.9", "accuracy": "0.7", "val_loss": ""},
        {"loss": "0.5", "accuracy": "0.8", "val_loss": ""},
    ]
    _check_png(curves.learning_curves(rows), tmp_path / "curves.png")
    with pytest.raises(DataError, match="loss"):
        curves.learning_curves({"accuracy": [0.5]})


@pytest.mark.parametrize("epochs", [1, 3, 30])
def test_learning_curves_mark_whole_epochs_only(epochs):
    fig = curves.learning_curves({"loss": [1.0] * epochs, "accuracy": [0.5] * epochs})
    for ax in fig.axes[:2]:
        ticks = [
            t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]
        ]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks


@pytest.mark.parametrize(
    "accuracy, labels",
    [
        ([0.628, 0.773], {"64%", "70%", "76%"}),  # was 64.0%, 70.0%, 76.0%
        ([0.35, 0.79], {"40%", "50%", "70%"}),
        ([0.9, 0.95, 0.998], {"90%", "92%", "100%"}),
        ([0.981, 0.989], {"98.2%", "98.4%", "98.8%"}),  # was 98.20%, 98.40%
    ],
)
def test_accuracy_ticks_have_the_decimals_their_spacing_needs(accuracy, labels):
    fig = curves.learning_curves({"loss": [1.0] * len(accuracy), "accuracy": accuracy})
    fig.draw_without_rendering()
    ax = fig.axes[1]
    bottom, top = ax.get_ylim()
    shown = {
        label.get_text()
        for label in ax.get_yticklabels()
        if bottom <= label.get_position()[1] <= top
    }
    assert labels <= shown, shown


@pytest.mark.parametrize("steps", [3, 22, 44, 300])
def test_per_batch_moving_average_averages_or_is_left_out(steps):
    # a run of --limit 3000 takes 22 steps an epoch: the "moving average" was the raw
    # losses again (a window of 1), drawn over the "each batch" line and hiding it
    losses = np.random.default_rng(0).uniform(0.5, 2.0, steps)
    ax = curves.learning_curves({"loss": [1.0], "accuracy": [0.5]}, losses).axes[2]
    lines = {line.get_label(): line for line in ax.lines}
    assert len(lines["each batch"].get_xdata()) == steps
    assert set(lines) == {"each batch"} | ({"moving average"} if steps >= 10 else set())
    if "moving average" in lines:
        means = lines["moving average"].get_ydata()
        assert len(means) < steps and np.std(means) < 0.8 * np.std(losses)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == list(lines)


@pytest.mark.parametrize("narrow", [False, True])
def test_a_log_scale_of_the_batch_losses_says_so(narrow):
    # the axis read "loss" while 0.2 to 0.5 was drawn as long as 1 to 2
    history = {"loss": [1.0], "accuracy": [0.5]}
    ax = curves.learning_curves(history, [2.3, 1.0, 0.2], narrow=narrow).axes[2]
    assert ax.get_yscale() == "log" and ax.get_ylabel() == "loss (log scale)"
    ax = curves.learning_curves(history, [1.0, 0.8, 0.5], narrow=narrow).axes[2]
    assert ax.get_yscale() == "linear" and ax.get_ylabel() == "loss"


@pytest.mark.parametrize("normalize", [False, True])
def test_confusion_matrix_plot(tmp_path, normalize):
    _, labels, probs = _data()
    cm = confusion_matrix(labels, probs.argmax(axis=1), 3)
    fig = confusion.confusion_matrix_plot(cm, NAMES, normalize=normalize)
    _check_png(fig, tmp_path / "cm.png")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert len(texts) == 9
    if not normalize:
        assert sum(int(t) for t in texts) == len(labels)
    with pytest.raises(DataError, match=r"\(3, 3\)"):
        confusion.confusion_matrix_plot(np.zeros((2, 2)), NAMES)


def test_confusion_matrix_plot_masks_the_diagonal(tmp_path):
    cm = np.array([[50, 1, 0], [3, 40, 0], [0, 2, 60]])
    fig = confusion.confusion_matrix_plot(cm, NAMES, mask_diagonal=True)
    _check_png(fig, tmp_path / "cm.png")
    image = fig.axes[0].images[0]
    assert image.norm.vmax == 3  # the largest confusion, not the diagonal's 60
    mask = np.ma.getmaskarray(image.get_array())
    assert mask.tolist() == np.eye(3, dtype=bool).tolist()
    assert [t.get_text() for t in fig.axes[0].texts][::4] == ["50", "40", "60"]
    fig = confusion.confusion_matrix_plot(cm, NAMES, normalize=True, mask_diagonal=True)
    assert fig.axes[0].images[0].norm.vmax == pytest.approx(3 / 43)
    # one class: every cell is the diagonal, there is no confusion to scale to
    fig = confusion.confusion_matrix_plot([[7]], ["only"], mask_diagonal=True)
    _check_png(fig, tmp_path / "one.png", min_std=1.0)


def test_per_class_bars(tmp_path):
    cm = np.array([[5, 1, 0], [0, 4, 2], [1, 0, 3]])
    fig = confusion.per_class_bars(cm, NAMES)
    _check_png(fig, tmp_path / "bars.png")
    # precision = diagonal / column sums, recall = diagonal / row sums, as labels
    labels = sorted(t.get_text() for t in fig.axes[0].texts)
    assert labels == sorted(["83.3%", "80.0%", "60.0%", "83.3%", "66.7%", "75.0%"])


def test_the_per_class_legend_stays_inside_the_figure_with_long_class_names():
    # centred under the axes, which Fashion-MNIST's names push right, the legend ran
    # off the figure's right edge: "recall" was cut
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt"]
    names += ["Sneaker", "Bag", "Ankle boot"]
    cm = np.full((10, 10), 7) + np.diag(np.full(10, 900))
    fig = confusion.per_class_bars(cm, names)
    fig.draw_without_rendering()
    legend = fig.legends[0] if fig.legends else fig.axes[0].get_legend()
    box, edges = legend.get_window_extent(), fig.bbox
    assert box.x0 >= edges.x0 and box.x1 <= edges.x1 and box.y0 >= edges.y0
    labels = [t.get_text() for t in legend.get_texts()]
    assert labels == ["overall accuracy 93.51%", "precision", "recall"]


def test_sample_predictions(tmp_path):
    images, labels, probs = _data()
    fig = image_grids.sample_predictions(images, labels, probs, NAMES, n=9)
    _check_png(fig, tmp_path / "samples.png")
    assert sum(1 for ax in fig.axes if ax.images) == 9
    with pytest.raises(DataError, match="probs"):
        image_grids.sample_predictions(images, labels, probs[:, :2], NAMES)


def test_top_mistakes_surest_first(tmp_path):
    images, labels, probs = _data()
    fig = image_grids.top_mistakes(images, labels, probs, NAMES, n=4)
    _check_png(fig, tmp_path / "mistakes.png")
    wrong = np.flatnonzero(probs.argmax(axis=1) != labels)
    confidences = sorted(probs[wrong].max(axis=1), reverse=True)[:4]
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert len(titles) == min(4, wrong.size)
    assert titles[0].endswith(figures.percent(confidences[0]))
    tiles = [ax.images[0] for ax in fig.axes if ax.images]
    assert tiles[0].get_cmap().name == "gray_r"
    fig = image_grids.top_mistakes(images, labels, probs, NAMES, n=4, cmap="gray")
    assert next(ax.images[0] for ax in fig.axes if ax.images).get_cmap().name == "gray"


@pytest.mark.parametrize(
    "p, shown",
    [
        (0.0, "0%"),
        (0.003, "<1%"),
        (0.005, "<1%"),
        (0.0051, "1%"),
        (0.44, "44%"),
        (0.994, "99%"),
    ]
    + [(0.997, "99.7%"), (0.9994, "99.9%"), (0.99996, ">99.9%"), (1.0, "100.0%")],
)
def test_a_tile_never_rounds_a_probability_to_0_or_100_percent(p, shown):
    # a sure mistake's true class read "true: Sandal 0%", a sure answer "100.0%"
    assert figures.percent(p) == shown


def test_top_mistakes_counts_with_thousands_separators():
    images, labels, probs = _data(3000)
    wrong = int(np.sum(probs.argmax(axis=1) != labels))
    title = image_grids.top_mistakes(images, labels, probs, NAMES, n=2)._suptitle
    assert f"2 of {wrong:,} wrong among 3,000" in title.get_text()


def test_top_mistakes_without_mistakes(tmp_path):
    images, labels, _ = _data(6)
    probs = np.eye(3)[labels]
    fig = image_grids.top_mistakes(images, labels, probs, NAMES)
    assert "No mistakes" in fig.axes[0].texts[0].get_text()
    title = image_grids.sample_predictions(images, labels, probs, NAMES)._suptitle
    assert "6 right" in title.get_text() and "wrong" not in title.get_text()
    _check_png(fig, tmp_path / "none.png", min_std=1.0)


@pytest.mark.parametrize("shape", [(784, 10), (6, 1, 5, 5)])
def test_first_layer_features(tmp_path, shape):
    weights = np.random.default_rng(0).standard_normal(shape)
    _check_png(image_grids.first_layer_features(weights), tmp_path / "features.png")
    with pytest.raises(DataError, match="square"):
        image_grids.first_layer_features(np.zeros((10, 3)))


@pytest.mark.parametrize(
    "shape, grid",
    [((8, 1, 5, 5), (2, 4)), ((6, 1, 5, 5), (2, 3)), ((784, 10), (2, 5))]
    + [((784, 64), (8, 8)), ((32, 1, 3, 3), (4, 8)), ((5, 1, 3, 3), (1, 5))],
)
def test_first_layer_features_are_packed_in_a_grid_that_suits_their_number(shape, grid):
    # 8 kernels of a conv net were a 3 x 3 grid with an empty cell, its 3 columns
    # spread over 8 inches with gaps wider than a kernel between them
    weights = np.random.default_rng(0).standard_normal(shape)
    fig = image_grids.first_layer_features(weights)
    fig.draw_without_rendering()
    tiles = [ax for ax in fig.axes if ax.images]
    assert len(tiles) == np.prod(grid)
    assert [ax for ax in fig.axes if not ax.get_visible() or not ax.axison] == []
    boxes = [ax.get_window_extent() for ax in tiles]
    rows = sorted({round(box.y0) for box in boxes}, reverse=True)
    cols = sorted({round(box.x0) for box in boxes})
    assert (len(rows), len(cols)) == grid
    side = boxes[0].width
    for box in boxes:  # square pixels: a square kernel is a square tile
        assert box.width == pytest.approx(side, rel=0.02)
        assert box.height == pytest.approx(side, rel=0.02)
    gaps = np.diff(cols) - side
    assert np.all(gaps < 0.15 * side), (gaps, side)


def test_class_names_are_drawn_as_text_not_math(tmp_path):
    # "$" starts matplotlib's math mode: "$\\frac{$" would not even draw
    names = [r"$\frac{$", "a$b", "c"]
    cm = np.diag([5, 4, 3])
    _check_png(confusion.confusion_matrix_plot(cm, names), tmp_path / "cm.png")
    images, labels, probs = _data()
    fig = image_grids.sample_predictions(images, labels, probs, names, n=4)
    _check_png(fig, tmp_path / "samples.png")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert any(r"\$\frac{\$" in t for t in titles), titles


@pytest.mark.parametrize("n", [0, -3, 2.5])
def test_how_many_tiles_must_be_a_positive_int(n):
    # -3 used to show all the mistakes but 3, 0 to fail with a ZeroDivisionError
    images, labels, probs = _data()
    weights = np.zeros((784, 10))
    for draw, args in (
        (image_grids.top_mistakes, (images, labels, probs, NAMES)),
        (image_grids.sample_predictions, (images, labels, probs, NAMES)),
        (image_grids.first_layer_features, (weights,)),
    ):
        with pytest.raises(NnscratchError, match=rf"{draw.__name__} n: expected"):
            draw(*args, n=n)


# ----- readable where the page shows them ---------------------------------------------
# The report page shows a figure at most 1300 CSS pixels wide (the stacked ones) or 620
# (the confusion matrices and the bars, two side by side), a phone 330 (the narrow
# learning curves); 1 figure inch is 96 CSS pixels when it is not shrunk.
SHOWN_AT = {"full": 1300, "half": 620, "phone": 330}


def _charts():
    history = {"loss": [1.0, 0.6, 0.4], "accuracy": [0.6, 0.8, 0.9]}
    history |= {"val_loss": [1.1, 0.7, 0.6], "val_accuracy": [0.55, 0.75, 0.8]}
    losses = np.linspace(2.0, 0.3, 300)
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt"]
    names += ["Sneaker", "Bag", "Ankle boot"]
    cm = np.full((10, 10), 7) + np.diag(np.full(10, 900))
    images, labels, probs = _data(30)
    return [
        ("full", curves.learning_curves(history, losses)),
        ("phone", curves.learning_curves(history, losses, narrow=True)),
        ("half", confusion.confusion_matrix_plot(cm, names)),
        ("half", confusion.confusion_matrix_plot(cm, names, normalize=True)),
        ("half", confusion.per_class_bars(cm, names)),
        ("full", image_grids.sample_predictions(images, labels, probs, NAMES)),
        ("full", image_grids.top_mistakes(images, labels, probs, NAMES)),
    ]


def test_every_text_is_readable_at_the_width_the_page_shows_the_figure():
    # the learning curves' legends were 10.8 px high (9 points in 15 inches shown at
    # 1300 px), the confusion matrices' numbers 10.9 px (shrunk into half the page)
    for where, fig in _charts():
        small = text_too_small(fig, SHOWN_AT[where])
        assert not small, (where, fig.get_suptitle(), small)


def test_the_per_class_bars_stay_legible_on_a_phone():
    # in the one-column page of a phone, 330 px wide: the bars' values were 7 px high
    cm = np.full((10, 10), 7) + np.diag(np.full(10, 900))
    fig = confusion.per_class_bars(cm, [f"class {i}" for i in range(10)])
    assert not text_too_small(fig, SHOWN_AT["phone"], smallest_px=9)


def test_the_narrow_learning_curves_stack_their_panels_for_a_phone():
    fig = curves.learning_curves({"loss": [1.0, 0.5]}, [2.0, 1.0, 0.5], narrow=True)
    assert fig.get_size_inches()[0] * figures.CSS_DPI <= 410  # a phone's width
    main_axes = [ax for ax in fig.axes if ax.get_label() != "secondary"][:3]
    boxes = [ax.get_position() for ax in main_axes]
    assert len(boxes) == 3 and boxes[0].y0 > boxes[1].y0 > boxes[2].y0  # one column


def test_a_png_has_two_pixels_per_css_pixel_and_a_palette(tmp_path):
    # 120 DPI RGBA: a figure drawn for 1248 CSS pixels was 1560 pixels, blurred when
    # shown at 1248 on a high-density screen or zoomed in, and 3x larger on disk
    fig = figures.new_figure((3.0, 2.0))
    fig.add_subplot().plot([0, 1], [1, 0])
    figures.save_figure(fig, tmp_path / "line.png")
    with Image.open(tmp_path / "line.png") as image:
        assert image.size == (6 * figures.CSS_DPI, 4 * figures.CSS_DPI)
        assert image.mode == "P"  # 256 colours
        assert image.info["dpi"] == pytest.approx((192, 192), abs=0.1)


@pytest.mark.parametrize(
    "figsize, dpi", [((6.4, 4.8), figures.DPI), ((3.33, 2.71), 100), ((2.05, 1.3), 77)]
)
def test_a_png_holds_the_pixels_savefig_draws(figsize, dpi):
    # png_bytes takes the canvas's raw pixels instead of decoding savefig's PNG: the
    # same picture, whatever the figure's size in pixels rounds to
    def line_figure():
        fig = figures.new_figure(figsize)
        ax = fig.add_subplot()
        ax.plot([0, 1], [1, 0], color=figures.BLUE)
        ax.set_title("a line")
        return fig

    with Image.open(io.BytesIO(figures.png_bytes(line_figure(), dpi))) as image:
        got = np.asarray(image.convert("RGB"))
    buffer = io.BytesIO()
    line_figure().savefig(buffer, format="png", dpi=dpi, facecolor="white")
    with Image.open(buffer) as image:
        palette = image.convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT)
    np.testing.assert_array_equal(got, np.asarray(palette.convert("RGB")))
