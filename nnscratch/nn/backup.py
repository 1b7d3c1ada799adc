"""Callbacks that save while `fit` trains, as Keras has them: `BackupAndRestore` (the
whole training state, to continue an interrupted fit exactly) and `ModelCheckpoint`
(the model or its weights, every epoch or N steps, or the best one by a monitored
metric)."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path

from ..errors import CheckpointError, NnscratchError, check_int, is_whole_number
from ..files import make_folder_of
from .callbacks import Callback, improves, monitor_mode, monitored
from .checkpoints import checkpoint_paths, load_latest, save_next
from .saving import check_npz_name


class TrainingInterrupted(Exception):
    """`fit` stopped because BackupAndRestore's `interrupt` asked, after writing a
    checkpoint (`path`). `epoch` (counted from 1) of `epochs` and `step`: the last
    step done (step 0: none of that epoch)."""

    def __init__(self, epoch: int, epochs: int, step: int, path: Path):
        super().__init__(f"training interrupted at epoch {epoch}/{epochs}, step {step}")
        self.epoch, self.epochs, self.step, self.path = epoch, epochs, step, path


class BackupAndRestore(Callback):
    """Checkpoints of the whole training state in `directory`, and `fit` continuing
    from the last one (Keras' BackupAndRestore, but exact).

    A checkpoint (`checkpoints`) holds the weights and batch-norm statistics, the
    optimiser (moments, step count, lr), where training is (epoch, step, the epoch's
    running sums), every random generator (shuffling, augmentation, dropout) and the
    state of every callback (the History, early stopping's best weights...). It is
    written when training starts, at the end of every epoch and, with `save_every`,
    every that many steps; the last `keep` are kept.

    A `fit` given this callback first looks in `directory`: if a checkpoint is there
    it continues from it and ends with the very weights and history the fit never
    stopped would have had; the arrays, batch size and callbacks must be those of
    that fit, and its seed if one is given (a fit given none takes that fit's seed,
    so it holds out the same validation split); the examples, the batch size,
    shuffling and augmentation (on or off), the model and its loss, the metrics,
    the callbacks and the kernels (`NNSCRATCH_KERNELS`) are checked. A damaged
    newest checkpoint is reported (`say`) and the one before is used. Whatever its
    place in the list, it runs after the other callbacks, so its checkpoints hold
    their state after each step.

    Keras' names are taken too: `backup_dir` for `directory`, `save_freq` ("epoch",
    or a number of steps) for `save_every`, `delete_checkpoint` for `delete_at_end`.

    interrupt: called after every step; when it returns true, a checkpoint is
    written and fit raises `TrainingInterrupted` (a signal handler sets a flag, say).
    delete_at_end: remove the checkpoints when training ends, as Keras does (and
    `directory`, if nothing else is in it); True unless given False.
    extra: JSON values (and arrays) saved in every checkpoint as its "extra" entry
    (a training run records its settings there).
    """

    runs_last = True

    def __init__(
        self, directory=None, save_every: int | None = None, keep: int = 2,
        delete_at_end: bool | None = None, interrupt=None, say=None, extra=None, *,
        backup_dir=None, save_freq=None, delete_checkpoint=None,
    ):  # fmt: skip
        directory = _one_of("directory", directory, "backup_dir", backup_dir)
        if directory is None:
            raise NnscratchError("BackupAndRestore: expected a directory")
        self.directory = Path(directory)
        if save_freq is not None:  # Keras' name
            freq = steps_between_saves("BackupAndRestore", save_freq)
            save_every = _one_of("save_every", save_every, "save_freq", freq)
        delete_at_end = _one_of(  # True unless either name says otherwise
            "delete_at_end", delete_at_end, "delete_checkpoint", delete_checkpoint
        )
        delete_at_end = True if delete_at_end is None else bool(delete_at_end)
        if save_every is not None:
            save_every = check_int("BackupAndRestore save_every", save_every)
        self.save_every, self.keep = (
            save_every,
            check_int("BackupAndRestore keep", keep),
        )
        self.delete_at_end, self.interrupt, self.extra = delete_at_end, interrupt, extra
        self.say = say or (lambda text: print(text, file=sys.stderr))
        self.restored_from: Path | None = None  # the checkpoint fit continued from
        self.last_saved: Path | None = None
        self._peeked = None  # what `resumed_seed` read, for `on_train_begin`

    def on_train_begin(self, logs=None):
        found = self._latest()
        if found is None:
            self.save()  # a fit stopped in its first epoch continues from here
        else:
            path, state = found
            try:
                self.trainer.restore(state)
            except NnscratchError as e:
                raise NnscratchError(f"{path}: {e}") from None
            except (KeyError, TypeError, ValueError, IndexError, AttributeError) as e:
                raise CheckpointError(
                    f"{path}: damaged checkpoint (not a training state: {e!r})"
                ) from None
            self.restored_from = self.last_saved = path
        self._stop_if_asked(saved=True)

    def on_batch_end(self, batch, logs):
        saved = bool(self.save_every) and self.trainer.steps_done % self.save_every == 0
        if saved:
            self.save()
        self._stop_if_asked(saved)

    def on_epoch_end(self, epoch, logs):
        self.save()
        self._stop_if_asked(saved=True)

    def on_train_end(self, logs=None):
        if self.delete_at_end:
            for path in checkpoint_paths(self.directory):
                path.unlink(missing_ok=True)
            with contextlib.suppress(OSError):  # only if nothing else is in it
                self.directory.rmdir()

    def save(self) -> Path:
        """Write a checkpoint of the training state now; returns its path."""
        state = self.trainer.state()
        if self.extra is not None:
            state["extra"] = self.extra
        self.last_saved = save_next(self.directory, state, self.keep)
        return self.last_saved

    def resumed_seed(self) -> int | None:
        """The seed of the fit its newest checkpoint is of; None if there is no
        checkpoint, or it holds no seed (`on_train_begin` reports a damaged one)."""
        found = load_latest(self.directory, self.say)
        self._peeked = found, self._listing()
        try:
            seed = None if found is None else found[1]["position"]["seed"]
        except (KeyError, TypeError):
            return None
        return None if seed is None else check_int("checkpoint seed", seed, 0)

    def _latest(self) -> tuple[Path, dict] | None:
        """`load_latest`: what `resumed_seed` read of it for this fit (a fit given
        no seed asks it first), unless the checkpoints have changed since."""
        peeked, self._peeked = self._peeked, None
        if peeked is not None and peeked[1] == self._listing():
            return peeked[0]
        return load_latest(self.directory, self.say)

    def _listing(self) -> list:
        """Each checkpoint's path, size and time of change: a checkpoint written
        or removed since changes it."""
        return [
            (path, stat.st_size, stat.st_mtime_ns)
            for path in checkpoint_paths(self.directory)
            for stat in [path.stat()]
        ]

    def _stop_if_asked(self, saved: bool) -> None:
        if self.interrupt is None or not self.interrupt():
            return
        if not saved:
            self.save()
        trainer = self.trainer
        epoch, step = trainer.epoch + 1, trainer.step
        if step == 0 and trainer.epoch > 0:  # at an epoch's end: name that epoch
            epoch, step = trainer.epoch, trainer.batches.steps
        raise TrainingInterrupted(epoch, trainer.epochs, step, self.last_saved)


class ModelCheckpoint(Callback):
    """Save the model at the end of every epoch, or every `save_freq` steps (Keras'
    ModelCheckpoint): to `filepath`, which may hold `{epoch}` and the logs' names
    (`"m-{epoch:02d}.npz"`); its folder is made if need be.

    save_best_only: only when `monitor` (a key of the epoch's logs) beats its best so
    far ("min" or "max" `mode`; "auto": max for accuracies), over every fit it is
    given to, as in Keras: a later fit does not overwrite a better file.
    save_freq: "epoch", or an int N to save every N steps instead (counted over the
    fit, as a checkpoint's position counts them); `filepath` may then hold `{batch}`
    (counted from 1 in each epoch) and the step's logs (`loss`, `accuracy`); with
    save_best_only, `monitor` must be one of them: the validation metrics exist only
    at an epoch's end.
    include_optimizer: the optimiser too (`Sequential.save`), so the file can
    continue training. save_weights_only: the weights alone (`save_weights`), as
    Keras does. verbose: a line for each file saved, as Keras' verbose=1.
    """

    def __init__(
        self, filepath, monitor: str = "val_loss", mode: str = "auto",
        save_best_only: bool = False, include_optimizer: bool = False,
        save_freq: str | int = "epoch", save_weights_only: bool = False,
        verbose: bool = False,
    ):  # fmt: skip
        if save_weights_only and include_optimizer:
            raise NnscratchError(
                "ModelCheckpoint: save_weights_only saves no optimiser: "
                "include_optimizer must be False"
            )
        self.save_weights_only, self.verbose = bool(save_weights_only), bool(verbose)
        check_npz_name(filepath, "ModelCheckpoint")  # now, not after the first epoch
        self.filepath, self.monitor = str(filepath), monitor
        self.mode = monitor_mode("ModelCheckpoint", monitor, mode)
        self.save_best_only, self.include_optimizer = save_best_only, include_optimizer
        steps = steps_between_saves("ModelCheckpoint", save_freq)
        if steps is not None and save_best_only and monitor.startswith("val_"):
            raise NnscratchError(
                f"ModelCheckpoint: save_freq={steps} saves between epochs, where "
                f"{monitor!r} is not known yet: monitor 'loss' or a training metric, "
                "or save every epoch"
            )
        self.save_freq = "epoch" if steps is None else steps
        self.best: float | None = None

    def on_batch_end(self, batch, logs):
        if self.save_freq == "epoch":
            return
        if self.trainer.steps_done % self.save_freq == 0:
            self._save(logs, self.trainer.epoch, batch=batch + 1)

    def on_epoch_end(self, epoch, logs):
        if self.save_freq == "epoch":
            self._save(logs, epoch)

    def _save(self, logs: dict, epoch: int, **batch) -> None:
        """Save to `filepath` filled in with `logs`, `epoch` (0-based) and `batch`,
        if the monitored value improved (or always, without save_best_only)."""
        if self.save_best_only:
            value = monitored("ModelCheckpoint", self.monitor, logs)
            if not improves(value, self.best, self.mode):
                return
            self.best = value
        try:
            path = self.filepath.format(epoch=epoch + 1, **batch, **logs)
        except (KeyError, IndexError, ValueError) as e:
            raise NnscratchError(
                f"ModelCheckpoint: cannot fill in {self.filepath!r} ({e!r})"
            ) from None
        make_folder_of(path, "ModelCheckpoint")
        if self.save_weights_only:
            self.model.save_weights(path)
        else:
            self.model.save(path, include_optimizer=self.include_optimizer)
        if self.verbose:
            print(f"epoch {epoch + 1}: saved {path}")

    def get_state(self):
        return {"best": self.best}

    def set_state(self, state):
        self.best = None if state["best"] is None else float(state["best"])


def resumed_seed(callbacks) -> int | None:
    """The seed of the fit that a BackupAndRestore among `callbacks` continues, or
    None (see `BackupAndRestore.resumed_seed`)."""
    for callback in callbacks:
        if isinstance(callback, BackupAndRestore):
            return callback.resumed_seed()
    return None


def steps_between_saves(who: str, save_freq) -> int | None:
    """Keras' `save_freq`: None for "epoch" (save at each epoch's end), else the
    number of steps between saves, an int >= 1."""
    if save_freq == "epoch":
        return None
    if not (is_whole_number(save_freq) and save_freq >= 1):
        raise NnscratchError(
            f'{who} save_freq: expected "epoch" or an int >= 1, got {save_freq!r}'
        )
    return int(save_freq)


def _one_of(name: str, value, alias: str, alias_value):
    """The value given under either of two names for one setting (ours or
    Keras'); an error if both are given."""
    if value is not None and alias_value is not None:
        raise NnscratchError(
            f"BackupAndRestore: give {name} or {alias} (Keras' name), not both"
        )
    return value if alias_value is None else alias_value
