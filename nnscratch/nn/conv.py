"""Convolution on batch-first images: (N, C, H, W); pooling is in `pooling.py`.

Conv2D is im2col + matrix products. The columns are built one chunk of images at a
time (about CHUNK_BYTES, so they are still in cache when used), laid out (C*kh*kw, n,
Ho*Wo) per chunk, so the forward product, the weight gradient and the input gradient
are each one GEMM per chunk (what BLAS is fastest at); the only transposes are of the
(N, O, ...) output and gradient. When C*kh*kw < O (a first layer on 1-channel images) the products are
memory-bound and those transposes would dominate, so there it does one product per
example instead, straight into (N, O, ...) order.

The columns hold C*kh*kw values per output pixel, so their size grows with the batch:
a batch whose workspace would pass MAX_WORKSPACE_BYTES (full-batch training of a CNN)
is refused with an error instead of exhausting memory.
"""

from __future__ import annotations

import numpy as np

from ..errors import NnscratchError, check_int
from .layer import Layer, WeightPenalty, init_weights
from .registry import LAYERS
from .spatial import check_images, out_size, pair, pair_config

MAX_WORKSPACE_BYTES = 2 * 10**9  # per Conv2D call: im2col columns and outputs
CHUNK_BYTES = 4 * 2**20  # im2col columns of the images processed together (cache-sized)


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


def _zero_padding_reads(part: np.ndarray, di: int, dj: int) -> None:
    """Zero part (..., H, W) of one kernel offset (di, dj) from the centre where the
    pixel it read, (r + di, s + dj), lies in the padding. Its gradient goes nowhere;
    in a flat shift of whole images it would land in a neighbouring row or image."""
    h, w = part.shape[-2:]
    if di < 0:
        part[..., :-di, :] = 0
    elif di > 0:
        part[..., max(0, h - di) :, :] = 0
    if dj < 0:
        part[..., :-dj] = 0
    elif dj > 0:
        part[..., max(0, w - dj) :] = 0


def _check_workspace(
    x_shape: tuple, k: int, o: int, pixels: int, itemsize: int, training: bool
) -> None:
    """Refuse a batch whose workspace would pass MAX_WORKSPACE_BYTES, before
    allocating it: forward needs the (k, N, pixels) columns and the (N, o, pixels)
    output; training needs their gradients too, as much again."""
    n = x_shape[0]
    needed = (k + o) * n * pixels * itemsize * (2 if training else 1)
    if needed > MAX_WORKSPACE_BYTES:
        raise NnscratchError(
            f"Conv2D: a batch of {n:,} images of shape {x_shape[1:]} needs "
            f"{needed / 1e9:.1f} GB of workspace (limit {MAX_WORKSPACE_BYTES / 1e9:g} "
            f"GB); use a smaller batch size, e.g. 128"
        )


