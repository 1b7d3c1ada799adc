"""The fully connected layer: y = x @ W + b."""

from __future__ import annotations

import numpy as np

from ..errors import NnscratchError, check_int
from .kernels import column_sum
from .layer import Layer, WeightPenalty, init_weights
from .registry import LAYERS


@LAYERS.register
class Dense(WeightPenalty, Layer):
    """Fully connected layer: y = x @ W + b.

    Shapes: x (N, n_in) -> y (N, n_out); W (n_in, n_out), b (n_out,).
    `l1`, `l2` add l1 * sum|W| + l2 * sum(W^2) to the loss (Keras' convention).
    """

    def __init__(
        self,
        n_in: int,
        n_out: int,
        *,
        init: str = "he",
        l1: float = 0.0,
        l2: float = 0.0,
        rng=None,
        dtype=np.float32,
    ):
        super().__init__()
        self.n_in, self.n_out = (
            check_int("Dense n_in", n_in),
            check_int("Dense n_out", n_out),
        )
        self.init = init
        self._set_penalties(l1, l2)
        rng = np.random.default_rng(rng)
        self.params = {
            "W": init_weights((n_in, n_out), n_in, n_out, init, rng, dtype),
            "b": np.zeros(n_out, dtype=dtype),
        }
        self._init_grads()

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.n_in:
            raise NnscratchError(
                f"Dense: expected input (N, {self.n_in}), got {x.shape}"
            )
        self._x = x  # backward needs the input for dW
        W, b = self.params["W"], self.params["b"]
        y = self.workspace.array("y", (len(x), self.n_out), np.result_type(x, W))
        np.matmul(x, W, out=y)
        y += b
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        W = self.params["W"]
        np.matmul(self._x.T, dy, out=self.grads["W"])  # dW = x^T dy
        column_sum(dy, out=self.grads["b"])  # db = the sum of dy over the batch
        self._add_penalty_grad()
        if not self.needs_input_grad:
            return None
        dx = self.workspace.like("dx", self._x, np.result_type(dy, W))
        return np.matmul(dy, W.T, out=dx)  # dx = dy W^T

    @classmethod
    def array_shapes(cls, n_in, n_out, **_) -> dict[str, tuple]:
        n_in, n_out = check_int("Dense n_in", n_in), check_int("Dense n_out", n_out)
        return {"W": (n_in, n_out), "b": (n_out,)}

    def get_config(self) -> dict:
        return {
            "n_in": self.n_in,
            "n_out": self.n_out,
            "init": self.init,
            "l1": self.l1,
            "l2": self.l2,
        }
