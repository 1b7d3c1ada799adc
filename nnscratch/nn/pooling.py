"""Pooling on batch-first images (N, C, H, W): max, average and global average.

The windows' arithmetic is in `kernels.pooling` (a NumPy twin and a compiled one).
"""

from __future__ import annotations

import numpy as np

from ..errors import NnscratchError
from .kernels.pooling import (
    avg_pool_backward,
    avg_pool_forward,
    max_pool_backward,
    max_pool_forward,
)
from .layer import Layer
from .layout import is_channel_major
from .registry import LAYERS
from .spatial import check_images, out_size, pair, pair_config


class _Pool2D(Layer):
    """Shared geometry of the pooling layers; `stride` defaults to `pool_size`."""

    def __init__(self, pool_size=2, stride=None):
        super().__init__()
        name = type(self).__name__
        self.pool_size = pair(pool_size, "pool_size", name)
        self.stride = self.pool_size if stride is None else pair(stride, "stride", name)

    def _geometry(self, x: np.ndarray) -> tuple[int, int]:
        check_images(self, x)
        return self._pooled_size(x.shape)

    def _pooled_size(self, x_shape: tuple) -> tuple[int, int]:
        """(Ho, Wo) for images of x_shape (N, C, H, W), which must fill a window."""
        (kh, kw), (sh, sw) = self.pool_size, self.stride
        h, w = x_shape[2:]
        if h < kh or w < kw:
            raise NnscratchError(
                f"{type(self).__name__}: input {h}x{w} is smaller than the {kh}x{kw} "
                "pool"
            )
        return out_size(h, kh, sh, 0), out_size(w, kw, sw, 0)

    def _output(self, x: np.ndarray) -> np.ndarray:
        """The output array for x (N, C, Ho, Wo), laid out like x, after checking x."""
        ho, wo = self._geometry(x)
        self._x_shape = x.shape
        return self.workspace.like("y", x, shape=(*x.shape[:2], ho, wo))

    def _input_gradient(self, dy: np.ndarray, y: np.ndarray):
        """(dy laid out like y, room for dx laid out like the input)."""
        dy = self.workspace.in_layout_of("dy", dy, y)
        dx = self.workspace.like("dx", y, dy.dtype, shape=self._x_shape)
        return dy, dx

    @property
    def _window_args(self) -> tuple[int, int, int, int]:
        return (*self.pool_size, *self.stride)

    def get_config(self) -> dict:
        return {
            "pool_size": pair_config(self.pool_size),
            "stride": pair_config(self.stride),
        }


@LAYERS.register
class MaxPool2D(_Pool2D):
    """Maximum over each pool_size window: (N, C, H, W) -> (N, C, Ho, Wo).

    y[n, c, r, s] = max over i < kh, j < kw of x[n, c, r*sh + i, s*sw + j], with
    Ho = (H - kh) // sh + 1 (floor mode: trailing rows that fill no window are
    dropped). The gradient goes to one maximum per window: dx = dy[n, c, r, s] at
    that window's winner (summed where windows overlap), 0 elsewhere; the winner is
    the first in row-major order when several tie, like PyTorch.
    """

    forward_cache = ("_y", "_winner")

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return self.pool(x, relu=False)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return self.unpool(dy, relu=False)

    def pool(self, x: np.ndarray, relu: bool) -> np.ndarray:
        """forward, followed by ReLU in the same pass if `relu` (`nn.fusion`)."""
        y = self._output(x)
        # which element of each window is its maximum, for backward
        self._winner = self.workspace.like("winner", y, self._winner_dtype)
        self._y = y
        max_pool_forward(*planes(x, y, self._winner), 0, *self._window_args, relu)
        return y

    def pooled_arrays(self, x_shape: tuple, dtype) -> tuple[np.ndarray, np.ndarray]:
        """(y, winner), (N, C, Ho, Wo) channel-major, for channel-major images of
        x_shape that another step pools chunk by chunk (`fusion.ConvPool`); kept
        for backward as `pool` keeps its own."""
        n, c = x_shape[:2]
        shape = (c, n, *self._pooled_size(x_shape))
        self._x_shape = tuple(x_shape)
        y = self.workspace.array("y", shape, dtype).transpose(1, 0, 2, 3)
        winner = self.workspace.array("winner", shape, self._winner_dtype)
        self._y, self._winner = y, winner.transpose(1, 0, 2, 3)
        return self._y, self._winner

    @property
    def _winner_dtype(self):
        kh, kw = self.pool_size
        return np.uint8 if kh * kw <= 256 else np.int32

    def unpool(self, dy: np.ndarray, relu: bool) -> np.ndarray:
        """backward of `pool(x, relu)`: dy (times ReLU's mask if `relu`) sent to
        each window's winner."""
        dy, dx = self._input_gradient(dy, self._y)
        dy_planes, y_planes, winner, dx_planes = planes(dy, self._y, self._winner, dx)
        max_pool_backward(
            dy_planes, y_planes, relu, winner, 0, dx_planes, *self._window_args
        )
        return dx


@LAYERS.register
class AvgPool2D(_Pool2D):
    """Mean over each pool_size window: (N, C, H, W) -> (N, C, Ho, Wo), floor mode.

    y[n, c, r, s] = the mean of x[n, c, r*sh + i, s*sw + j] over i < kh, j < kw;
    each input gets dy / (kh kw) from every window it lies in (0 from none).
    """

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        y = self._output(x)
        x_planes, y_planes = planes(x, y)
        avg_pool_forward(x_planes, y_planes, self._scale(x.dtype), *self._window_args)
        self._y = y
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dy, dx = self._input_gradient(dy, self._y)
        dy_planes, dx_planes = planes(dy, dx)
        scale = self._scale(dy.dtype)
        avg_pool_backward(dy_planes, dx_planes, scale, *self._window_args)
        return dx

    def _scale(self, dtype) -> np.generic:
        """1 / the window's area, as `dtype` (so float32 arithmetic stays float32)."""
        return np.dtype(dtype).type(1.0 / (self.pool_size[0] * self.pool_size[1]))


def planes(*arrays: np.ndarray) -> list[np.ndarray]:
    """The arrays (N, C, H, W) in the order of their planes (H, W) in memory: as they
    are, or as (C, N, H, W) views if channel-major. Pooling treats each plane alone,
    so its kernels can take either, and walk memory in order."""
    return [a.transpose(1, 0, 2, 3) if is_channel_major(a) else a for a in arrays]


@LAYERS.register
class GlobalAvgPool2D(Layer):
    """Mean over all pixels of each channel: (N, C, H, W) -> (N, C).

    y[n, c] = the mean of x[n, c] over H, W; backward spreads it back evenly:
    dx[n, c, r, s] = dy[n, c] / (H W).
    """

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        check_images(self, x)
        self._x = x  # dx is laid out like x
        n, c = x.shape[:2]
        return np.mean(
            x.reshape(n, c, -1), axis=2, out=self.workspace.array("y", (n, c), x.dtype)
        )

    def backward(self, dy: np.ndarray) -> np.ndarray:
        h, w = self._x.shape[2:]
        dx = self.workspace.like("dx", self._x, dy.dtype)
        np.multiply(dy[:, :, None, None], 1.0 / (h * w), out=dx)
        return dx
