"""A whole training run as `nnscratch train` does it: data, model, fit with
checkpoints, the run directory's files; and continuing an interrupted run exactly
(`resume_training`).

The run directory's files are listed in `rundir`. The command holds the directory's
lock (`lock.RunLock`) from start to end. While the run trains, checkpoints/ keeps its
last checkpoints (`nn.backup.BackupAndRestore`), each also holding the run's
settings, data folder and a digest of its data; once trained, its files are written
to .incoming/ and then replace those of any run there before
(`rundir.commit_incoming`). A signal stops it at a safe point (`signals`).
"""

from __future__ import annotations

import hashlib
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.augment import Augment
from ..data.catalog import CLASS_NAMES, find_dataset, other_test_set
from ..data.loading import load_dataset, locate_dataset, train_validation_split
from ..errors import (
    DataError,
    NnscratchError,
    TrainingDivergedError,
    check_int,
    is_real_number,
    is_whole_number,
)
from ..nn.backup import BackupAndRestore, TrainingInterrupted
from ..nn.checkpoints import CheckpointWriteError, load_latest
from ..nn.optimizers import Optimizer, get_optimizer
from ..nn.schedules import Schedule, get_schedule
from ..reporting.recordings import PredictionRecorder
from .finish import finish_run
from .lock import RunLock
from .presets import build_model
from .rundir import (
    CHECKPOINTS_DIR,
    INCOMING_DIR,
    METRICS_FILE,
    MODEL_FILE,
    claim_run_dir,
    is_finished,
    make_run_dir,
    read_json,
    recover,
    run_config,
)
from .settings import RunSettings, optimizer_settings
from .signals import RunInterrupted, SignalInterrupt, StopSignals, resume_command


def build_optimizer(settings: RunSettings) -> Optimizer:
    """The optimiser `settings` names, with the settings it takes: momentum (sgd) and
    weight decay (sgd, adam, adamw)."""
    taken = optimizer_settings(settings.optimizer)
    options = {name: getattr(settings, name) for name in taken}
    return get_optimizer(settings.optimizer, lr=settings.lr, **options)


def build_schedule(settings: RunSettings) -> Schedule | None:
    """The learning-rate schedule of `settings` (None: lr constant, no warm-up)."""
    if settings.schedule == "constant" and not settings.warmup:
        return None
    return get_schedule(
        settings.schedule, settings.lr, settings.epochs, settings.warmup
    )


def build_augment(settings: RunSettings) -> Augment | None:
    """The augmentation of `settings`; None for "none" rather than an identity Augment,
    which would copy every batch."""
    if settings.augment.strip().lower() == "none":
        return None
    return Augment.from_spec(settings.augment)


@dataclass
class RunData:
    """The arrays a run uses: (x, y) for training, validation (or None) and test."""

    train: tuple
    validation: tuple | None
    test: tuple
    class_names: list[str]

    def digest(self) -> str:
        """A fingerprint of every array: a resumed run checks its data is the same."""
        h = hashlib.blake2b(digest_size=16)
        for array in (*self.train, *(self.validation or ()), *self.test):
            h.update(str((array.dtype.str, array.shape)).encode())
            h.update(np.ascontiguousarray(array).data)
        return h.hexdigest()


def load_run_data(settings: RunSettings, folder: Path, limit=None) -> RunData:
    """The dataset in `folder`, its first `limit` training images, with the
    validation split of `settings`."""
    (x_train, y_train), test = load_dataset(settings.dataset, folder)
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
    validation, split = None, settings.validation_split
    if split:
        try:
            (x_train, y_train), validation = train_validation_split(
                x_train, y_train, split, seed=settings.seed
            )
        except DataError:  # too few images: say it in the options' words
            given = f" (--limit {limit})" if limit else ""
            raise NnscratchError(
                f"--validation-split {split:g} of {len(x_train):,} training images"
                f"{given} leaves none to train or to validate on: give more images "
                "or change the split (0: no validation)"
            ) from None
    class_names = list(CLASS_NAMES[settings.dataset])
    return RunData((x_train, y_train), validation, test, class_names)


