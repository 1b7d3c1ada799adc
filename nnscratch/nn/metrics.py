"""Metrics that `fit` and `evaluate` report beside the loss: `metrics=["accuracy", ...]`.

A metric sums a per-example score over each batch (`batch_total`); the value for an
epoch or a data set is that sum over all examples divided by their number, so batch
sizes weigh in as they should. Metrics are not weighted by `sample_weight` (the loss
is), as in Keras. The full reports on a test set (confusion matrix, per-class
precision and recall) are in `nnscratch.reporting.metrics`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..errors import NnscratchError, check_int
from .registry import METRICS


class Metric(ABC):
    """Base: `name` (the key in History and in evaluate's dict) and `batch_total`."""

    name = "metric"

    @abstractmethod
    def batch_total(self, outputs: np.ndarray, targets: np.ndarray, loss) -> float:
        """The sum over the batch of each example's score. outputs (B, ...) are the
        model's raw outputs; `loss` says how they become predictions."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


@METRICS.register(
    name="accuracy",
    aliases=(
        "acc",
        "sparse_categorical_accuracy",
        "categorical_accuracy",
        "binary_accuracy",
    ),
)
class Accuracy(Metric):
    """The fraction of examples whose predicted class is the target class.

    Targets are class labels (N,), one-hot or soft rows (N, C) (their largest entry
    is the class), or for binary outputs (N, K) 0/1 per output, each output counted.
    """

    name = "accuracy"

    def batch_total(self, outputs, targets, loss) -> float:
        predicted = loss.predicted_classes(outputs)
        if targets.ndim == 2 and targets.shape[1] == 1:  # one yes/no output
            targets = (targets[:, 0] >= 0.5).astype(np.int64)
        elif predicted.shape == targets.shape and targets.ndim == 2:  # multi-label
            right = predicted == (targets >= 0.5)
            return float(right.mean(axis=1).sum())
        labels = targets if targets.ndim == 1 else targets.argmax(axis=1)
        return float(np.count_nonzero(predicted.reshape(labels.shape) == labels))


@METRICS.register(
    name="top_k_accuracy",
    aliases=("top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy"),
)
class TopKAccuracy(Metric):
    """The fraction of examples whose target class is among the k largest outputs."""

    def __init__(self, k: int = 5):
        self.k = check_int("TopKAccuracy k", k)
        self.name = f"top_{self.k}_accuracy"

    def batch_total(self, outputs, targets, loss) -> float:
        if outputs.ndim != 2 or outputs.shape[1] <= 1:
            raise NnscratchError(f"{self.name}: expected outputs (N, C), C > 1")
        labels = targets if targets.ndim == 1 else targets.argmax(axis=1)
        k = min(self.k, outputs.shape[1])
        # the label is in the top k if fewer than k outputs are larger than its own
        own = outputs[np.arange(len(labels)), labels][:, None]
        return float(np.count_nonzero((outputs > own).sum(axis=1) < k))

    def __repr__(self) -> str:
        return f"TopKAccuracy(k={self.k})"


@METRICS.register(name="mae", aliases=("mean_absolute_error",))
class MeanAbsoluteError(Metric):
    """mean |prediction - target| over each example's outputs, for regression;
    class labels (N,) for outputs (N, C) are one-hot targets, as the losses take them
    (a classifier's probabilities against them)."""

    name = "mae"
    error = staticmethod(np.abs)

    def batch_total(self, outputs, targets, loss) -> float:
        predictions = loss.predictions(outputs)
        if targets.ndim == 1 and predictions.ndim == 2 and predictions.shape[1] > 1:
            targets = np.eye(predictions.shape[1], dtype=predictions.dtype)[targets]
        diff = predictions - targets.reshape(predictions.shape)
        return float(self.error(diff).reshape(len(diff), -1).mean(axis=1).sum())


@METRICS.register(name="mse", aliases=("mean_squared_error",))
class MeanSquaredError(MeanAbsoluteError):
    """mean (prediction - target)^2 over each example's outputs, for regression."""

    name = "mse"
    error = staticmethod(np.square)


def get_metrics(metrics, loss, targets) -> list[Metric]:
    """Metric objects from names (also Keras': "acc", "sparse_categorical_accuracy",
    ..., reported under the name given) or objects; None -> accuracy when the targets
    are classes (a classifying loss, or integer labels), nothing for regression."""
    if metrics is None:
        labels = targets.ndim == 1 and targets.dtype.kind in "iu"
        return [Accuracy()] if loss.classifies or labels else []
    if isinstance(metrics, (str, Metric)) or not isinstance(metrics, (list, tuple)):
        raise NnscratchError(
            f"metrics: expected a list of metric names or Metric objects, "
            f"got {metrics!r}"
        )
    found = [m if isinstance(m, Metric) else _named_metric(m) for m in metrics]
    names = [m.name for m in found]
    if len(set(names)) != len(names) or {"loss", "val_loss"} & set(names):
        raise NnscratchError(f"metrics: names must be distinct and not loss: {names}")
    return found


def _named_metric(name) -> Metric:
    """The metric registered as `name`; reported under that name if it is one of
    Keras' (metrics=["acc"] gives history["acc"] and "val_acc", as in Keras)."""
    metric = METRICS.get_class(name)()
    if str(name).lower() in METRICS.aliases:
        metric.name = str(name).lower()
    return metric
