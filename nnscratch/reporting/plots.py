"""Pictures of a training run: curves, confusion matrices, image grids, weights.

Every function draws on a new `matplotlib.figure.Figure` (never pyplot: works headless
and keeps no global state) or on the `ax` it is given, and returns the Figure;
`save_figure` writes it as a PNG. Colours are the Okabe-Ito palette and viridis, which
stay distinct for colour-blind readers; right and wrong also carry a mark, not only a
colour. The GIF of the predictions changing during training is `nnscratch.animation`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter
from matplotlib.transforms import offset_copy

from ..errors import DataError
from ..files import atomic_open
from .metrics import per_class_scores

DPI = 120  # PNG resolution: a 10-inch figure is 1200 pixels wide
BLUE, ORANGE = "#0072B2", "#E69F00"  # Okabe-Ito: train/precision, validation/recall
CORRECT, WRONG = "#009E73", "#D55E00"  # Okabe-Ito bluish green and vermillion
RIGHT_MARK, WRONG_MARK = "\u2713", "\u2717"  # check mark and ballot x (in DejaVu Sans)


# ----- files ------------------------------------------------------------------------
def save_figure(fig: Figure, path, dpi: int = DPI) -> Path:
    """Write `fig` as a PNG at `dpi`, atomically; returns the path."""
    path = Path(path)
    with atomic_open(path) as f:
        fig.savefig(f, format="png", dpi=dpi, facecolor="white")
    return path


# ----- input checks -------------------------------------------------------------------
def _new_axes(ax, figsize):
    if ax is not None:
        return ax.figure, ax
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def as_images(images) -> np.ndarray:
    """Images as (N, H, W): accepts (N, H, W), (N, 1, H, W) or square (N, H*W)."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    elif images.ndim == 2:
        side = round(np.sqrt(images.shape[1]))
        if side * side != images.shape[1]:
            raise DataError(f"images: {images.shape[1]} pixels is not a square image")
        images = images.reshape(len(images), side, side)
    if images.ndim != 3:
        raise DataError(f"images: expected (N, H, W), got shape {images.shape}")
    return images


def plain_text(names) -> list[str]:
    """Class names as text matplotlib prints as it is: a "$" would start math mode
    (and a name like "$\\frac{$" would fail to draw)."""
    return [str(name).replace("$", r"\$") for name in names]


