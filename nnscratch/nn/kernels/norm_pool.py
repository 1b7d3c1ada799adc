"""Batch norm followed by 2x2 max pooling (stride 2), and by ReLU if `relu`, as one
pass each way.

Arrays are images in the order of their planes in memory (`pooling.planes`): x and dx
(A, B, H, W), y, dy and winner (A, B, H // 2, W // 2); the channel is axis
`channel` (0 for channel-major batches, 1 for C order), and the per-channel vectors
are (C,). A conv block's batch norm writes a full-size map that max pooling reads
once and keeps a quarter of; fused, forward reads x once and writes only the pooled
map, and backward never makes the full-size gradient between the two layers, which
is zero but at one value in four.

The NumPy twins are the layers' formulas one after the other (`scale_shift`,
`max_pool_forward`, `relu`; `relu_backward`, `max_pool_backward`, `gradient_sums`,
`batch_norm_dx`); the compiled twins compute the same values in the same order, so
forward and dx are exact and the sums differ only in the order of their float64
additions. y is the block's output (after ReLU, if any): backward's ReLU mask.
"""

from __future__ import annotations

import numpy as np

from .dispatch import Kernel
from .normalization import _batch_norm_dx, _gradient_sums
from .pooling import _max_pool_backward, _max_pool_forward


def _per_channel(vector, channel):
    """A (C,) vector shaped to broadcast along axis `channel` of 4-D planes."""
    return vector.reshape((-1, 1, 1, 1) if channel == 0 else (1, -1, 1, 1))


def _by_channel(a, channel):
    """Planes (A, B, H, W) as (N, C, P) for the batch norm twins (a view)."""
    if channel == 0:
        return a.reshape(1, a.shape[0], -1)
    return a.reshape(a.shape[0], a.shape[1], -1)


def _norm_max_pool_forward(x, scale, shift, channel, relu, y, winner):
    """y, winner = 2x2 max pooling (see `pooling`) of x * scale + shift; then y =
    max(y, 0) if `relu`."""
    normalised = x * _per_channel(scale, channel)  # as `scale_shift`: times, then plus
    normalised += _per_channel(shift, channel)
    _max_pool_forward(normalised, y, winner, 0, 2, 2, 2, 2, relu)


norm_max_pool_forward = Kernel(_norm_max_pool_forward)


