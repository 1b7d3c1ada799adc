"""Inverted dropout."""

from __future__ import annotations

import numpy as np

from ..errors import check_float
from .layer import Layer
from .registry import LAYERS


@LAYERS.register
class Dropout(Layer):
    """Inverted dropout: while training, zero each input with probability `rate` and
    scale the rest by 1 / (1 - rate), so evaluation needs no change. Any shape.

    Training: y = x * scale and dx = dy * scale, with scale = m / (1 - rate) for a
    0/1 mask m drawn anew each forward (1 with probability 1 - rate). Otherwise (or
    rate 0) y = x and dx = dy.
    """

    forward_cache = ("_scale",)

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
        # keep where a uniform draw >= rate; the kept ones carry 1/(1-rate) so E[y] = x
        draws = self.workspace.array("draws", x.shape, np.float32)
        self.rng.random(dtype=np.float32, out=draws)
        scale = self.workspace.like("scale", x)
        np.greater_equal(draws, self.rate, out=scale, casting="unsafe")
        scale *= 1.0 / (1.0 - self.rate)
        self._scale = scale
        return np.multiply(x, scale, out=self.workspace.like("y", x))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        if self._scale is None:
            return dy
        return np.multiply(dy, self._scale, out=self.workspace.like("dx", dy))

    def get_config(self) -> dict:
        return {"rate": self.rate}
