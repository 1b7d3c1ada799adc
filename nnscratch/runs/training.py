"""A whole training run as `nnscratch train` does it: data, model, fit, run directory.

The run directory's files are listed in `rundir`; `run_training` writes them all, and
unless told not to the figures, report.html and recordings.npz too.
"""

from __future__ import annotations

import time

from ..data.augment import Augment
from ..data.catalog import CLASS_NAMES
from ..data.loading import load_dataset, locate_dataset, train_validation_split
from ..nn.kernels import compile_seconds
from ..nn.optimizers import Optimizer, get_optimizer
from ..nn.schedules import Schedule, get_schedule
from ..reporting.animation import PredictionRecorder
from ..reporting.metrics import confusion_matrix, per_class_rows
from .presets import build_model
from .rundir import (
    MODEL_FILE,
    RECORDINGS_FILE,
    make_run_dir,
    write_config,
    write_history,
    write_metrics,
    write_run_report,
)
from .settings import RunSettings


def build_optimizer(settings: RunSettings) -> Optimizer:
    """The optimiser `settings` names, with the settings it takes: momentum (sgd) and
    weight decay (sgd, adam, adamw)."""
    name, lr = settings.optimizer, settings.lr
    if name == "sgd":
        momentum = settings.momentum
        return get_optimizer(
            name, lr=lr, momentum=momentum, weight_decay=settings.weight_decay
        )
    if name in ("adam", "adamw"):
        return get_optimizer(name, lr=lr, weight_decay=settings.weight_decay)
    return get_optimizer(name, lr=lr)


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


def test_metrics(model, x_test, y_test, class_names) -> dict:
    """Test loss, accuracy, confusion matrix and per-class scores as JSON values."""
    result = model.evaluate(x_test, y_test)
    predicted = model.predict(x_test).argmax(axis=1)
    cm = confusion_matrix(y_test, predicted, len(class_names))
    return {
        "test_loss": result["loss"],
        "test_accuracy": result["accuracy"],
        "test_examples": len(y_test),
        "confusion_matrix": cm.tolist(),
        "per_class": per_class_rows(cm, class_names),
    }


def run_training(
    settings: RunSettings,
    data_dir=None,
    out=None,
    limit=None,
    report=True,
    verbose=1,
    overwrite=False,
) -> dict:
    """Train as `settings` say, write the run directory, print and return the metrics.

    The settings were checked when they were made, and the model is built before the
    run directory is made, so bad settings leave nothing behind.
    """
    if not isinstance(settings, RunSettings):
        raise TypeError(f"settings: expected a RunSettings, got {type(settings)}")
    optimizer, schedule = build_optimizer(settings), build_schedule(settings)
    augment = build_augment(settings)
    dataset = settings.dataset
    # found once: the folder is recorded (absolute, so that `nnscratch report` can
    # reload the test set from wherever it runs) and read
    folder = locate_dataset(dataset, data_dir).absolute()
    (x_train, y_train), (x_test, y_test) = load_dataset(dataset, folder)
    if limit:
        x_train, y_train = x_train[:limit], y_train[:limit]
    class_names = list(CLASS_NAMES[dataset])
    validation = None
    if settings.validation_split:
        (x_train, y_train), validation = train_validation_split(
            x_train, y_train, settings.validation_split, seed=settings.seed
        )
    model = build_model(settings, x_train.shape[1:], class_names)
    run_dir = make_run_dir(out, settings.preset or "run", overwrite)
    config = write_config(run_dir, settings, folder, len(x_train))
    model.metadata = {"training": config}
    if verbose:
        print(f"training on {len(x_train):,} {dataset} images; run directory {run_dir}")
        print(model.summary())
    callbacks = [PredictionRecorder(x_test)] if report else []
    started = time.perf_counter()
    history = model.fit(
        x_train,
        y_train,
        epochs=settings.epochs,
        batch_size=settings.batch_size or len(x_train),
        optimizer=optimizer,
        lr_schedule=schedule,
        validation_data=validation,
        seed=settings.seed,
        augment=augment,
        callbacks=callbacks,
        verbose=verbose,
    )
    train_seconds = time.perf_counter() - started
    model.save(run_dir / MODEL_FILE)
    write_history(run_dir, history)
    metrics = test_metrics(model, x_test, y_test, class_names)
    metrics["train_seconds"] = train_seconds
    write_metrics(run_dir, metrics)
    if report:
        recordings = callbacks[0].recordings(y_test)
        recordings.save(run_dir / RECORDINGS_FILE)
        test_set = (x_test, y_test)
        batch_losses = history.batch_losses
        write_run_report(
            run_dir, model, history, batch_losses, test_set, recordings, config, metrics
        )
    print(
        f"test accuracy {metrics['test_accuracy']:.4f} on {len(y_test):,} {dataset} test "
        f"images (loss {metrics['test_loss']:.4f}); trained in {train_seconds:.1f}s; "
        f"saved {run_dir / MODEL_FILE}"
    )
    if compile_seconds() > COMPILE_NOTE_SECONDS:
        print(
            f"(this run spent {compile_seconds():.0f}s compiling nnscratch's kernels: "
            "once on this machine, later runs load them from numba's cache)"
        )
    return metrics


# the first run on a fresh install compiles the kernels; past this, it says so
COMPILE_NOTE_SECONDS = 3.0
