"""Losses: `forward(outputs, targets, sample_weight=None) -> float`, `backward() ->
dL/doutputs`.

The loss of a batch is the mean over its N examples of w_n * l_n, l_n the loss of
example n and w_n its weight (1 without `sample_weight`): Keras' "sum over batch
size", so weights scale examples and are not renormalised. Each loss also says what
`predict` makes of the outputs (`predictions`) and which class they pick
(`predicted_classes`), so the model never guesses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..errors import NnscratchError, check_float
from .activations import sigmoid, softmax
from .kernels.elementwise import (
    softmax_cross_entropy,
    softmax_cross_entropy_backward,
)
from .registry import LOSSES


class Loss(ABC):
    """Base class. Subclasses implement `forward`, `backward` and, if their outputs
    are not what `predict` should return as they are, `predictions`."""

    classifies = False  # whether its targets are classes (accuracy is then reported)
    # what `forward` keeps for `backward` (batch-sized arrays), left out of a copy
    # (pickle, copy.deepcopy) as a layer's are
    forward_cache: tuple[str, ...] = ("_probs", "_targets", "_s", "_t", "_diff", "_w")

    @abstractmethod
    def forward(self, outputs, targets, sample_weight=None) -> float:
        """The batch's loss: mean_n w_n * l_n (see the module docstring)."""

    @abstractmethod
    def backward(self) -> np.ndarray:
        """dL/doutputs of the last `forward`, the shape of the outputs."""

    def check_targets(self, targets, outputs_shape: tuple, name: str = "y"):
        """Targets for outputs of `outputs_shape` (N, ...), checked (by the model
        once before training, and by `forward`). The default: numbers of the
        outputs' shape, as floats; (N,) for a single output."""
        targets = np.asarray(targets)
        if targets.shape == outputs_shape[:1] and outputs_shape[1:] == (1,):
            targets = targets.reshape(outputs_shape)
        if targets.shape != tuple(outputs_shape) or targets.dtype.kind not in "fiub":
            raise NnscratchError(
                f"{name}: expected float targets of shape {tuple(outputs_shape)} like "
                f"the outputs, got {targets.dtype} {targets.shape}"
            )
        return targets.astype(np.result_type(targets.dtype, np.float32), copy=False)

    def _batch(self, outputs) -> np.ndarray:
        """`outputs` (N, ...) as an array, refused if it holds no example: the loss
        is a mean over them (a loss used on its own; the model refuses an empty x)."""
        outputs = np.asarray(outputs)
        if outputs.ndim == 0 or len(outputs) == 0:
            raise NnscratchError(
                f"{type(self).__name__}: expected outputs (N, ...) of at least one "
                f"example, got shape {outputs.shape}"
            )
        return outputs

    def predictions(self, outputs: np.ndarray) -> np.ndarray:
        """What `predict` returns for these outputs; the outputs themselves here."""
        return outputs

    def predicted_classes(self, outputs: np.ndarray) -> np.ndarray:
        """The class of each example (N,): the largest output."""
        return outputs.argmax(axis=1)

    def get_config(self) -> dict:
        """Constructor arguments as JSON values (saved with the model)."""
        return {}

    def __getstate__(self) -> dict:
        return {k: v for k, v in vars(self).items() if k not in self.forward_cache}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _weights(sample_weight, outputs: np.ndarray) -> np.ndarray | None:
    """sample_weight as an (N, 1) column that broadcasts over outputs (N, C), in
    their float type (float64 weights must not make float32 gradients float64)."""
    if sample_weight is None:
        return None
    n, w = len(outputs), np.asarray(sample_weight)
    if w.shape != (n,):
        raise NnscratchError(f"sample_weight: expected shape ({n},), got {w.shape}")
    return w.reshape(n, 1).astype(outputs.dtype, copy=False)


