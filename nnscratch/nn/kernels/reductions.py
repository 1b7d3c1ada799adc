"""Speed tricks for reductions and loops NumPy runs slowly: each states its figure once,
here, and the layers just call it. Results are NumPy's own up to rounding (sums by
BLAS add in another order).

The vectors of ones and the zeros they use are read-only constants shared by every
caller (`ones`, `zeros`): the front of one array per dtype, grown to the longest asked.
"""

from __future__ import annotations

import numpy as np

from ..workspace import Workspace

_CONSTANTS = Workspace()


def ones(length: int, dtype) -> np.ndarray:
    """`length` ones of `dtype`, read-only (for sums as products, below)."""
    return _constant("ones", (length,), dtype, 1)


def zeros(shape: tuple, dtype) -> np.ndarray:
    """Zeros of `shape` and `dtype`, read-only (for `relu`)."""
    return _constant("zeros", shape, dtype, 0)


_VIEWS: dict = {}  # (name, shape, dtype) -> (read-only view handed out, its array)


def _constant(name: str, shape: tuple, dtype, value) -> np.ndarray:
    key = (name, shape, dtype)
    view, behind = _VIEWS.get(key, (None, None))
    # a view stays valid while its array does (one grows by being made anew)
    if view is None or _CONSTANTS._arrays.get((name, view.dtype)) is not behind:
        dtype = np.dtype(dtype)
        view = _CONSTANTS.front((name, dtype), shape, dtype, fill=value)
        view.flags.writeable = False
        _VIEWS[key] = view, _CONSTANTS._arrays[(name, dtype)]
    return view


def row_max(a: np.ndarray) -> np.ndarray:
    """The maximum of each row: (N, C) -> (N,), as a.max(axis=1).

    NumPy reduces along a short row (C = 10 classes) with one small loop per row; the
    same maxima taken down the columns of the transposed copy (C, N) are C - 1
    element-wise maxima of whole rows: ~5x faster at 128 rows, ~12x at 1024.
    """
    return np.ascontiguousarray(a.T).max(axis=0)


# Sums as matrix products with a vector of ones, which BLAS runs faster than NumPy's
# reductions: measured 2x for the sum over a batch of Dense gradients (against
# np.add.reduce(dy, axis=0)), ~3x for per-channel sums of images (against a sum over
# axes (0, 2, 3)), ~3-5x for the short rows of softmax (against a.sum(axis=1)).


def row_sum(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The sum of each row: (N, C) -> (N,), as a @ ones (see above)."""
    return np.matmul(a, ones(a.shape[1], a.dtype), out=out)


def column_sum(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The sum of each column: (N, C) -> (C,), as ones @ a (see above)."""
    return np.matmul(ones(a.shape[0], a.dtype), a, out=out)


def channel_sum(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """The sum over every axis but 1: (N, F) -> (F,) or (N, C, H, W) -> (C,).

    Images are summed as rows, one per image and channel (see above), then over N.
    """
    if a.ndim == 2:
        return column_sum(a, out=out)
    n, c = a.shape[:2]
    per_image = row_sum(a.reshape(n * c, -1))
    return np.sum(per_image.reshape(n, c), axis=0, out=out)


def channel_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The sum of a * b over every axis but 1, like `channel_sum`, without the
    full-size temporary a * b."""
    if a.ndim == 2:
        return np.einsum("nf,nf->f", a, b)
    n, c = a.shape[:2]
    per_image = np.einsum("ij,ij->i", a.reshape(n * c, -1), b.reshape(n * c, -1))
    return per_image.reshape(n, c).sum(axis=0)


def relu(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """max(x, 0), element-wise.

    Against an array of zeros rather than a scalar 0: measured 2x faster on an MLP's
    (128, 800) activations (slower on large conv feature maps, though).
    """
    return np.maximum(x, zeros(x.shape, x.dtype), out=out)
