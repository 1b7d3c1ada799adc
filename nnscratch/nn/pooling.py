"""Pooling on batch-first images (N, C, H, W): max, average and global average.

Pooling is separable: each row's windows are reduced first (axis 3), then across rows
(axis 2). A window offset along axis 2 is a view made of whole rows, which ufuncs run
through fast; along axis 3 it is a strided view, where NumPy's ufuncs are several
times slower than a plain copy, so those parts are first copied out.
"""

from __future__ import annotations

import numpy as np

from ..errors import NnscratchError
from .layer import Layer
from .registry import LAYERS
from .spatial import check_images, out_size, pair, pair_config


def _window(offset: int, stride: int, count: int) -> slice:
    """The positions one window offset touches: offset, offset+stride, ... (count)."""
    return slice(offset, offset + stride * (count - 1) + 1, stride)


def _along(a: np.ndarray, axis: int, window: slice) -> np.ndarray:
    """a[:, :, window] (axis 2) or a[:, :, :, window] (axis 3)."""
    return a[(slice(None),) * axis + (window,)]


def _reduce(parts: list, out: np.ndarray, ufunc) -> np.ndarray:
    """out = ufunc(parts[0], parts[1], ...), pairwise into out."""
    if len(parts) == 1:
        np.copyto(out, parts[0])
        return out
    ufunc(parts[0], parts[1], out=out)
    for part in parts[2:]:
        ufunc(out, part, out=out)
    return out


class _Pool2D(Layer):
    """Shared geometry of the pooling layers; `stride` defaults to `pool_size`."""

    def __init__(self, pool_size=2, stride=None):
        super().__init__()
        name = type(self).__name__
        self.pool_size = pair(pool_size, "pool_size", name)
        self.stride = self.pool_size if stride is None else pair(stride, "stride", name)

    def _geometry(self, x: np.ndarray) -> tuple[int, int]:
        check_images(self, x)
        (kh, kw), (sh, sw) = self.pool_size, self.stride
        h, w = x.shape[2:]
        if h < kh or w < kw:
            raise NnscratchError(
                f"{type(self).__name__}: input {h}x{w} is smaller than the {kh}x{kw} "
                "pool"
            )
        return out_size(h, kh, sh, 0), out_size(w, kw, sw, 0)

    def _pool(self, x: np.ndarray, ufunc) -> tuple:
        """Reduce each window of x with `ufunc` (np.maximum, np.add), separably: along
        the rows into `rows` (N, C, H, Wo), then across them into y (N, C, Ho, Wo).

        Returns (x's window parts, rows, rows' window parts, y), all workspace arrays.
        """
        ho, wo = self._geometry(x)
        n, c, h, _ = x.shape
        x_parts = self._parts(x, 3, wo)
        rows = self.workspace.array("rows", (n, c, h, wo), x.dtype)
        _reduce(x_parts, rows, ufunc)
        rows_parts = self._parts(rows, 2, ho)
        y = self.workspace.array("y", (n, c, ho, wo), x.dtype)
        _reduce(rows_parts, y, ufunc)
        return x_parts, rows, rows_parts, y

    def _parts(self, a: np.ndarray, axis: int, count: int) -> list[np.ndarray]:
        """The k window offsets of `a` along `axis`; contiguous copies if strided."""
        k, s = self.pool_size[axis - 2], self.stride[axis - 2]
        views = [_along(a, axis, _window(t, s, count)) for t in range(k)]
        if axis == 2 or s == 1:
            return views
        parts = []
        for t, view in enumerate(views):
            parts.append(self.workspace.like(f"part{t}", view))
            np.copyto(parts[-1], view)
        return parts

    def _tiled(self, axis: int, size: int, count: int) -> bool:
        """True if the windows along `axis` cover it exactly once (no overlap, no rest)."""
        k, s = self.pool_size[axis - 2], self.stride[axis - 2]
        return s == k and k * count == size

    def get_config(self) -> dict:
        return {
            "pool_size": pair_config(self.pool_size),
            "stride": pair_config(self.stride),
        }