def _check_labels(labels: np.ndarray, n_classes: int, name: str) -> np.ndarray:
    """Integer class labels (N,) in 0..n_classes-1 (-1 would pick the last) as int64."""
    if len(labels) and not (labels.min() >= 0 and labels.max() < n_classes):
        raise NnscratchError(
            f"{name}: expected labels 0 to {n_classes - 1}, got labels "
            f"{labels.min()} to {labels.max()} (the model has {n_classes} outputs)"
        )
    return labels.astype(np.int64, copy=False)


def _class_labels(targets: np.ndarray, n: int, c: int) -> np.ndarray | None:
    """targets as class labels (n,) if they are labels, else None. Labels are
    integers, or floats that are whole numbers, of shape (n,) or (n, 1) (Keras'
    sparse cross-entropy takes all of these); with one output, (n, 1) floats are
    probabilities."""
    if targets.shape == (n, 1) and (c != 1 or targets.dtype.kind in "iu"):
        targets = targets.reshape(n)
    if targets.shape != (n,):
        return None
    if targets.dtype.kind in "iu":
        return targets
    whole = targets.dtype.kind == "f" and np.all(np.mod(targets, 1) == 0)
    return targets if whole else None  # _check_labels checks the range, then casts


def _smoothing(label_smoothing) -> float:
    return check_float("label_smoothing", label_smoothing, 0, 1, open_high=True)


# Keras' names, for the same loss on logits (Keras' default from_logits=False
# expects probabilities: a final softmax is refused, see Sequential._check_loss)
@LOSSES.register(
    name="cross_entropy",
    aliases=("sparse_categorical_crossentropy", "categorical_crossentropy"),
)
class SoftmaxCrossEntropy(Loss):
    """Softmax then cross-entropy, fused. Takes LOGITS (N, C), not probabilities.

    l_n = logsumexp(z_n) - sum_c t_nc z_nc, stable for any finite logits (the row max
    is subtracted before exp); dl_n/dz_n = softmax(z_n) - t_n when t_n sums to 1
    (in general softmax(z_n) * sum(t_n) - t_n). Targets: class labels (N,) (or
    (N, 1), or whole-number floats, as Keras' sparse cross-entropy takes them), t
    then their one-hot rows; or rows t of class probabilities (N, C), one-hot or
    soft, as PyTorch's CrossEntropyLoss takes. `label_smoothing` e mixes t with the
    uniform distribution: t = (1 - e) t + e / C.
    """

    classifies = True

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = _smoothing(label_smoothing)

    def check_targets(self, targets, outputs_shape, name="y"):
        targets = np.asarray(targets)
        if len(outputs_shape) != 2:
            raise NnscratchError(
                f"{name}: cross-entropy needs outputs (N, C), got {outputs_shape}"
            )
        n, c = outputs_shape
        labels = _class_labels(targets, n, c)
        if labels is not None:
            return _check_labels(labels, c, name)
        if targets.shape == (n, c) and targets.dtype.kind == "f":
            if not (targets >= 0).all():
                raise NnscratchError(f"{name}: class probabilities must be >= 0")
            return targets
        raise NnscratchError(
            f"{name}: expected class labels (whole numbers) of shape ({n},) or "
            f"({n}, 1), or class probabilities of shape ({n}, {c}), got "
            f"{targets.dtype} {targets.shape}"
        )

    def forward(self, logits, targets, sample_weight=None) -> float:
        """Mean cross-entropy of logits (N, C) against labels (N,) or targets (N, C)."""
        logits = self._batch(logits)
        targets = self.check_targets(targets, logits.shape)
        n, c = logits.shape
        self._targets, self._w = targets, _weights(sample_weight, logits)
        if targets.ndim == 1 and self.label_smoothing == 0 and self._w is None:
            # the common case, a kernel: the mean of log(sum exp(shifted)) -
            # shifted[label], shifted = logits - the row's maximum
            self._probs = np.empty_like(logits)
            logits = np.ascontiguousarray(logits)
            return softmax_cross_entropy(logits, targets, self._probs) / n
        shifted = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(shifted)
        sums = np.add.reduce(probs, axis=1, keepdims=True)
        probs /= sums
        self._probs = probs
        # general targets: l_n = sum_c t_nc (log(sum exp(shifted_n)) - shifted_nc)
        t = self._smoothed(c)
        losses = (t * (np.log(sums) - shifted)).sum(axis=1, keepdims=True)
        return float((losses if self._w is None else self._w * losses).sum() / n)

    def _smoothed(self, c: int) -> np.ndarray:
        """The target distribution t (N, C) after label smoothing."""
        t = self._targets
        if t.ndim == 1:
            t = np.eye(c, dtype=self._probs.dtype)[t]
        e = self.label_smoothing
        return t if e == 0 else (1 - e) * t + e / c

    def backward(self) -> np.ndarray:
        """dL/dlogits (N, C) of the last `forward`: w * (probs - t) / N."""
        n, c = self._probs.shape
        if self._targets.ndim == 1 and self.label_smoothing == 0:
            # a new array: a second call gives the same answer
            dlogits = np.empty_like(self._probs)
            # the mean over the batch now, or after the weights below
            scale = dlogits.dtype.type(1.0 / n if self._w is None else 1.0)
            softmax_cross_entropy_backward(self._probs, self._targets, scale, dlogits)
            if self._w is None:
                return dlogits
        else:  # d/dz of sum_c t_c (lse - z_c) = p sum(t) - t
            t = self._smoothed(c)
            dlogits = self._probs * t.sum(axis=1, keepdims=True) - t
        if self._w is not None:
            dlogits *= self._w
        dlogits *= 1.0 / n
        return dlogits

    def predictions(self, outputs):
        """Class probabilities: the softmax of the logits."""
        return softmax(outputs)

    def get_config(self) -> dict:
        return {"label_smoothing": self.label_smoothing}


