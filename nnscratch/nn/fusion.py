"""Layers a network runs as one step: BatchNorm followed by 2x2 MaxPool2D, and by
ReLU if one comes next (a conv block's tail); Conv2D followed by MaxPool2D (and
ReLU), chunk by chunk; MaxPool2D followed by ReLU; Dense followed by ReLU.

A conv block's batch norm writes a full-size map that max pooling then reads and
keeps a quarter of; backward, pooling writes a full-size gradient that is zero but
at one value in four, and batch norm reads it twice. Run together
(`kernels.norm_pool`), forward reads x once and writes the pooled map, and backward
reads only the pooled gradient and x: the three blocks of a `cnn` training step
spend 14.4 ms there instead of 19.5 (the step: 73.9 to 66.7 ms; `fast`: 24.0 to 20.6).
The ReLU after the pooling, folded in too, saves its two passes over the pooled map
(back to back: `cnn` 65.0 to 60.9 ms, `fast` 18.7 to 16.6 ms). The layers keep their
parameters, state and gradients; a fused step fills them as the layers' own forward
and backward would, up to the order of batch norm's sums.
"""

from __future__ import annotations

import numpy as np

from .activations import ReLU
from .conv import Conv2D
from .dense import Dense
from .kernels.norm_pool import (
    norm_max_pool_dx,
    norm_max_pool_forward,
    norm_max_pool_sums,
)
from .kernels.pooling import max_pool_backward, max_pool_forward
from .layout import is_channel_major
from .normalization import BatchNorm
from .pooling import MaxPool2D, planes


class _Fused:
    """What a fused step does with input it cannot fuse (another dtype, ...): run
    its `layers` one after the other, forward and then backward."""

    layers: tuple

    def _layers_forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        self._fused = False
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def _layers_backward(self, dy: np.ndarray) -> np.ndarray | None:
        for layer in self.layers[::-1]:
            dy = layer.backward(dy)
        return dy


class NormPool(_Fused):
    """BatchNorm then MaxPool2D(2) (stride 2), then ReLU if given, as one step of a
    network.

    Shapes: x (N, C, H, W) -> y (N, C, H // 2, W // 2). Any other input (a dtype
    other than batch norm's, ...) runs the layers one after the other.
    """

    forward_cache = ("_x", "_y", "_winner", "_scale")  # as `Layer.forward_cache`

    def __init__(self, norm: BatchNorm, pool: MaxPool2D, relu: ReLU | None = None):
        self.norm, self.pool, self.relu = norm, pool, relu
        self.layers = (norm, pool) if relu is None else (norm, pool, relu)

    @staticmethod
    def fits(first, second) -> bool:
        return (
            type(first) is BatchNorm
            and type(second) is MaxPool2D
            and second.pool_size == second.stride == (2, 2)
        )

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        norm, pool = self.norm, self.pool
        if not (x.ndim == 4 and norm.built and x.dtype == norm.params["gamma"].dtype):
            return self._layers_forward(x, training)
        self._fused = True
        scale, shift = norm.affine(x, training)
        y = pool._output(x)  # checks x's size, laid out like x
        winner = pool.workspace.like("winner", y, np.uint8)
        self._x, self._y, self._winner, self._scale = x, y, winner, scale
        self._channel = 0 if is_channel_major(x) else 1
        relu = self.relu is not None
        norm_max_pool_forward(
            *planes(x), scale, shift, self._channel, relu, *planes(y, winner)
        )
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        norm, pool = self.norm, self.pool
        if not self._fused:
            return self._layers_backward(dy)
        x, channel = self._x, self._channel
        dy = pool.workspace.in_layout_of("dy", dy, self._y)
        dx = norm.workspace.like("dx", x, dy.dtype)
        dy_planes, y_planes, winner_planes, x_planes, dx_planes = planes(
            dy, self._y, self._winner, x, dx
        )
        pooled = (dy_planes, y_planes, self.relu is not None, winner_planes)
        sums = np.empty((2, norm.num_features), dy.dtype)
        norm_max_pool_sums(*pooled, x_planes, norm._mean, channel, *sums)
        terms = norm.gradient_terms(*sums)
        if terms is None:  # batch norm's statistics were constants
            return self._constant_statistics_dx(dy, dx)
        norm_max_pool_dx(*pooled, x_planes, norm._mean, channel, *terms, dx_planes)
        return dx

    def _constant_statistics_dx(self, dy: np.ndarray, dx: np.ndarray) -> np.ndarray:
        """dx when batch norm normalised with its running statistics: the pooled
        gradient (times ReLU's mask) times gamma / std, sent to the winners."""
        pool = self.pool
        scaled = pool.workspace.like("scaled", dy)
        np.multiply(dy, self._scale.reshape((1, -1, 1, 1)), out=scaled)
        relu = self.relu is not None
        dy_planes, y_planes, winner, dx_planes = planes(
            scaled, self._y, self._winner, dx
        )
        max_pool_backward(dy_planes, y_planes, relu, winner, 0, dx_planes, 2, 2, 2, 2)
        return dx


class PoolReLU:
    """MaxPool2D then ReLU as one step of a network: the pooling kernels apply ReLU
    to each window's maximum as they write it, and its mask to the gradient as they
    send it back, which saves ReLU's two passes over the pooled map: forward and
    backward on (128, 32, 28, 28), 2.05 -> 1.62 ms. Shapes as MaxPool2D's."""

    def __init__(self, pool: MaxPool2D, relu: ReLU):
        self.pool, self.relu = pool, relu
        self.layers = (pool, relu)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return self.pool.pool(x, relu=True)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return self.pool.unpool(dy, relu=True)


