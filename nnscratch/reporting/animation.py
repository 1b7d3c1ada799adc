"""A GIF of training: what the network predicted on fixed test images after each epoch.

`training_animation` turns the `recordings.Recordings` of a run (made by the callback
`recordings.PredictionRecorder`, or loaded from recordings.npz) into a GIF with one
frame per epoch: the loss curves so far beside the recorded images, each titled with
its predicted class and confidence (green check mark if right, vermillion cross if
wrong) and its true class underneath (in vermillion while the prediction is wrong).
The colours and marks are the ones `figures` gives the still pictures.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..errors import DataError
from ..files import atomic_open
from .figures import (
    BLUE,
    CORRECT,
    ORANGE,
    RIGHT_MARK,
    WRONG,
    WRONG_MARK,
    border,
    image_axes,
    new_figure,
    percent,
    plain_text,
    whole_epochs,
)
from .recordings import PredictionRecorder, Recordings

MAX_TILES = 25  # recorded images shown at most: a 5 x 5 grid
MAX_FRAMES = 60  # a longer run is shown by this many evenly spaced epochs
MAX_FILM_MS = 30_000  # frames are shortened to keep the whole GIF about this long ...
MIN_FRAME_MS = 100  # ... but no shorter than this each
TRUE_CLASS = "#555555"  # the true class under a tile predicted right: there, not loud

if TYPE_CHECKING:
    from matplotlib.artist import Artist
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.text import Text


def _canvas_rgb(fig: Figure) -> Image.Image:
    """What `fig`'s Agg canvas holds now, as an RGB Pillow image (a copy)."""
    return Image.fromarray(np.asarray(fig.canvas.buffer_rgba())[..., :3].copy())


def frame_epochs(epochs: int, max_frames: int = MAX_FRAMES) -> np.ndarray:
    """Indices of the epochs shown: all of them, or `max_frames` evenly spaced ones
    (the first and the last included) for a long run."""
    count = min(epochs, max_frames)
    return np.unique(np.round(np.linspace(0, epochs - 1, count)).astype(int))


def training_animation(
    path, frames: Recordings, frame_ms: int = 700, max_frames: int = MAX_FRAMES
) -> Path:
    """Write a GIF with one frame per epoch: the loss curves so far and the model's
    predictions on the recorded images at that epoch. Atomic write; returns the path.

    frames: a `Recordings` (or a `PredictionRecorder`, whose recordings are used).
    A run of more than `max_frames` epochs (full-batch gradient descent runs hundreds)
    shows `max_frames` evenly spaced ones, faster, so the GIF stays a short film.
    """
    recordings = frames
    if isinstance(recordings, PredictionRecorder):
        recordings = recordings.recordings()
    if recordings.epochs == 0:
        raise DataError("training_animation: the recordings hold no epochs")
    artists = _build_figure(recordings)
    epochs = frame_epochs(recordings.epochs, max_frames)
    return _save_gif(path, _draw_frames(artists, recordings, epochs), frame_ms)


@dataclass
class _Artists:
    """The animation's figure, built once, and the parts of it each frame changes."""

    fig: Figure
    curves: dict[str, Line2D]  # log key ("loss", "val_loss") -> its line, growing
    tiles: np.ndarray  # (M,) image axes, M <= MAX_TILES: titles, labels, borders change
    caption: Text  # above the tiles: how many of them are right
    heading: Text  # above everything: the epoch and its accuracies
    title_size: int  # of the tiles' titles, in points

    def changing(self) -> list[Artist]:
        """The artists a frame changes, and those drawn over them, in drawing order
        (zorder): the loss lines under the loss axes' spines and legend; each tile's
        true class (its x axis's label), border and title; the caption and heading."""
        loss_axes = next(iter(self.curves.values())).axes if self.curves else None
        changing = [*self.curves.values()]
        if loss_axes is not None:
            changing += [*loss_axes.spines.values(), loss_axes.get_legend()]
        for tile in self.tiles:
            # the label alone: a whole x axis, without ticks, draws only it, slower
            changing += [tile.xaxis.label, *tile.spines.values(), tile.title]
        return [*changing, self.caption, self.heading]


