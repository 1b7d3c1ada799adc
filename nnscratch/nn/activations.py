"""Activations: element-wise (ReLU, LeakyReLU, Sigmoid, Tanh; any shape) and softmax
(rows of (N, C)), and Keras' `activation=` of Dense and Conv2D (`ActivationAfter`):
a Sequential lists that activation as the layer after (`expand_activations`)."""

from __future__ import annotations

import numpy as np

from ..errors import NnscratchError, check_float
from .kernels.elementwise import relu, relu_backward
from .kernels.reductions import row_max, row_sum
from .layer import Layer
from .layout import memory_order
from .registry import ACTIVATIONS, LAYERS


class Activation(Layer):
    """An element-wise activation: y = f(x) for each element, any shape; no params."""

    # True once a Sequential has taken it out of a layer's `activation=`
    # (`expand_activations`): `Network.pop` then removes the two together
    moved_out = False


@ACTIVATIONS.register
@LAYERS.register
class ReLU(Activation):
    """y = max(x, 0), element-wise; any shape."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._y = self.workspace.like("y", x)  # laid out like x (see `layout`)
        # element-wise: the kernel walks both flat, in the order they lie in memory
        relu(memory_order(x), memory_order(self._y))
        return self._y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        # dx = dy where x > 0, which is where y > 0: found here rather than in
        # forward, so that inference (no backward) makes one pass, not two
        y = self._y
        dy = self.workspace.in_layout_of("dy", dy, y)
        dx = self.workspace.like("dx", y, dy.dtype)
        mask = self.workspace.like("mask", y, np.bool_)
        relu_backward(*map(memory_order, (dy, y, dx, mask)))
        return dx


@ACTIVATIONS.register(name="leaky_relu")
@LAYERS.register(name="leaky_relu")
class LeakyReLU(Activation):
    """y = x if x > 0 else alpha * x, element-wise; any shape."""

    forward_cache = ("_slope",)

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


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)), element-wise, without overflow for any finite x."""
    # exp of a non-positive number cannot overflow: use exp(-|x|) on both sides
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


@ACTIVATIONS.register
@LAYERS.register
class Sigmoid(Activation):
    """y = 1 / (1 + exp(-x)), element-wise; written to never overflow."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._y = sigmoid(x)
        return self._y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy * self._y * (1 - self._y)  # dsigmoid/dx = y (1 - y)


@ACTIVATIONS.register
@LAYERS.register
class Tanh(Activation):
    """y = tanh(x), element-wise."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._y = np.tanh(x)
        return self._y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy * (1 - self._y**2)  # dtanh/dx = 1 - y^2


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, C) logits; shifting by the row max keeps exp finite."""
    z = logits - row_max(logits)[:, None]
    np.exp(z, out=z)
    z /= row_sum(z)[:, None]
    return z


@LAYERS.register
class Softmax(Layer):
    """Probabilities from logits, row-wise: (N, C) -> (N, C).

    For training, end the model with logits and use `SoftmaxCrossEntropy`, which is
    fused and stable; this layer is for models whose output must be probabilities.
    """

    moved_out = False  # as an Activation's: taken out of a layer's `activation=`

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._y = softmax(x)
        return self._y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        # Jacobian-vector product: dx_i = y_i * (dy_i - sum_j dy_j y_j)
        return self._y * (dy - row_sum(dy * self._y)[:, None])


class ActivationAfter:
    """Keras' `activation=` of Dense and Conv2D: an activation applied to the layer's
    output, `self.activation` (a layer, or None). A Sequential lists it as a layer
    of its own, right after this one (`expand_activations`), where it runs fused,
    saves and exports as any other; a layer used alone applies it itself."""

    activation = None

    def _set_activation(self, activation, who: str) -> None:
        self.activation = get_activation(activation, who)

    def _activated(self, y: np.ndarray, training: bool) -> np.ndarray:
        return y if self.activation is None else self.activation.forward(y, training)

    def _activation_backward(self, dy: np.ndarray) -> np.ndarray:
        return dy if self.activation is None else self.activation.backward(dy)

    def _activation_config(self) -> dict:
        """{"activation": {"class", "config"}} if there is one (a layer used alone;
        in a Sequential it is a layer of its own), else {}."""
        a = self.activation
        if a is None:
            return {}
        return {"activation": {"class": type(a).__name__, "config": a.get_config()}}


def get_activation(activation, who: str) -> Layer | None:
    """`activation=` as a layer: None or "linear" (none), a name ("relu",
    "leaky_relu", "sigmoid", "tanh", "softmax"), an activation layer, or the
    {"class", "config"} a saved layer holds."""
    if activation is None or activation == "linear":
        return None
    if isinstance(activation, (Activation, Softmax)):
        return activation
    if isinstance(activation, dict) and activation.get("class") in ACTIVATION_CLASSES:
        return ACTIVATION_CLASSES[activation["class"]](**activation.get("config", {}))
    if isinstance(activation, str) and activation.lower() in ACTIVATION_NAMES:
        return ACTIVATION_NAMES[activation.lower()]()
    raise NnscratchError(
        f"{who} activation: expected None, 'linear', one of "
        f"{', '.join(ACTIVATION_NAMES)}, or an activation layer, got {activation!r}"
    )


ACTIVATION_NAMES = {
    "relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid, "tanh": Tanh,
    "softmax": Softmax,
}  # fmt: skip
ACTIVATION_CLASSES = {cls.__name__: cls for cls in ACTIVATION_NAMES.values()}


def expand_activations(layers: list) -> list:
    """`layers` with each `activation=` of a layer (`ActivationAfter`) taken out and
    put right after it as a layer of its own: Dense(10, activation="relu") becomes
    Dense(10), ReLU(). The same numbers; the layer keeps no activation."""
    out = []
    for layer in layers:
        out.append(layer)
        if isinstance(layer, ActivationAfter) and layer.activation is not None:
            layer.activation.moved_out = True  # `Network.pop` takes both
            out.append(layer.activation)
            layer.activation = None
    return out
