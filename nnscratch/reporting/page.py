"""The report page: one self-contained HTML page of a training run.

The page carries everything it shows (images as base64 data URIs, inline CSS, no
scripts, no external requests: a Content-Security-Policy says so), so it can be mailed
or opened offline: the run's configuration, final metrics, per-class table, per-epoch
table, model summary and every picture of the run.

Each picture is shown at the size it was drawn for (`figures.CSS_DPI` CSS pixels an
inch, its PNG has twice as many), never wider than the window, and links to its file
in figures/: on a phone, where a figure shrinks to the screen's width, tapping it
opens it full size to zoom in (the link needs figures/ beside the page; a page mailed
alone still shows every picture). There, the pictures whose text would shrink too
small (SCROLL_ON_PHONE) keep their size and scroll sideways instead.
"""

from __future__ import annotations

import base64
import io
import os
from functools import partial
from pathlib import Path
from urllib.parse import quote

import numpy as np
from PIL import Image

from ..data.catalog import CLASS_NAMES
from ..errors import NnscratchError
from ..files import write_text
from .alt_text import alt_texts
from .curves import history_columns
from .figures import CSS_DPI
from .markup import (
    escape,
    html_cell,
    html_page,
    html_table,
    key_value_table,
    number_cell,
    percent_cell,
)
from .metrics import check_confusion_matrix, per_class_rows

# Every picture a report can hold, in figures/: file name -> caption, in page order.
CAPTIONS = {
    "learning_curves.png": "Loss and accuracy per epoch, and the loss of every batch",
    "training.gif": "Training epoch by epoch: the loss so far and the predictions on"
    " a fixed set of test images",
    "confusion_matrix.png": "Confusion matrix (counts): rows are the true classes,"
    " columns the predicted ones",
    "confusion_matrix_normalized.png": "Confusion matrix as % of each true class:"
    " the diagonal is each class's recall",
    "per_class.png": "Precision and recall per class",
    "sample_predictions.png": "Predictions on the first test images",
    "top_mistakes.png": "The wrong predictions the network was surest of",
    "first_layer_features.png": "What the first layer looks for: each unit's incoming"
    " weights (red positive, blue negative)",
}
# A phone's version of a wide picture (its panels in one column, 4.2 inches wide),
# shown instead of it where the wide one (13 inches) would shrink its 11-point text
# under 9.5 px: on a window of at most 900 CSS pixels (on a phone: 4 px).
NARROW = {"learning_curves.png": "learning_curves_narrow.png"}
NARROW_SCREEN = "(max-width: 900px)"
# Pictures whose text a phone would shrink to 4-8 px (the image grids' and the GIF's
# tile labels, the confusion matrices' counts): on a phone's screen (markup.PHONE_SCREEN)
# they keep the size they were drawn for and scroll sideways in their panel, as a
# wide table does. A narrow version of each, like NARROW's, would cost the report a
# drawing each; the per-class bars fit a phone, the first layer's weights read small.
SCROLL_ON_PHONE = {
    "training.gif",
    "confusion_matrix.png",
    "confusion_matrix_normalized.png",
    "sample_predictions.png",
    "top_mistakes.png",
}


def _per_class_rows(config: dict, metrics: dict) -> list[dict]:
    """metrics' per_class list, or the scores computed from its confusion matrix."""
    rows = metrics.get("per_class")
    if isinstance(rows, list) and all(isinstance(r, dict) for r in rows):
        return rows
    cm = metrics.get("confusion_matrix")
    if cm is None:
        return []
    try:  # ragged rows or a number for a matrix: checked before len() is taken
        cm = check_confusion_matrix(cm)
        default = [str(i) for i in range(len(cm))]
        names = CLASS_NAMES.get(config.get("dataset"), default)
        return per_class_rows(cm, names)
    except NnscratchError:  # a malformed matrix: no table rather than no report
        return []


def _per_class_table(rows: list[dict]) -> str:
    cells = [
        [f"<th>{escape(row.get('class', i))}</th>"]
        + [percent_cell(row.get(k)) for k in ("precision", "recall", "f1")]
        + [html_cell(row.get("support", ""))]
        for i, row in enumerate(rows)
    ]
    return html_table(["class", "precision", "recall", "F1", "support"], cells)


