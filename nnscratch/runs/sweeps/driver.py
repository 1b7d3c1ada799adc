"""`sweep`: the hyperparameter search of `nnscratch sweep` (and `nnscratch.sweep`).

The sweep's process holds DIR's lock, opens the study (`study`), and keeps the Dask
cluster's worker threads busy: it asks Optuna for a trial (TPE), submits
`trial.run_trial` for it, and tells the study each outcome, until `trials` trials
have finished (complete, pruned or failed). Rerun after an interruption, it counts
the finished trials, resumes those its dead predecessor left running (same numbers,
same parameters, from their checkpoints) and asks only for the missing ones; a study
already holding `trials` finished trials runs none (and needs no cluster). Then it
writes the results (`results`).
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
import uuid
from concurrent.futures import CancelledError
from contextlib import contextmanager
from pathlib import Path

from ...data.loading import locate_dataset
from ...errors import ArgumentError, NnscratchError, check_int
from ..lock import LOCK_FILE, RunLock
from ..presets import preset_settings
from ..rundir import make_out
from ..signals import RunInterrupted, SignalInterrupt
from .cluster import check_cluster, dask_client, slots
from .results import SweepResult, write_results
from .space import SearchSpace, trial_settings, used_params
from .study import (
    STUDY_FILE,
    claim_folder,
    counts,
    default_storage,
    make_pruner,
    open_storage,
    open_study,
    optuna_quiet,
    remove_empty_study,
    shared_storage,
    study_exists,
    trial_handle,
    unfinished,
)
from .trial import run_trial, trial_dir, trial_numbers


@dataclasses.dataclass
class Sweep:
    """What every trial of one sweep shares."""

    out: Path
    space: SearchSpace
    base: dict  # the preset and the options given, under the trials' parameters
    data_dir: str
    limit: int | None
    checkpoint_every: int | None
    storage_url: str
    study_name: str
    pruner: str
    submitted: int = 0  # trials given to the cluster so far
    new_study_in: object = None  # the storage, when this sweep made the study

    def job(self, trial) -> dict:
        """The task of `trial` (an optuna Trial or FrozenTrial) for a worker."""
        settings = trial_settings(self.base, trial.params)
        return {
            "number": trial.number, "params": used_params(self.base, trial.params),
            "settings": settings.to_dict(), "data_dir": self.data_dir,
            "limit": self.limit, "checkpoint_every": self.checkpoint_every,
            "run_dir": str(trial_dir(self.out, trial.number).absolute()),
            "study_name": self.study_name, "storage": self.storage_url,
            "pruner": self.pruner,
        }  # fmt: skip


def sweep(
    out, trials: int, params=None, *, space=None, workers: int | None = None,
    scheduler: str | None = None, storage: str | None = None,
    study_name: str = "sweep", pruner: str = "median", data_dir=None,
    limit: int | None = None, checkpoint_every: int | None = None,
    quiet: bool = False, preset: str = "default", **options,
) -> SweepResult:  # fmt: skip
    """Search the settings of `nnscratch train` for the best validation accuracy.

    out: the sweep's folder (study.db, trials/, trials.csv, best/, report.html); it
    must be on a file system every worker sees. trials: how many finished trials
    the study should hold (a rerun runs only the missing ones). params: {name: spec}
    such as {"lr": "loguniform:1e-4:1e-2"} (`space` module), or "NAME=SPEC" texts;
    space: a TOML file of them. workers: a LocalCluster of that many processes
    (default: one per core); scheduler: the address of a running Dask cluster
    instead. storage: an Optuna storage URL (default sqlite:///DIR/study.db).
    preset and options: those of `nnscratch train` (RunSettings fields), under every
    trial's parameters. quiet: no progress line (the result's line is printed all the
    same, as `train --quiet` prints its test accuracy). Returns a SweepResult (the
    study, the best trial, its test accuracy). A bad argument raises ArgumentError
    (a ValueError) before any trial runs, as do options that do not go with the study
    in the storage or the trials in `out` (a rerun with other settings); a failure
    of the work NnscratchError. A sweep that ends before any trial ran leaves
    nothing it made (`_removed_if_no_trial_ran`).
    """
    require_sweep_extra()
    # every argument checked before DIR is touched: one error line, nothing written
    try:
        trials = check_int("--trials", trials)
        check_cluster(workers, scheduler)
        make_pruner(pruner)
        limit = None if limit is None else check_int("--limit", limit)
        if checkpoint_every is not None:
            checkpoint_every = check_int("--checkpoint-every", checkpoint_every)
        space_ = SearchSpace.from_options(params or (), space)
        base = {"preset": preset, **options}
        settings = preset_settings(preset, **options)
        space_.check(base)
        out = Path(out)
        storage_url = shared_storage(storage) if storage else default_storage(out)
    except NnscratchError as e:  # the arguments, not the work: a usage error
        raise ArgumentError(str(e)) from None
    folder = locate_dataset(settings.dataset, data_dir).absolute()
    made = _not_there_yet(out)
    make_out(out, "the sweep's folder")
    sweep_ = Sweep(out, space_, base, str(folder), limit, checkpoint_every,
                   storage_url, study_name, pruner)  # fmt: skip
    # what makes trials comparable; the same settings however they were given
    setup = {"space": space_.describe(), "base": settings.to_dict(), "limit": limit}
    with (
        RunLock(out, "nnscratch sweep"),
        _removed_if_no_trial_ran(sweep_, made),
        optuna_quiet(),
    ):
        storage_ = open_storage(storage_url)
        if not study_exists(storage_, study_name):
            sweep_.new_study_in = storage_
        study = open_study(storage_, study_name, pruner, settings.seed, setup)
        _refuse_strangers(out, study)
        if storage_url != default_storage(out):  # a study DIR/study.db is DIR's
            claim_folder(study, out)
        try:
            if _finished(study) < trials:
                with dask_client(workers, scheduler) as client:
                    _run(sweep_, study, storage_, client, trials, quiet)
            elif not quiet:  # no trial missing: no cluster needed
                print(_nothing_missing(study, trials), file=sys.stderr, flush=True)
            return write_results(out, study, sweep_.space, data_dir)
        except ClusterLost as e:
            # Dask's workers stop with their scheduler: the user starts both again
            restart = "" if scheduler is None else RESTART
            raise NnscratchError(
                f"sweep stopped: the Dask scheduler was lost ({e}); "
                f"{_line(study, trials)}; {restart}{RERUN}"
            ) from None
        except KeyboardInterrupt as e:  # Ctrl-C, or SIGTERM (SignalInterrupt)
            code = e.exit_code if isinstance(e, SignalInterrupt) else 130
            raise RunInterrupted(
                f"sweep interrupted: {_line(study, trials)}; {RERUN}",
                code,
            ) from None


def _not_there_yet(out: Path) -> list[Path]:
    """What a sweep in `out` makes: the outermost of its folders that do not exist
    (its parents are made too), else its study.db and lock file if missing."""
    missing = [folder for folder in (out, *out.parents) if not folder.exists()]
    if missing:
        return missing[-1:]
    return [path for path in (out / STUDY_FILE, out / LOCK_FILE) if not path.exists()]


@contextmanager
def _removed_if_no_trial_ran(sweep_: Sweep, made: list[Path]):
    """Remove `made` (`_not_there_yet`), and the study if this sweep made it, when
    the sweep ends before it gave any trial to the cluster (an unreachable
    --scheduler or --storage, an --out refused, Ctrl-C): a command that did nothing
    leaves nothing behind, in DIR or in the database of a --storage."""
    try:
        yield
    except BaseException:
        if not sweep_.submitted:
            if sweep_.new_study_in is not None:
                remove_empty_study(sweep_.new_study_in, sweep_.study_name, sweep_.out)
            for path in made:
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
        raise


RERUN = (  # how a stopped sweep goes on
    "run the same command again to continue (running trials resume from their"
    " checkpoints)"
)
RESTART = "start the scheduler and its workers again (they stop with it), then "
SWEEP_PACKAGES = ("optuna", "distributed", "threadpoolctl")  # the sweep extra's


def require_sweep_extra() -> None:
    """NnscratchError naming what to install unless the sweep extra's packages are
    there (they are optional: `import nnscratch` and training never need them)."""
    import importlib.util

    missing = [
        name for name in SWEEP_PACKAGES if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise NnscratchError(
            f"sweeps need {', '.join(missing)}, which nnscratch's sweep extra installs: "
            "pip install 'nnscratch[sweep]'"
        )


def _refuse_strangers(out: Path, study) -> None:
    """Refuse a DIR holding trial folders the study never ran (another study's, of
    another --study-name, or of a removed study.db): its trials would take those
    finished runs as their own, and its results overwrite the other's. Refuse as
    well a study (in a --storage) whose finished trials ran in another DIR: their
    runs are not in this one, where its best/ would be made of them."""
    from optuna.trial import TrialState  # the optional sweep extra

    held = study.get_trials(deepcopy=False)
    strangers = [number for number in trial_numbers(out) if number >= len(held)]
    if strangers:
        raise ArgumentError(
            f"{trial_dir(out, strangers[0])}: a trial study {study.study_name!r} "
            "never ran (another study's): choose another --out for this one"
        )
    ran = (TrialState.COMPLETE, TrialState.PRUNED)  # a failed one may have no run
    elsewhere = [t.number for t in held
                 if t.state in ran and not trial_dir(out, t.number).is_dir()]  # fmt: skip
    if elsewhere:
        raise ArgumentError(
            f"study {study.study_name!r} holds trial {elsewhere[0]}, which ran in "
            f"another folder (no {trial_dir(out, elsewhere[0])}): give the --out it "
            "ran in, or another --study-name"
        )


def _run(sweep_: Sweep, study, storage, client, trials: int, quiet: bool) -> None:
    """Keep the workers busy until `trials` trials have finished."""
    from distributed import as_completed  # the optional sweep extra

    pending = as_completed()
    numbers = {}

    def submit(trial) -> None:
        # a key no other task has: Dask gives tasks of one key one result, so two
        # sweeps on a shared cluster (other folders, same study name) took each
        # other's trials
        key = f"nnscratch-trial-{trial.number:04d}-{uuid.uuid4().hex}"
        future = client.submit(run_trial, sweep_.job(trial), key=key, pure=False)
        numbers[future] = trial.number
        pending.add(future)
        sweep_.submitted += 1

    def top_up() -> None:
        """A new trial for each free worker thread, while trials are missing. Not
        one per trial finished: workers may join as the sweep runs (dask-jobqueue
        starts them as the batch system runs their jobs)."""
        free = min(slots(client), trials - _finished(study)) - pending.count()
        for _ in range(max(0, free)):
            submit(study.ask(sweep_.space.distributions()))

    # left running by a sweep that died: resumed, as many as trials are missing
    for trial in unfinished(study)[: trials - _finished(study)]:
        submit(trial)
    top_up()
    bar = StatusLine(quiet)
    try:
        bar.show(_line(study, trials))
        for future in pending:
            number = numbers.pop(future)
            _tell(study, storage, number, _result(future, number))
            top_up()
            bar.show(_line(study, trials))
    finally:  # the line ends before anything else is said (an interruption...)
        bar.close()


def _tell(study, storage, number: int, outcome: dict) -> None:
    """Tell the study trial `number`'s outcome (`trial.run_trial`'s), and its error."""
    from optuna.trial import TrialState

    if outcome["error"]:
        trial_handle(study, storage, number).set_user_attr(
            "error", outcome["error"][:1000]
        )
    state = {"complete": TrialState.COMPLETE, "pruned": TrialState.PRUNED,
             "fail": TrialState.FAIL}[outcome["state"]]  # fmt: skip
    value = outcome["value"] if state == TrialState.COMPLETE else None
    study.tell(number, value, state=state, skip_if_finished=True)


class StatusLine:
    """The sweep's progress: one line redrawn in place on a terminal (tqdm); in a
    log (stderr not a terminal), a new line each time it changes."""

    def __init__(self, quiet: bool):
        from tqdm import tqdm

        self.quiet, self.last = quiet, None
        self.in_place = not quiet and sys.stderr.isatty()
        if self.in_place:
            self.bar = tqdm(bar_format="{desc}", file=sys.stderr)

    def show(self, line: str) -> None:
        if self.quiet or line == self.last:
            return
        self.last = line
        if self.in_place:
            self.bar.set_description_str(line)
        else:
            print(line, file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.in_place:
            self.bar.close()


class ClusterLost(Exception):
    """Dask cancelled a trial's task: the sweep lost its scheduler."""


