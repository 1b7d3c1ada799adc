"""The Layer base class, weight initialisation and the L1/L2 penalties.

Every layer turns a batch-first array into another one (`forward`) and sends the loss
gradient back the other way (`backward`). The layers themselves each have a module:
`dense`, `activations`, `dropout`, `reshape`, `conv`, `pooling`, `normalization`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np

from ..errors import NnscratchError, check_float
from .seeding import new_rng
from .workspace import Workspace

_deferring = False  # see `deferred_weights`
# attribute types that are never layers, skipped without the (slower) isinstance check
# against the abstract Layer class when `sublayers` looks for layers
_PLAIN = frozenset({np.ndarray, dict, bool, int, float, str, type(None), Workspace})


@contextmanager
def deferred_weights():
    """Inside it, layers make no parameters when built, only read-only stand-ins of
    their shapes: loading a model checks the file's arrays against them, then puts
    the file's arrays in their place."""
    global _deferring
    before, _deferring = _deferring, True
    try:
        yield
    finally:
        _deferring = before


def deferring_weights() -> bool:
    """Whether a layer constructed now should leave its weights for later."""
    return _deferring


class Layer(ABC):
    """Base class of the layers: `forward(x, training) -> y`, `backward(dy) -> dx`.

    To write a layer:
    - `params` holds its trainable arrays by name ({} if none) and `grads` their
      gradients, with the same keys and shapes; `state` holds arrays that are saved but
      not trained (batch norm's running statistics).
    - `forward(x, training)` returns y and keeps what `backward` needs (`self._x = x`),
      in attributes named in `forward_cache` (default `_x`, `_y`): predict, evaluate
      and copies of the layer drop them.
    - `backward(dy)` takes dL/dy, fills `grads` with dL/dparams and returns dL/dx.
    - `get_config` returns the constructor's arguments, so a saved model can rebuild it.
    - Sizes that depend on the input (Dense's n_in) are worked out in `build`, which
      the model calls with the shape of one example before the first forward.
    - Layers held as attributes (or in lists) are the layer's own (`sublayers`): the
      model trains, counts, freezes and saves their parameters too, by names such as
      "3.dense.W" (PyTorch's module tracking).
    - `trainable = False` freezes the layer (and the layers inside it).

    `dense.Dense` is a complete example; docs/how-it-works.md shows a residual block.

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

    forward_cache: tuple[str, ...] = ("_x", "_y")
    """Attributes in which `forward` keeps what `backward` needs (batch-sized arrays):
    a copy of the layer (pickle, copy.deepcopy) leaves them out, and starts with an
    empty workspace and zero gradients, so that it weighs what its parameters do."""

    initial_weights = True
    """Whether the parameters are still those drawn at construction (or build): a
    model's `seed` draws them anew only then, never once a fit has trained them or
    set_weights or loading has put values in (`parameters.keep_weights`)."""

    nonnegative: tuple[str, ...] = ()
    """Names of the arrays (params or state) that cannot hold negative values (batch
    norm's running_var): loading refuses a file in which they do, which would
    otherwise load and predict NaN."""

    def __init__(self):
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.state: dict[str, np.ndarray] = {}
        self.needs_input_grad = True
        self.built = False
        self.trainable = True
        # outputs and scratch arrays, reused batch to batch
        self.workspace = Workspace()

    @abstractmethod
    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The layer's output y for a batch x, both batch-first (N, ...);
        `training` switches dropout and batch norm to their training behaviour."""

    @abstractmethod
    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        """dL/dx from dL/dy; fills `grads` in place."""

    def __call__(self, x, training: bool = False) -> np.ndarray:
        """`forward` of x (an array or array-like), as Keras' and PyTorch's layers
        are called. Returns a copy of y: forward's may be the layer's workspace
        array, which the next call rewrites."""
        return self.forward(np.asarray(x), training=bool(training)).copy()

    def get_config(self) -> dict:
        """Constructor arguments as JSON values, enough to rebuild the layer."""
        return {}

    @property
    def trainable(self) -> bool:
        """Whether training updates the parameters; setting it sets the layers
        inside too (as Keras does)."""
        return self._trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self._trainable = bool(value)
        for _, inner in self.sublayers():
            inner.trainable = value

    def sublayers(self) -> list[tuple[str, Layer]]:
        """(attribute name, layer) of every layer this one holds, directly or in a
        list or tuple ("blocks.0"), in the order they were set."""
        found = []
        for name, value in vars(self).items():
            if type(value) in _PLAIN:  # fast: the model walks its layers every step
                continue
            if isinstance(value, Layer):
                found.append((name, value))
            elif isinstance(value, (list, tuple)):
                found += [
                    (f"{name}.{i}", v)
                    for i, v in enumerate(value)
                    if type(v) not in _PLAIN and isinstance(v, Layer)
                ]
        return found

    def build(self, input_shape: tuple) -> None:
        """Make the parameters for examples of `input_shape` (no batch axis), or check
        the ones there are; the model calls it before the first forward. A layer whose
        sizes do not depend on its input need not override it."""
        self.built = True

    def reset_parameters(self, rng: np.random.Generator | None = None) -> None:
        """Draw new initial values for the parameters (from `rng` if given, kept for
        later draws); nothing for a layer without random ones."""

    def _param(self, name: str, shape: tuple, initial: Callable[[], np.ndarray]):
        """params[name] of `shape`: kept if it is there already, else `initial()`;
        another shape is an error naming the layer."""
        array = self._array(self.params, name, shape, initial)
        if not deferring_weights() and (
            name not in self.grads or self.grads[name].shape != array.shape
        ):
            self.grads[name] = np.zeros_like(array)
        return array

    def _state(self, name: str, shape: tuple, initial: Callable[[], np.ndarray]):
        """state[name], made like `_param` makes a parameter."""
        return self._array(self.state, name, shape, initial)

    def _array(self, store: dict, name: str, shape: tuple, initial) -> np.ndarray:
        array = store.get(name)
        if array is None and deferring_weights():
            # a read-only stand-in of the right shape that allocates nothing: a model
            # file's arrays are checked against it, then take its place
            dtype = getattr(self, "dtype", np.float32)
            array = store[name] = np.broadcast_to(np.zeros((), dtype), shape)
        elif array is None:
            array = store[name] = initial()
        elif array.shape != tuple(shape):
            raise NnscratchError(
                f"{type(self).__name__}: {name} has shape {array.shape}, expected "
                f"{tuple(shape)}"
            )
        return array

    def penalty(self) -> float:
        """The regularisation term this layer adds to the loss (L1/L2); 0 if none."""
        return 0.0

    def set_rng(self, rng: np.random.Generator) -> None:
        """Give the layer its random generator (only layers that draw need one)."""

    def __getstate__(self) -> dict:
        # what predicting and training go on from (params, state, settings, rng),
        # not the last call's arrays: backward before the next forward is an error
        state = {k: v for k, v in vars(self).items() if k not in self.forward_cache}
        state["grads"] = {}  # backward overwrites them: zeros again, `__setstate__`
        return state

    def __setstate__(self, state: dict) -> None:
        vars(self).update(state)
        self.grads = {key: np.zeros_like(p) for key, p in self.params.items()}

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
    """What Dense and Conv2D share about their weights W and bias b: drawing them
    anew (W from the layer's `_initial_W`, b zeros) and L1/L2 penalties on W (Keras'
    convention).

    The layer sets `self.l1` and `self.l2`; the loss gains l1 * sum|W| + l2 * sum(W^2).
    """

    l1: float = 0.0
    l2: float = 0.0

    def reset_parameters(self, rng=None) -> None:
        if rng is not None:
            self.rng = rng
        if self.built:  # in place: W and b may be views of the model's buffer
            self.params["W"][...] = self._initial_W()
            self.params["b"][...] = 0

    def _weight_settings(self, init: str, l1, l2, rng, dtype) -> None:
        """Check and keep the settings of W: its init, penalties, generator, dtype."""
        init_weights((1, 1), 1, 1, init, np.random.default_rng(0), dtype)  # checks init
        self.init, self.dtype, self.rng = init, np.dtype(dtype), new_rng(rng)
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
