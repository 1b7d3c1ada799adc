"""Callbacks: code that `fit` runs at the start and end of training, epochs and batches.

`fit` talks to one `CallbackList`, which passes every hook on to each callback: the
`History` it returns, the progress display (`progress.ProgressBar`) and the user's.
Checkpoints (`backup.BackupAndRestore`) save each callback's `get_state()`.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from ..errors import NnscratchError, check_float, check_int
from ..files import make_folder_of, write_text


class Callback:
    """Keras-like hooks. `fit` sets `self.model` and `self.params` ({"verbose",
    "epochs", "steps"}, as Keras' `params`) before `on_train_begin`.

    `logs` holds the metrics known at that point, each under its name ("accuracy",
    or the name given in `metrics`): per batch "loss" (the batch's), each metric (the
    epoch's so far) and "size" (the batch's examples); per epoch "loss", each metric,
    "val_loss" and "val_<metric>" (with validation data), "lr" and "seconds".
    Set `self.model.stop_training = True` to end training after this epoch.

    A callback that keeps something from epoch to epoch returns it from `get_state`
    (JSON values and NumPy arrays), so a checkpoint saves it and `set_state` puts it
    back when training continues. `trainer` is the `trainer.Trainer` running fit.
    """

    model = None
    params: dict | None = None
    trainer = None
    runs_last = False  # True: fit calls it after the others, whatever its place

    def set_model(self, model) -> None:
        """Called by `fit` before training starts: the model being trained."""
        self.model = model

    def set_params(self, params: dict) -> None:
        """Called by `fit` before training starts: {"verbose", "epochs", "steps"}."""
        self.params = params

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Called once before the first epoch."""

    def on_epoch_begin(self, epoch: int, logs: dict) -> None:
        """Called before each epoch (0-based)."""

    def on_epoch_end(self, epoch: int, logs: dict) -> None:
        """Called after each epoch (0-based) with that epoch's metrics."""

    def on_batch_begin(self, batch: int, logs: dict) -> None:
        """Called before each optimiser step (`batch` counts from 0 in each epoch)."""

    def on_batch_end(self, batch: int, logs: dict) -> None:
        """Called after each optimiser step."""

    # Keras' newer names of the two above: `fit` calls these, which call those
    # unless overridden, so that a callback may define either (as in Keras)
    def on_train_batch_begin(self, batch: int, logs: dict) -> None:
        """`on_batch_begin`, by Keras' name for it."""
        self.on_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: dict) -> None:
        """`on_batch_end`, by Keras' name for it."""
        self.on_batch_end(batch, logs)

    def on_train_end(self, logs: dict | None = None) -> None:
        """Called once after the last epoch (also after early stopping)."""

    def get_state(self) -> dict | None:
        """What this callback has gathered so far (None: nothing to save)."""
        return None

    def set_state(self, state: dict) -> None:
        """Take back what `get_state` gave (training continues from a checkpoint)."""


def check_callbacks(callbacks) -> list[Callback]:
    """`callbacks` (None, a list or a tuple of Callback objects) as a new list."""
    callbacks = [] if callbacks is None else callbacks
    if not isinstance(callbacks, (list, tuple)) or not all(
        isinstance(cb, Callback) for cb in callbacks
    ):
        raise NnscratchError(
            f"callbacks: expected a list of Callback objects, got {callbacks!r}"
        )
    return list(callbacks)