@LAYERS.register
class Conv2D(WeightPenalty, Layer):
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
        self.in_channels = check_int("Conv2D in_channels", in_channels)
        self.out_channels = check_int("Conv2D out_channels", out_channels)
        self.kernel_size = pair(kernel_size, "kernel_size", "Conv2D")
        self.stride = pair(stride, "stride", "Conv2D")
        self.padding = pair(padding, "padding", "Conv2D", minimum=0)
        self.init = init
        self._set_penalties(l1, l2)
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
        self._cols_for = None  # the input shape the columns buffer is laid out for

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        check_images(self, x, self.in_channels)
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        n, c, h, w = x.shape
        o, k = self.out_channels, c * kh * kw
        ho, wo = self._out_hw(h, w)
        if ho < 1 or wo < 1:
            raise NnscratchError(
                f"Conv2D: input {h}x{w} with padding {ph}x{pw} is smaller than the "
                f"{kh}x{kw} kernel"
            )
        dtype = np.result_type(x, self.params["W"])
        _check_workspace(x.shape, k, o, ho * wo, dtype.itemsize, training)
        self._x_shape = x.shape
        y = self._buffer("y", (n, o, ho, wo), dtype)
        # cols[c, i, j, n, r, s] = x[n, c, r*sh + i - ph, s*sw + j - pw], built and
        # multiplied one chunk of images at a time (see `_chunks`); what falls in the
        # padding stays 0 from allocation. The per-example products (one chunk) get
        # a row of ones after the columns, which multiplies the bias (see `_multiply`)
        ones_row = n * ho * wo if self._per_example else 0
        if self._x_shape != self._cols_for:
            # another input shape puts the padding elsewhere in the same-sized buffer,
            # where the last shape's image values would be read: start from zeros
            self._buffers.pop("cols", None)
            self._cols_for = self._x_shape
        flat = self._filled_buffer("cols", (k * n * ho * wo + ones_row,), x.dtype, 0)
        if ones_row:
            flat[-ones_row:] = 1
        self._cols_flat = flat
        # kept for backward, which must read the columns in the same blocks
        self._chunk_bounds = self._chunks(n, k, ho * wo, x.dtype.itemsize)
        for start, stop in self._chunk_bounds:
            cols = self._cols_block(start, stop)
            for part, image_part, padding in self._pieces(cols, x[start:stop]):
                part[...] = image_part
                for zeros in padding:
                    zeros[...] = 0
            self._multiply(cols.reshape(k, stop - start, ho * wo), y[start:stop])
        return y

    def _multiply(self, cols: np.ndarray, y: np.ndarray) -> None:
        """y (n, O, Ho, Wo) = W @ cols (K, n, Ho*Wo) + b, for one chunk of images."""
        W, b, o = self.params["W"], self.params["b"], self.out_channels
        k, n, pixels = cols.shape
        if self._per_example:
            # y[n] = [W b] @ [cols[:, n]; ones]: written straight into (N, O, ...)
            # order, bias included (adding it in a pass over y took longer than the
            # product). The row of ones follows the columns in memory (forward).
            Wb = self._buffer("Wb", (o, k + 1), W.dtype)
            Wb[:, :k], Wb[:, k] = W.reshape(o, k), b
            with_ones = self._cols_flat[: (k + 1) * n * pixels].reshape(
                k + 1, n, pixels
            )
            np.matmul(Wb, with_ones.transpose(1, 0, 2), out=y.reshape(n, o, -1))
            return
        y_on = self._chunk_buffer("y_on", (o, n * pixels), y.dtype)
        np.matmul(W.reshape(o, k), cols.reshape(k, -1), out=y_on)
        # (O, n, Ho, Wo) -> (n, O, Ho, Wo), adding the bias on the way
        y_on = y_on.reshape(o, n, *y.shape[2:]).transpose(1, 0, 2, 3)
        np.add(y_on, b[:, None, None], out=y)

    def _chunks(self, n: int, k: int, pixels: int, itemsize: int):
        """(start, stop) ranges of images processed together. A chunk's columns fit
        in about CHUNK_BYTES, so they are still in the processor's cache when the
        product reads them (forward) or col2im adds them up (backward): a whole
        batch's columns (29 MB for conv 32->64 on 14x14 at batch 128) would come
        back from main memory. The per-example product takes the batch at once."""
        per_image = k * pixels * itemsize
        size = n if self._per_example else max(1, CHUNK_BYTES // per_image)
        count = -(-n // size)  # ceil
        size = -(-n // count)  # equal chunks rather than a small last one
        return [(a, min(a + size, n)) for a in range(0, n, size)]

    def _chunk_buffer(self, key: str, shape: tuple, dtype) -> np.ndarray:
        """A workspace for one chunk: the front of a buffer kept as large as the
        largest chunk, so a smaller last chunk does not reallocate it every step."""
        size = int(np.prod(shape))
        buf = self._buffers.get(key)
        if buf is None or buf.size < size or buf.dtype != dtype:
            buf = self._buffers[key] = np.empty(size, dtype=dtype)
        return buf[:size].reshape(shape)

    def _cols_block(self, start: int, stop: int) -> np.ndarray:
        """Images start:stop's columns, (C, kh, kw, stop - start, Ho, Wo): contiguous."""
        (kh, kw), (_, c, h, w) = self.kernel_size, self._x_shape
        ho, wo = self._out_hw(h, w)
        per_image = c * kh * kw * ho * wo
        block = self._cols_flat[start * per_image : stop * per_image]
        return block.reshape(c, kh, kw, stop - start, ho, wo)

    def _out_hw(self, h: int, w: int) -> tuple[int, int]:
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)

    @property
    def _per_example(self) -> bool:
        """N products of one example each instead of one big product: better when
        C*kh*kw < O (like a first layer on 1-channel images), where the product is
        memory-bound and the transposes of the (N, O, Ho, Wo) arrays would dominate."""
        return self.params["W"][0].size < self.out_channels

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        dtype = np.result_type(dy, self.params["W"])
        dx = self._buffer("dx", self._x_shape, dtype) if self.needs_input_grad else None
        # forward's chunks: the columns are laid out in its blocks (a dy of another
        # dtype than x would give other chunk sizes, and read the wrong columns)
        for index, (start, stop) in enumerate(self._chunk_bounds):
            cols = self._cols_block(start, stop)
            dcols = self._backward_chunk(dy[start:stop], cols, accumulate=index > 0)
            if dx is not None:
                self._col2im(dcols, dx[start:stop])
        self._add_penalty_grad()
        return dx

    def _backward_chunk(self, dy, cols, accumulate: bool) -> np.ndarray | None:
        """For one chunk: add its share to grads W and b (or set them, for the first
        chunk); return dcols (C, kh, kw, n, Ho, Wo) if the input gradient is needed.

        dW = sum over images and pixels of dy cols^T; db = sum of dy; dcols = W^T dy.
        """
        W, o = self.params["W"], self.out_channels
        n, _, ho, wo = dy.shape
        k = cols.shape[0] * cols.shape[1] * cols.shape[2]
        cols = cols.reshape(k, n, ho * wo)
        dtype = np.result_type(dy, cols)
        grad_W = _matrix_view(self.grads["W"], (o, k))
        dW = self._buffer("dW", (o, k), dtype) if accumulate else grad_W
        db = self._buffer("db", (o,), dtype) if accumulate else self.grads["b"]
        if self._per_example:
            dy = dy.reshape(n, o, ho * wo)
            per_example = self._buffer("dW_n", (n, o, k), dtype)
            np.matmul(dy, cols.transpose(1, 2, 0), out=per_example)
            np.sum(per_example, axis=0, out=dW)
            # db: rows of dy summed as products with ones (BLAS; ~3x faster than
            # NumPy's sum along an axis), here per image and channel, then over images
            sums = dy.reshape(n * o, -1) @ self._ones(ho * wo, dy.dtype)
            np.sum(sums.reshape(n, o), axis=0, out=db)
        else:
            dy_on = self._chunk_buffer("dy_on", (o, n, ho * wo), dy.dtype)
            np.copyto(dy_on, dy.reshape(n, o, -1).transpose(1, 0, 2))
            dy = dy_on.reshape(o, -1)
            np.matmul(dy, cols.reshape(k, -1).T, out=dW)
            np.matmul(dy, self._ones(dy.shape[1], dy.dtype), out=db)
        if accumulate:
            grad_W += dW
            self.grads["b"] += db
        if not self.needs_input_grad:
            return None
        dcols = self._chunk_buffer("dcols", cols.shape, np.result_type(dy, W))
        W2 = W.reshape(o, k)
        if self._per_example:
            out = dcols.transpose(1, 0, 2)
            np.matmul(np.ascontiguousarray(W2.T), dy, out=out)
        else:
            np.matmul(W2.T, dy, out=dcols.reshape(k, -1))
        (kh, kw), c = self.kernel_size, k // (self.kernel_size[0] * self.kernel_size[1])
        return dcols.reshape(c, kh, kw, n, ho, wo)

    def _col2im(self, dcols: np.ndarray, dx: np.ndarray) -> None:
        """dx (n, C, H, W) = the sum of each kernel offset's part of dcols put back
        where forward read it from (the gradient of the padding goes nowhere)."""
        if self.stride == (1, 1) and dcols.shape[4:] == dx.shape[2:]:
            self._col2im_same(dcols, dx)
            return
        pieces = list(self._pieces(dcols, dx))
        for _, _, padding in pieces:
            for zeros in padding:
                zeros[...] = 0
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

    def _col2im_same(self, dcols: np.ndarray, dx: np.ndarray) -> None:
        """col2im of a stride-1 conv whose output is the input's size ("same").

        Summed in channel-major order, (C, n*H*W), each kernel offset is one shift of
        the whole chunk: its add is C long runs instead of C*n runs of one image
        channel each, which made col2im 2.5x slower. One transpose then puts the sum
        into dx's (n, C, H, W) order. Shapes: dcols (C, kh, kw, n, H, W), dx (n, C, H, W).
        """
        c, kh, kw, n, h, w = dcols.shape
        ph, pw = self.padding
        size = n * h * w
        total = self._chunk_buffer("dx_channels", (c, size), dx.dtype)
        # the centre offset reads every pixel, none of the padding: it starts the sum
        np.copyto(total, dcols[:, ph, pw].reshape(c, size))
        for i in range(kh):
            for j in range(kw):
                if (i, j) == (ph, pw):
                    continue
                part = dcols[:, i, j]
                _zero_padding_reads(part, i - ph, j - pw)
                shift = (i - ph) * w + (j - pw)
                lo = min(size, max(0, -shift))
                hi = max(lo, min(size, size - shift))  # empty: the shift passes the end
                total[:, lo + shift : hi + shift] += part.reshape(c, size)[:, lo:hi]
        np.copyto(dx, total.reshape(c, n, h, w).transpose(1, 0, 2, 3))

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

    @classmethod
    def array_shapes(
        cls, in_channels, out_channels, kernel_size, **_
    ) -> dict[str, tuple]:
        c = check_int("Conv2D in_channels", in_channels)
        o = check_int("Conv2D out_channels", out_channels)
        kh, kw = pair(kernel_size, "kernel_size", "Conv2D")
        return {"W": (o, c, kh, kw), "b": (o,)}

    def get_config(self) -> dict:
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": pair_config(self.kernel_size),
            "stride": pair_config(self.stride),
            "padding": pair_config(self.padding),
            "init": self.init,
            "l1": self.l1,
            "l2": self.l2,
        }