def _build_figure(recordings: Recordings) -> _Artists:
    """The loss axes (left) and the grid of recorded images (right), before any epoch
    is drawn: limits, images and legend stay, the frames change only the artists."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    fig = new_figure((10, 5.4), dpi=100)
    FigureCanvasAgg(fig)  # becomes fig.canvas: every frame is drawn on it, in memory
    left, right = fig.subfigures(1, 2, width_ratios=[0.9, 1.1])
    curves = _loss_axes(left.add_subplot(), recordings)
    caption = right.suptitle("", fontsize=11)
    heading = fig.suptitle("", fontsize=13, fontweight="bold")
    # "T-shirt/top 44%" at 9 points would run into the next tile's title
    title_size = 9 if max(len(name) for name in recordings.class_names) <= 7 else 8
    tiles = _image_tiles(right, recordings.images[:MAX_TILES])
    names = plain_text(recordings.class_names)
    for tile, label in zip(tiles, recordings.labels):
        tile.set_xlabel(f"true: {names[label]}", fontsize=title_size, labelpad=2)
    return _Artists(fig, curves, tiles, caption, heading, title_size)


def _loss_axes(ax, recordings: Recordings) -> dict[str, Line2D]:
    """Set up `ax` for the whole run (limits, labels, legend) with empty loss lines;
    returns them by log key, only for the losses that were recorded."""
    curves = {}
    for key, label, colour, style in (
        ("loss", "train loss", BLUE, "-o"),
        ("val_loss", "validation loss", ORANGE, "--s"),
    ):
        values = recordings.logs.get(key)
        if values is not None and np.any(np.isfinite(values)):
            (curves[key],) = ax.plot([], [], style, color=colour, label=label, ms=4)
    # fixed limits: the axes must not rescale from one frame to the next
    finite = [v[np.isfinite(v)] for k, v in recordings.logs.items() if k in curves]
    top = max((float(v.max()) for v in finite if v.size), default=1.0)
    ax.set(
        xlim=(0.5, recordings.epochs + 0.5),
        ylim=(0, 1.08 * top),
        xlabel="epoch",
        ylabel="loss",
        title="Loss",
    )
    whole_epochs(ax.xaxis)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(loc="upper right")
    return curves


def _image_tiles(parent, images: np.ndarray) -> np.ndarray:
    """images (M, H, W) shown in a near-square grid of `parent`; returns (M,) axes."""
    cols = int(np.ceil(np.sqrt(len(images))))
    rows = int(np.ceil(len(images) / cols))
    tiles = image_axes(parent, len(images), rows, cols)
    for tile, image in zip(tiles, images):
        tile.imshow(image, cmap="gray_r", interpolation="nearest")
    return tiles


def _draw_frames(
    artists: _Artists, recordings: Recordings, epochs: np.ndarray
) -> list[Image.Image]:
    """The GIF frames (palette images) of `epochs` (0-based, at least one).

    Constrained layout places everything for the first frame, and that layout is kept
    for every frame (laid out anew, tiles moved by a pixel when a true class turned
    bold). The parts no frame changes (images, loss axes, tick labels) are drawn once,
    as a background; each frame restores it and draws only `artists.changing()` on it
    (matplotlib's blitting): the same pixels as a whole draw, in ~1/3 the time.
    """
    fig = artists.fig
    _set_epoch(artists, recordings, epochs[0])
    fig.draw_without_rendering()  # lays out the first frame
    fig.set_layout_engine("none")  # and keeps that layout
    changing = artists.changing()
    for artist in changing:
        artist.set_animated(True)  # left out of fig.draw: the background lacks it
    # an x axis draws its label even if animated: hidden instead (a hidden title
    # would be moved by its axes' draw)
    labels = [tile.xaxis.label for tile in artists.tiles]
    for label in labels:
        label.set_visible(False)
    fig.canvas.draw()
    background = fig.canvas.copy_from_bbox(fig.bbox)
    for label in labels:
        label.set_visible(True)
    # Pillow lets go of the GIL while it makes a frame's palette (~30 ms): done in a
    # thread, while the next frame is drawn
    with ThreadPoolExecutor(1) as palettes:
        frames = []
        for epoch in epochs:
            _set_epoch(artists, recordings, epoch)
            fig.canvas.restore_region(background)
            for artist in changing:
                fig.draw_artist(artist)
            rgb = _canvas_rgb(fig)
            frames.append(
                palettes.submit(rgb.convert, "P", palette=Image.Palette.ADAPTIVE)
            )
    return [frame.result() for frame in frames]


def _set_epoch(artists: _Artists, recordings: Recordings, epoch: int) -> None:
    """Set the artists to `epoch` (0-based): curves up to it, its predictions, its
    status."""
    for key, line in artists.curves.items():
        line.set_data(np.arange(1, epoch + 2), recordings.logs[key][: epoch + 1])
    m = len(artists.tiles)
    predicted = recordings.probs[epoch, :m].argmax(axis=1)
    for k, tile in enumerate(artists.tiles):
        _mark_prediction(
            tile,
            plain_text([recordings.class_names[predicted[k]]])[0],
            recordings.probs[epoch, k, predicted[k]],
            predicted[k] == recordings.labels[k],
            artists.title_size,
        )
    correct = int(np.sum(predicted == recordings.labels[:m]))
    artists.caption.set_text(f"Predictions: {correct}/{m} right (true class below)")
    artists.heading.set_text(_status_line(recordings, epoch))


def _mark_prediction(tile, name: str, confidence: float, right: bool, size: int):
    """Title `tile` with the predicted class and its probability; colour and mark (and
    a thicker border and the true class in colour if wrong) say whether it is right."""
    colour = CORRECT if right else WRONG
    tile.xaxis.label.set(
        color=TRUE_CLASS if right else WRONG, fontweight="normal" if right else "bold"
    )
    mark = RIGHT_MARK if right else WRONG_MARK
    # not set_title: it would put the title back at y=1, where only a whole draw of
    # the axes lifts it to its place
    tile.title.set(
        text=f"{mark} {name} {percent(confidence)}",
        fontsize=size,
        color=colour,
        fontweight="bold",
    )
    border(tile, colour, 1.2 if right else 2.5)


def _status_line(recordings: Recordings, epoch: int) -> str:
    """The heading, e.g. "Epoch 3/10   train acc 91.2%   val acc 90.5%" (an accuracy
    not recorded at `epoch` is left out)."""
    status = [f"Epoch {epoch + 1}/{recordings.epochs}"]
    for key, label in (("accuracy", "train acc"), ("val_accuracy", "val acc")):
        if key in recordings.logs and np.isfinite(recordings.logs[key][epoch]):
            status.append(f"{label} {recordings.logs[key][epoch]:.1%}")
    return "   ".join(status)


def _save_gif(path, images: list[Image.Image], frame_ms: int) -> Path:
    """Write the frames as a looping GIF, atomically; returns the path.

    Many frames are shown faster, so the film lasts about MAX_FILM_MS; the last one
    stays at least 2.5 s, a pause before the loop starts again.
    """
    frame_ms = max(MIN_FRAME_MS, min(frame_ms, MAX_FILM_MS // len(images)))
    durations = [frame_ms] * (len(images) - 1) + [max(frame_ms, 2500)]
    path = Path(path)
    with atomic_open(path) as f:
        images[0].save(
            f,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=durations,
            loop=0,
        )
    return path
