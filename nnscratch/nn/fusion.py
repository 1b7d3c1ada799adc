"""Layers a network runs as one step: BatchNorm followed by 2x2 MaxPool2D.

A conv block's batch norm writes a full-size map that max pooling then reads and
keeps a quarter of; backward, pooling writes a full-size gradient that is zero but
at one value in four, and batch norm reads it twice. Run together
(`kernels.norm_pool`), forward reads x once and writes the pooled map, and backward
reads only the pooled gradient and x: the three blocks of a `cnn` training step
spend 14.4 ms there instead of 19.5 (the step: 73.9 to 66.7 ms; `fast`: 24.0 to 20.6).
The layers keep their parameters, state and gradients; a fused step fills them as the
two layers' own forward and backward would, up to the order of batch norm's sums.
"""

from __future__ import annotations

import numpy as np

from .kernels.norm_pool import (
    norm_max_pool_dx,
    norm_max_pool_forward,
    norm_max_pool_sums,
)
from .kernels.pooling import max_pool_backward
from .layout import is_channel_major
from .normalization import BatchNorm
from .pooling import MaxPool2D, planes


class NormPool:
    """BatchNorm then MaxPool2D(2) (stride 2), as one step of a network.

    Shapes: x (N, C, H, W) -> y (N, C, H // 2, W // 2). Any other input (a dtype
    other than batch norm's, ...) runs the two layers one after the other.
    """

    def __init__(self, norm: BatchNorm, pool: MaxPool2D):
        self.norm, self.pool = norm, pool
        self.layers = (norm, pool)

    @staticmethod
    def fits(first, second) -> bool:
        return (
            type(first) is BatchNorm
            and type(second) is MaxPool2D
            and second.pool_size == second.stride == (2, 2)
        )

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        norm, pool = self.norm, self.pool
        self._fused = (
            x.ndim == 4 and norm.built and x.dtype == norm.params["gamma"].dtype
        )
        if not self._fused:
            return pool.forward(norm.forward(x, training=training), training=training)
        scale, shift = norm.affine(x, training)
        y = pool._output(x)  # checks x's size, laid out like x
        winner = pool.workspace.like("winner", y, np.uint8)
        self._x, self._y, self._winner, self._scale = x, y, winner, scale
        self._channel = 0 if is_channel_major(x) else 1
        norm_max_pool_forward(
            *planes(x), scale, shift, self._channel, *planes(y, winner)
        )
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        norm, pool = self.norm, self.pool
        if not self._fused:
            return norm.backward(pool.backward(dy))
        x, winner, channel = self._x, self._winner, self._channel
        dy = pool.workspace.in_layout_of("dy", dy, self._y)
        dx = norm.workspace.like("dx", x, dy.dtype)
        dy_planes, winner_planes, x_planes, dx_planes = planes(dy, winner, x, dx)
        sums = np.empty((2, norm.num_features), dy.dtype)
        norm_max_pool_sums(
            dy_planes, winner_planes, x_planes, norm._mean, channel, *sums
        )
        terms = norm.gradient_terms(*sums)
        if terms is None:  # batch norm's statistics were constants: dx = g * scale
            vector = self._scale.reshape((1, -1, 1, 1))
            scaled = pool.workspace.like("scaled", dy)
            np.multiply(dy, vector, out=scaled)
            max_pool_backward(*planes(scaled, winner, dx), 2, 2, 2, 2)
            return dx
        norm_max_pool_dx(
            dy_planes, winner_planes, x_planes, norm._mean, channel, *terms, dx_planes
        )
        return dx


def fuse(order: list) -> list:
    """The steps a network runs: `order`'s layers, with each BatchNorm directly
    followed by a 2x2 MaxPool2D as one `NormPool`."""
    steps, i = [], 0
    while i < len(order):
        if i + 1 < len(order) and NormPool.fits(order[i], order[i + 1]):
            steps.append(NormPool(order[i], order[i + 1]))
            i += 2
        else:
            steps.append(order[i])
            i += 1
    return steps
