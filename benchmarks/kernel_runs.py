"""The parts of bench_training.py about the compiled kernels and the conv presets.

- kernels on and off: the same model trained on the kernels' NumPy twins
  (NNSCRATCH_KERNELS=numpy, here `kernels.using("numpy")`) and on their compiled
  twins (numba, the default), epoch by epoch in turn, so both see the same machine;
- the `fast` preset on MNIST as `nnscratch train --preset fast` trains it: the
  seconds of each epoch and the test accuracy after it, so the time to 99%;
- the `cnn` preset's epoch on MNIST;
- with --compare-torch, the `fast` recipe in PyTorch (`torch_preset_run`).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

import numpy as np
from common import OthersLoad, torch_twin

from nnscratch import Callback, load_dataset
from nnscratch.data.catalog import CLASS_NAMES
from nnscratch.data.loading import train_validation_split
from nnscratch.nn.kernels import using
from nnscratch.runs.presets import build_model, preset_settings
from nnscratch.runs.training import build_augment, build_optimizer, build_schedule

TARGET_ACCURACY = 0.99


@dataclass
class OnOff:
    """Epoch seconds of one model on the NumPy twins and on the compiled ones."""

    name: str
    batch: int
    seconds: dict[str, list[float]] = field(
        default_factory=lambda: {"numpy": [], "numba": []}
    )
    loads: list[float] = field(default_factory=list)
    losses: dict[str, float] = field(default_factory=dict)

    def median(self, twin: str) -> float:
        return statistics.median(self.seconds[twin])

    @property
    def ratio(self) -> float:
        """Compiled / NumPy, of the median epochs (below 1: the kernels help)."""
        return self.median("numba") / self.median("numpy")


def kernels_on_off(name, make_model, optimizer, images, labels, batch, epochs, log):
    """Train two copies of `make_model()` (same weights) for `epochs` epochs, one on
    each twin, alternating epoch by epoch; `optimizer()` makes each one's optimiser.
    A short fit on each twin first compiles the kernels (or loads them from numba's
    cache), outside the clock."""
    result = OnOff(name, batch)
    models = {}
    for twin in result.seconds:
        with using(twin):
            models[twin] = model = make_model()
            model.fit(images[: 2 * batch], labels[: 2 * batch], epochs=1,
                      batch_size=batch, optimizer=optimizer(), verbose=0, seed=0)  # fmt: skip
            model.set_weights(make_model().get_weights())  # back to the start
            model.optimizer = optimizer()
    for epoch in range(epochs):
        with OthersLoad() as load:
            for twin, model in models.items():
                with using(twin):
                    history = model.fit(
                        images, labels, epochs=1, batch_size=batch, verbose=0,
                        seed=epoch,
                    )  # fmt: skip
                result.seconds[twin].append(history.history["seconds"][0])
                result.losses[twin] = history.history["loss"][0]
        result.loads.append(load.cores)
    for twin, seconds in result.seconds.items():
        log(f"  {name} on the {twin} twins, epochs (s): "
            + " ".join(f"{s:.2f}" for s in seconds))  # fmt: skip
    return result


class TestAccuracy(Callback):
    """The test accuracy after every epoch (outside the epoch's clock)."""

    def __init__(self, images, labels):
        self.images, self.labels, self.accuracy = images, labels, []

    def on_epoch_end(self, epoch, logs):
        self.accuracy.append(self.model.evaluate(self.images, self.labels)["accuracy"])


@dataclass
class PresetRun:
    """A preset trained as `nnscratch train` trains it, epoch by epoch."""

    name: str
    images: int
    seconds: list[float]
    accuracy: list[float]  # on the test set after each epoch ([] if not measured)
    load: float | None
    framework: str = "nnscratch"

    @property
    def total(self) -> float:
        return sum(self.seconds)

    @property
    def time_to_target(self) -> float | None:
        """Seconds of training until the test accuracy first reached 99%."""
        for epoch, accuracy in enumerate(self.accuracy):
            if accuracy >= TARGET_ACCURACY:
                return sum(self.seconds[: epoch + 1])
        return None


def preset_data(settings, data_dir, limit=None) -> tuple:
    """x, y, x_test, y_test of the preset's dataset; `limit` cuts the training and
    test sets to their first images (a quick check that it runs, nothing more)."""
    (x, y), (x_test, y_test) = load_dataset(settings.dataset, data_dir)
    if limit:
        x, y, x_test, y_test = x[:limit], y[:limit], x_test[:limit], y_test[:limit]
    return x, y, x_test, y_test


def preset_run(name, data_dir, limit=None, epochs=None, test_each_epoch=True):
    """Train preset `name` (on its dataset, MNIST for the conv presets) as
    run_training does: its optimiser, schedule, augmentation and validation split,
    seed 0; `epochs` cuts the run short (the schedule is then that of the shorter
    run: the same work per epoch). `limit`: the first images of the training and
    test sets only."""
    options = {} if epochs is None else {"epochs": epochs}
    settings = preset_settings(name, **options)
    x, y, x_test, y_test = preset_data(settings, data_dir, limit)
    validation = None
    if settings.validation_split:
        (x, y), validation = train_validation_split(
            x, y, settings.validation_split, seed=settings.seed
        )
    class_names = list(CLASS_NAMES[settings.dataset])
    batch = settings.batch_size or len(x)
    # the kernels this model runs, compiled (or loaded from the cache) off the clock
    build_model(settings, x.shape[1:], class_names).fit(
        x[: 2 * batch], y[: 2 * batch], epochs=1, batch_size=batch, verbose=0
    )
    model = build_model(settings, x.shape[1:], class_names)
    tester = TestAccuracy(x_test, y_test) if test_each_epoch else None
    with OthersLoad() as load:
        history = model.fit(
            x, y, epochs=settings.epochs, batch_size=batch,
            optimizer=build_optimizer(settings), lr_schedule=build_schedule(settings),
            validation_data=validation, seed=settings.seed,
            augment=build_augment(settings), callbacks=[tester] if tester else [],
            verbose=0,
        )  # fmt: skip
    return PresetRun(
        name, len(x), history.history["seconds"],
        tester.accuracy if tester else [], load.cores,
    )  # fmt: skip


def torch_preset_run(name, data_dir, limit=None) -> PresetRun:
    """Preset `name`'s recipe in PyTorch, as `preset_run` trains it in nnscratch: the
    same network with the same initial weights (`torch_twin`), AdamW with its fused
    kernel, the schedule's lr set before every step, shuffling and augmentation by
    the same NumPy code (augmenting a batch costs both frameworks the same), test
    accuracy after each epoch off the clock. Presets that hold no images out only."""
    import torch

    settings = preset_settings(name)
    if settings.validation_split or settings.optimizer != "adamw":
        raise ValueError(f"torch_preset_run: {name} holds images out or is not AdamW")
    x, y, x_test, y_test = preset_data(settings, data_dir, limit)
    net = build_model(settings, x.shape[1:], list(CLASS_NAMES[settings.dataset]))
    model = torch_twin(net)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay,
        fused=True,
    )  # fmt: skip
    schedule, augment = build_schedule(settings), build_augment(settings)
    rng, batch = np.random.default_rng(settings.seed), settings.batch_size
    seconds, accuracy = [], []
    with OthersLoad() as load:
        for epoch in range(settings.epochs):
            seconds.append(
                _torch_epoch(model, optimizer, (x, y), batch, rng, augment,
                             lambda fraction, e=epoch: schedule(e + fraction))
            )  # fmt: skip
            accuracy.append(_torch_accuracy(model, x_test, y_test))
    return PresetRun(name, len(x), seconds, accuracy, load.cores, "PyTorch")


