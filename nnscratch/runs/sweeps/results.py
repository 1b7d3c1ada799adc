"""A sweep's results in its folder: trials.csv, best/ and report.html.

trials.csv   one row per trial: number, state, every parameter, val_accuracy
             (the last epoch's), epochs trained (epochs_trained when epochs is a
             parameter), seconds (of training), run_dir and the error of a failed
             trial
best/        a copy of the best trial's run directory (by validation accuracy),
             with its figures and report.html; its metrics.json has the test
             accuracy, the only one the sweep scores (trials score their
             validation images only)
report.html  the sweep's page (`report`)
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
from pathlib import Path

from ...files import fsync_directory, write_text
from ..rebuild import rebuild_report
from ..rundir import METRICS_FILE, read_json, run_files
from .report import write_sweep_report
from .space import used_params
from .trial import TRIAL_FILE, TRIALS_DIR, trial_dir

TRIALS_CSV = "trials.csv"
BEST_DIR = "best"
REPORT_FILE = "report.html"


@dataclasses.dataclass
class SweepResult:
    """What a sweep found: the Optuna `study`, the best trial's `number`, `params` and
    `val_accuracy`, the `test_accuracy` of its model, and its `run_dir` (DIR/best).
    None of the best's when no trial completed."""

    study: object
    best_number: int | None
    best_params: dict | None
    val_accuracy: float | None
    test_accuracy: float | None
    run_dir: Path | None
    trials_csv: Path
    report: Path


def epochs_column(space_names: list[str]) -> str:
    """The column of the epochs a trial trained: "epochs", unless epochs is searched
    (its column is then the parameter's)."""
    return "epochs_trained" if "epochs" in space_names else "epochs"


def trial_rows(study, space_names: list[str], out: Path) -> list[dict]:
    """trials.csv's rows, by trial number."""
    trained = epochs_column(space_names)
    rows = []
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        params = _used_params(study, trial.params)
        recorded = _trial_file(trial_dir(out, trial.number))
        value = trial.value
        if value is None and trial.intermediate_values:  # pruned: its last epoch's
            value = trial.intermediate_values[max(trial.intermediate_values)]
        rows.append({
            "number": trial.number, "state": trial.state.name.lower(),
            **{name: params.get(name, "") for name in space_names},
            "val_accuracy": "" if value is None else value,
            trained: recorded.get("epochs", ""),
            "seconds": recorded.get("seconds", ""),
            "run_dir": os.path.join(TRIALS_DIR, trial_dir(out, trial.number).name),
            "error": trial.user_attrs.get("error", ""),
        })  # fmt: skip
    return rows


def _used_params(study, params: dict) -> dict:
    """`params` without those the trial's optimiser does not take (`used_params`),
    by the base settings the study recorded (all of them if it recorded none)."""
    setup = study.user_attrs.get("setup")
    base = setup.get("base") if isinstance(setup, dict) else None
    return used_params(base, params) if isinstance(base, dict) else dict(params)


def _trial_file(run_dir: Path) -> dict:
    """The TRIAL_FILE a trial's run directory holds ({} before it finished)."""
    try:
        recorded = json.loads((run_dir / TRIAL_FILE).read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return recorded if isinstance(recorded, dict) else {}


def write_trials_csv(path: Path, rows: list[dict], columns: list[str]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text(path, buffer.getvalue())


def copy_best(out: Path, number: int, data_dir) -> Path:
    """DIR/best: the run files of trial `number` with its report; replaced whole
    (a copy beside it, then renames), kept when it already is that trial's."""
    best = out / BEST_DIR
    if _trial_file(best).get("number") == number and (best / REPORT_FILE).is_file():
        return best
    source = trial_dir(out, number)
    staging = out / f".{BEST_DIR}.incoming"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        for path in [*run_files(source), source / TRIAL_FILE]:
            shutil.copy2(path, staging / path.name)
        # the figures and page of an ordinary run, and the test set scored
        rebuild_report(staging, data_dir)
    except BaseException:  # Ctrl-C too: no half-made copy left in DIR
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = out / f".{BEST_DIR}.old"
    shutil.rmtree(old, ignore_errors=True)
    if best.exists():
        os.replace(best, old)
    os.replace(staging, best)
    fsync_directory(out)
    shutil.rmtree(old, ignore_errors=True)
    return best


def write_results(out: Path, study, space, data_dir) -> SweepResult:
    """Write trials.csv, best/ and report.html; say where they are; return them."""
    names = list(space.specs)
    columns = ["number", "state", *names, "val_accuracy", epochs_column(names),
               "seconds", "run_dir", "error"]  # fmt: skip
    rows = trial_rows(study, names, out)
    write_trials_csv(out / TRIALS_CSV, rows, columns)
    complete = [r for r in rows if r["state"] == "complete"]
    best = test_accuracy = None
    if complete:
        best_trial = study.best_trial
        best = copy_best(out, best_trial.number, data_dir)
        test_accuracy = read_json(best / METRICS_FILE).get("test_accuracy")
    report = write_sweep_report(out / REPORT_FILE, study, rows, names, test_accuracy)
    _say_results(out, study if complete else None, test_accuracy)
    return SweepResult(
        study=study,
        best_number=study.best_trial.number if complete else None,
        best_params=_used_params(study, study.best_trial.params) if complete else None,
        val_accuracy=study.best_trial.value if complete else None,
        test_accuracy=test_accuracy,
        run_dir=best,
        trials_csv=out / TRIALS_CSV,
        report=report,
    )


def _say_results(out: Path, study, test_accuracy) -> None:
    if study is None:
        print(f"no trial completed; see {out / TRIALS_CSV}")
        return
    best = study.best_trial
    params = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in _used_params(study, best.params).items())  # fmt: skip
    print(
        f"best: trial {best.number} ({params}): validation accuracy {best.value:.4f}, "
        f"test accuracy {test_accuracy:.4f}; saved {out / BEST_DIR}, "
        f"{out / TRIALS_CSV}, {out / REPORT_FILE}"
    )
