"""Callbacks: code that `fit` runs at the start and end of training, epochs and batches.

`fit` talks to one `CallbackList`, which passes every hook on to each callback: the
`History` it returns, the progress display (`progress.ProgressBar`) and the user's.
"""

from __future__ import annotations

import math

from ..errors import NnscratchError, check_float, check_int


class Callback:
    """Keras-like hooks. `fit` sets `self.model` before `on_train_begin`.

    `logs` holds the metrics known at that point: per batch {"loss"} (the batch's),
    {"accuracy"} (the epoch's so far) and {"size"} (the batch's examples); per epoch
    {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"}.
    Set `self.model.stop_training = True` to end training after this epoch.
    """

    model = None

    def set_model(self, model) -> None:
        """Called by `fit` before training starts: the model being trained."""
        self.model = model

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

    def on_train_end(self, logs: dict | None = None) -> None:
        """Called once after the last epoch (also after early stopping)."""


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

    With a `model`, sets it on each (`set_model`), as `fit` does before training.
    """

    def __init__(self, callbacks=None, model=None):
        self.callbacks = check_callbacks(callbacks)
        if model is not None:
            self.set_model(model)

    def set_model(self, model) -> None:
        self.model = model
        for cb in self.callbacks:
            cb.set_model(model)

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
            cb.on_batch_begin(batch, {} if logs is None else logs)

    def on_batch_end(self, batch, logs):
        for cb in self.callbacks:
            cb.on_batch_end(batch, logs)

    def on_train_end(self, logs=None):
        for cb in self.callbacks:
            cb.on_train_end({} if logs is None else logs)


class History(Callback):
    """What `fit` measured, recorded as it trains (`fit` adds one and returns it):
    `history[metric]` (a list, one value per epoch), `epoch` (0-based epoch numbers)
    and `batch_losses` (every step's loss)."""

    def __init__(self):
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.batch_losses: list[float] = []

    def append(self, epoch: int, logs: dict) -> None:
        """Record one epoch's logs."""
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def on_batch_end(self, batch, logs):
        self.batch_losses.append(logs["loss"])

    def on_epoch_end(self, epoch, logs):
        self.append(epoch, logs)


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by `min_delta` for `patience` epochs.

    With `restore_best_weights` the model ends with the weights (and batch-norm
    statistics) of its best epoch, as Keras does.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        patience: int = 5,
        min_delta: float = 0.0,
        mode: str = "auto",
        restore_best_weights: bool = True,
    ):
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        if mode not in ("min", "max"):
            raise NnscratchError(
                f"EarlyStopping: mode must be min, max or auto, got {mode!r}"
            )
        self.monitor = monitor
        self.patience = check_int("EarlyStopping patience", patience, 0)
        self.min_delta = check_float("EarlyStopping min_delta", min_delta, 0)
        self.mode, self.restore_best_weights = mode, restore_best_weights

    def on_train_begin(self, logs=None):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch, self.wait, self.stopped_epoch = None, 0, None
        self.best_weights = None

    def _improved(self, value: float) -> bool:
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, epoch, logs):
        if self.monitor not in logs:
            known = ", ".join(logs)
            raise NnscratchError(
                f"EarlyStopping: no metric {self.monitor!r} (have {known}); "
                "pass validation data to monitor val_* metrics"
            )
        value = logs[self.monitor]
        if self._improved(value):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)
