"""Convolution and pooling on batch-first images: (N, C, H, W).

Conv2D is im2col + matrix products. The columns are laid out (C*kh*kw, N, Ho*Wo), so
the forward product, the weight gradient and the input gradient are each one large
GEMM (what BLAS is fastest at); the only transposes are of the (N, O, ...) output and
gradient. When C*kh*kw < O (a first layer on 1-channel images) the products are
memory-bound and those transposes would dominate, so there it does one product per
example instead, straight into (N, O, ...) order.
"""

from __future__ import annotations

import numpy as np

from .errors import NnscratchError
from .layers import Layer, init_weights, register


def _pair(value, name: str, layer: str, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints -> (rows, cols), checked against `minimum`."""
    pair = [value, value] if np.isscalar(value) else list(value)
    if len(pair) != 2 or not all(_is_int(v) and v >= minimum for v in pair):
        raise NnscratchError(
            f"{layer}: {name} must be an int >= {minimum} or a pair of them, "
            f"got {value!r}"
        )
    return int(pair[0]), int(pair[1])


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _pair_config(pair: tuple[int, int]):
    """(3, 3) -> 3, (3, 2) -> [3, 2]: JSON the constructor accepts back."""
    return pair[0] if pair[0] == pair[1] else list(pair)


def _out_size(size: int, kernel: int, stride: int, pad: int) -> int:
    # floor mode, like PyTorch: a last window that does not fit is dropped
    return (size + 2 * pad - kernel) // stride + 1


def _window(offset: int, stride: int, count: int) -> slice:
    """The positions one kernel offset touches: offset, offset+stride, ... (count)."""
    return slice(offset, offset + stride * (count - 1) + 1, stride)


def _inside(offset: int, stride: int, pad: int, size: int, count: int):
    """Along one axis, for one kernel offset: (output slice, input slice) of the
    outputs whose input index r*stride + offset - pad lies in [0, size); None if none."""
    first = max(0, -((offset - pad) // stride))  # ceil((pad - offset) / stride)
    stop = min(count, (size - 1 + pad - offset) // stride + 1)
    if stop <= first:
        return None
    start = first * stride + offset - pad
    return slice(first, stop), slice(
        start, start + stride * (stop - first - 1) + 1, stride
    )


def _matrix_view(a: np.ndarray, shape: tuple) -> np.ndarray:
    """A reshaped *view* of `a`, so that writing to it with out= writes to `a`."""
    view = a.reshape(shape)
    if not np.shares_memory(view, a):
        raise NnscratchError(f"cannot view an array of shape {a.shape} as {shape}")
    return view


def _check_images(layer: Layer, x: np.ndarray, channels: int | None = None) -> None:
    if x.ndim != 4 or (channels is not None and x.shape[1] != channels):
        with_c = "" if channels is None else f" with C={channels}"
        raise NnscratchError(
            f"{type(layer).__name__}: expected (N, C, H, W){with_c}, got {x.shape}"
        )


@register
class Conv2D(Layer):
    """2-D convolution (cross-correlation, like every framework).

    Shapes: x (N, C, H, W) -> y (N, O, Ho, Wo) with Ho = (H + 2*ph - kh) // sh + 1;
    W (O, C, kh, kw), b (O,). `kernel_size`, `stride`, `padding` are an int or a
    (rows, cols) pair; padding is with zeros. `l1`, `l2` penalise W like Dense.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size,
        stride=1,
        padding=0,
        *,
        init: str = "he",
        l1: float = 0.0,
        l2: float = 0.0,
        rng=None,
        dtype=np.float32,
    ):
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("out_channels", out_channels),
        ):
            if not _is_int(value) or value < 1:
                raise NnscratchError(
                    f"Conv2D: {name} must be a positive int, got {value!r}"
                )
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _pair(kernel_size, "kernel_size", "Conv2D")
        self.stride = _pair(stride, "stride", "Conv2D")
        self.padding = _pair(padding, "padding", "Conv2D", minimum=0)
        self.init, self.l1, self.l2 = init, float(l1), float(l2)
        kh, kw = self.kernel_size
        fan_in = self.in_channels * kh * kw
        fan_out = self.out_channels * kh * kw
        shape = (self.out_channels, self.in_channels, kh, kw)
        rng = np.random.default_rng(rng)
        self.params = {
            "W": init_weights(shape, fan_in, fan_out, init, rng, dtype),
            "b": np.zeros(self.out_channels, dtype=dtype),
        }
        self._init_grads()

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        _check_images(self, x, self.in_channels)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        n, c, h, w = x.shape
        o, k = self.out_channels, c * kh * kw
        ho, wo = _out_size(h, kh, sh, ph), _out_size(w, kw, sw, pw)
        if ho < 1 or wo < 1:
            raise NnscratchError(
                f"Conv2D: input {h}x{w} with padding {ph}x{pw} is smaller than the "
                f"{kh}x{kw} kernel"
            )
        # cols[c, i, j, n, r, s] = x[n, c, r*sh + i - ph, s*sw + j - pw]: one strided
        # copy per kernel offset; what falls in the padding stays 0 from allocation
        cols = self._zeroed_buffer("cols", (c, kh, kw, n, ho, wo), x.dtype)
        for part, image_part, padding in self._pieces(cols, x):
            part[...] = image_part
            for zeros in padding:
                zeros[...] = 0
        self._cols = cols.reshape(k, n, ho * wo)
        self._x_shape = x.shape
        W, b = self.params["W"], self.params["b"]
        dtype = np.result_type(x, W)
        y = self._buffer("y", (n, o, ho, wo), dtype)
        if self._per_example:
            # y[n] = W @ cols[:, n]: written straight into (N, O, ...) order
            np.matmul(
                W.reshape(o, k), self._cols.transpose(1, 0, 2), out=y.reshape(n, o, -1)
            )
            y += b[:, None, None]
            return y
        y_on = self._buffer("y_on", (o, n * ho * wo), dtype)
        np.matmul(W.reshape(o, k), self._cols.reshape(k, -1), out=y_on)
        # (O, N, Ho, Wo) -> (N, O, Ho, Wo), adding the bias on the way
        y_on = y_on.reshape(o, n, ho, wo).transpose(1, 0, 2, 3)
        return np.add(y_on, b[:, None, None], out=y)

    @property
    def _per_example(self) -> bool:
        """N products of one example each instead of one big product: better when
        C*kh*kw < O (like a first layer on 1-channel images), where the product is
        memory-bound and the transposes of the (N, O, Ho, Wo) arrays would dominate."""
        return self.params["W"][0].size < self.out_channels

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        W, o = self.params["W"], self.out_channels
        n, c = self._x_shape[:2]
        ho, wo = dy.shape[2:]
        k, cols = self._cols.shape[0], self._cols
        W2, grad_W = W.reshape(o, k), _matrix_view(self.grads["W"], (o, k))
        # dW = sum over examples and pixels of dy cols^T; db = sum of dy
        if self._per_example:
            dy = dy.reshape(n, o, ho * wo)
            per_example = self._buffer("dW_n", (n, o, k), np.result_type(dy, cols))
            np.matmul(dy, cols.transpose(1, 2, 0), out=per_example)
            np.sum(per_example, axis=0, out=grad_W)
            np.sum(dy.sum(axis=2), axis=0, out=self.grads["b"])
        else:
            dy_on = self._buffer("dy_on", (o, n, ho * wo), dy.dtype)
            np.copyto(dy_on, dy.reshape(n, o, -1).transpose(1, 0, 2))
            dy_on = dy_on.reshape(o, -1)
            np.matmul(dy_on, cols.reshape(k, -1).T, out=grad_W)
            np.sum(dy_on, axis=1, out=self.grads["b"])
        if self.l2:
            self.grads["W"] += (2 * self.l2) * W  # d(l2 * sum W^2)/dW
        if self.l1:
            self.grads["W"] += self.l1 * np.sign(W)
        if not self.needs_input_grad:
            return None
        dtype = np.result_type(dy, W)
        (kh, kw) = self.kernel_size
        dcols = self._buffer("dcols", (c, kh, kw, n, ho, wo), dtype)
        if self._per_example:
            out = dcols.reshape(k, n, -1).transpose(1, 0, 2)
            np.matmul(np.ascontiguousarray(W2.T), dy, out=out)
        else:
            np.matmul(W2.T, dy_on, out=dcols.reshape(k, -1))
        # col2im: each kernel offset adds its part back where forward read it from
        dx = self._buffer("dx", self._x_shape, dtype)
        pieces = list(self._pieces(dcols, dx))
        for _, _, padding in pieces:
            for zeros in padding:
                zeros[...] = 0  # gradient of the padding goes nowhere
        # an offset that covers every input pixel (the centre of a "same" conv)
        # writes first, which saves zeroing dx
        full = [
            i for i, (_, dx_part, _) in enumerate(pieces) if dx_part.size == dx.size
        ]
        if full:
            part, dx_part, _ = pieces.pop(full[0])
            np.copyto(dx_part, part)
        else:
            dx.fill(0)
        for part, dx_part, _ in pieces:
            dx_part += part
        return dx

    def _pieces(self, cols: np.ndarray, images: np.ndarray):
        """For each kernel offset (i, j): (the part of cols it fills, the part of the
        images that goes there, parts of cols that must read padding zeros instead).

        Shapes: cols (C, kh, kw, N, Ho, Wo), images (N, C, H, W); all parts are views.
        """
        c, kh, kw, n, ho, wo = cols.shape
        h, w = images.shape[2:]
        (sh, sw), (ph, pw) = self.stride, self.padding
        images = images.transpose(1, 0, 2, 3)
        if self.stride == (1, 1) and wo == w:
            # stride 1, "same" width: an offset is one shift of the flattened images,
            # copied in long runs instead of row by row (NumPy is slow on short rows);
            # the columns whose flat shift wrapped into the next row are padding
            flat = images.reshape(c, n, h * w)
            for i in range(kh):
                for j in range(kw):
                    shift = (i - ph) * w + (j - pw)
                    lo, hi = max(0, -shift), min(ho * w, h * w - shift)
                    if hi > lo:
                        part = cols[:, i, j].reshape(c, n, ho * w)[:, :, lo:hi]
                        wrapped = cols[:, i, j, :, :, : max(0, pw - j)]
                        wrapped_end = cols[:, i, j, :, :, max(0, w + pw - j) :]
                        yield (
                            part,
                            flat[:, :, lo + shift : hi + shift],
                            [wrapped, wrapped_end],
                        )
            return
        for i in range(kh):
            for j in range(kw):
                rows, columns = _inside(i, sh, ph, h, ho), _inside(j, sw, pw, w, wo)
                if rows is not None and columns is not None:
                    part = cols[:, i, j, :, rows[0], columns[0]]
                    yield part, images[:, :, rows[1], columns[1]], []

    def _zeroed_buffer(self, key: str, shape: tuple, dtype) -> np.ndarray:
        """Like _buffer, but zero-filled whenever it is (re)allocated."""
        old = self._buffers.get(key)
        buf = self._buffer(key, shape, dtype)
        if buf is not old:
            buf.fill(0)
        return buf

    def penalty(self) -> float:
        W = self.params["W"]
        total = 0.0
        if self.l2:
            total += self.l2 * float(np.vdot(W, W))
        if self.l1:
            total += self.l1 * float(np.abs(W).sum())
        return total

    def get_config(self) -> dict:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": _pair_config(self.kernel_size),
            "stride": _pair_config(self.stride),
            "padding": _pair_config(self.padding),
            "init": self.init,
            "l1": self.l1,
            "l2": self.l2,
        }


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
    """Shared geometry of the pooling layers; `stride` defaults to `pool_size`.

    Pooling is separable: reduce each row's windows (axis 3), then across rows (axis
    2). A window offset along axis 2 is a view made of whole rows, which ufuncs run
    through fast; along axis 3 it is a stride-2 (say) view, where NumPy's ufuncs are
    several times slower than a plain copy, so those parts are first copied out.
    """

    def __init__(self, pool_size=2, stride=None):
        super().__init__()
        name = type(self).__name__
        self.pool_size = _pair(pool_size, "pool_size", name)
        self.stride = (
            self.pool_size if stride is None else _pair(stride, "stride", name)
        )

    def _geometry(self, x: np.ndarray) -> tuple[int, int]:
        _check_images(self, x)
        (kh, kw), (sh, sw) = self.pool_size, self.stride
        h, w = x.shape[2:]
        if h < kh or w < kw:
            raise NnscratchError(
                f"{type(self).__name__}: input {h}x{w} is smaller than the {kh}x{kw} "
                "pool"
            )
        return _out_size(h, kh, sh, 0), _out_size(w, kw, sw, 0)

    def _parts(self, a: np.ndarray, axis: int, count: int) -> list[np.ndarray]:
        """The k window offsets of `a` along `axis`; contiguous copies if strided."""
        k, s = self.pool_size[axis - 2], self.stride[axis - 2]
        views = [_along(a, axis, _window(t, s, count)) for t in range(k)]
        if axis == 2 or s == 1:
            return views
        parts = []
        for t, view in enumerate(views):
            parts.append(self._buffer(f"part{t}", view.shape, a.dtype))
            np.copyto(parts[-1], view)
        return parts

    def _tiled(self, axis: int, size: int, count: int) -> bool:
        """True if the windows along `axis` cover it exactly once (no overlap, no rest)."""
        k, s = self.pool_size[axis - 2], self.stride[axis - 2]
        return s == k and k * count == size

    def get_config(self) -> dict:
        return {
            "pool_size": _pair_config(self.pool_size),
            "stride": _pair_config(self.stride),
        }