def _result(future, number: int) -> dict:
    """The task's outcome; a task that raised (a worker lost too often, say) fails.
    A task Dask cancelled (the scheduler lost) raises ClusterLost: its trial is no
    failure, and stays running in the study for the rerun to resume."""
    try:
        return future.result()
    except CancelledError as e:
        raise ClusterLost(getattr(e, "reason", "its task cancelled")) from None
    except Exception as e:  # noqa: BLE001 - Dask re-raises the task's or its own
        return {"number": number, "state": "fail", "value": None,
                "error": f"{type(e).__name__}: {e}"}  # fmt: skip


def _finished(study) -> int:
    """The study's finished trials: complete, pruned or failed."""
    return sum(n for state, n in counts(study).items() if state != "running")


def _nothing_missing(study, trials: int) -> str:
    """What a sweep whose study already holds `trials` finished trials says."""
    finished = _finished(study)
    if finished == trials:
        return _line(study, trials)
    return (
        f"study {study.study_name!r} already holds {finished} finished trials, more "
        f"than the {trials} asked (--trials): none run"
    )


def _line(study, trials: int) -> str:
    """'trials 7/20 done · 2 running · 3 pruned · 0 failed · best val acc 0.9731
    (trial 4)'."""
    found = counts(study)
    finished = found["complete"] + found["pruned"] + found["fail"]
    line = (
        f"trials {finished}/{trials} done \u00b7 {found['running']} running \u00b7 "
        f"{found['pruned']} pruned \u00b7 {found['fail']} failed"
    )
    if found["complete"]:
        best = study.best_trial
        line += f" \u00b7 best val acc {best.value:.4f} (trial {best.number})"
    return line