def _check_predictions(images, labels, probs, class_names):
    images = as_images(images)
    labels = np.asarray(labels).astype(np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    names = plain_text(class_names)
    if probs.ndim != 2 or probs.shape[1] != len(names):
        raise DataError(f"probs: expected (N, {len(names)}), got shape {probs.shape}")
    if not len(images) == len(labels) == len(probs):
        raise DataError(
            f"images, labels and probs must have the same length, got {len(images)},"
            f" {len(labels)} and {len(probs)}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
        raise DataError(f"labels: expected class indices in [0, {len(names)})")
    return images, labels, probs, names


def history_columns(history) -> dict[str, np.ndarray]:
    """Per-epoch metrics as float arrays (NaN where missing), from any history form.

    Accepts a `History`, its `.history` dict of lists, or rows (dicts, e.g. read from
    history.csv, where an empty string means missing).
    """
    history = getattr(history, "history", history)
    if isinstance(history, dict):
        rows = [dict(zip(history, values)) for values in zip(*history.values())]
    else:
        rows = list(history)
    keys = list(dict.fromkeys(k for row in rows for k in row))

    def number(value):
        try:
            return float(value) if value not in (None, "") else np.nan
        except (TypeError, ValueError):
            return np.nan

    return {k: np.array([number(row.get(k)) for row in rows]) for k in keys}


def _has(columns: dict, key: str) -> bool:
    return key in columns and bool(np.any(np.isfinite(columns[key])))


def _minor_tick(value: float, _pos=None) -> str:
    digit = round(value / 10 ** np.floor(np.log10(value)))
    return f"{value:g}" if digit in (2, 5) else ""


# ----- training curves ----------------------------------------------------------------
def smooth(values, window: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Moving average: (x positions, means) of windows of `window` values (N // 25)."""
    values = np.asarray(values, dtype=np.float64)
    window = window or max(1, len(values) // 25)
    window = min(window, len(values))
    if window <= 1:
        return np.arange(len(values), dtype=np.float64), values
    means = np.convolve(values, np.ones(window) / window, mode="valid")
    return np.arange(len(means)) + (window - 1) / 2, means


def learning_curves(history, batch_losses=None) -> Figure:
    """Loss and accuracy per epoch (train, validation), and the loss of every batch.

    history: a `History`, its dict of per-epoch lists or history.csv rows.
    batch_losses: (steps,) training loss of every optimiser step, or None.
    """
    columns = history_columns(history)
    if not _has(columns, "loss"):
        raise DataError("history: expected a per-epoch 'loss' column, found none")
    batch_losses = None if batch_losses is None else np.asarray(batch_losses, float)
    with_batches = batch_losses is not None and batch_losses.size > 0
    fig = Figure(figsize=(15 if with_batches else 10, 4.4), layout="constrained")
    axes = fig.subplots(1, 3 if with_batches else 2)
    _per_epoch_axes(axes[0], columns, "loss", "Loss")
    _per_epoch_axes(axes[1], columns, "accuracy", "Accuracy")
    if with_batches:
        _per_batch_axes(axes[2], batch_losses, epochs=len(columns["loss"]))
    return fig


def _per_epoch_axes(ax, columns: dict, metric: str, title: str) -> None:
    """Train and validation `metric` ("loss" or "accuracy") per epoch on `ax`, each
    labelled with its best value; "not recorded" if neither is in `columns`."""
    epochs = np.arange(1, len(columns["loss"]) + 1)
    for prefix, label, colour, style in (
        ("", "train", BLUE, {"linestyle": "-", "marker": "o"}),
        ("val_", "validation", ORANGE, {"linestyle": "--", "marker": "s"}),
    ):
        if not _has(columns, prefix + metric):
            continue
        values = columns[prefix + metric]
        ax.plot(
            epochs,
            values,
            color=colour,
            markersize=4,
            lw=1.8,
            **style,
            label=f"{label} ({_best_epoch(values, metric)})",
        )
    ax.set(title=f"{title} per epoch", xlabel="epoch", ylabel=metric)
    # whole epochs only, even for a single one (else ticks at 0.96, 0.98, ...)
    ax.set_xlim(0.5, len(epochs) + 0.5)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if metric == "accuracy":
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=9)
    else:
        ax.text(0.5, 0.5, "not recorded", ha="center", transform=ax.transAxes)


def _best_epoch(values: np.ndarray, metric: str) -> str:
    """values (epochs,) with NaN where missing -> "best 0.1234, epoch 7": the lowest
    loss or the highest accuracy."""
    if metric == "loss":
        best = np.nanargmin(values)
        return f"best {values[best]:.4f}, epoch {best + 1}"
    best = np.nanargmax(values)
    return f"best {values[best]:.2%}, epoch {best + 1}"


def _per_batch_axes(ax, batch_losses: np.ndarray, epochs: int) -> None:
    """batch_losses (steps,) on `ax`, raw and smoothed, against the step (bottom axis)
    and the epoch (top axis: the steps are taken as spread evenly over `epochs`)."""
    steps = np.arange(1, len(batch_losses) + 1)
    ax.plot(steps, batch_losses, color=BLUE, lw=0.6, alpha=0.35, label="each batch")
    centres, means = smooth(batch_losses)
    ax.plot(centres + 1, means, color="black", lw=1.6, label="moving average")
    positive = batch_losses[batch_losses > 0]
    if positive.size == batch_losses.size and positive.max() >= 10 * positive.min():
        # early losses are 10-100x the late ones: a log scale shows both ends
        ax.set_yscale("log")
        # plain numbers (2, not 2x10^0); minor ticks labelled at 2s and 5s only
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(_minor_tick))
    ax.set(title="Training loss per batch", xlabel="step (batch)", ylabel="loss")
    per_epoch = len(batch_losses) / epochs
    top = ax.secondary_xaxis(
        "top", functions=(lambda s: s / per_epoch, lambda e: e * per_epoch)
    )
    top.set_xlabel("epoch")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=9)


# ----- confusion matrix and per-class scores -------------------------------------------
def _text_colour(rgba) -> str:
    """Black on light cells, white on dark ones (relative luminance of the cell)."""
    r, g, b = rgba[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


def _check_cm(cm, class_names):
    cm = np.asarray(cm)
    names = plain_text(class_names)
    if cm.ndim != 2 or cm.shape != (len(names), len(names)):
        raise DataError(
            f"confusion matrix: expected ({len(names)}, {len(names)}) for"
            f" {len(names)} class names, got shape {cm.shape}"
        )
    return cm, names


def confusion_matrix_plot(cm, class_names, normalize: bool = False, ax=None) -> Figure:
    """Heat map of a confusion matrix (rows true, columns predicted), cells annotated.

    cm: (C, C) counts. normalize=True divides each row by its total, so the cells read
    "% of the true class" and the diagonal is each class's recall.
    """
    cm, names = _check_cm(cm, class_names)
    fig, ax = _new_axes(ax, (7.5, 6.5))
    if normalize:
        totals = cm.sum(axis=1, keepdims=True)
        values = np.divide(cm, totals, out=np.zeros(cm.shape), where=totals > 0)
        image = ax.imshow(values, cmap="viridis", vmin=0.0, vmax=1.0)
        texts = [[f"{100 * v:.1f}" if v else "0" for v in row] for row in values]
        title, bar_label = "Confusion matrix, % of each true class", "% of true class"
    else:
        values = cm
        image = ax.imshow(values, cmap="viridis", vmin=0, vmax=max(1, int(cm.max())))
        texts = [[str(int(v)) for v in row] for row in values]
        title, bar_label = "Confusion matrix, counts", "examples"
    size = max(5.0, min(10.0, 95.0 / len(names)))
    for i, j in np.ndindex(cm.shape):
        colour = _text_colour(image.cmap(image.norm(values[i, j])))
        ax.text(
            j, i, texts[i][j], ha="center", va="center", fontsize=size, color=colour
        )
    ticks = np.arange(len(names))
    long_names = max(len(name) for name in names) > 3
    ax.set_xticks(
        ticks,
        names,
        rotation=40 if long_names else 0,
        ha="right" if long_names else "center",
    )
    ax.set_yticks(ticks, names)
    ax.set(title=title, xlabel="predicted class", ylabel="true class")
    bar = fig.colorbar(image, ax=ax, shrink=0.85)
    bar.set_label(bar_label)
    if normalize:
        bar.ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    return fig


def per_class_bars(cm, class_names, ax=None) -> Figure:
    """Horizontal bars of each class's precision and recall, with the overall accuracy.

    cm: (C, C) counts, rows true, columns predicted.
    """
    cm, names = _check_cm(cm, class_names)
    scores = per_class_scores(cm)
    fig, ax = _new_axes(ax, (8, 1.5 + 0.55 * len(names)))
    rows = np.arange(len(names))
    height = 0.4
    total = cm.sum()
    if total:
        acc = np.trace(cm) / total
        # behind the bars (zorder), so it never crosses their value labels
        ax.axvline(
            acc,
            color="black",
            linestyle=":",
            lw=1.2,
            zorder=1,
            label=f"overall accuracy {acc:.2%}",
        )
    for offset, key, colour, text_colour in (
        (-height / 2, "precision", BLUE, "white"),
        (height / 2, "recall", ORANGE, "black"),
    ):
        ax.barh(
            rows + offset, scores[key], height=height, color=colour, label=key, zorder=2
        )
        for y, value in zip(rows + offset, scores[key]):
            # inside the end of the bar; short bars get it just outside, in black
            inside = value > 0.15
            ax.text(
                value - 0.01 if inside else value + 0.01,
                y,
                f"{value:.1%}",
                ha="right" if inside else "left",
                va="center",
                fontsize=9,
                color=text_colour if inside else "black",
                zorder=3,
            )
    ax.set_yticks(rows, names)
    ax.invert_yaxis()  # first class at the top, as in the tables
    ax.set_xlim(0, 1.0)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title("Precision and recall per class")
    ax.grid(axis="x", alpha=0.3)
    # Below the tick labels (a fixed 20 points under the axes, whatever its height):
    # inside, it would cover the bars of the last classes.
    below = offset_copy(ax.transAxes, fig=fig, y=-20, units="points")
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, 0),
        bbox_transform=below,
        ncol=3,
        fontsize=9,
    )
    return fig


# ----- tiles, shared with nnscratch.animation ---------------------------------------
# Package-internal, not for users: animation.py imports these three so that the GIF's
# tiles look like the still pictures'. Changing one changes both modules' pictures.
def _image_axes(parent, n: int, rows: int, cols: int) -> np.ndarray:
    """n axes without ticks for images, in a rows x cols grid of `parent` (a Figure or
    SubFigure); the cells left over are hidden. Returns the (n,) axes."""
    axes = np.atleast_1d(parent.subplots(rows, cols)).ravel()
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[n:]:
        ax.set_axis_off()
    return axes[:n]


def _border(ax, colour: str, width: float) -> None:
    """Draw a tile's border (its four spines) in `colour`, `width` points thick."""
    for spine in ax.spines.values():
        spine.set(color=colour, linewidth=width)


def _percent(p: float) -> str:
    """A probability as a tile shows it: "44%"; one decimal ("99.7%") from 99.5% up,
    where a whole number would read 100%."""
    return f"{100 * p:.0f}%" if p < 0.995 else f"{100 * p:.1f}%"


# ----- image grids --------------------------------------------------------------------
def _grid(n: int, tile: tuple[float, float], extra_height=0.6, extra_width=0.0):
    """A figure of n image axes in a near-square grid, tile (width, height) inches."""
    cols = n if n <= 6 else int(np.ceil(np.sqrt(n)))  # a few images: one row
    rows = int(np.ceil(n / cols))
    # at least 7.5 inches wide, so the one-line suptitle fits over a small grid
    width = max(7.5, cols * tile[0] + extra_width)
    fig = Figure(figsize=(width, rows * tile[1] + extra_height), layout="constrained")
    return fig, _image_axes(fig, n, rows, cols)


def sample_predictions(images, labels, probs, class_names, n: int = 25) -> Figure:
    """The first `n` images with predicted class and confidence; wrong ones marked.

    images (N, H, W), labels (N,), probs (N, C). Correct: green frame and a check
    mark; wrong: vermillion frame, a cross and the true class underneath.
    """
    images, labels, probs, names = _check_predictions(
        images, labels, probs, class_names
    )
    n = min(int(n), len(images))
    if n < 1:
        raise DataError("sample_predictions: no images to show")
    fig, axes = _grid(n, (1.7, 1.95))
    predicted = probs.argmax(axis=1)
    for k, ax in enumerate(axes):
        ax.imshow(images[k], cmap="gray_r", interpolation="nearest")
        pred, conf = predicted[k], probs[k, predicted[k]]
        right = pred == labels[k]
        mark = RIGHT_MARK if right else WRONG_MARK
        ax.set_title(
            f"{mark} {names[pred]} {_percent(conf)}",
            fontsize=9,
            color=CORRECT if right else WRONG,
            fontweight="bold",
        )
        if not right:
            ax.set_xlabel(f"true: {names[labels[k]]}", fontsize=9, color=WRONG)
        _border(ax, CORRECT if right else WRONG, 1.5 if right else 3.0)
    correct = int(np.sum(predicted[:n] == labels[:n]))
    title = f"Predictions on {n} test images: {correct} right ({RIGHT_MARK})"
    if correct < n:
        title += f", {n - correct} wrong ({WRONG_MARK}, true class below)"
    fig.suptitle(title, fontsize=12)
    return fig


def top_mistakes(images, labels, probs, class_names, n: int = 25) -> Figure:
    """The `n` wrong predictions made with the highest confidence, surest first.

    images (N, H, W), labels (N,), probs (N, C). Each tile: predicted class and its
    probability on top, the true class and the probability it got underneath.
    """
    images, labels, probs, names = _check_predictions(
        images, labels, probs, class_names
    )
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    if wrong.size == 0:
        fig = Figure(figsize=(6, 2), layout="constrained")
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.text(
            0.5,
            0.5,
            f"No mistakes: all {len(labels)} images classified correctly",
            ha="center",
            va="center",
            fontsize=12,
        )
        return fig
    confidence = probs[wrong, predicted[wrong]]
    chosen = wrong[np.argsort(-confidence, kind="stable")[: int(n)]]
    fig, axes = _grid(len(chosen), (1.8, 2.15))
    for ax, k in zip(axes, chosen):
        ax.imshow(images[k], cmap="gray_r", interpolation="nearest")
        pred, true = predicted[k], labels[k]
        ax.set_title(
            f"{WRONG_MARK} {names[pred]} {_percent(probs[k, pred])}",
            fontsize=9,
            color=WRONG,
            fontweight="bold",
        )
        ax.set_xlabel(f"true: {names[true]} {_percent(probs[k, true])}", fontsize=9)
        _border(ax, WRONG, 2.0)
    fig.suptitle(
        f"Most confident mistakes: {len(chosen)} of {wrong.size} wrong among"
        f" {len(labels):,} (predicted on top, true class below)",
        fontsize=12,
    )
    return fig


def first_layer_features(weights, n: int = 64) -> Figure:
    """What the first layer looks for: each unit's incoming weights as an image.

    weights: Dense W (H*W, units), each column shown as an H x W image (784 -> 28x28),
    or Conv2D W (out, in, kh, kw), each kernel shown. Diverging colour map centred on 0,
    scaled per tile (red: positive weight, blue: negative).
    """
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim == 2:
        side = round(np.sqrt(weights.shape[0]))
        if side * side != weights.shape[0]:
            raise DataError(
                f"weights: expected Dense weights (H*W, units) of a square image, got"
                f" shape {weights.shape}"
            )
        tiles = weights.T[: int(n)].reshape(-1, side, side)
        title = (
            f"First layer: incoming weights of {len(tiles)} of {weights.shape[1]}"
            f" hidden units, each as a {side}\u00d7{side} image"
        )
    elif weights.ndim == 4:
        out_ch, in_ch, kh, kw = weights.shape
        tiles = weights.reshape(out_ch * in_ch, kh, kw)[: int(n)]
        # one tile per (output channel, input channel) pair, output channel first
        per_filter = "" if in_ch == 1 else f", {in_ch} input channels each"
        title = (
            f"First layer: {len(tiles)} of {out_ch * in_ch} convolution kernels"
            f" ({kh}\u00d7{kw}; {out_ch} filters{per_filter})"
        )
    else:
        raise DataError(
            f"weights: expected Dense (H*W, units) or Conv2D (out, in, kh, kw) weights,"
            f" got shape {weights.shape}"
        )
    if len(tiles) == 0:
        raise DataError("first_layer_features: no units to show")
    fig, axes = _grid(len(tiles), (1.1, 1.1), extra_height=0.9, extra_width=1.0)
    for ax, tile in zip(axes, tiles):
        limit = float(np.abs(tile).max()) or 1.0
        image = ax.imshow(
            tile / limit, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest"
        )
    bar = fig.colorbar(image, ax=list(axes), shrink=0.6, aspect=30, pad=0.02)
    bar.set_ticks([-1, 0, 1], labels=["\u2212max |w|", "0", "+max |w|"])
    fig.suptitle(title, fontsize=12)
    return fig