class CallbackList(Callback):
    """Several callbacks as one: every hook goes to each of them, in list order.

    With a `model` and `params`, sets them on each (`set_model`, `set_params`), as
    `fit` does before training.
    """

    def __init__(self, callbacks=None, model=None, params: dict | None = None):
        callbacks = check_callbacks(callbacks)
        self.callbacks = sorted(callbacks, key=lambda cb: cb.runs_last)  # stable
        if model is not None:
            self.set_model(model)
        if params is not None:
            self.set_params(params)

    def set_model(self, model) -> None:
        self.model = model
        for cb in self.callbacks:
            cb.set_model(model)

    def set_params(self, params: dict) -> None:
        self.params = params
        for cb in self.callbacks:
            cb.set_params(params)

    def set_trainer(self, trainer) -> None:
        self.trainer = trainer
        for cb in self.callbacks:
            cb.trainer = trainer

    def on_train_begin(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_begin({} if logs is None else logs)

    def on_epoch_begin(self, epoch, logs=None):
        for cb in self.callbacks:
            cb.on_epoch_begin(epoch, {} if logs is None else logs)

    def on_epoch_end(self, epoch, logs):
        for cb in self.callbacks:
            cb.on_epoch_end(epoch, logs)

    def on_batch_begin(self, batch, logs=None):
        for cb in self.callbacks:
            cb.on_train_batch_begin(batch, {} if logs is None else logs)

    def on_batch_end(self, batch, logs):
        for cb in self.callbacks:
            cb.on_train_batch_end(batch, logs)

    def on_train_end(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_end({} if logs is None else logs)


class History(Callback):
    """What `fit` measured, recorded as it trains (`fit` adds one and returns it):
    `history[metric]` (a list, one value per epoch), `epoch` (0-based epoch numbers)
    and `batch_losses` (every step's loss); `params` ({"verbose", "epochs",
    "steps"}) and `model`, as Keras' History has them."""

    def __init__(self, params: dict | None = None):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.batch_losses: list[float] = []
        self.params = dict(params or {})

    def append(self, epoch: int, logs: dict) -> None:
        """Record one epoch's logs."""
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def on_batch_end(self, batch, logs):
        self.batch_losses.append(logs["loss"])

    def on_epoch_end(self, epoch, logs):
        self.append(epoch, logs)

    def get_state(self):
        return {
            "history": self.history,
            "epoch": self.epoch,
            # an array: thousands of floats, exact, and smaller than JSON
            "batch_losses": np.array(self.batch_losses, dtype=np.float64),
        }

    def set_state(self, state):
        self.history = {
            str(k): [float(v) for v in values] for k, values in state["history"].items()
        }
        self.epoch = [int(e) for e in state["epoch"]]
        self.batch_losses = np.asarray(state["batch_losses"], np.float64).tolist()


def monitor_mode(who: str, monitor: str, mode: str) -> str:
    """Which way `monitor` improves: `mode` checked, "auto" resolved (max for
    accuracies, else min)."""
    if mode == "auto":
        mode = "max" if "acc" in monitor else "min"
    if mode not in ("min", "max"):
        raise NnscratchError(f"{who}: mode must be min, max or auto, got {mode!r}")
    return mode


def monitored(who: str, monitor: str, logs: dict) -> float:
    """The value of `monitor` in an epoch's logs; a clear error if it is not there."""
    if monitor not in logs:
        known = ", ".join(logs)
        raise NnscratchError(
            f"{who}: no metric {monitor!r} (have {known}); "
            "pass validation data to monitor val_* metrics"
        )
    return logs[monitor]


def improves(value: float, best: float | None, mode: str, min_delta=0.0) -> bool:
    """Whether `value` beats `best` (None: nothing yet) by more than `min_delta`."""
    if best is None:
        return True
    if mode == "min":
        return value < best - min_delta
    return value > best + min_delta


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs.

    With `restore_best_weights` the model ends with the weights (and batch-norm
    statistics) of its best epoch, as Keras does (which restores nothing by
    default). `verbose` prints a line when it stops and when it restores, as
    Keras' verbose=1.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = True,
        verbose: bool = False,
    ):
        self.mode = monitor_mode("EarlyStopping", monitor, mode)
        self.verbose = bool(verbose)
        self.monitor = monitor
        self.patience = check_int("EarlyStopping patience", patience, 0)
        self.min_delta = check_float("EarlyStopping min_delta", min_delta, 0)
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, logs=None):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch, self.wait, self.stopped_epoch = None, 0, None
        self.best_weights = None

    def on_epoch_end(self, epoch, logs):
        value = monitored("EarlyStopping", self.monitor, logs)
        if improves(value, self.best, self.mode, self.min_delta):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.verbose:
                print(
                    f"epoch {epoch + 1}: early stopping, {self.monitor} has not "
                    f"improved for {self.patience} epochs"
                )

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)
            if self.verbose:
                print(f"restored the weights of epoch {self.best_epoch + 1}, the best")

    def get_state(self):
        names = ("best", "best_epoch", "wait", "stopped_epoch", "best_weights")
        return {name: getattr(self, name) for name in names}

    def set_state(self, state):
        self.best = float(state["best"])
        self.best_epoch, self.stopped_epoch = (
            state["best_epoch"],
            state["stopped_epoch"],
        )
        self.wait = check_int("EarlyStopping wait", state["wait"], 0)
        weights = state["best_weights"]
        self.best_weights = None if weights is None else dict(weights)


class CSVLogger(Callback):
    """Keras' callback of that name: a CSV file with one row per epoch, `epoch`
    (0-based, as Keras writes it) then the logs' names in sorted order. The file is
    written at the start of training and again, whole and atomically, after every
    epoch (never half-written); its folder is made if need be. With `append`, the
    rows already in the file are kept (a fit continued by another call)."""

    def __init__(self, filename, separator: str = ",", append: bool = False):
        if not isinstance(separator, str) or len(separator) != 1:
            raise NnscratchError(
                f"CSVLogger: separator must be one character, got {separator!r}"
            )
        self.path, self.separator, self.append = Path(filename), separator, append
        self.rows: list[dict] = []

    def on_train_begin(self, logs=None):
        self.rows = self._rows_in_file() if self.append else []
        make_folder_of(self.path, "CSVLogger")
        self._write()

    def on_epoch_end(self, epoch, logs):
        self.rows.append({"epoch": epoch, **logs})
        self._write()

    def _rows_in_file(self) -> list[dict]:
        """The rows already in the file (append); NnscratchError naming it if they
        cannot be kept: bytes that are not UTF-8, a row longer than the header."""
        if not self.path.is_file():
            return []
        where = f"CSVLogger: {self.path}"
        try:
            with open(self.path, newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f, delimiter=self.separator)
                rows = []
                for row in reader:
                    if None in row:  # DictReader's key of the fields beyond the header
                        named = len(reader.fieldnames)
                        raise NnscratchError(
                            f"{where}: line {reader.line_num} has"
                            f" {named + len(row[None])} fields, the header {named}:"
                            " cannot append to it"
                        )
                    rows.append(row)
                return rows
        except UnicodeDecodeError:
            raise NnscratchError(
                f"{where}: not UTF-8 text, cannot append to it"
            ) from None
        except (OSError, csv.Error) as e:
            raise NnscratchError(f"{where}: cannot read it to append ({e})") from None

    def _write(self) -> None:
        names = sorted({name for row in self.rows for name in row} - {"epoch"})
        text = io.StringIO()
        writer = csv.DictWriter(
            text, ["epoch", *names], restval="", delimiter=self.separator,
            lineterminator="\n",
        )  # fmt: skip
        writer.writeheader()
        writer.writerows(self.rows)
        write_text(self.path, text.getvalue())

    def get_state(self):
        return {"rows": self.rows}  # a resumed fit writes the same file

    def set_state(self, state):
        self.rows = [dict(row) for row in state["rows"]]
        # on_train_begin wrote the header only; a fit continued from after its last
        # epoch has no epoch end to write the rows again
        self._write()
