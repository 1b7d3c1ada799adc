"""Batch normalisation for dense (N, F) and convolutional (N, C, H, W) activations."""

from __future__ import annotations

import numpy as np

from ..errors import NnscratchError, check_float, check_int
from .kernels.normalization import (
    batch_norm_dx,
    batch_statistics,
    gradient_sums,
    scale_shift,
)
from .layer import Layer
from .layout import is_channel_major
from .registry import LAYERS


@LAYERS.register
class BatchNorm(Layer):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, per feature or channel.

    Shapes: x (N, F) -> (N, F), statistics over N; or x (N, C, H, W) -> same shape,
    statistics per channel over N, H, W. gamma, beta (F,) or (C,).
    Training normalises with the batch's mean and biased variance (divided by the
    m values per channel) and updates the running ones like PyTorch:
    running = (1 - momentum) * running + momentum * batch, with the unbiased variance
    var * m / (m - 1) (so momentum weighs the NEW batch: PyTorch's 0.1, not Keras'
    0.99, nor SGD's momentum); evaluation (training=False), and a frozen layer
    (trainable=False, as in Keras), use the running statistics. Backward: see
    `backward`, and docs/how-it-works.md for the derivation.
    """

    nonnegative = ("running_var",)
    forward_cache = ("_x", "_mean", "_inv_std")

    def __init__(
        self,
        num_features: int | None = None,
        momentum: float = 0.1,
        eps: float = 1e-5,
        *,
        dtype=np.float32,
    ):
        super().__init__()
        self.num_features = (
            None if num_features is None
            else check_int("BatchNorm num_features", num_features)
        )  # fmt: skip
        self.momentum = check_float("BatchNorm momentum", momentum, 0, 1)
        self.eps = check_float("BatchNorm eps", eps, 0, open_low=True)
        self.dtype = np.dtype(dtype)
        if self.num_features is not None:
            self.build((self.num_features,))

    def build(self, input_shape: tuple) -> None:
        """Features (F,) or channels (C, H, W): one gamma, beta and pair of running
        statistics per feature or channel."""
        f = self.num_features
        if len(input_shape) not in (1, 3) or f not in (None, input_shape[0]):
            raise NnscratchError(
                f"BatchNorm: expected (N, {f or 'F'}) or (N, {f or 'C'}, H, W), got "
                f"(N, {', '.join(map(str, input_shape))})"
            )
        f = self.num_features = int(input_shape[0])
        self._param("gamma", (f,), lambda: np.ones(f, self.dtype))
        self._param("beta", (f,), lambda: np.zeros(f, self.dtype))
        self._state("running_mean", (f,), lambda: np.zeros(f, self.dtype))
        self._state("running_var", (f,), lambda: np.ones(f, self.dtype))
        self.built = True

    def reset_parameters(self, rng=None) -> None:
        if self.built:  # in place: gamma and beta may be views of the model's buffer
            self.params["gamma"][...] = 1
            self.params["beta"][...] = 0
            self.state["running_mean"][...] = 0
            self.state["running_var"][...] = 1

    def _vector_shape(self, x: np.ndarray) -> tuple:
        """The shape that broadcasts a (F,) vector against x: (1, F) or (1, C, 1, 1)."""
        f = self.num_features
        if x.ndim == 2 and x.shape[1] == f:
            return (1, f)
        if x.ndim == 4 and x.shape[1] == f:
            return (1, f, 1, 1)
        raise NnscratchError(
            f"BatchNorm: expected (N, {f}) or (N, {f}, H, W), got {x.shape}"
        )

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        scale, shift = self.affine(x, training)
        y = self.workspace.like("y", x, np.result_type(x, self.params["gamma"]))
        scale_shift(_channels(x), scale, shift, _channels(y))
        return y

    def affine(self, x: np.ndarray, training: bool) -> tuple[np.ndarray, np.ndarray]:
        """(scale, shift) per channel, with which forward's y = x * scale + shift:
        from the batch's statistics when training (the running ones updated), else
        from the running ones. Keeps x and the statistics for backward.

        y = gamma * (x - mean) / std + beta, so scale = gamma / std and shift =
        beta - mean * scale: one pass over x (`nn.fusion` makes it with max pooling's).
        """
        if not self.built:
            self.build(x.shape[1:])
        # a frozen BatchNorm normalises with its running statistics, as in Keras
        training = training and self.trainable
        vec = self._vector_shape(x)
        count = x.size // self.num_features
        f, dtype = self.num_features, x.dtype
        if training:
            if count < 2:
                raise NnscratchError(
                    f"BatchNorm: training needs more than 1 value per feature, "
                    f"got input {x.shape}"
                )
            mean, var = np.empty(f, dtype), np.empty(f, dtype)
            batch_statistics(_channels(x), mean, var)
            self._update_running(mean, var, count)
        else:
            mean, var = self.state["running_mean"], self.state["running_var"]
        self._x = x  # backward needs x - mean, for gamma's gradient and x's
        self._training, self._vec, self._count = training, vec, count
        self._mean, self._inv_std = mean, 1.0 / np.sqrt(var + self.eps)
        scale = self.params["gamma"] * self._inv_std
        return scale, self.params["beta"] - mean * scale

    def _update_running(self, mean: np.ndarray, var: np.ndarray, count: int) -> None:
        """PyTorch's rule: the running variance is the unbiased one."""
        m, state = self.momentum, self.state
        state["running_mean"][...] = (1 - m) * state["running_mean"] + m * mean
        unbiased = var * (count / (count - 1))
        state["running_var"][...] = (1 - m) * state["running_var"] + m * unbiased

    def backward(self, dy: np.ndarray) -> np.ndarray:
        """dx of the last forward; x_hat = (x - mean) / std, std = sqrt(var + eps),
        sums and means per channel: dbeta = sum(dy), dgamma = sum(dy * x_hat);
        training (mean and std depend on x): dx = gamma / std * (dy - mean(dy) -
        x_hat * mean(dy * x_hat)); else dx = dy * gamma / std. dy, dx: x's shape."""
        x = self._x
        sum_dy, sum_dy_centered = np.empty((2, self.num_features), dy.dtype)
        dy = self.workspace.in_layout_of("dy", dy, x)  # walked in one order
        gradient_sums(_channels(dy), _channels(x), self._mean, sum_dy, sum_dy_centered)
        dx = self.workspace.like("dx", x, np.result_type(dy, self.params["gamma"]))
        terms = self.gradient_terms(sum_dy, sum_dy_centered)
        if terms is None:  # the statistics were constants
            scale = self.params["gamma"] * self._inv_std
            return np.multiply(dy, scale.reshape(self._vec), out=dx)
        batch_norm_dx(_channels(dy), _channels(x), self._mean, *terms, _channels(dx))
        return dx

    def gradient_terms(self, sum_dy: np.ndarray, sum_dy_centered: np.ndarray):
        """From the sums over the batch of dy and of dy * (x - mean), per channel: set
        the gradients of beta and gamma; return (coefficient, mean_dy, scale) with
        which dx = (dy - (x - mean) * coefficient - mean_dy) * scale, or None when
        the statistics were constants (not training: dx = dy * gamma / std)."""
        n, inv_std = self._count, self._inv_std
        sum_dy_xhat = sum_dy_centered * inv_std  # x_hat = (x - mean) / std
        self.grads["beta"][...] = sum_dy
        self.grads["gamma"][...] = sum_dy_xhat
        if not self._training:
            return None
        # mean and var depend on x too; with n values per feature this collapses to
        # dx = gamma / std * (dy - mean(dy) - x_hat * mean(dy * x_hat))
        x_hat_coefficient = inv_std * sum_dy_xhat / n  # x_hat * it = (x - mean) * this
        return x_hat_coefficient, sum_dy / n, self.params["gamma"] * inv_std

    def get_config(self) -> dict:
        return {
            "num_features": self.num_features,
            "momentum": self.momentum,
            "eps": self.eps,
        }


def _channels(a: np.ndarray) -> np.ndarray:
    """(N, F) or (N, C, H, W) as (N, C, P), the values of each channel of an example
    in one row; a channel-major batch (see `layout`) as (1, C, N*P), each channel's
    values for the whole batch in one row, so the kernels walk memory in order (2x
    faster than N*C short rows). Sums over axes 0 and 2 are the same either way.
    Always a view: arrays come from `Workspace.like`, in one of those two layouts."""
    if is_channel_major(a):
        return a.transpose(1, 0, 2, 3).reshape(1, a.shape[1], -1)
    return a.reshape(len(a), a.shape[1], -1)
