"""The loop behind `Sequential.fit`: epochs of mini-batch steps, each reported to the
callbacks (which record the History and show the progress), and the state of that
loop that a checkpoint holds (`Trainer.state`, `Trainer.restore`)."""

from __future__ import annotations

import json
import math
import time

import numpy as np

from ..errors import NnscratchError, TrainingDivergedError, check_int
from .batches import EpochBatches
from .callbacks import CallbackList
from .kernels.dispatch import ENVIRONMENT_VARIABLE, backend
from .optimizers import Optimizer
from .parameters import all_layers, check_values
from .saving import model_description
from .seeding import new_seed

# A loss above this has diverged even where it is still finite: cross-entropy starts
# near log(C) (2.3 for 10 classes), and regression on data scaled to units stays
# far below; a run that gets here only grows until it overflows.
DIVERGED_LOSS = 1e12


class Trainer:
    """Trains `model` with `optimizer`, telling `callbacks` about every epoch and step.

    metrics: the Metric objects reported beside the loss.
    augment(images, rng): transforms each training batch (drawing from augment_rng).
    lr_schedule(epoch_float): sets `optimizer.lr` before every step.
    The optimiser steps once per batch on the model's trainable parameters, a slice
    of its flat parameter buffer.

    Where it is: `epoch` (0-based, the one in progress or next) and `step` (the steps
    of it done); a checkpoint taken now continues from there (`state`).
    """

    def __init__(
        self, model, optimizer: Optimizer, callbacks: CallbackList, metrics=(),
        augment=None, augment_rng=None, lr_schedule=None, seed: int | None = None,
    ):  # fmt: skip
        self.model, self.optimizer, self.callbacks = model, optimizer, callbacks
        self.seed = seed  # the fit's, kept in checkpoints (`backup.resumed_seed`)
        self.metrics = list(metrics)
        self.augment, self.augment_rng = augment, augment_rng
        self.lr_schedule = lr_schedule
        callbacks.set_trainer(self)
        self.batches: EpochBatches | None = None
        self.epochs = self.epoch = self.step = 0
        self._sums = (0.0, [0.0] * len(self.metrics), 0)  # loss, metrics, examples
        now = time.perf_counter()
        self._started, self._epoch_started, self._seconds_before = now, now, 0.0

    def run(
        self, batches: EpochBatches, epochs: int, validation_data=None,
        validation_batch_size: int = 256, initial_epoch: int = 0,
    ) -> None:  # fmt: skip
        """Train epochs `initial_epoch` to `epochs` - 1 (0-based), or until a callback
        sets `model.stop_training`.

        validation_data: (x, y, sample_weight or None) evaluated after every epoch,
        into its logs as val_loss and val_<metric>.
        """
        self.batches, self.epochs = batches, epochs
        self.epoch, self.step = initial_epoch, 0
        self._started = time.perf_counter()
        self.model.stop_training = False
        self.callbacks.on_train_begin()  # a BackupAndRestore may move epoch and step
        while self.epoch < epochs and not self.model.stop_training:
            epoch = self.epoch
            self.callbacks.on_epoch_begin(epoch)
            if self.step == 0:
                self._epoch_started = time.perf_counter()
            self.bind_model()
            logs = self.train_epoch(batches, epoch)
            if validation_data is not None:
                xv, yv, wv = validation_data
                val = self.model.evaluate(
                    xv, yv, batch_size=validation_batch_size, sample_weight=wv
                )
                logs.update({f"val_{name}": value for name, value in val.items()})
            logs["lr"] = self.optimizer.lr
            logs["seconds"] = time.perf_counter() - self._epoch_started
            self.epoch, self.step = epoch + 1, 0
            self._sums = (0.0, [0.0] * len(self.metrics), 0)
            self.callbacks.on_epoch_end(epoch, logs)
        self.callbacks.on_train_end()

    def bind_model(self) -> None:
        """Check that the model's flat buffers still hold its trainable arrays (make
        them anew if not), and drop optimiser state kept for another size. Done once
        an epoch, not every step (the check walks every layer: ~40 us), so a callback
        that freezes a layer or replaces its arrays mid-epoch is heeded from the next
        epoch on, as Keras heeds a change of `trainable` only when compiled again."""
        model = self.model
        model._bind()
        trainable = model._buffers.params[: model._buffers.trainable]
        self.optimizer.forget_state_unlike(trainable)

    def train_epoch(self, batches: EpochBatches, epoch: int) -> dict:
        """The rest of an epoch, from `self.step` (0: all of it); returns {"loss",
        metrics...} of the whole epoch, weighted by batch size."""
        total_loss, totals, seen = self._sums
        # a diverging loss is caught in train_step; NumPy's overflow warnings would
        # only add noise
        with np.errstate(over="ignore", invalid="ignore"):
            for step, start, xb, yb, wb in batches.epoch(self.step):
                self.callbacks.on_batch_begin(step)
                loss, batch_totals = self.train_step(
                    xb, yb, wb, epoch, step, batches.steps
                )
                total_loss += loss * len(yb)
                totals = [a + b for a, b in zip(totals, batch_totals)]
                seen = start + len(yb)
                self.step, self._sums = step + 1, (total_loss, totals, seen)
                logs = {"loss": loss, **self._averages(totals, seen), "size": len(yb)}
                self.callbacks.on_batch_end(step, logs)
        return {"loss": total_loss / seen, **self._averages(totals, seen)}

    def _averages(self, totals: list[float], n: int) -> dict:
        return {metric.name: total / n for metric, total in zip(self.metrics, totals)}

    def train_step(
        self, xb, yb, wb, epoch: int, step: int, steps: int
    ) -> tuple[float, list[float]]:
        """One optimiser step on a batch xb (B, ...) with targets yb and example
        weights wb (B,) or None; returns the batch's loss (with the layers'
        penalties) and each metric's sum over the batch."""
        model, optimizer = self.model, self.optimizer
        if self.augment is not None:
            xb = self.augment(xb, self.augment_rng)
        if self.lr_schedule is not None:
            optimizer.lr = self.lr_schedule(epoch + step / steps)
        outputs = model.forward(xb, training=True)
        loss = model.loss.forward(outputs, yb, wb) + model._bound_penalty()
        if not math.isfinite(loss) or loss > DIVERGED_LOSS:
            raise TrainingDivergedError(
                f"training diverged: the loss became {loss:.3g} at epoch {epoch + 1}, "
                f"batch {step + 1}; try a lower learning rate (lr={optimizer.lr:g})"
            )
        totals = [m.batch_total(outputs, yb, model.loss) for m in self.metrics]
        model._bound_backward(model.loss.backward())
        buffers = model._buffers
        trainable = slice(0, buffers.trainable)
        optimizer.step(
            {"all": buffers.params[trainable]}, {"all": buffers.grads[trainable]}
        )
        return loss, totals

    def step_logs(self, xb, yb, wb) -> dict:
        """One step outside an epoch (`train_on_batch`): {"loss", metrics...}."""
        self.bind_model()
        with np.errstate(over="ignore", invalid="ignore"):
            loss, totals = self.train_step(xb, yb, wb, 0, 0, 1)
        return {"loss": loss, **self._averages(totals, len(yb))}

    # ----- checkpoints ----------------------------------------------------------------
    @property
    def steps_done(self) -> int:
        """Steps taken in this fit so far, counted over its epochs (a checkpoint's
        position): what saving every N steps counts."""
        return self.epoch * self.batches.steps + self.step

    @property
    def train_seconds(self) -> float:
        """Time spent in `run`, with that of the runs a checkpoint continues."""
        return self._seconds_before + time.perf_counter() - self._started

    def _generators(self) -> dict:
        """Every random generator of the fit: shuffling, augmentation, the layers'."""
        layers = {
            prefix: layer.rng
            for prefix, layer, _ in all_layers(self.model.layers)
            if isinstance(getattr(layer, "rng", None), np.random.Generator)
        }
        return {"shuffle": self.batches.rng, "augment": self.augment_rng, **layers}

    def state(self) -> dict:
        """Everything `restore` needs to go on exactly as if never stopped: where it
        is, the epoch's running sums, weights (and batch-norm statistics), the
        optimiser, every random generator, and each callback's `get_state()` (the
        History, early stopping's best weights...). JSON values and arrays.

        The shuffling generator is saved as it was before the epoch's order was drawn
        (`EpochBatches.epoch`), so a checkpoint mid-epoch continues the same order."""
        total_loss, totals, seen = self._sums
        generators = {}
        for name, rng in self._generators().items():
            if name == "shuffle" and rng is not None and self.step:
                generators[name] = self.batches.start_state
            else:
                generators[name] = None if rng is None else rng.bit_generator.state
        epoch_seconds = time.perf_counter() - self._epoch_started if self.step else 0.0
        return {
            "position": {
                "epoch": self.epoch, "step": self.step, "epochs": self.epochs,
                "steps": self.batches.steps, "batch_size": self.batches.batch_size,
                "augment": self.augment is not None, "data": self.batches.digest(),
                "seed": self.seed, "kernels": backend(),
                "stop_training": bool(self.model.stop_training),
            },
            "epoch_sums": {"loss": total_loss, "metrics": totals, "seen": seen,
                           "seconds": epoch_seconds, "names": self._metric_names()},
            "train_seconds": self.train_seconds,
            "model": self._architecture(),
            "weights": self.model.get_weights(),
            "optimizer": self.optimizer.get_state(),
            "generators": generators,
            "callbacks": [
                {"class": type(cb).__name__, "state": state}
                for cb, state in self._callback_states()
            ],
        }  # fmt: skip

    def _callback_states(self) -> list[tuple]:
        callbacks = self.callbacks.callbacks
        return [(cb, s) for cb in callbacks if (s := cb.get_state()) is not None]

    def restore(self, state: dict) -> None:
        """Continue from a `state()` dict (read from a checkpoint). NnscratchError if
        it comes from another fit (`_check_fits`); KeyError, TypeError or ValueError
        if it is not such a dict."""
        position, callbacks = state["position"], self._callback_states()
        self._check_fits(state, [type(cb).__name__ for cb, _ in callbacks])
        generators = self._generators()
        self.model.set_weights(state["weights"])
        check_values(self.model.layers)  # a NaN would pass as a diverged fit
        self.optimizer.set_state(state["optimizer"])
        for (cb, _), entry in zip(callbacks, state["callbacks"]):
            cb.set_state(entry["state"])
        for name, rng in generators.items():
            if rng is not None and state["generators"][name] is not None:
                rng.bit_generator.state = state["generators"][name]
        sums = state["epoch_sums"]
        metrics = [float(v) for v in sums["metrics"]]
        self._sums = (float(sums["loss"]), metrics, check_int("seen", sums["seen"], 0))
        self.epoch = check_int("checkpoint epoch", position["epoch"], 0)
        self.step = check_int("checkpoint step", position["step"], 0)
        self.model.stop_training = bool(position["stop_training"])
        now = time.perf_counter()
        self._epoch_started = now - float(sums["seconds"])
        self._seconds_before, self._started = float(state["train_seconds"]), now

    def _architecture(self) -> dict:
        """The layers (classes and settings), which are frozen and the loss, as JSON
        has them."""
        description = model_description(self.model)
        keys = ("layers", "frozen", "loss", "loss_config")
        return json.loads(json.dumps({key: description[key] for key in keys}))

    def _check_model(self, saved: dict) -> None:
        """NnscratchError unless the checkpoint's model (`_architecture`) is this
        one: its layers, frozen ones, and loss (older checkpoints record no loss)."""
        mine = self._architecture()
        if any(saved[key] != mine[key] for key in ("layers", "frozen")):
            raise NnscratchError(
                "the checkpoint is of another model: its layers or frozen ones differ"
            )
        if "loss" in saved and any(
            saved[key] != mine[key] for key in ("loss", "loss_config")
        ):
            raise NnscratchError(
                f"the checkpoint's fit trained with the loss {_call(saved)}; this one "
                f"with {_call(mine)}"
            )

    def _metric_names(self) -> list[str]:
        return [metric.name for metric in self.metrics]

    def _check_batches(self, state: dict) -> None:
        """NnscratchError unless `state`'s fit took its batches as this one: of the
        same size (another can give as many steps: 150 examples, 31 or 32 a batch),
        shuffled or not, augmented or not. (Older checkpoints record neither the
        batch size nor augmentation: they pass those checks.)"""
        position, batches = state["position"], self.batches
        batch_size = position.get("batch_size", batches.batch_size)
        if batch_size != batches.batch_size:
            raise NnscratchError(
                f"the checkpoint is of a fit of batch_size {batch_size}; this one has "
                f"{batches.batch_size}"
            )
        took = {  # what the checkpoint's fit did, what this one does, in words
            "shuffled its examples": (
                state["generators"]["shuffle"] is not None,
                batches.rng is not None,
            ),
            "augmented its batches": (
                position.get("augment", self.augment is not None),
                self.augment is not None,
            ),
        }
        for done, (then, now) in took.items():
            if then != now:
                raise NnscratchError(
                    f"the checkpoint is of a fit that {'' if then else 'never '}{done};"
                    f" this one {'does not' if then else 'does'}"
                )

    def _check_fits(self, state: dict, callbacks: list[str]) -> None:
        """NnscratchError unless `state` is of a fit like this one, which continued
        ends as it would have: the same data, steps and batches (`_check_batches`),
        model and loss (`_check_model`), callbacks, random generators, metrics and
        kernels (the NumPy twins round differently)."""
        position = state["position"]
        if position["data"] != self.batches.digest():
            raise NnscratchError(
                "the checkpoint is of a fit on other data (with another split or "
                "seed, or other arrays)"
            )
        if position["steps"] != self.batches.steps:
            raise NnscratchError(
                f"the checkpoint is of a fit of {position['steps']} steps an epoch; "
                f"this one has {self.batches.steps} (another batch_size?)"
            )
        self._check_batches(state)
        self._check_model(state["model"])
        saved = [c["class"] for c in state["callbacks"]]
        if saved != callbacks:
            raise NnscratchError(
                f"the checkpoint was written with the callbacks {saved}; this fit "
                f"has {callbacks}"
            )
        if state["generators"].keys() != self._generators().keys():
            raise NnscratchError(
                "the checkpoint's random generators are not this fit's"
            )
        sums, names = state["epoch_sums"], self._metric_names()
        if len(sums["metrics"]) != len(self.metrics):
            raise NnscratchError("the checkpoint's fit reported other metrics")
        if sums.get("names", names) != names:  # older checkpoints: counted only
            raise NnscratchError(
                f"the checkpoint's fit reported {sums['names']}; this one reports "
                f"{names}"
            )
        kernels = position.get("kernels", backend())  # older checkpoints lack it
        if kernels != backend():
            raise NnscratchError(
                f"the checkpoint was written with the {kernels} kernels, this fit runs "
                f"the {backend()} ones, which round differently: continue it with "
                f"{ENVIRONMENT_VARIABLE}={kernels}"
            )


def _call(architecture: dict) -> str:
    """ "SoftmaxCrossEntropy(label_smoothing=0.1)": the loss of an `_architecture`."""
    config = architecture.get("loss_config")
    args = config.items() if isinstance(config, dict) else []
    return f"{architecture['loss']}({', '.join(f'{k}={v!r}' for k, v in args)})"


def seed_layers(seed, layers) -> tuple[np.random.Generator, np.random.Generator]:
    """Give every layer (inner ones too) its generator for dropout; returns the
    generators for shuffling and for augmenting. None: `seeding.new_seed()`.

    Independent streams: changing one (e.g. turning augmentation on) leaves the
    others' draws, and so the shuffling and dropout masks, as they were.
    """
    if seed is not None:
        check_int("seed", seed, 0)
    else:
        seed = new_seed()
    shuffle_rng, augment_rng, layer_rng = np.random.default_rng(seed).spawn(3)
    every_layer = [layer for _, layer, _ in all_layers(layers)]
    for layer, child in zip(every_layer, layer_rng.spawn(len(every_layer))):
        layer.set_rng(child)
    return shuffle_rng, augment_rng
