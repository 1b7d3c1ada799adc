"""Learning-rate schedules: callables from the (fractional) epoch to a learning rate.

`fit(..., lr_schedule=s)` sets `optimizer.lr = s(epoch + batch / batches_per_epoch)`
before every step, so schedules are smooth within an epoch and written in epochs.
"""

from __future__ import annotations

import math

from ..errors import NnscratchError, check_float
from .registry import SCHEDULES


class Schedule:
    """Base: `schedule(epoch) -> lr`, with an optional linear warm-up over
    `warmup_epochs`: lr * epoch / warmup_epochs, never below 1% of lr (the first step
    moves); the decay of a subclass then runs on epoch - warm-up."""

    def __init__(self, lr: float, warmup_epochs: float = 0.0):
        self.lr = check_float("schedule lr", lr, 0, open_low=True)
        self.warmup_epochs = check_float("schedule warmup_epochs", warmup_epochs, 0)

    def __call__(self, epoch: float) -> float:
        if epoch < self.warmup_epochs:
            # linear ramp up to lr, starting at 1% of it so the very first step moves
            return self.lr * max(epoch / self.warmup_epochs, 0.01)
        return self._decayed(epoch - self.warmup_epochs)

    def _decayed(self, epoch: float) -> float:
        return self.lr

    @classmethod
    def for_run(cls, lr: float, epochs: int, warmup_epochs: float = 0.0) -> Schedule:
        """This schedule with defaults that fit a run of `epochs` epochs."""
        return cls(lr, warmup_epochs=warmup_epochs)

    def get_config(self) -> dict:
        """Constructor arguments as JSON values (recorded with a training run)."""
        return {"lr": self.lr, "warmup_epochs": self.warmup_epochs}


@SCHEDULES.register(name="constant")
class Constant(Schedule):
    """lr at every epoch (after the warm-up, if any)."""


@SCHEDULES.register(name="step")
class StepDecay(Schedule):
    """lr * gamma ** floor(e / step_epochs), e the epochs since the warm-up: drop by
    `gamma` every `step_epochs`."""

    @classmethod
    def for_run(cls, lr, epochs, warmup_epochs=0.0):
        """A drop by 10 every max(1, epochs // 3) epochs of the decay: lr, lr / 10 and
        lr / 100 over a run of a multiple of 3 epochs (and no warm-up); longer runs
        of other lengths end lower (10 epochs: lr / 1000 in the last one), and runs
        of 1 or 2 epochs drop every epoch (lr, then lr / 10)."""
        return cls(lr, max(1, epochs // 3), 0.1, warmup_epochs)

    def __init__(
        self, lr, step_epochs: float = 10, gamma: float = 0.1, warmup_epochs=0
    ):
        super().__init__(lr, warmup_epochs)
        self.step_epochs = check_float(
            "StepDecay step_epochs", step_epochs, 0, open_low=True
        )
        self.gamma = check_float("StepDecay gamma", gamma, 0, open_low=True)

    def _decayed(self, epoch):
        return self.lr * self.gamma ** math.floor(epoch / self.step_epochs)

    def get_config(self):
        return {
            **super().get_config(),
            "step_epochs": self.step_epochs,
            "gamma": self.gamma,
        }


@SCHEDULES.register(name="exponential")
class ExponentialDecay(Schedule):
    """lr * gamma ** e, e the epochs since the warm-up: a smooth decay by `gamma` per
    epoch."""

    @classmethod
    def for_run(cls, lr, epochs, warmup_epochs=0.0):
        """A 100-fold decay from the end of the warm-up to the end of the run."""
        decay_epochs = max(epochs - warmup_epochs, 1)
        return cls(lr, 0.01 ** (1 / decay_epochs), warmup_epochs)

    def __init__(self, lr, gamma: float = 0.9, warmup_epochs=0):
        super().__init__(lr, warmup_epochs)
        self.gamma = check_float("ExponentialDecay gamma", gamma, 0, open_low=True)

    def _decayed(self, epoch):
        return self.lr * self.gamma**epoch

    def get_config(self):
        return {**super().get_config(), "gamma": self.gamma}


@SCHEDULES.register(name="cosine")
class CosineDecay(Schedule):
    """Half a cosine from lr down to min_lr, reached at epoch `epochs` (counted from
    the start, warm-up included).

    lr_t = min_lr + (lr - min_lr) * (1 + cos(pi * t / T)) / 2, t the epochs since the
    warm-up, T = epochs - warmup_epochs
    """

    @classmethod
    def for_run(cls, lr, epochs, warmup_epochs=0.0):
        """Down to 0 at the end of the run."""
        return cls(lr, epochs, 0.0, warmup_epochs)

    def __init__(self, lr, epochs: float, min_lr: float = 0.0, warmup_epochs=0):
        super().__init__(lr, warmup_epochs)
        self.epochs = check_float("CosineDecay epochs", epochs, 0, open_low=True)
        if self.epochs < self.warmup_epochs:
            raise NnscratchError(
                f"cosine schedule: epochs ({epochs}) must be at least the warm-up "
                f"({warmup_epochs})"
            )
        self.min_lr = check_float("CosineDecay min_lr", min_lr, 0)

    def _decayed(self, epoch):
        # a run as long as its warm-up (e.g. --epochs 1 with 1 warm-up epoch) has no
        # cosine part: it ends at the end of the warm-up
        length = self.epochs - self.warmup_epochs
        progress = min(epoch / length, 1.0) if length > 0 else 1.0
        return (
            self.min_lr
            + (self.lr - self.min_lr) * (1 + math.cos(math.pi * progress)) / 2
        )

    def get_config(self):
        return {**super().get_config(), "epochs": self.epochs, "min_lr": self.min_lr}


def get_schedule(
    name: str, lr: float, epochs: int, warmup_epochs: float = 0.0
) -> Schedule:
    """A schedule by name ('constant', 'step', 'exponential', 'cosine') with defaults
    that fit a run of `epochs` epochs."""
    return SCHEDULES.get_class(name).for_run(lr, epochs, warmup_epochs)


def checked_schedule(schedule):
    """fit's `lr_schedule` checked: None, a `Schedule` (its constructor checked its
    rates), or a function of the epoch whose every rate is checked when it is used:
    a negative rate would climb the loss without complaint, NaN would end in a
    misleading "training diverged", text in a TypeError deep inside a step."""
    if schedule is None or isinstance(schedule, Schedule):
        return schedule
    if not callable(schedule):
        raise NnscratchError(
            "lr_schedule: expected a function of the epoch (such as "
            f"nn.CosineDecay(...)), got {schedule!r}"
        )

    def checked(epoch: float) -> float:
        rate = schedule(epoch)
        return check_float(f"lr_schedule: the rate at epoch {epoch:g}", rate, 0)

    return checked