@LOSSES.register(name="binary_cross_entropy", aliases=("binary_crossentropy",))
class BinaryCrossEntropy(Loss):
    """Sigmoid then binary cross-entropy, fused. Takes LOGITS (N, K), not
    probabilities: one output per yes/no question (K = 1 for a binary classifier).

    Per output: max(z, 0) - z t + log(1 + exp(-|z|)) (= -t log s - (1-t) log(1-s),
    s = sigmoid(z), without overflow); l_n is its mean over the K outputs and
    dl_n/dz = (s - t) / K. Targets are 0/1 or probabilities, (N, K), or (N,) for K = 1.
    `label_smoothing` e: t = (1 - e) t + e / 2, as Keras does.
    """

    classifies = True

    def __init__(self, label_smoothing: float = 0.0):
        self.label_smoothing = _smoothing(label_smoothing)

    def check_targets(self, targets, outputs_shape, name="y"):
        targets = super().check_targets(targets, outputs_shape, name)
        if len(targets) and not (targets.min() >= 0 and targets.max() <= 1):
            raise NnscratchError(
                f"{name}: binary cross-entropy needs targets in [0, 1], got "
                f"{targets.min()} to {targets.max()}"
            )
        return targets

    def forward(self, logits, targets, sample_weight=None) -> float:
        logits = self._batch(logits)
        n = len(logits)
        t = self.check_targets(targets, logits.shape).astype(logits.dtype, copy=False)
        if self.label_smoothing:
            t = (1 - self.label_smoothing) * t + self.label_smoothing / 2
        self._s, self._t, self._w = sigmoid(logits), t, _weights(sample_weight, logits)
        per_output = (
            np.maximum(logits, 0) - logits * t + np.log1p(np.exp(-np.abs(logits)))
        )
        losses = per_output.reshape(n, -1).mean(axis=1, keepdims=True)
        return float((losses if self._w is None else self._w * losses).sum() / n)

    def backward(self) -> np.ndarray:
        """dL/dlogits (N, K) of the last `forward`: w_n (s - t) / (N K)."""
        n = len(self._s)
        grad = (self._s - self._t) * (1.0 / self._s[0].size / n)
        return (
            grad
            if self._w is None
            else grad * self._w.reshape(n, *[1] * (grad.ndim - 1))
        )

    def predictions(self, outputs):
        """The probability of "yes" for each output: the sigmoid of the logits."""
        return sigmoid(outputs)

    def predicted_classes(self, outputs):
        """1 where the logit is positive (probability > 0.5); (N,) for one output."""
        classes = (outputs > 0).astype(np.int64)
        return classes.ravel() if outputs.shape[1:] == (1,) else classes

    def get_config(self) -> dict:
        return {"label_smoothing": self.label_smoothing}