def run_training(
    settings: RunSettings,
    data_dir=None,
    out=None,
    limit=None,
    report=True,
    verbose=1,
    overwrite=False,
    checkpoint_every: int | None = None,
    callbacks=(),
    score_test: bool = True,
) -> dict:
    """Train as `settings` say, write the run directory, print and return the metrics.

    The settings were checked when they were made, and the model is built before the
    run directory is made, so bad settings leave nothing behind. A checkpoint is
    written at the start, at the end of every epoch and every `checkpoint_every`
    steps. An `out` holding a run is refused unless `overwrite`; that run's files
    stay until this one has finished. `callbacks` are given to fit after the
    run's own (a sweep's pruning, say). `score_test=False` (a sweep's trial) scores
    the validation set instead of the test set, and needs `report=False` (`nnscratch
    report` on the run scores the test set then).
    """
    if not isinstance(settings, RunSettings):
        raise TypeError(f"settings: expected a RunSettings, got {type(settings)}")
    for build in (build_optimizer, build_schedule, build_augment):
        build(settings)  # fails before anything is loaded or made, if it must
    if checkpoint_every is not None:
        checkpoint_every = check_int("--checkpoint-every", checkpoint_every)
    if not score_test and (report or not settings.validation_split):
        raise NnscratchError(
            "score_test=False: needs report=False and a validation split to score"
        )
    # found once: the folder is recorded (absolute, so that `nnscratch report` and
    # --resume can reload it from wherever they run) and read
    folder = locate_dataset(settings.dataset, data_dir).absolute()
    data = load_run_data(settings, folder, limit)
    if warning := other_test_set(folder, settings.dataset, data.test[1]):
        _say(warning)
    model = build_model(settings, data.train[0].shape[1:], data.class_names)
    run_dir = make_run_dir(out, settings.preset or "run")
    with RunLock(run_dir, "nnscratch train"):
        claim_run_dir(run_dir, overwrite)
        run = {
            "config": run_config(settings, folder, len(data.train[0])),
            "limit": int(limit) if limit else None,
            "report": bool(report),
            "score_test": bool(score_test),
            "checkpoint_every": checkpoint_every,
            "data_digest": data.digest(),
        }
        if verbose:
            print(
                f"training on {len(data.train[0]):,} {settings.dataset} images; "
                f"run directory {run_dir}"
            )
            print(model.summary())
        return _train(run_dir, run, settings, data, model, verbose, callbacks)


def resume_training(run_dir, verbose=1, callbacks=()) -> dict:
    """Continue the interrupted run in `run_dir` from its last checkpoint, with its
    recorded settings and data; it ends with the files the run never interrupted
    would have written. A finished run is said so (its metrics are returned).
    `callbacks`: as for `run_training` (the same ones the run started with)."""
    run_dir = Path(run_dir)
    not_a_run = NnscratchError(
        f"{run_dir}: not a run directory, or its run never started training (no "
        "checkpoint and no finished run)"
    )
    if not run_dir.is_dir():
        raise NnscratchError(f"{run_dir}: not a run directory (no such folder)")
    if not any(
        (run_dir / name).exists()
        for name in (CHECKPOINTS_DIR, INCOMING_DIR, MODEL_FILE)
    ):
        raise not_a_run  # checked before the lock makes a file there
    with RunLock(run_dir, "nnscratch train --resume"):
        recover(run_dir)
        found = load_latest(run_dir / CHECKPOINTS_DIR, _say)
        if found is None and is_finished(run_dir):
            metrics = read_json(run_dir / METRICS_FILE)
            accuracy = metrics.get("test_accuracy")
            shown = (
                f": test accuracy {accuracy:.4f}" if is_real_number(accuracy) else ""
            )
            print(f"{run_dir}: this run has finished{shown}; nothing to resume")
            return metrics
        if found is None:
            raise not_a_run
        path, state = found
        run, settings = _recorded_run(path, state)
        folder = Path(run["config"]["data_dir"])
        if find_dataset(settings.dataset, folder) is None:  # moved, renamed...
            raise NnscratchError(
                f"{run_dir}: the {settings.dataset} files it trained on are no longer "
                f"in {folder}: put them back there to resume"
            )
        data = load_run_data(settings, folder, run["limit"])
        if data.digest() != run["data_digest"]:
            raise NnscratchError(
                f"{run_dir}: the data in {folder} is not what this run trained on "
                "(it changed since)"
            )
        model = build_model(settings, data.train[0].shape[1:], data.class_names)
        if verbose:
            print(f"continuing the run in {run_dir} from {_where(state, path)}")
        return _train(run_dir, run, settings, data, model, verbose, callbacks)