def _history_table(history_rows) -> str:
    columns = history_columns(history_rows)
    keys = [
        k
        for k in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")
        if k in columns and np.any(np.isfinite(columns[k]))
    ]
    rows = []
    for i in range(len(next(iter(columns.values()), []))):
        row = [f"<th>{i + 1}</th>"]
        for k in keys:
            value = float(columns[k][i])
            row.append(number_cell(k, value) if np.isfinite(value) else "<td></td>")
        rows.append(row)
    return html_table(["epoch", *keys], rows)


def _cards(config: dict, metrics: dict, history_rows) -> str:
    cards = []
    if isinstance(metrics.get("test_accuracy"), (int, float)):
        cards.append((f"{metrics['test_accuracy']:.2%}", "test accuracy"))
    if isinstance(metrics.get("test_loss"), (int, float)):
        cards.append((f"{metrics['test_loss']:.4f}", "test loss"))
    if history_rows is not None:
        epochs = len(history_columns(history_rows).get("loss", []))
        cards.append((str(epochs), "epochs trained"))
    if isinstance(metrics.get("train_seconds"), (int, float)):
        cards.append((f"{metrics['train_seconds']:.1f} s", "training time"))
    if isinstance(config.get("train_examples"), int):
        cards.append((f"{config['train_examples']:,}", "training images"))
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="value">{escape(v)}</div>'
            f'<div class="label">{escape(label)}</div></div>'
            for v, label in cards
        )
        + "</div>"
    )


def _embedded(data: bytes, mime: str) -> tuple[str, str]:
    """(data URI, its width and height attributes) of a PNG or GIF `data`: the size
    in CSS pixels it was drawn for, its pixels over its DPI times CSS_DPI (a GIF has
    no DPI: one CSS pixel a pixel); no attributes if Pillow cannot read it."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            dpi = image.info.get("dpi", (CSS_DPI, CSS_DPI))[0] or CSS_DPI
            width, height = (round(side * CSS_DPI / dpi) for side in image.size)
        size = f' width="{width}" height="{height}"'
    except (OSError, SyntaxError, ValueError):  # what Pillow raises on a bad file
        size = ""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}", size


def picture(
    data: bytes, alt: str, href: str | None = None, narrow=None, mime="image/png"
) -> str:
    """An <img> of the `mime` picture `data` as wide as it was drawn for (never
    wider than the window: the CSS), linked to `href` (its file) if given; `narrow`
    (a PNG's bytes, or None) is shown instead on a narrow window (NARROW_SCREEN)."""
    uri, size = _embedded(data, mime)
    img = f'<img src="{uri}"{size} alt="{escape(alt)}">'
    if narrow is not None:
        uri, size = _embedded(narrow, "image/png")
        img = (
            f'<picture><source media="{NARROW_SCREEN}" srcset="{uri}"{size}>'
            f"{img}</picture>"
        )
    if href is None:
        return img
    return f'<a class="picture" href="{escape(href)}">{img}</a>'


def _figure(figures_dir: Path, href_dir: str, alts: dict[str, str], name: str) -> str:
    """The picture `name` in a <figure>: embedded (with its NARROW version if drawn),
    linked to its file (`href_dir`: figures_dir as a URL relative to the page), its
    alt text from `alts` (what it shows), its caption under it (what it is for); ""
    if it was not drawn."""
    path = figures_dir / name
    if not path.is_file():
        return ""
    narrow_path = figures_dir / NARROW[name] if name in NARROW else None
    narrow = narrow_path.read_bytes() if narrow_path and narrow_path.is_file() else None
    caption = CAPTIONS.get(name, name)
    href = f"{href_dir}/{quote(name)}"
    mime = "image/gif" if path.suffix == ".gif" else "image/png"
    img = picture(path.read_bytes(), alts.get(name, caption), href, narrow, mime)
    scroll = ' class="scroll"' if name in SCROLL_ON_PHONE else ""
    return (
        f"<figure{scroll}>{img}"
        f'<figcaption>{escape(caption)} (<a href="{escape(href)}">full size</a>)'
        "</figcaption></figure>"
    )


def _href_dir(figures_dir: Path, page_dir: Path) -> str:
    """figures_dir as a URL relative to page_dir ("figures"), or a file:// URL if
    there is no relative path (another drive)."""
    try:
        return quote(Path(os.path.relpath(figures_dir, page_dir)).as_posix())
    except ValueError:
        return figures_dir.resolve().as_uri()


def write_report(
    path,
    figures_dir,
    config: dict,
    metrics: dict,
    history_rows=None,
    model_summary: str | None = None,
    run_dir=None,
) -> Path:
    """Write the page of a run to `path` (atomically); returns `path`.

    config and metrics: the run's settings (as recorded) and its test metrics, shown
    as tables. history_rows: rows, a `History` or its dict (None: no per-epoch
    table). Every picture found in `figures_dir` is embedded. The page names
    `run_dir` (default: the folder it is in) as the run directory.
    """
    path, figures_dir = Path(path), Path(figures_dir)
    run_dir = path.parent if run_dir is None else Path(run_dir)
    per_class = _per_class_rows(config, metrics)
    alts = alt_texts(
        history_rows,
        metrics.get("confusion_matrix"),
        [row.get("class", i) for i, row in enumerate(per_class)],
    )
    figure = partial(_figure, figures_dir, _href_dir(figures_dir, path.parent), alts)
    title = f"nnscratch run: {config.get('dataset', 'unknown dataset')}"
    if config.get("preset"):
        title += f", preset {config['preset']}"
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">Run directory <code>{escape(run_dir.resolve())}</code></p>',
        _cards(config, metrics, history_rows),
        *_training_section(figure, history_rows),
        *_test_set_section(figure, per_class, metrics),
        *_model_section(figure, config, model_summary),
    ]
    write_text(path, html_page(title, body))
    return path