class ConvPool(_Fused):
    """Conv2D then MaxPool2D with windows side by side (then ReLU, if given) as one
    step, one chunk of images at a time: each chunk's convolution output is pooled
    while it is still in cache, and backward sends the pooled gradient back into a
    chunk-sized array that the convolution's products read at once. The full-size
    map between the layers, and its gradient, are never made: in a `lenet-like`
    step that saves writing and reading 19 MB each way (step 31.3 -> 28.7 ms,
    medians of 8 interleaved epochs). The layers keep their parameters and
    gradients, and give the same numbers as run one after the other.
    Shapes as Conv2D's input and MaxPool2D's output.
    """

    def __init__(self, conv: Conv2D, pool: MaxPool2D, relu: ReLU | None = None):
        self.conv, self.pool, self.relu = conv, pool, relu
        self.layers = (conv, pool) if relu is None else (conv, pool, relu)

    @staticmethod
    def fits(first, second) -> bool:
        return (
            type(first) is Conv2D
            and first.own_activation is None  # a Sequential has moved it out
            and type(second) is MaxPool2D
            and second.pool_size == second.stride
        )

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        conv, pool = self.conv, self.pool
        if not conv.built:
            conv.build(x.shape[1:])
        if x.ndim != 4 or x.dtype != conv.params["W"].dtype:
            return self._layers_forward(x, training)
        n, _, h, w = x.shape
        conv_shape = (n, conv.out_channels, *conv._out_hw(h, w))
        chunk_output = self._chunk_output(conv_shape, x.dtype)
        chunks = conv.forward_chunks(x, training, chunk_output)
        # the pooled map, channel-major like the conv's output would be
        y, winner = pool.pooled_arrays(conv_shape, x.dtype)
        relu, (y_cm, winner_cm) = self.relu is not None, _cm(y, winner)
        for chunk in chunks:
            # the whole arrays and the chunk's first image, not views of the chunk:
            # the kernel is 2.3x slower on strided views (no vector code)
            max_pool_forward(
                chunk_output(chunk), y_cm, winner_cm, chunk.start,
                *pool._window_args, relu,
            )  # fmt: skip
        self._fused = True
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        if not self._fused:
            return self._layers_backward(dy)
        pool, relu = self.pool, self.relu is not None
        dy = pool.workspace.in_layout_of("dy", dy, pool._y)
        dy_cm, y_cm, winner_cm = _cm(dy, pool._y, pool._winner)
        gradient = self._chunk_output(pool._x_shape, dy.dtype)

        def gradient_of(chunk: slice) -> np.ndarray:
            dx = gradient(chunk)  # the conv output's gradient, for this chunk only
            max_pool_backward(
                dy_cm, y_cm, relu, winner_cm, chunk.start, dx, *pool._window_args
            )
            return dx.reshape(len(dx), -1)

        return self.conv.backward_chunks(gradient_of)

    def _chunk_output(self, shape: tuple, dtype):
        """chunk -> a scratch array (O, n, Ho, Wo) for the conv output (or its
        gradient) of that chunk's n images, from one buffer."""
        _, o, ho, wo = shape
        workspace = self.conv.workspace

        def of(chunk: slice) -> np.ndarray:
            size = (o, chunk.stop - chunk.start, ho, wo)
            return workspace.front("chunk_output", size, dtype)

        return of


def _cm(*arrays: np.ndarray) -> list[np.ndarray]:
    """The (N, C, H, W) arrays as (C, N, H, W) views, which ConvPool's kernels take
    whatever the memory: `planes` cannot tell a channel-major array when N or C is
    1 (both orders are then C-contiguous), and left it (N, C), so a chunk's images
    were written past the end of the map (one image to predict)."""
    return [a.transpose(1, 0, 2, 3) for a in arrays]


class DenseReLU:
    """Dense then ReLU as one step of a network: Dense adds its bias and applies ReLU
    in one pass over its output, and backward takes ReLU's mask and the bias's
    gradient in one pass over the gradient (`kernels.elementwise`), instead of four
    passes (two kernel calls and two NumPy calls): a step of the MLP 784-256-128-64-
    32-10 at batch 32, 577 -> 536 us. Shapes as Dense's."""

    def __init__(self, dense: Dense, relu: ReLU):
        self.dense, self.relu = dense, relu
        self.layers = (dense, relu)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return self.dense.transform(x, relu=True)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        return self.dense.transform_backward(dy, relu=True)


FOLLOWED_BY_RELU = {MaxPool2D: PoolReLU, Dense: DenseReLU}  # exact classes only


def fuse(order: list) -> list:
    """The steps a network runs: `order`'s layers, with each BatchNorm directly
    followed by a 2x2 MaxPool2D (and the ReLU after it, if any) as one `NormPool`,
    each Conv2D directly followed by a MaxPool2D of side-by-side windows (and ReLU)
    as one `ConvPool`, and each other MaxPool2D, and each Dense, directly followed
    by a ReLU as one `PoolReLU` or `DenseReLU`."""
    steps, i = [], 0
    while i < len(order):
        pair = order[i : i + 2]
        fused = None
        if len(pair) == 2:
            fused = next((f for f in (NormPool, ConvPool) if f.fits(*pair)), None)
        if fused is not None:
            relu = order[i + 2] if i + 2 < len(order) else None
            relu = relu if type(relu) is ReLU else None
            steps.append(fused(*pair, relu))
            i += 2 if relu is None else 3
        elif i + 1 < len(order) and _then_relu(order[i], order[i + 1]):
            steps.append(FOLLOWED_BY_RELU[type(order[i])](order[i], order[i + 1]))
            i += 2
        else:
            steps.append(order[i])
            i += 1
    return steps


def _then_relu(first, second) -> bool:
    return (
        type(first) in FOLLOWED_BY_RELU
        and getattr(first, "own_activation", None) is None  # Dense's, moved out
        and type(second) is ReLU
    )