@register
class MaxPool2D(_Pool2D):
    """Maximum over each pool_size window: (N, C, H, W) -> (N, C, Ho, Wo).

    Ho = (H - kh) // sh + 1 (floor mode: trailing rows that fill no window are
    dropped). The gradient goes to one maximum per window: the first in row-major
    order when several tie, like PyTorch (rows are reduced first for this).
    """

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        ho, wo = self._geometry(x)
        n, c, h, _ = x.shape
        self._x_shape = x.shape
        # backward finds each window's maximum again by comparing with the results
        self._x_parts = self._parts(x, 3, wo)
        self._rows = self._buffer("rows", (n, c, h, wo), x.dtype)
        _reduce(self._x_parts, self._rows, np.maximum)
        self._rows_parts = self._parts(self._rows, 2, ho)
        self._y = self._buffer("y", (n, c, ho, wo), x.dtype)
        return _reduce(self._rows_parts, self._y, np.maximum)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        d_rows = self._buffer("d_rows", self._rows.shape, dy.dtype)
        self._route(self._rows_parts, self._y, dy, d_rows, 2)
        dx = self._buffer("dx", self._x_shape, dy.dtype)
        self._route(self._x_parts, self._rows, d_rows, dx, 3)
        return dx

    def _route(self, parts, m, dm, da, axis) -> None:
        """Send dm, the gradient of m = max(parts), to the first part equal to m,
        into da (the gradient of the array the parts came from).

        Offset by offset, the share of the remaining gradient whose maximum sits at
        this offset is taken and the rest moves on: each window's gradient lands once.
        """
        k, count = len(parts), m.shape[axis]
        tiled = self._tiled(axis, da.shape[axis], count)
        targets = [
            _along(da, axis, _window(t, self.stride[axis - 2], count)) for t in range(k)
        ]
        direct = tiled and axis == 2  # targets made of whole rows: write them directly
        if not tiled:
            da.fill(0)  # windows overlap or miss trailing rows: accumulate
        hit = self._buffer(f"hit{axis}", m.shape, np.bool_)
        share_buf = self._buffer(f"share{axis}", m.shape, dm.dtype)
        rest_buf = self._buffer(f"rest{axis}", m.shape, dm.dtype)
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
            if direct and k > 1:
                pass  # written in place by the multiply or the subtract
            elif tiled:
                np.copyto(targets[t], share)
            else:
                targets[t] += share
            if not last:
                # exact: each window's share is either 0 or all that remained
                into_last = direct and t == k - 2
                out = targets[-1] if into_last else rest_buf
                remaining = np.subtract(remaining, share, out=out)


