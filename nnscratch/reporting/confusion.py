"""The confusion matrix as a heat map, and each class's precision and recall as bars.

Both take cm (C, C) counts, rows true classes, columns predicted ones, and C names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .figures import BLUE, ORANGE, TEXT, chart_text, new_axes, plain_text
from .metrics import check_class_names, check_confusion_matrix, per_class_scores

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def _text_colour(rgba) -> str:
    """Black on light cells, white on dark ones (relative luminance of the cell)."""
    r, g, b = rgba[:3]
    return "black" if 0.2126 * r + 0.7152 * g + 0.0722 * b > 0.45 else "white"


def confusion_matrix_plot(
    cm, class_names, normalize: bool = False, mask_diagonal: bool = False, ax=None
) -> Figure:
    """Heat map of a confusion matrix (rows true, columns predicted), cells annotated.

    cm: (C, C) counts. normalize=True divides each row by its total, so the cells read
    "% of the true class" and the diagonal is each class's recall. mask_diagonal=True
    greys out the diagonal (its numbers stay) and scales the colours to the largest
    off-diagonal cell: the confusions, not the correct answers, set the colour bar.
    """
    import matplotlib
    from matplotlib.ticker import PercentFormatter

    cm = check_confusion_matrix(cm)
    names = plain_text(check_class_names(class_names, cm))
    fig, ax = new_axes(ax, (6.5, 5.8))  # half the page's width: two side by side
    if normalize:
        totals = cm.sum(axis=1, keepdims=True)
        values = np.divide(cm, totals, out=np.zeros(cm.shape), where=totals > 0)
        texts = [[f"{100 * v:.1f}" if v else "0" for v in row] for row in values]
        title, bar_label = "Confusion matrix, % of each true class", "% of true class"
    else:
        values = cm
        texts = [[str(int(v)) for v in row] for row in values]
        title, bar_label = "Confusion matrix, counts", "examples"
    vmax = 1.0 if normalize else max(1, int(cm.max()))
    if mask_diagonal:
        values = np.ma.masked_array(values, mask=np.eye(len(cm), dtype=bool))
        top = values.filled(0).max()  # of the cells left (none for 1 class)
        vmax = max(float(top), 1e-12) if normalize else max(1, int(top))
        title += ", diagonal greyed out"
    # masked cells (the diagonal) in light grey
    cmap = matplotlib.colormaps["viridis"].with_extremes(bad="0.85")
    image = ax.imshow(values, cmap=cmap, vmin=0, vmax=vmax)
    # as large as the tick labels, smaller when many cells share the width
    size = max(5.0, min(TEXT, 100.0 / len(names)))
    for i, j in np.ndindex(cm.shape):
        if mask_diagonal and i == j:
            colour = "black"  # on the grey
        else:
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
    chart_text(ax)
    bar = fig.colorbar(image, ax=ax, shrink=0.85)
    bar.set_label(bar_label)
    chart_text(bar.ax)
    if normalize:
        bar.ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    return fig


def per_class_bars(cm, class_names, ax=None) -> Figure:
    """Horizontal bars of each class's precision and recall, with the overall accuracy.

    cm: (C, C) counts, rows true, columns predicted.
    """
    from matplotlib.ticker import PercentFormatter
    from matplotlib.transforms import offset_copy

    cm = check_confusion_matrix(cm)
    names = plain_text(check_class_names(class_names, cm))
    scores = per_class_scores(cm)
    own_figure = ax is None
    # 5 inches: shown at 480 px beside the table, and on a phone shrunk to 330 px its
    # 10-point labels are still 9 px high (6.5 inches: 7 px)
    fig, ax = new_axes(ax, (5.0, 1.6 + 0.6 * len(names)))
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
                fontsize=TEXT - 1,
                color=text_colour if inside else "black",
                zorder=3,
            )
    ax.set_yticks(rows, names)
    ax.invert_yaxis()  # first class at the top, as in the tables
    ax.set_xlim(0, 1.0)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.xaxis.set_major_formatter(PercentFormatter(1.0))
    ax.set_title("Precision and recall per class")
    chart_text(ax)
    ax.grid(axis="x", alpha=0.3)
    # Below the tick labels: inside, it would cover the bars of the last classes. In
    # its own figure, centred on it, the layout making room: centred under the axes,
    # which long class names push right, it ran off the figure ("T-shirt/top").
    style = {"ncol": 3, "fontsize": TEXT - 1}
    if own_figure:
        fig.legend(loc="outside lower center", **style)
    else:  # a fixed 22 points under the given axes, whatever its height
        below = offset_copy(ax.transAxes, fig=fig, y=-22, units="points")
        ax.legend(
            loc="upper center", bbox_to_anchor=(0.5, 0), bbox_transform=below, **style
        )
    return fig
