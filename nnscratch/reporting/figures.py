"""What every picture of a run shares: colours, marks, image tiles, input checks and
`save_figure`. The pictures themselves: `curves` (learning curves), `confusion`
(confusion matrix, per-class bars), `image_grids` (predictions, mistakes, first-layer
weights) and `animation` (the training GIF).

Every figure is drawn on a new `matplotlib.figure.Figure` (never pyplot: works headless
and keeps no global state) or on the `ax` it is given, and returned. Colours are the
Okabe-Ito palette and viridis, which stay distinct for colour-blind readers; right and
wrong also carry a mark, not only a colour.

matplotlib is imported by the functions that draw (`new_figure`), never at the top of
a module: it takes ~0.3 s, which `import nnscratch`, `nnscratch --help` and the
commands that draw nothing do without.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..errors import DataError
from ..files import atomic_open

# A figure is drawn at the size the page shows it: 1 inch = 96 CSS pixels (CSS's inch),
# so 11-point text reads like the page's own text. The PNG has 2 pixels per CSS pixel
# (192 DPI), sharp on high-density screens and when zoomed in or opened full size.
CSS_DPI = 96
DPI = 2 * CSS_DPI
# Text sizes (points) of the charts: read on a laptop, a projector and (opened full
# size) a phone; tick labels and legends are the smallest text of a figure.
TEXT, LABEL, TITLE = 11, 12, 13
BLUE, ORANGE = "#0072B2", "#E69F00"  # Okabe-Ito: train/precision, validation/recall
CORRECT, WRONG = "#009E73", "#D55E00"  # Okabe-Ito bluish green and vermillion
RIGHT_MARK, WRONG_MARK = "\u2713", "\u2717"  # check mark and ballot x (in DejaVu Sans)

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def new_figure(
    figsize: tuple[float, float], layout: str = "constrained", **kwargs
) -> Figure:
    """A new figure of `figsize` inches with constrained layout (or `layout`: a grid
    of images takes "compressed", which closes the gaps between them; kwargs:
    Figure's). No pyplot: no GUI backend and no global state, so the server's threads
    can draw."""
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout=layout, **kwargs)


def png_bytes(fig: Figure, dpi: int = DPI) -> bytes:
    """`fig` as a PNG at `dpi` with a palette of 256 colours (see `palette_png`)."""
    return palette_png(drawn(fig, dpi), dpi)


def drawn(fig: Figure, dpi: int = DPI) -> Image.Image:
    """`fig` drawn at `dpi` on white, as an RGB image: the pixels savefig's PNG has."""
    buffer = io.BytesIO()
    # the canvas's raw RGBA pixels: a PNG from savefig holds the same ones, compressed
    # only to be decompressed here (~0.2 s a figure)
    fig.savefig(buffer, format="rgba", dpi=dpi, facecolor="white")
    size = tuple(int(n) for n in fig.get_size_inches() * dpi)  # as Agg sizes a canvas
    image = Image.frombuffer("RGBA", size, buffer.getbuffer(), "raw", "RGBA", 0, 1)
    return image.convert("RGB")


def palette_png(image: Image.Image, dpi: int = DPI) -> bytes:
    """An RGB image of a chart as a PNG with a palette of 256 colours: a chart has few
    colours (their anti-aliased edges are close enough), so the file is ~3x smaller
    than RGB. Pillow lets go of the GIL meanwhile: a thread can do it."""
    palette = image.quantize(256, method=Image.Quantize.MEDIANCUT)
    buffer = io.BytesIO()
    palette.save(buffer, format="PNG", optimize=True, dpi=(dpi, dpi))
    return buffer.getvalue()


def save_png(image: Image.Image, path, dpi: int = DPI) -> Path:
    """Write an RGB image as `palette_png` makes it, atomically; returns the path."""
    path = Path(path)
    with atomic_open(path) as f:
        f.write(palette_png(image, dpi))
    return path


def save_figure(fig: Figure, path, dpi: int = DPI) -> Path:
    """Write `fig` as a PNG at `dpi` (see `png_bytes`), atomically; returns the path."""
    return save_png(drawn(fig, dpi), path, dpi)


def chart_text(ax) -> None:
    """Give `ax`'s title, axis labels and tick labels the chart sizes (TITLE, LABEL,
    TEXT points) instead of matplotlib's 10-point defaults."""
    ax.title.set_fontsize(TITLE)
    ax.xaxis.label.set_fontsize(LABEL)
    ax.yaxis.label.set_fontsize(LABEL)
    ax.tick_params(which="both", labelsize=TEXT)


def whole_epochs(axis) -> None:
    """Ticks on `axis` at whole epochs only, even for a single one (else 0.6, 0.8)."""
    from matplotlib.ticker import MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def new_axes(ax, figsize):
    """(figure, axes): those of `ax` if given, else a new figure of `figsize` inches."""
    if ax is not None:
        return ax.figure, ax
    fig = new_figure(figsize)
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


# ----- tiles: the still image grids and the GIF's frames look alike -------------------
def image_axes(parent, n: int, rows: int, cols: int) -> np.ndarray:
    """n axes without ticks for images, in a rows x cols grid of `parent` (a Figure or
    SubFigure); the cells left over are hidden. Returns the (n,) axes."""
    axes = np.atleast_1d(parent.subplots(rows, cols)).ravel()
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[n:]:
        ax.set_axis_off()
    return axes[:n]


def border(ax, colour: str, width: float) -> None:
    """Draw a tile's border (its four spines) in `colour`, `width` points thick."""
    for spine in ax.spines.values():
        spine.set(color=colour, linewidth=width)


def percent(p: float) -> str:
    """A probability as a tile shows it: "44%"; one decimal ("99.7%") from 99.5% up,
    where a whole number would read 100%. Never a rounded 0% or 100% for what is
    neither: "<1%" (the true class of a sure mistake) and ">99.9%"."""
    if p < 0.995:
        text = f"{100 * p:.0f}%"
        return "<1%" if text == "0%" and p > 0 else text
    text = f"{100 * p:.1f}%"
    return ">99.9%" if text == "100.0%" and p < 1 else text
