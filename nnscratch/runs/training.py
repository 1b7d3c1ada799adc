"""A whole training run as `nnscratch train` does it: data, model, fit, run directory.

Run directory contents: config.json (every setting), history.csv (one row per epoch),
batch_losses.csv, metrics.json (test metrics, confusion matrix, per-class scores),
model.npz, and unless disabled figures/, report.html and recordings.npz (the
predictions on a few test images after every epoch, for figures/training.gif).
"""

from __future__ import annotations

import csv
import io
import json
import time
from pathlib import Path

from ..data.augment import Augment
from ..data.catalog import CLASS_NAMES
from ..data.loading import load_dataset, locate_dataset, train_validation_split
from ..errors import NnscratchError
from ..files import write_text
from ..nn import checked
from ..reporting.metrics import confusion_matrix, per_class_rows
from .presets import build_model, build_optimizer, build_schedule, settings_used
from ..reporting.report import FIGURE_FILES, RECORDINGS_FILE
from ..reporting.page import REPORT_FILE
from ..reporting.animation import PredictionRecorder
from ..reporting.report import write_run_report

HISTORY_COLUMNS = [
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
    "seconds",
]


# what a run directory holds besides the report's files (recordings, page, figures/)
RUN_FILES = (
    "config.json",
    "model.npz",
    "history.csv",
    "batch_losses.csv",
    "metrics.json",
)


def default_run_dir(settings: dict) -> Path:
    return Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{settings['preset']}"


def make_run_dir(out, settings: dict, overwrite: bool = False) -> Path:
    """Create the run directory: `out`, or runs/<date>-<time>-<preset> (with -2, -3,
    ... if a run started in the same second). An `out` that holds a run is refused,
    or with `overwrite` emptied of that run's files, so no stale file stays beside
    the new ones."""
    if out is None:
        base = default_run_dir(settings)
        for attempt in range(1, 1000):
            run_dir = base if attempt == 1 else base.with_name(f"{base.name}-{attempt}")
            try:
                run_dir.mkdir(parents=True)
                return run_dir
            except FileExistsError:
                continue
        raise NnscratchError(f"too many runs named {base}-*")
    run_dir = Path(out)
    old = _run_files(run_dir)
    if old and not overwrite:
        raise NnscratchError(
            f"--out {run_dir} already holds a run ({', '.join(p.name for p in old[:3])}"
            f"{', ...' if len(old) > 3 else ''}): choose another folder, or pass "
            "--overwrite to replace it"
        )
    for path in old:
        path.unlink()
    figures = run_dir / "figures"
    if figures.is_dir() and not any(figures.iterdir()):
        figures.rmdir()  # a run without a report has no figures/
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def _run_files(run_dir: Path) -> list[Path]:
    """The files of an earlier run in run_dir (what `make_run_dir` replaces)."""
    names = [*RUN_FILES, RECORDINGS_FILE, REPORT_FILE]
    paths = [run_dir / name for name in names]
    paths += [run_dir / "figures" / name for name in FIGURE_FILES]
    return [p for p in paths if p.is_file()]


def _csv_text(header: list[str], rows: list[list]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def history_rows(history) -> list[dict]:
    """One dict per epoch with HISTORY_COLUMNS (epochs counted from 1)."""
    rows = []
    for i, epoch in enumerate(history.epoch):
        row = {"epoch": epoch + 1}
        for key in HISTORY_COLUMNS[1:]:
            values = history.history.get(key)
            row[key] = values[i] if values else ""
        rows.append(row)
    return rows


def write_history(run_dir: Path, history) -> None:
    rows = history_rows(history)
    write_text(
        run_dir / "history.csv",
        _csv_text(HISTORY_COLUMNS, [[row[k] for k in HISTORY_COLUMNS] for row in rows]),
    )
    write_text(
        run_dir / "batch_losses.csv",
        _csv_text(
            ["step", "loss"], [[i + 1, v] for i, v in enumerate(history.batch_losses)]
        ),
    )


def test_metrics(model, x_test, y_test, class_names) -> dict:
    """Test loss, accuracy, confusion matrix and per-class scores as JSON values."""
    result = checked.evaluate(model, x_test, y_test)
    predicted = checked.predict(model, x_test).argmax(axis=1)
    cm = confusion_matrix(y_test, predicted, len(class_names))
    return {
        "test_loss": result["loss"],
        "test_accuracy": result["accuracy"],
        "test_examples": len(y_test),
        "confusion_matrix": cm.tolist(),
        "per_class": per_class_rows(cm, class_names),
    }


def _callbacks(x_test, report: bool) -> list:
    if not report:
        return []
    return [PredictionRecorder(x_test)]


def run_training(
    settings: dict,
    data_dir=None,
    out=None,
    limit=None,
    report=True,
    verbose=1,
    overwrite=False,
) -> dict:
    """Train as `settings` says, write the run directory, print and return the metrics.

    Every setting is checked (optimiser, schedule, augmentation, then the model)
    before the run directory is made, so a bad one leaves nothing behind.
    """
    dataset = settings["dataset"]
    augment_spec = Augment.resolve_spec(settings.get("augment"), dataset)
    if augment_spec is None:  # a preset without augmentation ("" stays, an error)
        augment_spec = "none"
    settings = {**settings, "augment": augment_spec}
    optimizer, schedule = build_optimizer(settings), build_schedule(settings)
    augment = _augment(settings)
    # found once: the folder is recorded (absolute, so that `nnscratch report` can
    # reload the test set from wherever it runs) and read
    folder = locate_dataset(dataset, data_dir).absolute()
    (x_train, y_train), (x_test, y_test) = load_dataset(dataset, folder)
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
    class_names = list(CLASS_NAMES[dataset])
    validation = None
    if settings["validation_split"]:
        (x_train, y_train), validation = train_validation_split(
            x_train, y_train, settings["validation_split"], seed=settings["seed"]
        )
    model = build_model(settings, x_train.shape[1:], class_names)
    run_dir = make_run_dir(out, settings, overwrite)
    settings = {**settings_used(settings), "data_dir": str(folder)}
    settings["train_examples"] = len(x_train)
    write_text(run_dir / "config.json", json.dumps(settings, indent=2) + "\n")
    model.metadata = {"training": settings}
    if verbose:
        print(f"training on {len(x_train):,} {dataset} images; run directory {run_dir}")
        print(model.summary())
    callbacks = _callbacks(x_test, report)
    started = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        epochs=settings["epochs"],
        batch_size=settings["batch_size"] or len(x_train),
        optimizer=optimizer,
        lr_schedule=schedule,
        validation_data=validation,
        seed=settings["seed"],
        augment=augment,
        callbacks=callbacks,
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - started
    model.save(run_dir / "model.npz")
    write_history(run_dir, history)
    metrics = test_metrics(model, x_test, y_test, class_names)
    metrics["train_seconds"] = train_seconds
    write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    if report:
        write_run_report(
            run_dir, model, history, x_test, y_test, class_names, callbacks[0]
        )
    print(
        f"test accuracy {metrics['test_accuracy']:.4f} on {len(y_test):,} {dataset} test "
        f"images (loss {metrics['test_loss']:.4f}); trained in {train_seconds:.1f}s; "
        f"saved {run_dir / 'model.npz'}"
    )
    return metrics


def _augment(settings: dict):
    spec = settings.get("augment")
    if spec is None or spec.strip().lower() == "none":
        return None  # not an identity Augment, which would copy every batch
    return Augment.from_spec(spec)  # an empty or malformed text is an error there