@norm_max_pool_forward.compiled
def _norm_max_pool_forward_loops(x, scale, shift, channel, relu, y, winner):
    # max pooling's 2x2 loop (see `pooling`) on the values x * k + d, then ReLU's
    # "0 if v <= 0 else v" (a NaN stays NaN; -0.0 becomes 0.0, as in NumPy)
    n, c, ho, wo = y.shape
    floor = y.dtype.type(0 if relu else -np.inf)
    arg = winner.dtype.type
    zero, one, two, three = arg(0), arg(1), arg(2), arg(3)
    saw_nan = False
    for a in range(n):
        for b in range(c):
            k, d = scale[a if channel == 0 else b], shift[a if channel == 0 else b]
            for r in range(ho):
                for s in range(wo):
                    i, j = 2 * r, 2 * s
                    v0, v1 = x[a, b, i, j] * k + d, x[a, b, i, j + 1] * k + d
                    v2, v3 = x[a, b, i + 1, j] * k + d, x[a, b, i + 1, j + 1] * k + d
                    right, right_below = v1 > v0, v3 > v2  # ties: the first wins
                    top = v1 if right else v0
                    below = v3 if right_below else v2
                    lower = below > top
                    best = below if lower else top
                    y[a, b, r, s] = floor if best <= floor else best  # noqa: FURB136 (max() may drop a NaN)
                    top_arg = one if right else zero
                    below_arg = three if right_below else two
                    winner[a, b, r, s] = below_arg if lower else top_arg
                    saw_nan |= np.isnan(v0 + v1 + v2 + v3)
    if not saw_nan:
        return
    for a in range(n):  # a window's first NaN wins, as in max pooling
        for b in range(c):
            k, d = scale[a if channel == 0 else b], shift[a if channel == 0 else b]
            for r in range(ho):
                for s in range(wo):
                    for t in range(3, -1, -1):
                        v = x[a, b, 2 * r + t // 2, 2 * s + t % 2] * k + d
                        if np.isnan(v):
                            y[a, b, r, s], winner[a, b, r, s] = v, t


def _scattered(dy, y, relu, winner, x):
    """The gradient at the full-size map: dy (times ReLU's mask if `relu`) at each
    window's winner, 0 elsewhere."""
    full = np.empty_like(x, dtype=dy.dtype)
    _max_pool_backward(dy, y, relu, winner, 0, full, 2, 2, 2, 2)
    return full


def _norm_max_pool_sums(dy, y, relu, winner, x, mean, channel, sum_dy, sum_dy_centered):
    """Batch norm's `gradient_sums` of the full-size gradient max pooling sends back."""
    full = _scattered(dy, y, relu, winner, x)
    _gradient_sums(
        _by_channel(full, channel), _by_channel(x, channel), mean, sum_dy,
        sum_dy_centered,
    )  # fmt: skip


norm_max_pool_sums = Kernel(_norm_max_pool_sums, sums=True)


@norm_max_pool_sums.compiled
def _norm_max_pool_sums_loops(
    dy, y, relu, winner, x, mean, channel, sum_dy, sum_dy_centered
):
    # only the winners' terms: the other values' gradient is 0
    n, c, ho, wo = dy.shape
    one, zero = dy.dtype.type(1), dy.dtype.type(0)
    channels = sum_dy.shape[0]
    totals, dots = np.zeros(channels), np.zeros(channels)  # float64
    for a in range(n):
        for b in range(c):
            ch = a if channel == 0 else b
            m, s_total, d_total = mean[ch], 0.0, 0.0
            for r in range(ho):
                for s in range(wo):
                    t, g = winner[a, b, r, s], dy[a, b, r, s]
                    if relu:  # as ReLU's backward: g times 1 or 0
                        g = g * (one if y[a, b, r, s] > 0 else zero)
                    s_total += g
                    d_total += g * (x[a, b, 2 * r + t // 2, 2 * s + t % 2] - m)
            totals[ch] += s_total
            dots[ch] += d_total
    for ch in range(channels):
        sum_dy[ch] = totals[ch]
        sum_dy_centered[ch] = dots[ch]


def _norm_max_pool_dx(
    dy, y, relu, winner, x, mean, channel, coefficient, mean_dy, scale, dx
):
    """Batch norm's `batch_norm_dx` of the full-size gradient max pooling sends back."""
    full = _scattered(dy, y, relu, winner, x)
    vectors = [_by_channel(a, channel) for a in (full, x)]
    _batch_norm_dx(
        *vectors, mean, coefficient, mean_dy, scale, _by_channel(dx, channel)
    )


norm_max_pool_dx = Kernel(_norm_max_pool_dx)


@norm_max_pool_dx.compiled
def _norm_max_pool_dx_loops(
    dy, y, relu, winner, x, mean, channel, coefficient, mean_dy, scale, dx
):
    # (g - (x - mean) * k - md) * s at every value, g the gradient max pooling sends
    # there: dy at a window's winner, 0 elsewhere (and in the rows and columns floor
    # mode leaves out of every window). Two passes: every value with g = 0, a run the
    # compiler vectorises, then each winner's again with its g. One pass with g a
    # select between dy and 0 did not vectorise: 5x slower.
    n, c, h, w = x.shape
    ho, wo = dy.shape[2], dy.shape[3]
    zero, one = dx.dtype.type(0), dx.dtype.type(1)
    for a in range(n):
        for b in range(c):
            ch = a if channel == 0 else b
            m, k, md, sc = mean[ch], coefficient[ch], mean_dy[ch], scale[ch]
            for q in range(h):
                values, out = x[a, b, q], dx[a, b, q]
                for u in range(w):
                    out[u] = (zero - (values[u] - m) * k - md) * sc
            for r in range(ho):
                for s in range(wo):
                    t = winner[a, b, r, s]
                    q, u = 2 * r + t // 2, 2 * s + t % 2
                    value, g = x[a, b, q, u], dy[a, b, r, s]
                    if relu:  # as ReLU's backward: g times 1 or 0
                        g = g * (one if y[a, b, r, s] > 0 else zero)
                    dx[a, b, q, u] = (g - (value - m) * k - md) * sc
