"""Batch normalisation's passes as kernels: statistics, scale and shift, the gradient.

Arrays are (N, C, P): N examples, C channels (or features), P values of a channel per
example (H * W, or 1 for dense features); per-channel vectors are (C,). The NumPy
twins sum with BLAS (`reductions.channel_sum`, `channel_dot`) and need a pass per
operation; the compiled ones make one pass per result, adding up each channel in
float64 (vectorised: see `Kernel`'s `sums`; the sums differ from BLAS's in the last
float32 bits).
"""

from __future__ import annotations

import numpy as np

from .dispatch import Kernel
from .reductions import channel_dot, channel_sum


def _batch_statistics(x, centered, mean, var):
    """mean and var (C,) of each channel of x (N, C, P) over N and P, the variance
    the biased one (divided by the count); centered = x - mean."""
    count = x.shape[0] * x.shape[2]
    mean[...] = channel_sum(x) / count
    np.subtract(x, mean[:, None], out=centered)
    var[...] = channel_dot(centered, centered) / count


batch_statistics = Kernel(_batch_statistics, sums=True)


@batch_statistics.compiled
def _batch_statistics_loops(x, centered, mean, var):
    n, c, p = x.shape
    total = np.zeros(c)  # float64
    for a in range(n):
        for b in range(c):
            row, s = x[a, b], 0.0
            for i in range(p):
                s += row[i]
            total[b] += s
    for b in range(c):
        mean[b] = total[b] / (n * p)
    squares = np.zeros(c)
    for a in range(n):
        for b in range(c):
            row, out, m, s = x[a, b], centered[a, b], mean[b], 0.0
            for i in range(p):
                d = row[i] - m
                out[i] = d
                s += d * d
            squares[b] += s
    for b in range(c):
        var[b] = squares[b] / (n * p)


def _scale_shift(x, scale, shift, y):
    """y = x * scale + shift, per channel: x, y (N, C, P), scale and shift (C,)."""
    np.multiply(x, scale[:, None], out=y)
    y += shift[:, None]


scale_shift = Kernel(_scale_shift)


@scale_shift.compiled
def _scale_shift_loops(x, scale, shift, y):
    n, c, p = x.shape
    for a in range(n):
        for b in range(c):
            row, out, k, d = x[a, b], y[a, b], scale[b], shift[b]
            for i in range(p):
                out[i] = row[i] * k + d


def _gradient_sums(dy, centered, sum_dy, sum_dy_centered):
    """sum_dy = the sum of dy and sum_dy_centered that of dy * centered, per channel
    over N and P (what the gradients of beta, gamma and x need)."""
    sum_dy[...] = channel_sum(dy)
    sum_dy_centered[...] = channel_dot(dy, centered)


gradient_sums = Kernel(_gradient_sums, sums=True)


@gradient_sums.compiled
def _gradient_sums_loops(dy, centered, sum_dy, sum_dy_centered):
    n, c, p = dy.shape
    totals, dots = np.zeros(c), np.zeros(c)  # float64
    for a in range(n):
        for b in range(c):
            g, h, s, d = dy[a, b], centered[a, b], 0.0, 0.0
            for i in range(p):
                s += g[i]
                d += g[i] * h[i]
            totals[b] += s
            dots[b] += d
    for b in range(c):
        sum_dy[b] = totals[b]
        sum_dy_centered[b] = dots[b]


def _batch_norm_dx(dy, centered, coefficient, mean_dy, scale, dx):
    """dx = (dy - centered * coefficient - mean_dy) * scale, per channel."""
    np.multiply(centered, coefficient[:, None], out=dx)
    np.subtract(dy, dx, out=dx)
    dx -= mean_dy[:, None]
    dx *= scale[:, None]


batch_norm_dx = Kernel(_batch_norm_dx)


@batch_norm_dx.compiled
def _batch_norm_dx_loops(dy, centered, coefficient, mean_dy, scale, dx):
    n, c, p = dy.shape
    for a in range(n):
        for b in range(c):
            g, h, out = dy[a, b], centered[a, b], dx[a, b]
            k, m, s = coefficient[b], mean_dy[b], scale[b]
            for i in range(p):
                out[i] = (g[i] - h[i] * k - m) * s