def _torch_epoch(model, optimizer, data, batch, rng, augment, lr_at) -> float:
    """One epoch of `model` on data = (uint8 images (N, H, W), labels); the lr is
    lr_at(fraction of the epoch done) before each step. Returns its seconds."""
    import time

    import torch

    x, y = data
    model.train()
    loss_fn = torch.nn.CrossEntropyLoss()
    started = time.perf_counter()
    order = rng.permutation(len(x))
    starts = range(0, len(x), batch)
    for step, first in enumerate(starts):
        index = order[first : first + batch]
        images = x[index].astype(np.float32) / np.float32(255)
        if augment is not None:
            images = augment(images, rng)
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step / len(starts))  # as nnscratch's Trainer
        logits = model(torch.from_numpy(images).unsqueeze(1))
        loss = loss_fn(logits, torch.from_numpy(y[index].astype(np.int64)))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - started


def _torch_accuracy(model, x, y, batch: int = 1000) -> float:
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        starts = range(0, len(x), batch)
    for step, first in enumerate(starts):
        images = torch.from_numpy(x[first : first + batch].astype(np.float32) / 255)
        logits = model(images.unsqueeze(1))
        correct += int((logits.argmax(1).numpy() == y[first : first + batch]).sum())
    return correct / len(x)


def preset_lines(
    fast: PresetRun | None, cnn: PresetRun | None, fast_torch: PresetRun | None = None
) -> list[str]:
    """What the report says of the preset runs."""
    lines = [fast_line(run) for run in (fast, fast_torch) if run is not None]
    if cnn is not None:
        lines.append(
            f"`cnn` preset on {cnn.images:,} MNIST images (10% more held out for "
            f"validation): epoch (s) " + " ".join(f"{s:.1f}" for s in cnn.seconds)
            + load_remark(cnn.load) + "."
        )  # fmt: skip
    return lines


def fast_line(run: PresetRun) -> str:
    """The `fast` recipe's epochs, accuracies and time to 99% in one sentence."""
    reached = run.time_to_target
    accuracy = " ".join(f"{a * 100:.2f}" for a in run.accuracy)
    return (
        f"`{run.name}` preset on {run.images:,} MNIST training images"
        + ("" if run.framework == "nnscratch" else f", its recipe in {run.framework}")
        + f": {run.total:.1f} s of "
        f"training in {len(run.seconds)} epochs (each: "
        + " ".join(f"{s:.1f}" for s in run.seconds)
        + f" s); test accuracy after each epoch (%): {accuracy}; "
        + (
            f"time to {TARGET_ACCURACY:.0%}: {reached:.1f} s"
            if reached is not None
            else f"{TARGET_ACCURACY:.0%} not reached"
        )
        + load_remark(run.load)
        + "."
    )


def load_remark(load: float | None, busy: float = 0.1) -> str:
    if load is not None and load > busy:
        return f" [machine busy: others used {load:.2f} cores; rerun]"
    return ""
