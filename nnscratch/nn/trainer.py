"""The loop behind `Sequential.fit`: epochs of mini-batch steps, each reported to the
callbacks (which record the History and show the progress)."""

from __future__ import annotations

import math
import time

import numpy as np

from ..errors import TrainingDivergedError, check_int
from .batches import EpochBatches
from .callbacks import CallbackList
from .optimizers import Optimizer
from .parameters import all_layers
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
    """

    def __init__(
        self, model, optimizer: Optimizer, callbacks: CallbackList, metrics=(),
        augment=None, augment_rng=None, lr_schedule=None,
    ):  # fmt: skip
        self.model, self.optimizer, self.callbacks = model, optimizer, callbacks
        self.metrics = list(metrics)
        self.augment, self.augment_rng = augment, augment_rng
        self.lr_schedule = lr_schedule

    def run(
        self, batches: EpochBatches, epochs: int, validation_data=None,
        validation_batch_size: int = 256,
    ) -> None:  # fmt: skip
        """Train for `epochs`, or until a callback sets `model.stop_training`.

        validation_data: (x, y, sample_weight or None) evaluated after every epoch,
        into its logs as val_loss and val_<metric>.
        """
        self.model.stop_training = False
        self.callbacks.on_train_begin()
        for epoch in range(epochs):
            self.callbacks.on_epoch_begin(epoch)
            started = time.perf_counter()
            logs = self.train_epoch(batches, epoch)
            if validation_data is not None:
                xv, yv, wv = validation_data
                val = self.model.evaluate(
                    xv, yv, batch_size=validation_batch_size, sample_weight=wv
                )
                logs.update({f"val_{name}": value for name, value in val.items()})
            logs["lr"] = self.optimizer.lr
            logs["seconds"] = time.perf_counter() - started
            self.callbacks.on_epoch_end(epoch, logs)
            if self.model.stop_training:
                break
        self.callbacks.on_train_end()

    def train_epoch(self, batches: EpochBatches, epoch: int) -> dict:
        """One pass over the data; returns {"loss", metrics...} weighted by batch size."""
        total_loss, totals, seen = 0.0, [0.0] * len(self.metrics), 0
        # a diverging loss is caught in train_step; NumPy's overflow warnings would
        # only add noise
        with np.errstate(over="ignore", invalid="ignore"):
            for step, start, xb, yb, wb in batches.epoch():
                self.callbacks.on_batch_begin(step)
                loss, batch_totals = self.train_step(
                    xb, yb, wb, epoch, step, batches.steps
                )
                total_loss += loss * len(yb)
                totals = [a + b for a, b in zip(totals, batch_totals)]
                seen = start + len(yb)
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
        loss = model.loss.forward(outputs, yb, wb) + model._penalty()
        if not math.isfinite(loss) or loss > DIVERGED_LOSS:
            raise TrainingDivergedError(
                f"training diverged: the loss became {loss:.3g} at epoch {epoch + 1}, "
                f"batch {step + 1}; try a lower learning rate (lr={optimizer.lr:g})"
            )
        totals = [m.batch_total(outputs, yb, model.loss) for m in self.metrics]
        model.backward(model.loss.backward())
        buffers = model._buffers
        trainable = slice(0, buffers.trainable)
        optimizer.step(
            {"all": buffers.params[trainable]}, {"all": buffers.grads[trainable]}
        )
        return loss, totals

    def step_logs(self, xb, yb, wb) -> dict:
        """One step outside an epoch (`train_on_batch`): {"loss", metrics...}."""
        with np.errstate(over="ignore", invalid="ignore"):
            loss, totals = self.train_step(xb, yb, wb, 0, 0, 1)
        return {"loss": loss, **self._averages(totals, len(yb))}


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
