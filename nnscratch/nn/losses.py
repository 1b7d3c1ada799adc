"""Losses: `forward(outputs, labels) -> float`, `backward() -> dL/doutputs`.

Cross-entropy is the mean over the batch; MSE the mean over all N x C elements.
"""

from __future__ import annotations

import numpy as np

from ..errors import NnscratchError
from .registry import LOSSES


def _check_labels(logits: np.ndarray, labels: np.ndarray) -> None:
    """Logits (N, C) and labels (N,) of classes 0 to C-1 (-1 would pick the last)."""
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise NnscratchError(
            f"loss: expected logits (N, C) and labels (N,), got {logits.shape} and "
            f"{labels.shape}"
        )
    if len(labels) and not (labels.min() >= 0 and labels.max() < logits.shape[1]):
        raise NnscratchError(
            f"loss: expected labels 0 to {logits.shape[1] - 1}, got labels "
            f"{labels.min()} to {labels.max()}"
        )


@LOSSES.register(name="cross_entropy")
class SoftmaxCrossEntropy:
    """Softmax then cross-entropy, fused. Takes LOGITS (N, C), not probabilities.

    loss = mean_n( logsumexp(z_n) - z_n[label_n] ), stable for any finite logits because
    the row max is subtracted before exp. Labels are class indices (N,).
    """

    def __init__(self):
        self._rows = np.arange(0)

    def forward(self, logits: np.ndarray, labels: np.ndarray) -> float:
        """Mean cross-entropy of logits (N, C) against class indices (N,)."""
        _check_labels(logits, labels)
        n = logits.shape[0]
        if len(self._rows) != n:
            self._rows = np.arange(n)  # kept: every training batch has the same size
        shifted = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        sums = np.add.reduce(probs, axis=1, keepdims=True)
        # mean over the batch of log(sum_c exp(shifted)) - shifted[label]
        loss = (np.log(sums).sum() - shifted[self._rows, labels].sum()) / n
        probs /= sums
        self._probs, self._labels = probs, labels
        return float(loss)

    def backward(self) -> np.ndarray:
        """dL/dlogits (N, C) of the last `forward`: (probs - one_hot) / N."""
        # d(mean softmax CE)/dlogits = (probs - one_hot) / N
        dlogits = self._probs.copy()  # a copy: a second call gives the same answer
        dlogits[self._rows, self._labels] -= 1
        dlogits *= 1.0 / dlogits.shape[0]
        return dlogits


@LOSSES.register(name="mse")
class MeanSquaredError:
    """Mean squared error over every element: mean_{n,c} (y - t)^2.

    Like Keras/PyTorch's default: the mean over every element. Integer labels (N,) are
    turned into one-hot targets, so it can train a classifier on outputs (N, C).
    """

    def forward(self, outputs: np.ndarray, targets: np.ndarray) -> float:
        """Mean of (outputs - targets)^2 over every element; targets (N, C) or (N,)."""
        if targets.ndim == 1 and outputs.ndim == 2:
            _check_labels(outputs, targets)
            one_hot = np.zeros_like(outputs)
            one_hot[np.arange(len(targets)), targets] = 1
            targets = one_hot
        if targets.shape != outputs.shape:
            raise NnscratchError(
                f"MeanSquaredError: targets {targets.shape} do not match outputs "
                f"{outputs.shape}"
            )
        self._diff = outputs - targets
        return float(np.mean(self._diff**2))

    def backward(self) -> np.ndarray:
        """dL/doutputs of the last `forward`, same shape as the outputs."""
        return (2.0 / self._diff.size) * self._diff  # d mean(d^2)/dy = 2 d / size


def get_loss(name: str):
    """A loss by class name or short name ('cross_entropy', 'mse')."""
    return LOSSES.get_class(name)()