def _where(state: dict, path: Path) -> str:
    """ "epoch 3, step 20 (checkpoint-000007.npz)": where the checkpoint's fit
    stands; only the file's name if its position is not readable (the fit, which
    checks the checkpoint, then says what is wrong with it)."""
    try:
        position = state["position"]
        where = f"epoch {position['epoch'] + 1}, step {position['step']}"
        if position["epoch"] >= position["epochs"] or position["stop_training"]:
            where = "the end of training"
    except (KeyError, TypeError):
        return path.name
    return f"{where} ({path.name})"


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def _recorded_run(path: Path, state: dict) -> tuple[dict, RunSettings]:
    """The run a checkpoint records (its "extra"), checked, and its settings."""
    extra = state.get("extra")
    run = extra.get("run") if isinstance(extra, dict) else None
    kinds = {"config": dict, "limit": (int, type(None)), "report": bool,
             "checkpoint_every": (int, type(None)), "data_digest": str}  # fmt: skip
    if not (
        isinstance(run, dict)
        and all(isinstance(run.get(key), kind) for key, kind in kinds.items())
        and isinstance(run["config"].get("data_dir"), str)  # where resume reads
        and all(_count_or_none(run[key]) for key in ("limit", "checkpoint_every"))
    ):
        raise NnscratchError(f"{path}: not a checkpoint of an nnscratch train run")
    try:
        return run, RunSettings.from_dict(run["config"])
    except NnscratchError as e:
        raise NnscratchError(f"{path}: {e}") from None


def _count_or_none(value) -> bool:
    """None, or a whole number >= 1 (not a bool): a --limit or --checkpoint-every."""
    return value is None or (is_whole_number(value) and value >= 1)


def _train(
    run_dir: Path, run: dict, settings, data: RunData, model, verbose, callbacks=()
) -> dict:
    """Fit with checkpoints (continuing from the last one, if any), then write the
    run's files; a signal ends it with RunInterrupted, saying how to go on."""
    go_on = f"continue with: {resume_command(run_dir)}"
    with StopSignals() as stop:
        try:
            model.metadata = {"training": run["config"]}
            recorder = [PredictionRecorder(data.test[0])] if run["report"] else []
            backup = BackupAndRestore(
                run_dir / CHECKPOINTS_DIR, save_every=run["checkpoint_every"],
                delete_at_end=False, interrupt=stop.requested, extra={"run": run},
            )  # fmt: skip
            history = model.fit(
                *data.train,
                epochs=settings.epochs,
                batch_size=settings.batch_size or len(data.train[0]),
                optimizer=build_optimizer(settings),
                lr_schedule=build_schedule(settings),
                validation_data=data.validation,
                seed=settings.seed,
                augment=build_augment(settings),
                callbacks=[*recorder, backup, *callbacks],
                verbose=verbose,
            )
            return finish_run(
                run_dir, run, model, history, data, recorder,
                backup.trainer.train_seconds, stop,
            )  # fmt: skip
        except TrainingDivergedError:
            # resuming would diverge again, bit for bit: the run is over (a run it
            # replaces stays, as for any run that fails)
            shutil.rmtree(run_dir / CHECKPOINTS_DIR, ignore_errors=True)
            raise
        except TrainingInterrupted as e:
            raise RunInterrupted(
                f"interrupted at epoch {e.epoch}/{e.epochs}, step {e.step}; {go_on}",
                stop.exit_code,
            ) from None
        except SignalInterrupt as e:
            raise RunInterrupted(
                f"stopped at once ({e}); its last checkpoint is whole: {go_on}",
                e.exit_code,
            ) from None
        except CheckpointWriteError as e:
            if backup.last_saved is None:  # not one written: start again
                raise NnscratchError(
                    f"{e}; make room, then start the run again"
                ) from None
            raise NnscratchError(
                f"{e}; {backup.last_saved.name} before it is whole: make room, then "
                f"{go_on}"
            ) from None
