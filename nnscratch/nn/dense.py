"""The fully connected layer: y = x @ W + b."""

from __future__ import annotations

import numpy as np

from ..errors import NnscratchError, check_int
from .activations import ActivationAfter
from .kernels import column_sum
from .kernels.elementwise import bias_relu, relu_bias_backward
from .layer import Layer, WeightPenalty, init_weights
from .registry import LAYERS


@LAYERS.register
class Dense(ActivationAfter, WeightPenalty, Layer):
    """Fully connected layer: y = x @ W + b.

    `Dense(n_out)` takes its input size from the model when built; `Dense(n_in, n_out)`
    states it (and is built at once). Shapes: x (N, n_in) -> y (N, n_out);
    W (n_in, n_out), b (n_out,). `init`: "he" (for ReLU), "xavier" or "normal";
    `rng` (a seed or Generator) draws W. `l1`, `l2` add l1 * sum|W| + l2 * sum(W^2)
    to the loss (Keras' convention). `activation` ("relu", "tanh", ... or a layer)
    follows it, as in Keras: a Sequential lists it as the next layer.
    """

    def __init__(
        self,
        *sizes: int,
        n_in: int | None = None,
        n_out: int | None = None,
        init: str = "he",
        l1: float = 0.0,
        l2: float = 0.0,
        rng=None,
        dtype=np.float32,
        activation=None,
    ):
        super().__init__()
        self._set_activation(activation, "Dense")
        if len(sizes) > 2 or (sizes and (n_in, n_out) != (None, None)):
            raise NnscratchError(
                "Dense: expected Dense(n_out) or Dense(n_in, n_out), got sizes "
                f"{sizes} and n_in={n_in}, n_out={n_out}"
            )
        if sizes:
            n_in, n_out = (None, *sizes) if len(sizes) == 1 else sizes
        if n_out is None:
            raise NnscratchError("Dense: the number of outputs n_out is required")
        self.n_out = check_int("Dense n_out", n_out)
        self.n_in = None if n_in is None else check_int("Dense n_in", n_in)
        self._weight_settings(init, l1, l2, rng, dtype)
        if self.n_in is not None:
            self.build((self.n_in,))

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 1 or (self.n_in not in (None, input_shape[0])):
            expected = "features" if self.n_in is None else self.n_in
            raise NnscratchError(
                f"Dense: expected input (N, {expected}), got (N, "
                f"{', '.join(map(str, input_shape))})"
            )
        self.n_in = int(input_shape[0])
        self._param("W", (self.n_in, self.n_out), self._initial_W)
        self._param("b", (self.n_out,), lambda: np.zeros(self.n_out, self.dtype))
        self.built = True

    def _initial_W(self) -> np.ndarray:
        shape = (self.n_in, self.n_out)
        return init_weights(shape, *shape, self.init, self.rng, self.dtype)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return self._activated(self.transform(x, relu=False), training)

    def transform(self, x: np.ndarray, relu: bool) -> np.ndarray:
        """y = x @ W + b, then max(y, 0) if `relu` (a Dense-ReLU pair run as one
        step, `fusion.DenseReLU`). Shapes: x (N, n_in) -> y (N, n_out)."""
        if not self.built:  # built on first use, like a Keras layer
            self.build(x.shape[1:])
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise NnscratchError(
                f"Dense: expected input (N, {self.n_in}), got {x.shape}"
            )
        self._x = x  # backward needs the input for dW
        W, b = self.params["W"], self.params["b"]
        y = self.workspace.array("y", (len(x), self.n_out), np.result_type(x, W))
        np.matmul(x, W, out=y)
        bias_relu(y, b, relu)  # y += b (and ReLU) in one pass
        self._y = y  # ReLU's mask, if any, is where y > 0
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        return self.transform_backward(self._activation_backward(dy), relu=False)

    def transform_backward(self, dy: np.ndarray, relu: bool) -> np.ndarray | None:
        """The gradients of `transform` (with `relu` as it had), z = x @ W + b the
        output before ReLU: dz = dy * [y > 0] (or dy), db = the sum of dz over the
        batch, dW = x^T dz; returns dx = dz W^T, or None if the input's gradient is
        not needed. Shapes: dy (N, n_out) -> dx (N, n_in); dW (n_in, n_out), db
        (n_out,)."""
        W = self.params["W"]
        if relu:
            y, dtype = self._y, np.result_type(dy, W)
            dz = self.workspace.array("dz", y.shape, dtype)
            mask = self.workspace.array("mask", y.shape, np.bool_)
            relu_bias_backward(dy, y, dz, self.grads["b"], mask)  # dz, and db
            dy = dz  # from here on, dy is dz: the gradient at z = x @ W + b
        else:
            column_sum(dy, out=self.grads["b"])  # db = the sum of dz over the batch
        np.matmul(self._x.T, dy, out=self.grads["W"])  # dW = x^T dz
        self._add_penalty_grad()
        if not self.needs_input_grad:
            return None
        dx = self.workspace.like("dx", self._x, np.result_type(dy, W))
        return np.matmul(dy, W.T, out=dx)  # dx = dz W^T

    def get_config(self) -> dict:
        return {
            "n_in": self.n_in,
            "n_out": self.n_out,
            "init": self.init,
            "l1": self.l1,
            "l2": self.l2,
            **self._activation_config(),
        }
