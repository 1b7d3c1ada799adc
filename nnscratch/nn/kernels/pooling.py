"""Max and average pooling as kernels: each window read once, in one pass.

Images (N, C, H, W), windows kh x kw every (sh, sw) pixels, outputs (N, C, Ho, Wo) in
floor mode. The NumPy twins take each window offset (i, j) as one strided view of
all the windows, a whole-array pass each; the compiled twins walk window by window,
so x is read once and dx written once. Max pooling records each window's winner
(i * kw + j of its first largest value in row-major order: PyTorch's choice on
ties), which backward sends the gradient to. On (128, 32, 28, 28) by 2x2: forward
0.68 ms, backward 0.64 ms compiled (a copy of x takes 0.87 ms), against 5.7 and
7.5 ms for the NumPy code they replaced (a separable max over contiguous copies).
An im2col for Conv2D written as such loops, window by window, was slower than its
NumPy version; `columns` copies runs of whole image rows instead. With `relu`,
max pooling is followed by ReLU in the same pass (`nn.fusion.PoolReLU`): the maximum
written as "0 if v <= 0 else v", and backward's gradient times ReLU's mask (where the
pooled output y > 0), the very operations of the ReLU layer.
"""

from __future__ import annotations

import numpy as np

from .dispatch import Kernel
from .elementwise import _relu, _relu_backward


def window(offset: int, stride: int, count: int) -> slice:
    """The positions one window offset touches along an axis: offset, offset+stride,
    ... (count of them)."""
    return slice(offset, offset + stride * (count - 1) + 1, stride)


def _offsets(a, kh, kw, sh, sw, ho, wo):
    """For each window offset (i, j) in row-major order, a[:, :, r*sh + i, s*sw + j]
    for every window (r, s): strided views (N, C, Ho, Wo)."""
    return [
        a[:, :, window(i, sh, ho), window(j, sw, wo)]
        for i in range(kh)
        for j in range(kw)
    ]


def _max_pool_forward(x, y, winner, first, kh, kw, sh, sw, relu):
    """y = the largest value of each window; winner = where it is (see above); then
    y = max(y, 0) if `relu` (ReLU after pooling, in the same pass: `nn.fusion`).
    y and winner are written from index `first` of their axis 1 on (a chunk of a
    larger output, `nn.fusion.ConvPool`; else 0)."""
    y, winner = y[:, first : first + x.shape[1]], winner[:, first : first + x.shape[1]]
    views = _offsets(x, kh, kw, sh, sw, *y.shape[2:])
    np.copyto(y, views[0])
    for view in views[1:]:
        np.maximum(y, view, out=y)
    # the first offset holding the maximum: written last, so it wins
    for t in reversed(range(len(views))):
        np.copyto(winner, t, where=views[t] == y)
    nan = np.isnan(y)  # a NaN equals nothing: the window's first NaN wins
    if nan.any():
        for t in reversed(range(len(views))):
            np.copyto(winner, t, where=nan & np.isnan(views[t]))
    if relu:
        _relu(y, y)


max_pool_forward = Kernel(_max_pool_forward)


@max_pool_forward.compiled
def _max_pool_forward_loops(x, y, winner, first, kh, kw, sh, sw, relu):
    # Compares only, and a sum of each window that is NaN only if a value is NaN (or
    # inf - inf): then, at the end, the windows are scanned for their first NaN,
    # which propagates as in NumPy. A NaN test at every comparison made the loop 5x
    # slower. 2x2 windows every 2 pixels, by far the most common, get their own loop:
    # the larger of each pair, then of the two pairs, as selects (no branches), which
    # the compiler runs many windows at a time (2x faster than "if v > best" in turn).
    n, c = x.shape[:2]
    ho, wo = y.shape[2:]
    saw_nan = False
    floor = y.dtype.type(0 if relu else -np.inf)  # ReLU's "0 if v <= 0 else v"
    if kh == 2 and kw == 2 and sh == 2 and sw == 2:
        arg = winner.dtype.type
        zero, one, two, three = arg(0), arg(1), arg(2), arg(3)
        for a in range(n):
            for b in range(c):
                m = first + b  # on y's axis 1 (see the NumPy twin)
                for r in range(ho):
                    for s in range(wo):
                        i, j = 2 * r, 2 * s
                        v0, v1 = x[a, b, i, j], x[a, b, i, j + 1]
                        v2, v3 = x[a, b, i + 1, j], x[a, b, i + 1, j + 1]
                        right, right_below = v1 > v0, v3 > v2  # ties: the first wins
                        top = v1 if right else v0
                        below = v3 if right_below else v2
                        lower = below > top
                        best = below if lower else top
                        y[a, m, r, s] = floor if best <= floor else best  # noqa: FURB136 (a NaN stays)
                        top_arg = one if right else zero
                        below_arg = three if right_below else two
                        winner[a, m, r, s] = below_arg if lower else top_arg
                        saw_nan |= np.isnan(v0 + v1 + v2 + v3)
    else:
        for a in range(n):
            for b in range(c):
                m = first + b  # on y's axis 1 (see the NumPy twin)
                for r in range(ho):
                    for s in range(wo):
                        best, arg, total = x[a, b, r * sh, s * sw], 0, 0.0
                        for i in range(kh):
                            row = x[a, b, r * sh + i]
                            for j in range(kw):
                                v = row[s * sw + j]
                                total += v
                                if v > best:
                                    best, arg = v, i * kw + j
                        best = floor if best <= floor else best  # noqa: FURB136
                        y[a, m, r, s], winner[a, m, r, s] = best, arg
                        saw_nan = saw_nan or np.isnan(total)
    if not saw_nan:
        return
    for a in range(n):
        for b in range(c):
            m = first + b  # on y's axis 1 (see the NumPy twin)
            for r in range(ho):
                for s in range(wo):
                    found = False
                    for i in range(kh):
                        for j in range(kw):
                            v = x[a, b, r * sh + i, s * sw + j]
                            if np.isnan(v) and not found:
                                y[a, m, r, s], winner[a, m, r, s] = v, i * kw + j
                                found = True


