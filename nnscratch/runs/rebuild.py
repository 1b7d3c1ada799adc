"""`nnscratch report`: a finished run directory's figures and report.html drawn again
from its files (`rundir` names them), scoring the test set if the run did not."""

from __future__ import annotations

from pathlib import Path

from ..data.catalog import CLASS_NAMES, TEST_FILES, still_holding
from ..data.loading import load_test_set
from ..errors import NnscratchError
from ..nn.checkpoints import checkpoint_paths
from ..nn.loading import load_model
from ..reporting.recordings import Recordings
from .lock import LOCK_FILE, RunLock
from .rundir import (
    BATCH_LOSSES_FILE,
    CHECKPOINTS_DIR,
    CONFIG_FILE,
    HISTORY_FILE,
    INCOMING_DIR,
    METRICS_FILE,
    MODEL_FILE,
    RECORDINGS_FILE,
    read_csv,
    read_json,
    read_settings,
    recover,
    write_metrics,
    write_run_report,
)
from .scoring import check_scored_on, test_metrics
from .signals import resume_command


def rebuild_report(run_dir, data_dir=None) -> Path:
    """Redraw figures/ and report.html from a saved run directory; returns the page.

    Reads config.json, history.csv, batch_losses.csv, metrics.json, model.npz and
    recordings.npz if there is one, and reloads the test set, its two files only
    (from `data_dir`, else config's data_dir if it still holds them, else where
    `load_dataset` looks),
    refused if its class counts differ from metrics.json's confusion matrix. A run
    whose test set was not scored (a sweep's trial) is scored now, into its
    metrics.json.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise NnscratchError(f"{run_dir}: not a run directory (no such folder)")
    if not (run_dir / CONFIG_FILE).is_file() and not (run_dir / INCOMING_DIR).is_dir():
        _refuse_unfinished(run_dir)
    with RunLock(run_dir, "nnscratch report"):
        recover(run_dir)
        return _rebuild_report(run_dir, data_dir)


def _refuse_unfinished(run_dir: Path) -> None:
    """The one-line error for a run directory without config.json: a run training
    there now (its lock is held), an interrupted one, or no run at all."""
    if (run_dir / LOCK_FILE).is_file():  # no lock file made in a stranger's folder
        with RunLock(run_dir, "nnscratch report"):  # refuses if it trains now
            if checkpoint_paths(run_dir / CHECKPOINTS_DIR):
                raise NnscratchError(
                    f"{run_dir} holds an interrupted run, not a finished one: continue"
                    f" it with {resume_command(run_dir)}"
                )
    raise NnscratchError(
        f"{run_dir / CONFIG_FILE}: file not found in the run directory"
    )


def _rebuild_report(run_dir: Path, data_dir) -> Path:
    settings, config = read_settings(run_dir)
    metrics = read_json(run_dir / METRICS_FILE)
    history = read_csv(run_dir / HISTORY_FILE, ["epoch", "loss"])
    batch_path = run_dir / BATCH_LOSSES_FILE
    try:
        batch_losses = [float(r["loss"]) for r in read_csv(batch_path, ["loss"])]
    except (TypeError, ValueError) as e:
        raise NnscratchError(f"{batch_path}: a loss is not a number ({e})") from None
    model_path = run_dir / MODEL_FILE
    if not model_path.is_file():
        raise NnscratchError(f"{model_path}: file not found in the run directory")
    model = load_model(model_path)  # a damaged file is a ModelFileError naming it
    recordings = None
    if (run_dir / RECORDINGS_FILE).exists():
        recordings = Recordings.load(run_dir / RECORDINGS_FILE)
    # moved since: look where load_dataset looks by default
    recorded = still_holding(settings.dataset, config.get("data_dir"), TEST_FILES)
    test_set = load_test_set(settings.dataset, data_dir or recorded)
    where = f"--data-dir {data_dir}" if data_dir else recorded or "the usual places"
    check_scored_on(
        metrics, test_set[1], f"{settings.dataset} in {where}", run_dir / METRICS_FILE
    )
    probs = None  # predicted by write_run_report unless scored here
    if "test_accuracy" not in metrics:
        class_names = model.class_names or CLASS_NAMES[settings.dataset]
        scores, probs = test_metrics(model, *test_set, list(class_names))
        metrics.update(scores)
        write_metrics(run_dir, metrics)
    return write_run_report(
        run_dir, model, history, batch_losses, test_set, recordings, config, metrics,
        probs=probs,
    )  # fmt: skip
