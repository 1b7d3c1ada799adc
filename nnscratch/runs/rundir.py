"""The run directory: the name of every file in it, making it, writing and reading its
files (`rebuild` redraws its report from them).

    config.json        every setting (RunSettings.to_dict), where the data was found
                       (data_dir) and how many images trained the model (train_examples)
    model.npz          the trained model (its metadata holds config.json's dict too)
    history.csv        one row per epoch (HISTORY_COLUMNS)
    batch_losses.csv   the loss of every step
    metrics.json       test loss and accuracy, confusion matrix, per-class scores
    recordings.npz     the predictions on a few test images after every epoch
    report.html        the page, with figures/ (reporting.report.FIGURE_FILES)
    checkpoints/       while the run trains: its last checkpoints (`nn.checkpoints`)
    .incoming/         while it writes the files above: them, before they replace
                       those of the run there before (`commit_incoming`)
    .lock              the lock of the command working there (`lock.RunLock`)

recordings.npz, report.html and figures/ only when the run writes a report. A run
is finished when it has model.npz and metrics.json and no checkpoints/.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import time
from pathlib import Path

from ..data.catalog import CLASS_NAMES
from ..errors import NnscratchError
from ..files import fsync_directory, remove_temp_files, write_text
from ..nn.checkpoints import checkpoint_paths
from ..reporting.page import write_report
from ..reporting.recordings import Recordings
from ..reporting.report import FIGURE_FILES, model_summary, write_figures
from .settings import RunSettings
from .signals import resume_command

CONFIG_FILE = "config.json"
MODEL_FILE = "model.npz"
HISTORY_FILE = "history.csv"
BATCH_LOSSES_FILE = "batch_losses.csv"
METRICS_FILE = "metrics.json"
RECORDINGS_FILE = "recordings.npz"
REPORT_FILE = "report.html"
FIGURES_DIR = "figures"
CHECKPOINTS_DIR = "checkpoints"
INCOMING_DIR = ".incoming"
COMMITTED_FILE = "committed.json"  # in .incoming/: written last, lists its files

HISTORY_COLUMNS = [
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "lr",
    "seconds",
]


# ----- making it ------------------------------------------------------------------------
def make_run_dir(out, name: str) -> Path:
    """Create the run directory: `out` (it may exist), or runs/<date>-<time>-<name>
    (with -2, -3, ... if a run started in the same second)."""
    if out is None:
        base = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{name}"
        for attempt in range(1, 1000):
            run_dir = base if attempt == 1 else base.with_name(f"{base.name}-{attempt}")
            try:
                run_dir.mkdir(parents=True)
                return run_dir
            except FileExistsError:
                continue
        raise NnscratchError(f"too many runs named {base}-*")
    run_dir = Path(out)
    make_out(run_dir, "the run directory")
    return run_dir


def make_out(folder: Path, what: str) -> None:
    """Make the --out `folder` (and its parents); a one-line NnscratchError naming
    --out and `what` it is when it cannot be made."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a file in the way, no permission, a read-only disk...
        raise NnscratchError(
            f"--out {folder}: cannot make {what} ({e.strerror or e})"
        ) from None


def claim_run_dir(run_dir: Path, overwrite: bool = False) -> None:
    """Make `run_dir` ready for a new run (its lock held): tidy after a killed
    process (`recover`), then refuse a run that is there, unless `overwrite`. The
    files of a finished run stay until the new run has finished and replaces them;
    an interrupted run's checkpoints go now."""
    recover(run_dir)
    old = run_files(run_dir)
    interrupted = checkpoint_paths(run_dir / CHECKPOINTS_DIR)
    if interrupted and not overwrite:
        raise NnscratchError(
            f"--out {run_dir} holds an interrupted run: continue it with "
            f"{resume_command(run_dir)}, or pass --overwrite to replace it"
        )
    if old and not overwrite:
        raise NnscratchError(
            f"--out {run_dir} already holds a run ({', '.join(p.name for p in old[:3])}"
            f"{', ...' if len(old) > 3 else ''}): choose another folder, or pass "
            "--overwrite to replace it"
        )
    shutil.rmtree(run_dir / CHECKPOINTS_DIR, ignore_errors=True)


