"""One trial of a sweep, as a Dask worker runs it: an ordinary training run in
DIR/trials/trial-NNNN/, pruned by Optuna, resumed from its checkpoint when it ran
before.

`run_trial(job)` is the task. It trains with `training.run_training` (or, when the
run directory holds a checkpoint or a finished run, `training.resume_training`), so
a trial whose worker died continues from its last epoch. Each epoch's validation
accuracy goes to the study (`trial.report`), which may prune the trial: it then
stops after that epoch and finishes as a shorter run. The study is reached through
its storage URL (the SQLite file in DIR, or a database server), so every worker
sees the other trials' values without passing through the sweep's process.

Beside the run's own files, the trial's directory holds TRIAL_LOG (a line per epoch
trained, written after that epoch's checkpoint: the process and host that trained
it) and TRIAL_FILE (the trial's number, parameters, state and score, once done).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sys
import threading
import time
from pathlib import Path

from ...files import write_text
from ...nn.callbacks import Callback
from ..lock import RunDirInUse
from ..rundir import (
    HISTORY_FILE,
    METRICS_FILE,
    holds_run,
    read_csv,
    read_json,
)
from ..settings import RunSettings
from ..training import resume_training, run_training
from .study import make_pruner, open_storage, trial_handle

TRIALS_DIR = "trials"
TRIAL_LOG = "trial.log"
TRIAL_FILE = "trial.json"
TRIAL_NAME = re.compile(r"trial-(\d+)")
LOCK_WAIT_SECONDS = 600  # a dead sweep's orphan worker may still train the trial


def trial_dir(out: Path, number: int) -> Path:
    return Path(out) / TRIALS_DIR / f"trial-{number:04d}"


def trial_numbers(out: Path) -> list[int]:
    """The numbers of the trial folders in DIR/trials, sorted."""
    names = (path.name for path in (Path(out) / TRIALS_DIR).glob("trial-*"))
    return sorted(int(m[1]) for m in map(TRIAL_NAME.fullmatch, names) if m)


class ReportToStudy(Callback):
    """Each epoch's validation accuracy to the Optuna trial; stops training after
    the epoch the pruner says to prune (before the checkpoint, which keeps it)."""

    def __init__(self, trial):
        self.trial = trial

    def on_epoch_end(self, epoch, logs):
        # a resumed trial reports its restored epochs again: Optuna ignores those
        self.trial.report(float(logs["val_accuracy"]), epoch + 1)
        if self.trial.should_prune():
            self.model.stop_training = True


class EpochLog(Callback):
    """A line in TRIAL_LOG per epoch, after its checkpoint (so an epoch logged is
    never trained again): 'epoch 2/5 pid 4242 host h val_accuracy 0.91', or 'epoch
    2/5 pid - host - restored ...' for an epoch whose process was stopped between
    its checkpoint and its line (logged by the run that resumed from it)."""

    runs_last = True  # after BackupAndRestore, which also runs last: listed later

    def __init__(self, path: Path):
        self.path = path
        self._checked = False  # has this run looked for epochs left unlogged?

    def on_epoch_end(self, epoch, logs):
        total = self.trainer.epochs
        lines = [] if self._checked else self._restored_lines(epoch, total)
        self._checked = True
        lines.append(
            f"epoch {epoch + 1}/{total} pid {os.getpid()} "
            f"host {socket.gethostname()} val_accuracy {logs['val_accuracy']:.6f}\n"
        )
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(lines))
            f.flush()
            os.fsync(f.fileno())

    def _restored_lines(self, epoch: int, total: int) -> list[str]:
        """Lines for the epochs before `epoch` (0-based) that the log lacks: a
        process killed between an epoch's checkpoint and its line trained that
        epoch, which the run resumed from the checkpoint does not train again."""
        logged = {line.split()[1] for line in read_log(self.path.parent)}
        return [
            f"epoch {e}/{total} pid - host - restored from the checkpoint of a "
            "process stopped before it logged the epoch\n"
            for e in range(1, epoch + 1)
            if f"{e}/{total}" not in logged
        ]


def run_trial(job: dict) -> dict:
    """Train (or resume) the trial `job` describes; returns its outcome: number,
    state ("complete", "pruned" or "fail"), value (the last epoch's validation
    accuracy), seconds (training time), run_dir and error."""
    from threadpoolctl import threadpool_limits  # the optional sweep extra

    run_dir = Path(job["run_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    # one BLAS thread per trial: a worker runs one trial per thread, and the
    # workers together already take the cores (oversubscribed BLAS slows all).
    # The run's lines (its test accuracy...) would only clutter the sweep's display.
    with threadpool_limits(limits=1), _stdout_hidden():
        try:
            _train_when_free(run_dir, job)
        except RunDirInUse as e:
            return _outcome(job, "fail", error=str(e))
        except Exception as e:  # noqa: BLE001 - a trial's error is the trial's result
            return _outcome(job, "fail", error=f"{type(e).__name__}: {e}")
    return _finished_outcome(job, run_dir)


class _HiddenThreads:
    """sys.stdout while trials run in this process: what the trials' threads print
    is dropped, what the other threads print goes to `stream`, the stdout before."""

    def __init__(self, stream):
        self.stream = stream
        self.hidden: set[int] = set()  # thread idents

    def write(self, text: str) -> int:
        if threading.get_ident() in self.hidden:
            return len(text)
        return self.stream.write(text)

    def __getattr__(self, name):  # flush, encoding, isatty...: the stream's
        return getattr(self.stream, name)


_HIDING = threading.Lock()


@contextlib.contextmanager
def _stdout_hidden():
    """This thread's prints dropped (the run's lines would only clutter the sweep's
    display), the other threads' printed. contextlib.redirect_stdout swapped the
    whole process's: two trials on the threads of one worker put back each other's
    stream, leaving a trial's as the program's stdout."""
    with _HIDING:
        if not isinstance(sys.stdout, _HiddenThreads):
            sys.stdout = _HiddenThreads(sys.stdout)
        hiding = sys.stdout
        hiding.hidden.add(threading.get_ident())
    try:
        yield
    finally:
        with _HIDING:
            hiding.hidden.discard(threading.get_ident())
            if not hiding.hidden and sys.stdout is hiding:
                sys.stdout = hiding.stream


def _train_when_free(run_dir: Path, job: dict) -> None:
    """Train or resume; while another process holds the run directory (a killed
    sweep's worker that has not noticed yet), wait for it."""
    callbacks = [ReportToStudy(_optuna_trial(job)), EpochLog(run_dir / TRIAL_LOG)]
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    while True:
        try:
            if holds_run(run_dir):  # an empty checkpoints folder is not one
                resume_training(run_dir, verbose=0, callbacks=callbacks)
            else:
                run_training(
                    RunSettings.from_dict(job["settings"]), data_dir=job["data_dir"],
                    out=run_dir, limit=job["limit"], report=False, verbose=0,
                    checkpoint_every=job["checkpoint_every"], callbacks=callbacks,
                    score_test=False,  # the sweep scores its best trial's only
                )  # fmt: skip
            return
        except RunDirInUse:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)


