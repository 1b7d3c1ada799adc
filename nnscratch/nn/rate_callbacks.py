"""Callbacks that set the learning rate from epoch to epoch, as Keras' do: by a
function of the epoch (`LearningRateScheduler`) or when a metric stops improving
(`ReduceLROnPlateau`). fit's `lr_schedule` sets it before every step instead."""

from __future__ import annotations

import inspect

from ..errors import NnscratchError, check_float, check_int
from .callbacks import Callback, improves, monitor_mode, monitored


def refuse_lr_schedule(trainer, who: str) -> None:
    """A callback that sets the learning rate cannot share a fit with `lr_schedule`,
    which sets it before every step."""
    if trainer is not None and trainer.lr_schedule is not None:
        raise NnscratchError(
            f"{who}: this fit has an lr_schedule, which sets the learning rate "
            "before every step; use one or the other"
        )


class LearningRateScheduler(Callback):
    """Keras' callback of that name: before each epoch, the optimiser's rate becomes
    `schedule(epoch, lr)` (0-based epoch, the current rate), or `schedule(epoch)`
    for a function of one argument (such as `nn.CosineDecay(...)`, taken per epoch).
    fit's `lr_schedule` is the same per step, smooth within epochs."""

    def __init__(self, schedule, verbose: bool = False):
        if not callable(schedule):
            raise NnscratchError(
                "LearningRateScheduler: expected a function of the epoch, got "
                f"{schedule!r}"
            )
        self.schedule, self.verbose = schedule, bool(verbose)
        self.takes_lr = _takes_two_arguments(schedule)

    def on_train_begin(self, logs=None):
        refuse_lr_schedule(self.trainer, "LearningRateScheduler")

    def on_epoch_begin(self, epoch, logs):
        if self.trainer.step:  # resumed mid-epoch: its rate was set before the stop
            return
        optimizer = self.trainer.optimizer
        lr = (
            self.schedule(epoch, optimizer.lr)
            if self.takes_lr
            else self.schedule(epoch)
        )
        # >= 0, as fit's lr_schedule: a decay may end at 0
        optimizer.lr = check_float(
            f"LearningRateScheduler: the schedule's rate for epoch {epoch + 1}", lr, 0
        )
        if self.verbose:
            print(f"epoch {epoch + 1}: LearningRateScheduler: lr {optimizer.lr:.2e}")


def _takes_two_arguments(function) -> bool:
    """Whether `function` can be called with (epoch, lr), as Keras tries first."""
    try:
        inspect.signature(function).bind(0, 0.1)
    except (TypeError, ValueError):  # takes one; or no signature to read (built-ins)
        return False
    return True


class ReduceLROnPlateau(Callback):
    """Multiply the optimiser's learning rate by `factor` when `monitor` has not
    improved by `min_delta` for `patience` epochs, as Keras' callback of that name;
    then let `cooldown` epochs pass before counting again, and never go below
    `min_lr`. The new rate holds from the next epoch on (an epoch's logs show the rate
    it trained with); a checkpoint keeps it with the optimiser's state. Not with
    fit's `lr_schedule`, which sets the rate before every step.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        min_delta: float = 1e-4,
        mode: str = "auto",
        cooldown: int = 0,
        min_lr: float = 0.0,
        verbose: bool = False,
    ):  # Keras' defaults
        who = "ReduceLROnPlateau"
        self.mode = monitor_mode(who, monitor, mode)
        self.monitor = monitor
        self.factor = check_float(
            f"{who} factor", factor, 0, 1, open_low=True, open_high=True
        )
        self.patience = check_int(f"{who} patience", patience, 0)
        self.min_delta = check_float(f"{who} min_delta", min_delta, 0)
        self.cooldown = check_int(f"{who} cooldown", cooldown, 0)
        self.min_lr = check_float(f"{who} min_lr", min_lr, 0)
        self.verbose = bool(verbose)
        self.best, self.wait, self.cooling = None, 0, 0

    def on_train_begin(self, logs=None):
        refuse_lr_schedule(self.trainer, "ReduceLROnPlateau")
        self.best, self.wait, self.cooling = None, 0, 0

    def on_epoch_end(self, epoch, logs):
        value = monitored("ReduceLROnPlateau", self.monitor, logs)
        if self.cooling:
            self.cooling, self.wait = self.cooling - 1, 0
        if improves(value, self.best, self.mode, self.min_delta):
            self.best, self.wait = value, 0
        elif not self.cooling:
            self.wait += 1
            if self.wait >= self.patience:
                self._reduce(epoch)

    def _reduce(self, epoch: int) -> None:
        """Lower the rate (unless it is at min_lr already) and start the cooldown."""
        optimizer = self.trainer.optimizer
        if optimizer.lr > self.min_lr:
            optimizer.lr = max(optimizer.lr * self.factor, self.min_lr)
            self.cooling, self.wait = self.cooldown, 0
            if self.verbose:
                print(
                    f"epoch {epoch + 1}: ReduceLROnPlateau: {self.monitor} has not "
                    f"improved for {self.patience} epochs; lr now {optimizer.lr:.2e}"
                )

    def get_state(self):
        return {"best": self.best, "wait": self.wait, "cooling": self.cooling}

    def set_state(self, state):
        best = state["best"]
        self.best = None if best is None else float(best)
        self.wait = check_int("ReduceLROnPlateau wait", state["wait"], 0)
        self.cooling = check_int("ReduceLROnPlateau cooling", state["cooling"], 0)
