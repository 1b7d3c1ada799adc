"""Learning curves: loss and accuracy per epoch (train, validation) and the loss of
every batch, from a `History`, its dict of lists or the rows of history.csv."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import DataError
from .figures import BLUE, ORANGE, TEXT, chart_text, new_figure, whole_epochs

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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


def _percent_decimals(locs) -> int:
    """The fewest decimals (at most 6) that print every tick of `locs` (fractions)
    exactly as a percent: 0 for 0.64, 0.66 (64%, not 64.0%), 1 for 0.625, 0.65."""
    percents = 100 * np.asarray(locs, dtype=np.float64)
    for decimals in range(6):
        scaled = percents * 10**decimals
        if np.allclose(scaled, np.round(scaled), rtol=0, atol=1e-6):
            return decimals
    return 6


def _tick_percent():
    """A tick formatter of fractions as percents with as many decimals as the ticks
    need: 64%, 66%, ..., or 62.5%, 65.0%, ... (PercentFormatter's default picks
    decimals from the axis range, so it prints 64.0%, 66.0%, ...)."""
    from matplotlib.ticker import PercentFormatter

    class TickPercent(PercentFormatter):  # here: matplotlib is imported when drawing
        def set_locs(self, locs):
            super().set_locs(locs)
            self.decimals = _percent_decimals(locs)

    return TickPercent(xmax=1.0)


def smooth(values, window: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Moving average: (x positions, means) of windows of `window` values.

    The default window is N // 25, but at least 5 (or N // 5 if less): a short run's
    22 steps still get averaged. A window of 1 returns the values themselves.
    """
    values = np.asarray(values, dtype=np.float64)
    window = window or max(1, len(values) // 25, min(5, len(values) // 5))
    window = min(window, len(values))
    if window <= 1:
        return np.arange(len(values), dtype=np.float64), values
    means = np.convolve(values, np.ones(window) / window, mode="valid")
    return np.arange(len(means)) + (window - 1) / 2, means


def learning_curves(history, batch_losses=None, narrow: bool = False) -> Figure:
    """Loss and accuracy per epoch (train, validation), and the loss of every batch.

    history: a `History`, its dict of per-epoch lists or history.csv rows.
    batch_losses: (steps,) training loss of every optimiser step, or None.
    narrow=True stacks the panels in one column 4.2 inches wide, for a phone.
    """
    columns = history_columns(history)
    if not _has(columns, "loss"):
        raise DataError("history: expected a per-epoch 'loss' column, found none")
    batch_losses = None if batch_losses is None else np.asarray(batch_losses, float)
    with_batches = batch_losses is not None and batch_losses.size > 0
    panels = 3 if with_batches else 2
    if narrow:  # a phone's width, 400 CSS pixels
        fig = new_figure((4.2, 3.4 * panels))
        axes = fig.subplots(panels, 1)
    else:  # the page's full width (13.5 inches) holds three panels of 11-point text
        fig = new_figure((13 if with_batches else 9, 4.4))
        axes = fig.subplots(1, panels)
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
    ax.set_xlim(0.5, len(epochs) + 0.5)
    whole_epochs(ax.xaxis)
    if metric == "accuracy":
        ax.yaxis.set_major_formatter(_tick_percent())
    ax.grid(alpha=0.3)
    chart_text(ax)
    if ax.lines:
        ax.legend(fontsize=TEXT)
    else:
        ax.text(
            0.5, 0.5, "not recorded", ha="center", fontsize=TEXT, transform=ax.transAxes
        )


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
    from matplotlib.ticker import FuncFormatter

    steps = np.arange(1, len(batch_losses) + 1)
    centres, means = smooth(batch_losses)
    averaged = len(means) < len(batch_losses)  # too few steps: nothing to average
    faint = {"lw": 0.6, "alpha": 0.35} if averaged else {"lw": 1.4, "marker": "."}
    ax.plot(steps, batch_losses, color=BLUE, label="each batch", **faint)
    if averaged:
        ax.plot(centres + 1, means, color="black", lw=1.6, label="moving average")
    positive = batch_losses[batch_losses > 0]
    ylabel = "loss"
    if positive.size == batch_losses.size and positive.max() >= 10 * positive.min():
        # early losses are 10-100x the late ones: a log scale shows both ends
        ax.set_yscale("log")
        # plain numbers (2, not 2x10^0); minor ticks labelled at 2s and 5s only
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(FuncFormatter(_minor_tick))
        ylabel = "loss (log scale)"  # else 0.2 to 0.5 reads as far as 1 to 2
    ax.set(title="Training loss per batch", xlabel="step (batch)", ylabel=ylabel)
    per_epoch = len(batch_losses) / epochs
    top = ax.secondary_xaxis(
        "top", functions=(lambda s: s / per_epoch, lambda e: e * per_epoch)
    )
    top.set_xlabel("epoch")
    chart_text(ax)
    chart_text(top)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=TEXT)