@register
class AvgPool2D(_Pool2D):
    """Mean over each pool_size window: (N, C, H, W) -> (N, C, Ho, Wo), floor mode."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        ho, wo = self._geometry(x)
        kh, kw = self.pool_size
        n, c, h, _ = x.shape
        rows = _reduce(
            self._parts(x, 3, wo), self._buffer("rows", (n, c, h, wo), x.dtype), np.add
        )
        y = _reduce(
            self._parts(rows, 2, ho), self._buffer("y", (n, c, ho, wo), x.dtype), np.add
        )
        y *= 1.0 / (kh * kw)
        self._x_shape = x.shape
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        (kh, kw), (sh, sw) = self.pool_size, self.stride
        n, c, h, w = self._x_shape
        ho, wo = dy.shape[2:]
        dx = self._buffer("dx", self._x_shape, dy.dtype)
        scale = 1.0 / (kh * kw)
        if self._tiled(2, h, ho) and self._tiled(3, w, wo):
            # every input sits in exactly one window: one broadcast write
            blocks = dx.reshape(n, c, ho, kh, wo, kw)
            np.multiply(dy[:, :, :, None, :, None], scale, out=blocks)
            return dx
        dx.fill(0)
        share = np.multiply(dy, scale, out=self._buffer("share", dy.shape, dy.dtype))
        for i in range(kh):
            for j in range(kw):
                dx[:, :, _window(i, sh, ho), _window(j, sw, wo)] += share
        return dx


@register
class GlobalAvgPool2D(Layer):
    """Mean over all pixels of each channel: (N, C, H, W) -> (N, C)."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        _check_images(self, x)
        self._x_shape = x.shape
        n, c = x.shape[:2]
        return np.mean(
            x.reshape(n, c, -1), axis=2, out=self._buffer("y", (n, c), x.dtype)
        )

    def backward(self, dy: np.ndarray) -> np.ndarray:
        h, w = self._x_shape[2:]
        dx = self._buffer("dx", self._x_shape, dy.dtype)
        np.multiply(dy[:, :, None, None], 1.0 / (h * w), out=dx)
        return dx