# Image grids and the GIF get the full width: halved, their labels are too small.
# Each section is a list of HTML pieces, "" for a figure that was not drawn;
# figure(name) is a picture's <figure> (`_figure`).
def _training_section(figure, history_rows) -> list[str]:
    """The learning curves, the GIF and the per-epoch table (if there is a history)."""
    history_panel = ""
    if history_rows is not None:
        history_panel = (
            f'<div class="panel"><h3>Per epoch</h3>{_history_table(history_rows)}</div>'
        )
    return [
        "<h2>Training</h2>",
        '<div class="stack">',
        figure("learning_curves.png"),
        figure("training.gif"),
        history_panel,
        "</div>",
    ]


def _test_set_section(figure, per_class: list[dict], metrics: dict) -> list[str]:
    """Confusion matrices, per-class scores and metrics side by side, then the grids."""
    scalars = [(k, v) for k, v in metrics.items() if not isinstance(v, (dict, list))]
    return [
        "<h2>Test set</h2>",
        '<div class="stack"><div class="grid">',
        figure("confusion_matrix.png"),
        figure("confusion_matrix_normalized.png"),
        (
            f'<div class="panel"><h3>Per class</h3>{_per_class_table(per_class)}'
            f"<h3>Test metrics</h3>{_metrics_table(scalars)}</div>"
        ),
        figure("per_class.png"),
        "</div>",
        figure("sample_predictions.png"),
        figure("top_mistakes.png"),
        "</div>",
    ]


def _metrics_table(items) -> str:
    return html_table(
        ["metric", "value"],
        [[f"<th>{escape(k)}</th>", number_cell(k, v)] for k, v in items],
    )


def _model_section(figure, config: dict, model_summary: str | None) -> list[str]:
    """The first layer's weights, the layer summary (if known) and the configuration."""
    layers = (
        f"<h3>Layers</h3><pre>{escape(model_summary)}</pre>" if model_summary else ""
    )
    return [
        "<h2>Model</h2>",
        '<div class="stack">',
        figure("first_layer_features.png"),
        (
            f'<div class="panel">{layers}<h3>Configuration</h3>'
            f"{key_value_table(config.items())}</div>"
        ),
        "</div>",
    ]