def run_files(run_dir: Path) -> list[Path]:
    """The files of a run found in run_dir (what a new run there replaces)."""
    names = [CONFIG_FILE, MODEL_FILE, HISTORY_FILE, BATCH_LOSSES_FILE, METRICS_FILE]
    paths = [run_dir / name for name in [*names, RECORDINGS_FILE, REPORT_FILE]]
    paths += [run_dir / FIGURES_DIR / name for name in FIGURE_FILES]
    return [p for p in paths if p.is_file()]


def holds_run(run_dir: Path) -> bool:
    """Whether run_dir holds a run to resume or a finished one: a checkpoint, files
    on their way into place, or the model. An empty checkpoints folder is not one: a
    process killed before the first checkpoint was written leaves one."""
    return bool(checkpoint_paths(run_dir / CHECKPOINTS_DIR)) or any(
        (run_dir / name).exists() for name in (INCOMING_DIR, MODEL_FILE)
    )


def is_finished(run_dir: Path) -> bool:
    """Whether run_dir holds a finished run and no interrupted one."""
    return (
        (run_dir / MODEL_FILE).is_file()
        and (run_dir / METRICS_FILE).is_file()
        and not checkpoint_paths(run_dir / CHECKPOINTS_DIR)
    )


# ----- replacing the run there by the new one ---------------------------------------------
def incoming_dir(run_dir: Path) -> Path:
    """An empty .incoming/ for the finished run's files (`commit_incoming`)."""
    incoming = run_dir / INCOMING_DIR
    shutil.rmtree(incoming, ignore_errors=True)
    incoming.mkdir()
    return incoming


def commit_incoming(run_dir: Path) -> None:
    """Put the files of .incoming/ in place of the run's: the list of them is written
    (the moment the new run replaces the old one), then they are moved, the old
    run's other files and the checkpoints deleted. A process killed meanwhile
    leaves that list, and the next command there finishes the job (`recover`)."""
    incoming = run_dir / INCOMING_DIR
    names = sorted(
        p.relative_to(incoming).as_posix() for p in incoming.rglob("*") if p.is_file()
    )
    fsync_directory(incoming)
    write_text(incoming / COMMITTED_FILE, json.dumps(names))
    _move_incoming(run_dir, names)


def _move_incoming(run_dir: Path, names: list[str]) -> None:
    incoming = run_dir / INCOMING_DIR
    for name in names:
        if (incoming / name).is_file():
            (run_dir / name).parent.mkdir(exist_ok=True)
            os.replace(incoming / name, run_dir / name)
    for path in run_files(run_dir):
        if path.relative_to(run_dir).as_posix() not in names:
            path.unlink()
    figures = run_dir / FIGURES_DIR
    if figures.is_dir() and not any(figures.iterdir()):
        figures.rmdir()  # a run without a report has no figures/
    fsync_directory(run_dir)
    shutil.rmtree(run_dir / CHECKPOINTS_DIR, ignore_errors=True)
    shutil.rmtree(incoming)


