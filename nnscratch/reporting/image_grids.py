"""Grids of images: predictions on test images, the surest mistakes, and what the first
layer looks for (its weights as images)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import DataError, check_int, check_same_length
from .figures import (
    CORRECT,
    RIGHT_MARK,
    TEXT,
    TITLE,
    WRONG,
    WRONG_MARK,
    as_images,
    border,
    image_axes,
    new_figure,
    percent,
    plain_text,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# a tile's title and label: "✓ T-shirt/top 99.9%" in bold 10-point fits a 2-inch tile
TILE_TEXT = TEXT - 1


def _check_predictions(images, labels, probs, class_names):
    """(images (N, H, W), labels (N,) int64, probs (N, C) float64, C drawable names)."""
    images = as_images(images)
    labels = np.asarray(labels).astype(np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    names = plain_text(class_names)
    if probs.ndim != 2 or probs.shape[1] != len(names):
        raise DataError(f"probs: expected (N, {len(names)}), got shape {probs.shape}")
    check_same_length(images=images, labels=labels, probs=probs)
    if labels.size and (labels.min() < 0 or labels.max() >= len(names)):
        raise DataError(f"labels: expected class indices in [0, {len(names)})")
    return images, labels, probs, names


def _grid(n: int, tile: tuple[float, float]):
    """A figure of n image axes in a near-square grid, tile (width, height) inches."""
    cols = n if n <= 6 else int(np.ceil(np.sqrt(n)))  # a few images: one row
    rows = int(np.ceil(n / cols))
    # at least 8 inches wide, so the one-line suptitle fits over a small grid
    width = max(8.0, cols * tile[0])
    fig = new_figure((width, rows * tile[1] + 0.6))
    return fig, image_axes(fig, n, rows, cols)


def sample_predictions(
    images, labels, probs, class_names, n: int = 25, cmap: str = "gray_r"
) -> Figure:
    """The first `n` images with predicted class and confidence; wrong ones marked.

    images (N, H, W), labels (N,), probs (N, C). `cmap`: "gray_r" draws ink dark on
    white, "gray" light on black as MNIST stores it. Correct: green frame and a check
    mark; wrong: vermillion frame, a cross and the true class underneath.
    """
    images, labels, probs, names = _check_predictions(
        images, labels, probs, class_names
    )
    n = min(check_int("sample_predictions n", n), len(images))
    if n < 1:
        raise DataError("sample_predictions: no images to show")
    fig, axes = _grid(n, (2.0, 2.3))
    predicted = probs.argmax(axis=1)
    for k, ax in enumerate(axes):
        ax.imshow(images[k], cmap=cmap, interpolation="nearest")
        pred, conf = predicted[k], probs[k, predicted[k]]
        right = pred == labels[k]
        mark = RIGHT_MARK if right else WRONG_MARK
        ax.set_title(
            f"{mark} {names[pred]} {percent(conf)}",
            fontsize=TILE_TEXT,
            color=CORRECT if right else WRONG,
            fontweight="bold",
        )
        if not right:
            ax.set_xlabel(f"true: {names[labels[k]]}", fontsize=TILE_TEXT, color=WRONG)
        border(ax, CORRECT if right else WRONG, 1.5 if right else 3.0)
    correct = int(np.sum(predicted[:n] == labels[:n]))
    title = f"Predictions on {n} test images: {correct} right ({RIGHT_MARK})"
    if correct < n:
        title += f", {n - correct} wrong ({WRONG_MARK}, true class below)"
    fig.suptitle(title, fontsize=TITLE)
    return fig


def top_mistakes(
    images, labels, probs, class_names, n: int = 25, cmap: str = "gray_r"
) -> Figure:
    """The `n` wrong predictions made with the highest confidence, surest first.

    images (N, H, W), labels (N,), probs (N, C); `cmap` as in `sample_predictions`. Each tile: predicted class and its
    probability on top, the true class and the probability it got underneath.
    """
    images, labels, probs, names = _check_predictions(
        images, labels, probs, class_names
    )
    n = check_int("top_mistakes n", n)
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != labels)
    if wrong.size == 0:
        fig = new_figure((6, 2))
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.text(
            0.5,
            0.5,
            f"No mistakes: all {len(labels)} images classified correctly",
            ha="center",
            va="center",
            fontsize=TITLE,
        )
        return fig
    confidence = probs[wrong, predicted[wrong]]
    chosen = wrong[np.argsort(-confidence, kind="stable")[:n]]
    fig, axes = _grid(len(chosen), (2.05, 2.45))
    for ax, k in zip(axes, chosen):
        ax.imshow(images[k], cmap=cmap, interpolation="nearest")
        pred, true = predicted[k], labels[k]
        ax.set_title(
            f"{WRONG_MARK} {names[pred]} {percent(probs[k, pred])}",
            fontsize=TILE_TEXT,
            color=WRONG,
            fontweight="bold",
        )
        ax.set_xlabel(
            f"true: {names[true]} {percent(probs[k, true])}", fontsize=TILE_TEXT
        )
        border(ax, WRONG, 2.0)
    fig.suptitle(
        f"Most confident mistakes: {len(chosen)} of {wrong.size:,} wrong among"
        f" {len(labels):,} (predicted on top, true class below)",
        fontsize=TITLE,
    )
    return fig


def first_layer_features(weights, n: int = 64) -> Figure:
    """What the first layer looks for: each unit's incoming weights as an image.

    weights: Dense W (H*W, units), each column shown as an H x W image (784 -> 28x28),
    or Conv2D W (out, in, kh, kw), each kernel shown. Diverging colour map centred on 0,
    scaled per tile (red: positive weight, blue: negative).
    """
    n = check_int("first_layer_features n", n)
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim == 2:
        side = round(np.sqrt(weights.shape[0]))
        if side * side != weights.shape[0]:
            raise DataError(
                f"weights: expected Dense weights (H*W, units) of a square image, got"
                f" shape {weights.shape}"
            )
        tiles = weights.T[:n].reshape(-1, side, side)
        title = (
            f"First layer: incoming weights of {len(tiles)} of {weights.shape[1]}"
            f" hidden units, each as a {side}\u00d7{side} image"
        )
    elif weights.ndim == 4:
        out_ch, in_ch, kh, kw = weights.shape
        tiles = weights.reshape(out_ch * in_ch, kh, kw)[:n]
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
    fig, axes = _feature_grid(len(tiles))
    for ax, tile in zip(axes, tiles):
        limit = float(np.abs(tile).max()) or 1.0
        image = ax.imshow(
            tile / limit, cmap="RdBu_r", vmin=-1, vmax=1, interpolation="nearest"
        )
    bar = fig.colorbar(image, ax=list(axes), shrink=0.6, aspect=30, pad=0.02)
    bar.set_ticks([-1, 0, 1], labels=["\u2212max |w|", "0", "+max |w|"])
    bar.ax.tick_params(labelsize=TEXT)
    fig.suptitle(title, fontsize=TITLE)
    return fig


def _feature_grid(n: int):
    """A figure of n square tiles side by side for `first_layer_features`: as many
    columns as leave the fewest cells empty (8 kernels: 4 x 2, not 3 x 3 with one
    empty), tiles from 1.1 inches (64 units, 8 x 8) to 2 (a few kernels) to fill
    about 7 inches, packed ("compressed" layout: no gaps between the columns however
    wide the title makes the figure)."""
    low = int(np.ceil(np.sqrt(n)))
    cols = min(range(low, min(n, 2 * low) + 1), key=lambda c: (-n % c, c))
    rows = int(np.ceil(n / cols))
    tile = min(2.0, max(1.1, 7.0 / cols))
    # a colour bar on the right; at least 8 inches wide for the one-line title
    width = max(8.0, cols * tile + 1.0)
    fig = new_figure((width, rows * tile + 0.9), layout="compressed")
    return fig, image_axes(fig, n, rows, cols)