def _optuna_trial(job: dict):
    """The job's Optuna trial, through the study's storage (`study.open_storage`)."""
    import optuna  # the optional sweep extra

    storage = open_storage(job["storage"])
    study = optuna.load_study(
        study_name=job["study_name"], storage=storage, pruner=make_pruner(job["pruner"])
    )
    return trial_handle(study, storage, job["number"])


def _finished_outcome(job: dict, run_dir: Path) -> dict:
    """The outcome a finished run directory records; its trial file written."""
    history = read_csv(run_dir / HISTORY_FILE, ["epoch", "val_accuracy"])
    epochs = RunSettings.from_dict(read_json(run_dir / "config.json")).epochs
    metrics = read_json(run_dir / METRICS_FILE)
    state = "pruned" if len(history) < epochs else "complete"
    outcome = _outcome(
        job, state, value=float(history[-1]["val_accuracy"]),
        seconds=float(metrics.get("train_seconds", 0.0)), epochs=len(history),
    )  # fmt: skip
    write_text(run_dir / TRIAL_FILE, json.dumps(outcome, indent=2) + "\n")
    return outcome


def _outcome(job: dict, state: str, value=None, seconds=None, epochs=None, error=None):
    return {
        "number": job["number"], "state": state, "value": value,
        "seconds": seconds, "epochs": epochs, "run_dir": job["run_dir"],
        "params": job["params"], "error": error,
    }  # fmt: skip


def read_log(run_dir: Path) -> list[str]:
    """TRIAL_LOG's lines ([] when no epoch was trained)."""
    try:
        return (Path(run_dir) / TRIAL_LOG).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
