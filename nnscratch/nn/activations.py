"""Activations: element-wise (ReLU, LeakyReLU, Sigmoid, Tanh; any shape) and softmax
(rows of (N, C)), and Keras' `activation=` of Dense and Conv2D (`ActivationAfter`):
a Sequential lists that activation as the layer after (`expand_activations`)."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np

from ..errors import NnscratchError, check_float
from .kernels.elementwise import relu, relu_backward
from .kernels.reductions import row_max, row_sum
from .layer import Layer
from .layout import memory_order
from .registry import ACTIVATIONS, LAYERS


class Activation(Layer):
    """An element-wise activation: y = f(x) for each element, any shape; no params."""

    # True once a Sequential lists it as a layer of its own after the layer whose
    # `activation=` it is (`expand_activations`): that layer no longer applies it
    # itself while a model runs it, and `Network.pop` removes the two together
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
        # the kernel walks dy, y and dx flat, so they must lie in one order in memory
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
    saves and exports as any other; the layer keeps it as `activation` (a second
    model given the layer lists it too, and `get_config` holds it, as Keras') and
    leaves it to that layer while that model runs it (`model_running`). Called
    alone, as a Keras layer is, or inside another layer (a custom layer's), it
    applies it itself, whether or not it was ever put in a model."""

    activation = None

    def _set_activation(self, activation, who: str) -> None:
        self.activation = get_activation(activation, who)

    @property
    def own_activation(self) -> Layer | None:
        """The activation this layer applies itself when a model lists it:
        `activation`, unless a Sequential lists it as a layer of its own
        (`moved_out`); else None."""
        a = self.activation
        return None if a is None or a.moved_out else a

    def sublayers(self) -> list:
        # an activation moved out is the model's layer, not one inside this one
        return [
            (name, layer)
            for name, layer in super().sublayers()
            if layer is not self.activation or not layer.moved_out
        ]

    def _applied_activation(self) -> Layer | None:
        """The activation forward applies now: `activation`, unless it was moved out
        (`moved_out`) and the model running now lists this layer itself (inside
        another layer of that model, the layer applies its own)."""
        a = self.activation
        if a is None or not a.moved_out or not _running.listed:
            return a
        return None if any(layer is self for layer in _running.listed[-1]) else a

    def _activated(self, y: np.ndarray, training: bool) -> np.ndarray:
        a = self._applied_activation()
        return y if a is None else a.forward(y, training)

    def _activation_backward(self, dy: np.ndarray) -> np.ndarray:
        a = self._applied_activation()
        return dy if a is None else a.backward(dy)

    def _activation_config(self) -> dict:
        """{"activation": {"class", "config"}} if the layer has one, else {}: the
        layer as it was made, whether or not a model lists its activation as a
        layer of its own (a model file leaves it out then: `listed_config`)."""
        a = self.activation
        if a is None:
            return {}
        return {"activation": {"class": type(a).__name__, "config": a.get_config()}}


def listed_config(layer: Layer) -> dict:
    """`layer.get_config()` as a model that lists the layer saves it: without the
    activation that the model lists as a layer of its own (`moved_out`), which
    the file holds as the next layer."""
    config = layer.get_config()
    if isinstance(layer, ActivationAfter) and layer.own_activation is None:
        config.pop("activation", None)
    return config


class _Running(threading.local):
    def __init__(self):
        # the layers of each model running its layers in this thread, innermost last
        self.listed: list = []


_running = _Running()


@contextmanager
def model_running(layers: list):
    """Inside it, a model runs its `layers` (builds them, forward, backward): each of
    them leaves an activation that the model lists after it (`moved_out`) to that
    layer. Per thread: a layer called alone in another thread applies its own."""
    _running.listed.append(layers)
    try:
        yield
    finally:
        _running.listed.pop()


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


def expand_activations(layers: list, again: bool = False) -> list:
    """`layers` with the `activation=` of each layer (`ActivationAfter`) listed right
    after it as a layer of its own (unless it is already): Dense(10,
    activation="relu") becomes Dense(10), ReLU(). The same numbers; the layer keeps
    its activation but no longer applies it itself (`moved_out`), so that a layer
    given to two models is followed by its activation in both. `again` (a model's
    own list, built before): only activations that no model has listed yet (a
    layer put in `layers` by hand), not one removed from the list by hand."""
    out = []
    for i, layer in enumerate(layers):
        out.append(layer)
        activation = getattr(layer, "activation", None)
        if not isinstance(layer, ActivationAfter) or activation is None:
            continue
        if again and activation.moved_out:
            continue
        if i + 1 == len(layers) or layers[i + 1] is not activation:
            out.append(activation)
        activation.moved_out = True  # `Network.pop` takes both
    return out
