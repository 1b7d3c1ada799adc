"""A training run's report: figures/*.png, figures/training.gif and report.html.

`write_run_report` draws every picture of a run just trained and writes the page
(`report_page.write_report`); `rebuild_report` (and `nnscratch report`) does the same
from the files of a saved run directory, without training again.
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

from ..data.catalog import CLASS_NAMES, find_dataset
from ..data.loading import load_dataset
from ..errors import NnscratchError
from ..nn import checked
from ..nn.conv import Conv2D
from ..nn.dense import Dense
from ..nn.loading import load_model
from .animation import PredictionRecorder, Recordings, training_animation
from .confusion import confusion_matrix_plot, per_class_bars
from .curves import learning_curves
from .figures import save_figure
from .image_grids import first_layer_features, sample_predictions, top_mistakes
from .metrics import confusion_matrix
from .page import CAPTIONS, read_csv, read_json, write_report

RECORDINGS_FILE = "recordings.npz"
FIGURE_FILES = tuple(CAPTIONS)  # every picture a report can hold, in figures/


def first_layer_weights(model) -> np.ndarray | None:
    """W of the first Dense or Conv2D layer, or None if the model has neither."""
    for layer in model.layers:
        if isinstance(layer, (Dense, Conv2D)):
            return layer.params["W"]
    return None


def write_figures(
    run_dir,
    model,
    history_rows,
    batch_losses,
    x_test,
    y_test,
    class_names,
    recordings=None,
) -> list[Path]:
    """Draw every picture into run_dir/figures/; returns the files written. Pictures
    of an earlier report that this one has not (no recordings: no training.gif) go.

    history_rows: history.csv rows, a `History` or its dict of per-epoch lists.
    batch_losses: (steps,) or None. x_test (N, H, W), y_test (N,): the test set.
    recordings: a `Recordings` (or None: no training.gif).
    """
    figures_dir = Path(run_dir) / "figures"
    figures_dir.mkdir(parents=True, exist_ok=True)
    probs = checked.predict(model, x_test)
    cm = confusion_matrix(y_test, probs.argmax(axis=1), len(class_names))
    draw = {
        "learning_curves.png": lambda: learning_curves(history_rows, batch_losses),
        "confusion_matrix.png": lambda: confusion_matrix_plot(cm, class_names),
        "confusion_matrix_normalized.png": lambda: confusion_matrix_plot(
            cm, class_names, normalize=True
        ),
        "per_class.png": lambda: per_class_bars(cm, class_names),
        "sample_predictions.png": lambda: sample_predictions(
            x_test, y_test, probs, class_names
        ),
        "top_mistakes.png": lambda: top_mistakes(x_test, y_test, probs, class_names),
    }
    weights = first_layer_weights(model)
    if weights is not None:
        draw["first_layer_features.png"] = lambda: first_layer_features(weights)
    written = [save_figure(make(), figures_dir / name) for name, make in draw.items()]
    if recordings is not None:
        written.append(training_animation(figures_dir / "training.gif", recordings))
    for name in FIGURE_FILES:
        if figures_dir / name not in written:
            (figures_dir / name).unlink(missing_ok=True)
    return written


def write_run_report(
    run_dir, model, history, x_test, y_test, class_names, recorder=None
) -> Path:
    """Figures, recordings.npz and report.html of a finished run; returns the page path.

    history: the fit's `History`. x_test (N, H, W), y_test (N,). recorder: the fit's
    `PredictionRecorder` (or its `Recordings`, or None for no animation).
    config.json and metrics.json must already be in run_dir.
    """
    run_dir = Path(run_dir)
    recordings = recorder
    if isinstance(recorder, PredictionRecorder):
        recordings = recorder.recordings(
            None if recorder.labels is not None else y_test
        )
    if recordings is not None:
        recordings.save(run_dir / RECORDINGS_FILE)
    write_figures(
        run_dir,
        model,
        history,
        history.batch_losses,
        x_test,
        y_test,
        class_names,
        recordings,
    )
    return write_report(run_dir, history_rows=history, model_summary=_summary(model))


def _summary(model) -> str | None:
    try:
        return model.summary()
    except NnscratchError:  # input shape unknown: the page does without
        return None


def rebuild_report(run_dir, data_dir=None) -> Path:
    """Redraw figures/ and report.html from a saved run directory; returns the page.

    Reads config.json, history.csv, batch_losses.csv, metrics.json, model.npz and
    recordings.npz if there is one, and reloads the test set (from `data_dir`, else
    config's data_dir if it still holds the files, else where `load_dataset` looks).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise NnscratchError(f"{run_dir}: not a run directory (no such folder)")
    config = read_json(run_dir / "config.json")
    metrics = read_json(run_dir / "metrics.json")
    if config.get("dataset") not in CLASS_NAMES:
        raise NnscratchError(
            f"{run_dir / 'config.json'}: 'dataset' must be one of"
            f" {', '.join(CLASS_NAMES)}, got {config.get('dataset')!r}"
        )
    history = read_csv(run_dir / "history.csv", ["epoch", "loss"])
    batch_path = run_dir / "batch_losses.csv"
    try:
        batch_losses = [float(r["loss"]) for r in read_csv(batch_path, ["loss"])]
    except (TypeError, ValueError) as e:
        raise NnscratchError(f"{batch_path}: a loss is not a number ({e})") from None
    model_path = run_dir / "model.npz"
    if not model_path.is_file():
        raise NnscratchError(f"{model_path}: file not found in the run directory")
    model = load_model(model_path)  # a damaged file is a ModelFileError naming it
    recordings = None
    if (run_dir / RECORDINGS_FILE).exists():
        recordings = Recordings.load(run_dir / RECORDINGS_FILE)
    recorded = config.get("data_dir")
    if recorded and find_dataset(config["dataset"], recorded) is None:
        recorded = None  # moved since: look where load_dataset looks by default
    _, (x_test, y_test) = load_dataset(config["dataset"], data_dir or recorded)
    class_names = model.class_names or CLASS_NAMES[config["dataset"]]
    write_figures(
        run_dir,
        model,
        history,
        batch_losses,
        x_test,
        y_test,
        class_names,
        recordings,
    )
    return write_report(
        run_dir, config, metrics, history_rows=history, model_summary=_summary(model)
    )


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