@LAYERS.register
class MaxPool2D(_Pool2D):
    """Maximum over each pool_size window: (N, C, H, W) -> (N, C, Ho, Wo).

    Ho = (H - kh) // sh + 1 (floor mode: trailing rows that fill no window are
    dropped). The gradient goes to one maximum per window: the first in row-major
    order when several tie, like PyTorch (rows are reduced first for this).
    """

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # backward finds each window's maximum again by comparing with the results
        self._x_parts, self._rows, self._rows_parts, self._y = self._pool(x, np.maximum)
        self._x_shape = x.shape
        return self._y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        d_rows = self.workspace.like("d_rows", self._rows, dy.dtype)
        self._route(self._rows_parts, self._y, dy, d_rows, 2)
        dx = self.workspace.array("dx", self._x_shape, dy.dtype)
        self._route(self._x_parts, self._rows, d_rows, dx, 3)
        return dx

    def _route(self, parts, m, dm, da, axis) -> None:
        """Send dm, the gradient of m = max(parts), to the first part equal to m,
        into da (the gradient of the array the parts came from).

        Offset by offset, the share of the remaining gradient whose maximum sits at
        this offset is taken and the rest moves on: each window's gradient lands once.
        """
        k, count = len(parts), m.shape[axis]
        stride = self.stride[axis - 2]
        targets = [_along(da, axis, _window(t, stride, count)) for t in range(k)]
        # windows side by side (stride = pool size): each offset's share is written
        # straight into its part of da (strided along axis 3; still faster than a
        # buffer and a strided copy), and only what lies past the last window (floor
        # mode leaves it out, e.g. the 7th row of 7 pooled by 2) is zeroed
        direct = stride == k
        if direct:
            _along(da, axis, slice(k * count, None)).fill(0)
        else:
            da.fill(0)  # windows overlap or leave gaps: accumulate
        hit = self.workspace.like(f"hit{axis}", m, np.bool_)
        share_buf = self.workspace.like(f"share{axis}", m, dm.dtype)
        rest_buf = self.workspace.like(f"rest{axis}", m, dm.dtype)
        remaining = dm
        for t in range(k):
            last = t == k - 1
            if last:
                share = remaining
            else:
                np.equal(parts[t], m, out=hit)
                share = np.multiply(
                    remaining, hit, out=targets[t] if direct else share_buf
                )
            written = direct and k > 1  # by the multiply, or the last by the subtract
            if direct and not written:
                np.copyto(targets[t], share)
            elif not direct:
                targets[t] += share
            if not last:
                # exact: each window's share is either 0 or all that remained
                into_last = direct and t == k - 2
                out = targets[-1] if into_last else rest_buf
                remaining = np.subtract(remaining, share, out=out)


@LAYERS.register
class AvgPool2D(_Pool2D):
    """Mean over each pool_size window: (N, C, H, W) -> (N, C, Ho, Wo), floor mode."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        *_, y = self._pool(x, np.add)  # the sum of each window
        y *= 1.0 / (self.pool_size[0] * self.pool_size[1])
        self._x_shape = x.shape
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        (kh, kw), (sh, sw) = self.pool_size, self.stride
        n, c, h, w = self._x_shape
        ho, wo = dy.shape[2:]
        dx = self.workspace.array("dx", self._x_shape, dy.dtype)
        scale = 1.0 / (kh * kw)
        if self._tiled(2, h, ho) and self._tiled(3, w, wo):
            # every input sits in exactly one window: one broadcast write
            blocks = dx.reshape(n, c, ho, kh, wo, kw)
            np.multiply(dy[:, :, :, None, :, None], scale, out=blocks)
            return dx
        dx.fill(0)
        share = np.multiply(dy, scale, out=self.workspace.like("share", dy))
        for i in range(kh):
            for j in range(kw):
                dx[:, :, _window(i, sh, ho), _window(j, sw, wo)] += share
        return dx


@LAYERS.register
class GlobalAvgPool2D(Layer):
    """Mean over all pixels of each channel: (N, C, H, W) -> (N, C)."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        check_images(self, x)
        self._x_shape = x.shape
        n, c = x.shape[:2]
        return np.mean(
            x.reshape(n, c, -1), axis=2, out=self.workspace.array("y", (n, c), x.dtype)
        )

    def backward(self, dy: np.ndarray) -> np.ndarray:
        h, w = self._x_shape[2:]
        dx = self.workspace.array("dx", self._x_shape, dy.dtype)
        np.multiply(dy[:, :, None, None], 1.0 / (h * w), out=dx)
        return dx