class _Regression(Loss):
    """Shared by MSE and MAE: integer labels (N,) for outputs (N, C) become one-hot
    targets, so either can train a classifier; float targets are regression."""

    def check_targets(self, targets, outputs_shape, name="y"):
        targets = np.asarray(targets)
        classes = outputs_shape[1] if len(outputs_shape) == 2 else 0
        is_labels = targets.shape == outputs_shape[:1] and targets.dtype.kind in "iu"
        if is_labels and classes > 1:
            return _check_labels(targets, classes, name)
        return super().check_targets(targets, outputs_shape, name)

    def _difference(self, outputs, targets) -> np.ndarray:
        outputs = self._batch(outputs)
        targets = self.check_targets(targets, outputs.shape)
        if targets.ndim == 1 and outputs.ndim == 2:  # class labels: one-hot targets
            one_hot = np.zeros_like(outputs)
            one_hot[np.arange(len(targets)), targets] = 1
            targets = one_hot
        return outputs - targets.reshape(outputs.shape)


@LOSSES.register(name="mse", aliases=("mean_squared_error",))
class MeanSquaredError(_Regression):
    """Mean squared error: l_n = mean over example n's outputs of (y - t)^2.

    Without weights the loss is the mean over all N x C elements (Keras' and
    PyTorch's default); dL/dy = 2 w_n (y - t) / (N C).
    """

    def forward(self, outputs, targets, sample_weight=None) -> float:
        self._diff = self._difference(outputs, targets)
        self._w = _weights(sample_weight, outputs)
        squares = self._diff**2
        if self._w is None:
            return float(np.mean(squares))
        return float((self._w * squares.reshape(len(squares), -1)).mean(axis=1).sum()
                     / len(squares))  # fmt: skip

    def backward(self) -> np.ndarray:
        grad = (2.0 / self._diff.size) * self._diff  # d mean(d^2)/dy = 2 d / size
        return grad if self._w is None else _scale_rows(grad, self._w)


@LOSSES.register(name="mae", aliases=("mean_absolute_error",))
class MeanAbsoluteError(_Regression):
    """Mean absolute error: l_n = mean over example n's outputs of |y - t|;
    dL/dy = w_n sign(y - t) / (N C). Less pulled by outliers than MSE."""

    def forward(self, outputs, targets, sample_weight=None) -> float:
        self._diff = self._difference(outputs, targets)
        self._w = _weights(sample_weight, outputs)
        absolute = np.abs(self._diff).reshape(len(self._diff), -1)
        losses = absolute.mean(axis=1, keepdims=True)
        return float((losses if self._w is None else self._w * losses).sum()
                     / len(losses))  # fmt: skip

    def backward(self) -> np.ndarray:
        grad = np.sign(self._diff) * (1.0 / self._diff.size)
        return grad if self._w is None else _scale_rows(grad, self._w)


def _scale_rows(grad: np.ndarray, w: np.ndarray) -> np.ndarray:
    """grad (N, ...) with row n multiplied by w[n] (w is (N, 1))."""
    return grad * w.reshape(len(w), *[1] * (grad.ndim - 1))


def get_loss(loss) -> Loss:
    """A loss from an object or a name ('cross_entropy', 'binary_cross_entropy',
    'mse', 'mae', a registered class name, or Keras' 'sparse_categorical_crossentropy',
    'categorical_crossentropy', 'binary_crossentropy', 'mean_squared_error',
    'mean_absolute_error')."""
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, str):
        return LOSSES.get_class(loss)()
    raise NnscratchError(f"loss: expected a Loss object or a loss name, got {loss!r}")
