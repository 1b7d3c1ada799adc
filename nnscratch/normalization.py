"""Batch normalisation for dense (N, F) and convolutional (N, C, H, W) activations."""

from __future__ import annotations

import numpy as np

from .errors import NnscratchError
from .layers import Layer, register


@register
class BatchNorm(Layer):
    """y = gamma * (x - mean) / sqrt(var + eps) + beta, per feature or channel.

    Shapes: x (N, F) -> (N, F), statistics over N; or x (N, C, H, W) -> same shape,
    statistics per channel over N, H, W. gamma, beta (F,) or (C,).
    Training uses the batch statistics and updates the running ones like PyTorch:
    running = (1 - momentum) * running + momentum * batch, with the unbiased variance;
    evaluation (training=False) uses the running statistics.
    """

    def __init__(
        self,
        num_features: int,
        momentum: float = 0.1,
        eps: float = 1e-5,
        *,
        dtype=np.float32,
    ):
        super().__init__()
        is_int = isinstance(num_features, (int, np.integer)) and not isinstance(
            num_features, bool
        )
        if not is_int or num_features < 1:
            raise NnscratchError(
                f"BatchNorm: num_features must be a positive int, got {num_features!r}"
            )
        if not 0.0 <= momentum <= 1.0 or eps <= 0:
            raise NnscratchError(
                f"BatchNorm: expected 0 <= momentum <= 1 and eps > 0, "
                f"got momentum={momentum}, eps={eps}"
            )
        self.num_features = int(num_features)
        self.momentum, self.eps = float(momentum), float(eps)
        f = self.num_features
        self.params = {
            "gamma": np.ones(f, dtype=dtype),
            "beta": np.zeros(f, dtype=dtype),
        }
        self.state = {
            "running_mean": np.zeros(f, dtype=dtype),
            "running_var": np.ones(f, dtype=dtype),
        }
        self._init_grads()

    def _layout(self, x: np.ndarray) -> tuple[tuple, tuple, str]:
        """(axes the statistics run over, shape that broadcasts a (F,) vector, einsum
        of sum(a * b) over those axes, which needs no full-size temporary)."""
        f = self.num_features
        if x.ndim == 2 and x.shape[1] == f:
            return (0,), (1, f), "nf,nf->f"
        if x.ndim == 4 and x.shape[1] == f:
            return (0, 2, 3), (1, f, 1, 1), "nfhw,nfhw->f"
        raise NnscratchError(
            f"BatchNorm: expected (N, {f}) or (N, {f}, H, W), got {x.shape}"
        )

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        axes, vec, dot = self._layout(x)
        count = x.size // self.num_features
        if training:
            if count < 2:
                raise NnscratchError(
                    f"BatchNorm: training needs more than 1 value per feature, "
                    f"got input {x.shape}"
                )
            mean = x.mean(axis=axes)
            centered = np.subtract(
                x, mean.reshape(vec), out=self._buffer("xc", x.shape, x.dtype)
            )
            var = np.einsum(dot, centered, centered) / count
            m = self.momentum
            running_mean, running_var = (
                self.state["running_mean"],
                self.state["running_var"],
            )
            running_mean[...] = (1 - m) * running_mean + m * mean
            running_var[...] = (1 - m) * running_var + m * var * (count / (count - 1))
        else:
            mean, var = self.state["running_mean"], self.state["running_var"]
            centered = np.subtract(
                x, mean.reshape(vec), out=self._buffer("xc", x.shape, x.dtype)
            )
        self._training = training
        self._vec, self._axes, self._dot, self._count = vec, axes, dot, count
        self._inv_std = 1.0 / np.sqrt(var + self.eps)
        # x_hat = (x - mean) / std, kept for backward (it owns the "xc" buffer)
        self._x_hat = x_hat = np.multiply(
            centered, self._inv_std.reshape(vec), out=centered
        )
        y = self._buffer("y", x.shape, np.result_type(x, self.params["gamma"]))
        np.multiply(x_hat, self.params["gamma"].reshape(vec), out=y)
        y += self.params["beta"].reshape(vec)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        vec, x_hat, n = self._vec, self._x_hat, self._count
        sum_dy = dy.sum(axis=self._axes)
        sum_dy_xhat = np.einsum(self._dot, dy, x_hat)
        self.grads["beta"][...] = sum_dy
        self.grads["gamma"][...] = sum_dy_xhat
        dx = self._buffer("dx", dy.shape, np.result_type(dy, self.params["gamma"]))
        scale = (self.params["gamma"] * self._inv_std).reshape(vec)
        if not self._training:  # the statistics were constants
            return np.multiply(dy, scale, out=dx)
        # mean and var depend on x too; with n values per feature this collapses to
        # dx = gamma / std * (dy - mean(dy) - x_hat * mean(dy * x_hat))
        np.multiply(x_hat, (sum_dy_xhat / n).reshape(vec), out=dx)
        np.subtract(dy, dx, out=dx)
        dx -= (sum_dy / n).reshape(vec)
        dx *= scale
        return dx

    def get_config(self) -> dict:
        return {
            "num_features": self.num_features,
            "momentum": self.momentum,
            "eps": self.eps,
        }
