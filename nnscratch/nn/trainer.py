"""The loop behind `Sequential.fit`: epochs of mini-batch steps, each reported to the
callbacks (which record the History and show the progress)."""

from __future__ import annotations

import math
import time

import numpy as np

from ..errors import TrainingDivergedError
from .batches import EpochBatches
from .callbacks import CallbackList
from .optimizers import Optimizer


class Trainer:
    """Trains `model` with `optimizer`, telling `callbacks` about every epoch and step.

    augment(images, rng): transforms each training batch (drawing from augment_rng).
    lr_schedule(epoch_float): sets `optimizer.lr` before every step.
    The optimiser steps once per batch on the model's flat parameter buffer.
    """

    def __init__(
        self, model, optimizer: Optimizer, callbacks: CallbackList,
        augment=None, augment_rng=None, lr_schedule=None,
    ):  # fmt: skip
        self.model, self.optimizer, self.callbacks = model, optimizer, callbacks
        self.augment, self.augment_rng = augment, augment_rng
        self.lr_schedule = lr_schedule

    def run(
        self, batches: EpochBatches, epochs: int, validation_data=None,
        validation_batch_size: int = 256,
    ) -> None:  # fmt: skip
        """Train for `epochs`, or until a callback sets `model.stop_training`.

        validation_data: (x, y) evaluated after every epoch, into its logs.
        """
        self.model.stop_training = False
        self.callbacks.on_train_begin()
        for epoch in range(epochs):
            self.callbacks.on_epoch_begin(epoch)
            started = time.perf_counter()
            logs = self.train_epoch(batches, epoch)
            if validation_data is not None:
                val = self.model.evaluate(
                    *validation_data, batch_size=validation_batch_size
                )
                logs.update(val_loss=val["loss"], val_accuracy=val["accuracy"])
            logs["lr"] = self.optimizer.lr
            logs["seconds"] = time.perf_counter() - started
            self.callbacks.on_epoch_end(epoch, logs)
            if self.model.stop_training:
                break
        self.callbacks.on_train_end()

    def train_epoch(self, batches: EpochBatches, epoch: int) -> dict:
        """One pass over the data; returns {"loss", "accuracy"} weighted by batch size."""
        total_loss, correct = 0.0, 0
        # a diverging loss is caught in train_step; NumPy's overflow warnings would
        # only add noise
        with np.errstate(over="ignore", invalid="ignore"):
            for step, start, xb, yb in batches.epoch():
                self.callbacks.on_batch_begin(step)
                loss, batch_correct = self.train_step(
                    xb, yb, epoch, step, batches.steps
                )
                total_loss += loss * len(yb)
                correct += batch_correct
                seen = start + len(yb)
                logs = {"loss": loss, "accuracy": correct / seen, "size": len(yb)}
                self.callbacks.on_batch_end(step, logs)
        n = len(batches.x)
        return {"loss": total_loss / n, "accuracy": correct / n}

    def train_step(
        self, xb, yb, epoch: int, step: int, steps: int
    ) -> tuple[float, int]:
        """One optimiser step on a batch xb (B, ...), yb (B,) or (B, C); returns the
        batch's loss (with the layers' penalties) and how many it classified right."""
        model, optimizer = self.model, self.optimizer
        if self.augment is not None:
            xb = self.augment(xb, self.augment_rng)
        if self.lr_schedule is not None:
            optimizer.lr = self.lr_schedule(epoch + step / steps)
        logits = model._forward(xb, training=True)
        loss = model.loss.forward(logits, yb) + model._penalty()
        if not math.isfinite(loss):
            raise TrainingDivergedError(
                f"training diverged: the loss became {loss} at epoch {epoch + 1}, "
                f"batch {step + 1}; try a lower learning rate (lr={optimizer.lr:g})"
            )
        correct = model._count_correct(logits, yb)
        model._backward(model.loss.backward())
        optimizer.step({"all": model.flat_params}, {"all": model.flat_grads})
        return loss, correct
