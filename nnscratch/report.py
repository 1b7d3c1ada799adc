"""A training run's report: figures/*.png, figures/training.gif and report.html.

report.html is one self-contained page (images as base64 data URIs, inline CSS, no
external requests), so it can be mailed or opened offline. `rebuild_report` redraws
everything from the files of a saved run directory.
"""

from __future__ import annotations

import base64
import csv
import html
import json
from pathlib import Path

import click
import numpy as np

from .errors import NnscratchError
from .files import write_text
from .metrics import confusion_matrix
from .plots import (
    PredictionRecorder,
    Recordings,
    confusion_matrix_plot,
    first_layer_features,
    learning_curves,
    per_class_bars,
    sample_predictions,
    save_figure,
    top_mistakes,
    training_animation,
)

# (file name, caption) in page order; training.gif is added when recordings exist
FIGURES = [
    ("learning_curves.png", "Loss and accuracy per epoch, and the loss of every batch"),
    ("confusion_matrix.png", "Confusion matrix (counts)"),
    ("confusion_matrix_normalized.png", "Confusion matrix (% of each true class)"),
    ("per_class.png", "Precision and recall per class"),
    ("sample_predictions.png", "Predictions on the first test images"),
    ("top_mistakes.png", "The most confident mistakes"),
    ("first_layer_features.png", "What the first layer looks for"),
]
GIF = ("training.gif", "Training, epoch by epoch: loss and predictions on a few images")


def first_layer_weights(model) -> np.ndarray | None:
    """W of the first Dense or Conv2D layer, or None if the model has neither."""
    from .conv import Conv2D
    from .layers import Dense

    for layer in model.layers:
        if isinstance(layer, (Dense, Conv2D)):
            return layer.params["W"]
    return None


def write_figures(
    figures_dir,
    history,
    batch_losses,
    images,
    labels,
    probs,
    class_names,
    weights=None,
    recordings=None,
) -> list[tuple[str, str]]:
    """Draw every picture into `figures_dir`; returns [(file name, caption)] written.

    images (N, H, W), labels (N,), probs (N, C): the test set and its predictions.
    """
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    cm = confusion_matrix(labels, probs.argmax(axis=1), len(class_names))
    figures = {
        "learning_curves.png": lambda: learning_curves(history, batch_losses),
        "confusion_matrix.png": lambda: confusion_matrix_plot(cm, class_names),
        "confusion_matrix_normalized.png": lambda: confusion_matrix_plot(
            cm, class_names, normalize=True
        ),
        "per_class.png": lambda: per_class_bars(cm, class_names),
        "sample_predictions.png": lambda: sample_predictions(
            images, labels, probs, class_names
        ),
        "top_mistakes.png": lambda: top_mistakes(images, labels, probs, class_names),
        "first_layer_features.png": lambda: first_layer_features(weights),
    }
    written = []
    for name, caption in FIGURES:
        if name == "first_layer_features.png" and weights is None:
            continue
        save_figure(figures[name](), figures_dir / name)
        written.append((name, caption))
    if recordings is not None:
        training_animation(figures_dir / GIF[0], recordings)
        written.append(GIF)
    return written


def write_run_report(
    run_dir, model, history, x_test, y_test, class_names, recorder=None
) -> Path:
    """Figures, recordings.npz and report.html of a finished run; returns the page path.

    x_test (N, H, W), y_test (N,). recorder: the fit's `PredictionRecorder` (or its
    `Recordings`, or None for no animation). config.json and metrics.json must exist.
    """
    run_dir = Path(run_dir)
    recordings = recorder
    if isinstance(recorder, PredictionRecorder):
        recordings = recorder.recordings(
            None if recorder.labels is not None else y_test
        )
    if recordings is not None:
        recordings.save(run_dir / "recordings.npz")
    probs = model.predict(x_test)
    figures = write_figures(
        run_dir / "figures",
        history,
        history.batch_losses,
        x_test,
        y_test,
        probs,
        class_names,
        first_layer_weights(model),
        recordings,
    )
    config = _read_json(run_dir / "config.json")
    metrics = _read_json(run_dir / "metrics.json")
    return write_page(run_dir, config, metrics, figures)


# ----- reading a saved run -------------------------------------------------------------
def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NnscratchError(f"{path}: file not found in the run directory") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise NnscratchError(f"{path}: not a readable JSON file ({e})") from None
    if not isinstance(value, dict):
        raise NnscratchError(f"{path}: expected a JSON object")
    return value


def _read_csv(path: Path, columns: list[str]) -> list[dict]:
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise NnscratchError(f"{path}: file not found in the run directory") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise NnscratchError(f"{path}: not a readable CSV file ({e})") from None
    if not rows or any(c not in rows[0] for c in columns):
        raise NnscratchError(f"{path}: expected a header with {', '.join(columns)}")
    return rows


