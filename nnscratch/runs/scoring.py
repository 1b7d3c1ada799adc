"""A trained run's scores as metrics.json holds them: on the test set (an ordinary
run), or on the held-out validation images only (a sweep's trial, whose test set is
scored for the best trial alone, so that choosing among trials never looks at it)."""

from __future__ import annotations

import numpy as np

from ..errors import NnscratchError
from ..reporting.metrics import (
    check_confusion_matrix,
    confusion_matrix,
    per_class_rows,
)


def test_metrics(model, x_test, y_test, class_names) -> tuple[dict, np.ndarray]:
    """Test loss, accuracy, confusion matrix and per-class scores as JSON values, and
    the probabilities (N, C) they come from (for the figures): the test set goes
    through the network once."""
    result, probs = model.evaluate_and_predict(x_test, y_test)
    cm = confusion_matrix(y_test, probs.argmax(axis=1), len(class_names))
    metrics = {
        "test_loss": result["loss"],
        "test_accuracy": result["accuracy"],
        "test_examples": len(y_test),
        "confusion_matrix": cm.tolist(),
        "per_class": per_class_rows(cm, class_names),
    }
    return metrics, probs


def validation_metrics(model, validation: tuple) -> dict:
    """Validation loss and accuracy of (x_val, y_val)."""
    x_val, y_val = validation[:2]
    result = model.evaluate(x_val, y_val)
    return {
        "val_loss": result["loss"],
        "val_accuracy": result["accuracy"],
        "val_examples": len(y_val),
    }


def check_scored_on(metrics: dict, y_test, found: str, metrics_path) -> None:
    """Refuse a test set whose class counts y_test (N,) differ from the row sums of
    the confusion matrix in metrics.json: the figures would show other images than
    the page's numbers were measured on (e.g. --data-dir holding the other dataset).
    `found` says where the test set was read and `metrics_path` names metrics.json,
    for the message."""
    try:
        recorded = check_confusion_matrix(metrics["confusion_matrix"]).sum(axis=1)
    except (KeyError, NnscratchError):
        return  # no matrix: a sweep's trial, whose test set is scored now
    counts = np.bincount(y_test, minlength=len(recorded))
    if counts.shape != recorded.shape or np.any(counts != recorded):
        raise NnscratchError(
            f"the test set of {found} is not the one {metrics_path} was"
            " scored on (other class counts): pass --data-dir with the run's files"
        )
