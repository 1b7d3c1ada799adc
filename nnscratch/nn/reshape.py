"""Reshape and Flatten: views of each example in another shape."""

from __future__ import annotations

import numpy as np

from ..errors import NnscratchError
from .layer import Layer
from .registry import LAYERS


@LAYERS.register
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


@LAYERS.register
class Flatten(Layer):
    """(N, d1, d2, ...) -> (N, d1 * d2 * ...); a view of a C-ordered x, no copy."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self._x = x
        if x.flags.c_contiguous:
            return x.reshape(x.shape[0], -1)
        # a channel-major batch (see `layout`) is copied into C order, each example's
        # values together, as the Dense layer after it needs
        y = self.workspace.array("y", (x.shape[0], x[0].size), x.dtype)
        np.copyto(y.reshape(x.shape), x)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        # laid out like x again, as the layer before wants it
        return self.workspace.in_layout_of("dx", dy.reshape(self._x.shape), self._x)
