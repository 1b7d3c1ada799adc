"""Layers: the Layer contract, Dense, the activations, Dropout, Flatten and Reshape.

Every layer turns a batch-first array into another one (`forward`) and sends the loss
gradient back the other way (`backward`). Convolution and pooling live in `conv.py`,
batch normalisation in `normalization.py`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from .errors import NnscratchError, check_float, check_int

LAYER_CLASSES: dict[str, type] = {}


def register(cls: type) -> type:
    """Make a layer class loadable from a saved model by its class name."""
    LAYER_CLASSES[cls.__name__] = cls
    return cls


class Layer(ABC):
    """Base class. `forward(x, training) -> y` keeps what `backward(dy) -> dx` needs.

    `params` and `grads` are dicts of arrays with the same keys and shapes; `state` holds
    arrays that are saved but not trained (batch norm's running statistics).

    Contract the model relies on for speed:
    - `backward` writes each gradient *in place* (`out=` or `grads[k][...] = ...`), never
      rebinds `grads[k]`: the model turns params and grads into views of one flat buffer.
    - The arrays `forward` and `backward` return may be workspace buffers reused by the
      next call on a batch of the same shape; copy a result to keep it.
    - When `needs_input_grad` is False (the model's first trainable layer), `backward`
      may only fill `grads` and return None, which skips the most expensive product
      (Dense and Conv2D do).
    """

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        self.needs_input_grad = True
        self._buffers: dict[str, np.ndarray] = {}

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

    def _buffer(self, key: str, shape: tuple, dtype) -> np.ndarray:
        """A workspace array reused across calls while shape and dtype stay the same."""
        buf = self._buffers.get(key)
        if buf is None or buf.shape != shape or buf.dtype != dtype:
            buf = self._buffers[key] = np.empty(shape, dtype=dtype)
        return buf

    def _filled_buffer(self, key: str, shape: tuple, dtype, value) -> np.ndarray:
        """Like `_buffer`, but filled with `value` whenever it is (re)allocated."""
        old = self._buffers.get(key)
        buf = self._buffer(key, shape, dtype)
        if buf is not old:
            buf.fill(value)
        return buf

    def _ones(self, length: int, dtype) -> np.ndarray:
        """`length` ones, for summing rows as a product with them (BLAS does it ~2-3x
        faster than NumPy's sum along an axis): the front of a vector kept as long as
        the longest asked for, so batches or chunks of two sizes reuse it."""
        ones = self._buffers.get("ones")
        if ones is None or ones.size < length or ones.dtype != dtype:
            ones = self._buffers["ones"] = np.ones(length, dtype=dtype)
        return ones[:length]

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


@register
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
        W = self.params["W"]
        y = self._buffer("y", (x.shape[0], self.n_out), np.result_type(x, W))
        np.matmul(x, W, out=y)
        y += self.params["b"]
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        W = self.params["W"]
        np.matmul(self._x.T, dy, out=self.grads["W"])
        # db = sum of dy over the batch, as ones (N,) @ dy: BLAS does it 2x faster than
        # np.add.reduce(dy, axis=0)
        np.matmul(self._ones(len(dy), dy.dtype), dy, out=self.grads["b"])
        self._add_penalty_grad()
        if not self.needs_input_grad:
            return None
        dx = self._buffer("dx", self._x.shape, np.result_type(dy, W))
        return np.matmul(dy, W.T, out=dx)

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


@register
class ReLU(Layer):
    """y = max(x, 0), element-wise; any shape."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # against an array of zeros: measured 2x faster than a scalar 0 on an MLP's
        # (128, 800) activations (slower on large conv feature maps, though)
        zeros = self._filled_buffer("zeros", x.shape, x.dtype, 0)
        self._y = np.maximum(x, zeros, out=self._buffer("y", x.shape, x.dtype))
        return self._y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        # the gradient passes where x > 0, which is where y > 0: found here rather
        # than in forward, so that inference (no backward) makes one pass, not two
        mask = np.greater(self._y, 0, out=self._buffer("mask", dy.shape, np.bool_))
        return np.multiply(dy, mask, out=self._buffer("dx", dy.shape, dy.dtype))


@register
class LeakyReLU(Layer):
    """y = x if x > 0 else alpha * x, element-wise; any shape."""

    def __init__(self, alpha: float = 0.01):
        super().__init__()
        self.alpha = check_float("LeakyReLU alpha", alpha)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # slope is 1 where x > 0 and alpha elsewhere: y = x * slope, dx = dy * slope
        self._slope = np.where(x > 0, 1.0, self.alpha).astype(x.dtype)
        return x * self._slope

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy * self._slope

    def get_config(self) -> dict:
        return {"alpha": self.alpha}


@register
class Sigmoid(Layer):
    """y = 1 / (1 + exp(-x)), element-wise; written to never overflow."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # exp of a non-positive number cannot overflow: use exp(-|x|) on both sides
        e = np.exp(-np.abs(x))
        self._y = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        return self._y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy * self._y * (1 - self._y)  # dsigmoid/dx = y (1 - y)


@register
class Tanh(Layer):
    """y = tanh(x), element-wise."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._y = np.tanh(x)
        return self._y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy * (1 - self._y**2)  # dtanh/dx = 1 - y^2


def row_max(a: np.ndarray) -> np.ndarray:
    """The maximum of each row: (N, C) -> (N, 1), as a.max(axis=1, keepdims=True).

    NumPy reduces along a short row (C = 10 classes) with one small loop per row; the
    same maxima taken down the columns of the transposed copy (C, N) are C - 1
    element-wise maxima of whole rows: ~5x faster at 128 rows, ~12x at 1024.
    """
    return np.ascontiguousarray(a.T).max(axis=0)[:, None]


def row_sum(a: np.ndarray) -> np.ndarray:
    """The sum of each row: (N, C) -> (N, 1), as a product with ones (BLAS), ~3-5x
    faster than a.sum(axis=1, keepdims=True) for short rows."""
    return np.matmul(a, np.ones(a.shape[1], dtype=a.dtype))[:, None]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) logits; shifting by the row max keeps exp finite."""
    z = logits - row_max(logits)
    np.exp(z, out=z)
    z /= row_sum(z)
    return z


@register
class Softmax(Layer):
    """Probabilities from logits, row-wise: (N, C) -> (N, C).

    For training, end the model with logits and use `SoftmaxCrossEntropy`, which is
    fused and stable; this layer is for models whose output must be probabilities.
    """

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._y = softmax(x)
        return self._y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        # Jacobian-vector product: dx_i = y_i * (dy_i - sum_j dy_j y_j)
        return self._y * (dy - row_sum(dy * self._y))


@register
class Dropout(Layer):
    """Inverted dropout: while training, zero each input with probability `rate` and
    scale the rest by 1 / (1 - rate), so evaluation needs no change. Any shape.
    """

    def __init__(self, rate: float = 0.5, *, rng=None):
        super().__init__()
        self.rate = check_float("Dropout rate", rate, 0, 1, open_high=True)
        self.rng = np.random.default_rng(rng)

    def set_rng(self, rng: np.random.Generator) -> None:
        self.rng = rng

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if not training or self.rate == 0.0:
            self._scale = None
            return x
        draws = self._buffer("draws", x.shape, np.float32)
        self.rng.random(dtype=np.float32, out=draws)
        # keep where draw >= rate; the kept ones carry 1/(1-rate) so E[y] = x
        scale = self._buffer("scale", x.shape, x.dtype)
        np.greater_equal(draws, self.rate, out=scale, casting="unsafe")
        scale *= 1.0 / (1.0 - self.rate)
        self._scale = scale
        return np.multiply(x, scale, out=self._buffer("y", x.shape, x.dtype))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if self._scale is None:
            return dy
        return np.multiply(dy, self._scale, out=self._buffer("dx", dy.shape, dy.dtype))

    def get_config(self) -> dict:
        return {"rate": self.rate}


@register
class Reshape(Layer):
    """Reshape each example: (N, *in) -> (N, *shape); a view, no copy."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        if int(np.prod(x.shape[1:])) != int(np.prod(self.shape)):
            raise NnscratchError(
                f"{type(self).__name__}: cannot reshape {x.shape[1:]} to {self.shape}"
            )
        self._in_shape = x.shape
        return x.reshape((x.shape[0], *self.shape))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy.reshape(self._in_shape)

    def get_config(self) -> dict:
        return {"shape": list(self.shape)}


@register
class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...); a view, no copy."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._in_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy.reshape(self._in_shape)