def _max_pool_backward(dy, y, relu, winner, first, dx, kh, kw, sh, sw):
    """dx = dy sent to each window's winner (added up where windows overlap); if
    `relu`, dy times ReLU's mask first (where the pooled output y > 0). dy, y and
    winner are read from index `first` of their axis 1 on (see forward)."""
    dy, y = dy[:, first : first + dx.shape[1]], y[:, first : first + dx.shape[1]]
    winner = winner[:, first : first + dx.shape[1]]
    if relu:
        masked = np.empty_like(dy)
        _relu_backward(dy, y, masked, np.empty(dy.shape, np.bool_))
        dy = masked
    dx.fill(0)
    views = _offsets(dx, kh, kw, sh, sw, *dy.shape[2:])
    for t, view in enumerate(views):
        view += np.where(winner == t, dy, 0)


max_pool_backward = Kernel(_max_pool_backward)


@max_pool_backward.compiled
def _max_pool_backward_loops(dy, y, relu, winner, first, dx, kh, kw, sh, sw):
    # g = dy times ReLU's mask (1 where y > 0, else 0) if `relu`, else times 1, as
    # ReLU's backward: the same bits either way
    n, c = dx.shape[:2]
    ho, wo = dy.shape[2:]
    zero, one = dx.dtype.type(0), dx.dtype.type(1)
    tiled = sh == kh and sw == kw  # windows side by side: each input in one at most
    for a in range(n):
        for b in range(c):
            m = first + b  # on the axis 1 of dy, y, winner
            if tiled:  # zero only what floor mode leaves out of every window
                dx[a, b, ho * kh :, :] = zero
                dx[a, b, : ho * kh, wo * kw :] = zero
            else:
                dx[a, b] = zero
            if tiled and kh == 2 and kw == 2:
                # 2x2 windows: dx row by row, each value a select (g or 0), which the
                # compiler runs many at a time: 5x faster than window by window
                for r in range(ho):
                    for i in range(2):
                        for s in range(wo):
                            t, g = winner[a, m, r, s] - 2 * i, dy[a, m, r, s]
                            g = g * (one if not relu or y[a, m, r, s] > 0 else zero)
                            # 0 + g: a masked negative g, -0.0, is 0.0 as in NumPy's
                            g = zero + g
                            dx[a, b, 2 * r + i, 2 * s] = g if t == 0 else zero
                            dx[a, b, 2 * r + i, 2 * s + 1] = g if t == 1 else zero
                continue
            for r in range(ho):
                for s in range(wo):
                    t, g = winner[a, m, r, s], dy[a, m, r, s]
                    g = g * (one if not relu or y[a, m, r, s] > 0 else zero)
                    if tiled:  # the whole window: g at the winner, 0 elsewhere
                        g = zero + g  # as NumPy's 0 + g: a masked -0.0 is 0.0
                        for i in range(kh):
                            for j in range(kw):
                                value = g if i * kw + j == t else zero
                                dx[a, b, r * sh + i, s * sw + j] = value
                    else:
                        dx[a, b, r * sh + t // kw, s * sw + t % kw] += g


def _avg_pool_forward(x, y, scale, kh, kw, sh, sw):
    """y = the mean of each window: its sum, offset by offset, times scale (1/area)."""
    views = _offsets(x, kh, kw, sh, sw, *y.shape[2:])
    np.copyto(y, views[0])
    for view in views[1:]:
        y += view
    y *= scale


avg_pool_forward = Kernel(_avg_pool_forward)


@avg_pool_forward.compiled
def _avg_pool_forward_loops(x, y, scale, kh, kw, sh, sw):
    n, c, ho, wo = y.shape
    for a in range(n):
        for b in range(c):
            for r in range(ho):
                for s in range(wo):
                    total = x[a, b, r * sh, s * sw]
                    for i in range(kh):
                        for j in range(kw):
                            if i + j > 0:
                                total += x[a, b, r * sh + i, s * sw + j]
                    y[a, b, r, s] = total * scale


def _avg_pool_backward(dy, dx, scale, kh, kw, sh, sw):
    """dx = the sum of dy * scale over the windows each input is in."""
    share = dy * scale
    dx.fill(0)
    for view in _offsets(dx, kh, kw, sh, sw, *dy.shape[2:]):
        view += share


avg_pool_backward = Kernel(_avg_pool_backward)


@avg_pool_backward.compiled
def _avg_pool_backward_loops(dy, dx, scale, kh, kw, sh, sw):
    n, c, ho, wo = dy.shape
    dx[...] = 0
    for a in range(n):
        for b in range(c):
            for r in range(ho):
                for s in range(wo):
                    share = dy[a, b, r, s] * scale
                    for i in range(kh):
                        for j in range(kw):
                            dx[a, b, r * sh + i, s * sw + j] += share