def rebuild_report(run_dir, data_dir=None) -> Path:
    """Redraw figures/ and report.html from a saved run directory; returns the page.

    Reads config.json, history.csv, batch_losses.csv, metrics.json, model.npz and
    recordings.npz, and reloads the test set (from `data_dir` or config's data_dir).
    """
    from .datasets import CLASS_NAMES, load_dataset
    from .serialization import load_model

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise NnscratchError(f"{run_dir}: not a run directory (no such folder)")
    config = _read_json(run_dir / "config.json")
    metrics = _read_json(run_dir / "metrics.json")
    if "dataset" not in config:
        raise NnscratchError(f"{run_dir / 'config.json'}: has no 'dataset' setting")
    history = _read_csv(run_dir / "history.csv", ["epoch", "loss"])
    batch_path = run_dir / "batch_losses.csv"
    try:
        batch_losses = [float(r["loss"]) for r in _read_csv(batch_path, ["loss"])]
    except ValueError as e:
        raise NnscratchError(f"{batch_path}: a loss is not a number ({e})") from None
    model = load_model(run_dir / "model.npz")
    recordings = Recordings.load(run_dir / "recordings.npz")
    _, (x_test, y_test) = load_dataset(
        config["dataset"], data_dir or config.get("data_dir")
    )
    class_names = model.class_names or CLASS_NAMES[config["dataset"]]
    figures = write_figures(
        run_dir / "figures",
        history,
        batch_losses,
        x_test,
        y_test,
        model.predict(x_test),
        class_names,
        first_layer_weights(model),
        recordings,
    )
    return write_page(run_dir, config, metrics, figures)


# ----- the page -------------------------------------------------------------------------
CSS = """
body { font: 15px/1.45 system-ui, sans-serif; color: #1a1a1a; margin: 0 auto;
  max-width: 1300px; padding: 1.5em; background: #fafafa; }
h1 { margin-top: 0; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; }
table { border-collapse: collapse; margin: .5em 0 1.5em; background: white; }
th, td { border: 1px solid #ddd; padding: .3em .8em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #eef2f6; }
.cols { display: flex; gap: 2em; flex-wrap: wrap; align-items: flex-start; }
figure { margin: 0 0 2em; background: white; padding: .8em; border: 1px solid #ddd; }
figure img { max-width: 100%; height: auto; display: block; }
figcaption { color: #444; margin-top: .4em; }
code { font-size: 90%; }
"""


def _cell(value) -> str:
    if isinstance(value, float):
        return f'<td class="num">{value:.4g}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value:,}</td>'
    if isinstance(value, (dict, list)):
        value = json.dumps(value)
    return f"<td><code>{html.escape(str(value))}</code></td>"


def _key_value_table(items) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th>{_cell(v)}</tr>" for k, v in items
    )
    return f"<table>{rows}</table>"


def _per_class_table(rows: list[dict]) -> str:
    head = "<tr><th>class</th><th>precision</th><th>recall</th><th>F1</th>"
    head += "<th>support</th></tr>"
    body = ""
    for row in rows:
        body += f"<tr><th>{html.escape(str(row.get('class', '')))}</th>"
        for key in ("precision", "recall", "f1"):
            value = row.get(key)
            text = f"{value:.2%}" if isinstance(value, (int, float)) else ""
            body += f'<td class="num">{text}</td>'
        body += _cell(row.get("support", ""))
        body += "</tr>"
    return f"<table>{head}{body}</table>"


def _data_uri(path: Path) -> str:
    mime = "image/gif" if path.suffix == ".gif" else "image/png"
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def write_page(run_dir, config: dict, metrics: dict, figures) -> Path:
    """Write run_dir/report.html from the settings, test metrics and figures/ files."""
    run_dir = Path(run_dir)
    summary = [
        (k, v)
        for k, v in metrics.items()
        if k not in ("confusion_matrix", "per_class")
        and not isinstance(v, (dict, list))
    ]
    accuracy = metrics.get("test_accuracy")
    title = f"nnscratch run: {config.get('dataset', '?')}"
    if isinstance(accuracy, (int, float)):
        title += f", test accuracy {accuracy:.2%}"
    pictures = "".join(
        f'<figure><img src="{_data_uri(run_dir / "figures" / name)}"'
        f' alt="{html.escape(caption)}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
        for name, caption in figures
    )
    page = (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<p>Run directory <code>{html.escape(str(run_dir))}</code></p>"
        '<div class="cols"><section><h2>Test metrics</h2>'
        f"{_key_value_table(summary)}"
        "<h2>Per class</h2>"
        f"{_per_class_table(metrics.get('per_class') or [])}</section>"
        f"<section><h2>Configuration</h2>{_key_value_table(config.items())}</section>"
        f"</div><h2>Figures</h2>{pictures}</body></html>\n"
    )
    path = run_dir / "report.html"
    write_text(path, page)
    return path


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder with the test set (default: the one the run was trained on).",
)
def report_command(run_dir: Path, data_dir: Path | None) -> None:
    """Rebuild the figures and report.html of a training run directory."""
    click.echo(str(rebuild_report(run_dir, data_dir)))
