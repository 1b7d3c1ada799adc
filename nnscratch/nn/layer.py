"""The Layer base class, weight initialisation and the L1/L2 penalties.

Every layer turns a batch-first array into another one (`forward`) and sends the loss
gradient back the other way (`backward`). The layers themselves each have a module:
`dense`, `activations`, `dropout`, `reshape`, `conv`, `pooling`, `normalization`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from ..errors import NnscratchError, check_float
from .workspace import Workspace


class Layer(ABC):
    """Base class of the layers: `forward(x, training) -> y`, `backward(dy) -> dx`.

    To write a layer:
    - `params` holds its trainable arrays by name ({} if none) and `grads` their
      gradients, with the same keys and shapes; `state` holds arrays that are saved but
      not trained (batch norm's running statistics).
    - `forward(x, training)` returns y and keeps what `backward` needs (`self._x = x`).
    - `backward(dy)` takes dL/dy, fills `grads` with dL/dparams and returns dL/dx.
    - `get_config` returns the constructor's arguments, so a saved model can rebuild it.

    `dense.Dense` is a complete example.

    What the model relies on for speed:
    - `backward` writes each gradient *in place* (`out=` or `grads[k][...] = ...`),
      never rebinds `grads[k]`: the model makes params and grads views of one flat
      buffer each.
    - The arrays `forward` and `backward` return may be arrays of `self.workspace`,
      reused by the next call on a batch of the same shape; copy a result to keep it.
    - When `needs_input_grad` is False (the model's first trainable layer), `backward`
      may only fill `grads` and return None, which skips the most expensive product
      (Dense and Conv2D do).
    """

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        self.needs_input_grad = True
        self.workspace = (
            Workspace()
        )  # outputs and scratch arrays, reused batch to batch

    @abstractmethod
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The layer's output for a batch; `training` switches dropout and batch norm."""

    @abstractmethod
    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        """dL/dx from dL/dy; fills `grads` in place."""

    def get_config(self) -> dict:
        """Constructor arguments as JSON values, enough to rebuild the layer."""
        return {}

    @classmethod
    def array_shapes(cls, **config) -> dict[str, tuple]:
        """The shapes of the params and state a layer built from `config` holds,
        worked out without building it (a model file is checked against them before
        anything is allocated); {} for a layer without any."""
        return {}

    def penalty(self) -> float:
        """The regularisation term this layer adds to the loss (L1/L2); 0 if none."""
        return 0.0

    def set_rng(self, rng: np.random.Generator) -> None:
        """Give the layer its random generator (only layers that draw need one)."""

    def _init_grads(self) -> None:
        self.grads = {name: np.zeros_like(p) for name, p in self.params.items()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def init_weights(
    shape: tuple, fan_in: int, fan_out: int, init: str, rng: np.random.Generator, dtype
) -> np.ndarray:
    """Random weights scaled so activations keep their size from layer to layer.

    he: N(0, 2/fan_in), for ReLU. xavier: U(-a, a), a = sqrt(6/(fan_in+fan_out)), for
    tanh/sigmoid (Glorot & Bengio). normal: N(0, 0.01^2), the classic small init.
    """
    if init == "he":
        w = np.sqrt(2.0 / fan_in) * rng.standard_normal(shape)
    elif init == "xavier":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        w = rng.uniform(-limit, limit, shape)
    elif init == "normal":
        w = 0.01 * rng.standard_normal(shape)
    else:
        raise NnscratchError(f"init: expected 'he', 'xavier' or 'normal', got {init!r}")
    return w.astype(dtype)


class WeightPenalty:
    """L1/L2 penalties on a layer's `params["W"]` (Keras' convention), for Dense and Conv2D.

    The layer sets `self.l1` and `self.l2`; the loss gains l1 * sum|W| + l2 * sum(W^2).
    """

    l1: float = 0.0
    l2: float = 0.0

    def _set_penalties(self, l1, l2) -> None:
        self.l1, self.l2 = (
            check_float(f"{type(self).__name__} l1", l1, 0),
            check_float(f"{type(self).__name__} l2", l2, 0),
        )

    def penalty(self) -> float:
        W = self.params["W"]
        total = 0.0
        if self.l2:
            total += self.l2 * float(np.vdot(W, W))
        if self.l1:
            total += self.l1 * float(np.abs(W).sum())
        return total

    def _add_penalty_grad(self) -> None:
        """Add the penalty's gradient to grads["W"] (after the data gradient is in)."""
        W = self.params["W"]
        if self.l2:
            self.grads["W"] += (2 * self.l2) * W  # d(l2 * sum W^2)/dW
        if self.l1:
            self.grads["W"] += self.l1 * np.sign(W)  # d(l1 * sum |W|)/dW