def recover(run_dir: Path) -> None:
    """Tidy up after a process killed in run_dir (its lock held): finish replacing
    the run if the new one's files were all written (`commit_incoming`), else drop
    them; delete the temporary files of interrupted writes."""
    for folder in (run_dir, run_dir / FIGURES_DIR, run_dir / CHECKPOINTS_DIR):
        if folder.is_dir():
            remove_temp_files(folder)
    incoming = run_dir / INCOMING_DIR
    try:
        names = json.loads((incoming / COMMITTED_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        names = None  # not committed: the checkpoints still hold the run
    if isinstance(names, list) and all(isinstance(n, str) for n in names):
        _move_incoming(run_dir, names)
    shutil.rmtree(incoming, ignore_errors=True)


# ----- writing its files ----------------------------------------------------------------
def run_config(settings: RunSettings, data_dir, train_examples: int) -> dict:
    """config.json's dict: the settings and the run's facts (RUN_FACTS)."""
    return {
        **settings.to_dict(),
        "data_dir": str(data_dir),
        "train_examples": train_examples,
    }


def write_config(run_dir: Path, config: dict) -> None:
    write_text(run_dir / CONFIG_FILE, json.dumps(config, indent=2) + "\n")


def write_metrics(run_dir: Path, metrics: dict) -> None:
    write_text(run_dir / METRICS_FILE, json.dumps(metrics, indent=2) + "\n")


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
    """history.csv (one row per epoch) and batch_losses.csv (one per step)."""
    rows = history_rows(history)
    write_text(
        run_dir / HISTORY_FILE,
        _csv_text(HISTORY_COLUMNS, [[row[k] for k in HISTORY_COLUMNS] for row in rows]),
    )
    write_text(
        run_dir / BATCH_LOSSES_FILE,
        _csv_text(
            ["step", "loss"], [[i + 1, v] for i, v in enumerate(history.batch_losses)]
        ),
    )


def _csv_text(header: list[str], rows: list[list]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def write_run_report(
    run_dir: Path,
    model,
    history_rows,
    batch_losses,
    test_set: tuple,
    recordings: Recordings | None,
    config: dict,
    metrics: dict,
    shown_dir: Path | None = None,
    after_each=None,
    probs=None,
) -> Path:
    """Draw figures/ and write report.html of a run; returns the page's path.

    history_rows: a `History` or history.csv's rows; batch_losses: (steps,).
    test_set: x_test (N, H, W), y_test (N,). recordings: a `Recordings` (None: no
    animation). config and metrics: what config.json and metrics.json hold.
    shown_dir: the run directory the page names (default: run_dir). after_each():
    called after each picture (`write_figures`). probs: the model's (N, C)
    probabilities of x_test if known (None: predicted here).
    """
    x_test, y_test = test_set
    class_names = model.class_names or CLASS_NAMES[config["dataset"]]
    figures_dir = run_dir / FIGURES_DIR
    write_figures(
        figures_dir, model, history_rows, batch_losses, x_test, y_test, class_names,
        recordings, after_each, probs,
    )  # fmt: skip
    return write_report(
        run_dir / REPORT_FILE,
        figures_dir,
        config,
        metrics,
        history_rows=history_rows,
        model_summary=model_summary(model),
        run_dir=shown_dir,
    )


# ----- reading it -----------------------------------------------------------------------
def read_json(path: Path) -> dict:
    """A run's JSON file (config.json, metrics.json) as a dict; NnscratchError if not."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise NnscratchError(f"{path}: file not found in the run directory") from None
    except (OSError, ValueError, RecursionError) as e:
        # ValueError: bad JSON, bad UTF-8 or an integer of thousands of digits
        reason = "nested too deeply" if isinstance(e, RecursionError) else e
        raise NnscratchError(f"{path}: not a readable JSON file ({reason})") from None
    if not isinstance(value, dict):
        raise NnscratchError(f"{path}: expected a JSON object")
    return value


def read_csv(path: Path, columns: list[str]) -> list[dict]:
    """A run's CSV file as rows of {column: text}; it must have `columns` and a row."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except FileNotFoundError:
        raise NnscratchError(f"{path}: file not found in the run directory") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise NnscratchError(f"{path}: not a readable CSV file ({e})") from None
    if not rows or any(c not in rows[0] for c in columns):
        raise NnscratchError(
            f"{path}: expected a header with {', '.join(columns)} and at least one row"
        )
    return rows


def read_settings(run_dir: Path) -> tuple[RunSettings, dict]:
    """A run's settings, checked, and config.json's dict as written."""
    path = run_dir / CONFIG_FILE
    config = read_json(path)
    try:
        return RunSettings.from_dict(config), config
    except NnscratchError as e:
        raise NnscratchError(f"{path}: {e}") from None
