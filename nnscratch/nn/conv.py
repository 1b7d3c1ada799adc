"""2-D convolution on batch-first images (N, C, H, W); pooling is in `pooling.py`.

y[n, o, r, s] = b[o] + sum over c, i, j of W[o, c, i, j] x[n, c, r*sh + i - ph,
s*sw + j - pw], zero outside the image. `conv2d_reference_forward` and
`conv2d_reference_backward` compute exactly that, one output pixel at a time: the
formula to read (and the tests' reference). `Conv2D` computes it fast, as im2col and
matrix products: with cols the im2col columns (C*kh*kw, N*Ho*Wo) of the batch,

    y = W_mat @ cols + b,  dW_mat = dy_mat @ cols^T,  db = the sum of dy,
    dcols = W_mat^T @ dy_mat,  dx = col2im(dcols)

with W_mat = W as (O, C*kh*kw) and dy_mat = dy as (O, N*Ho*Wo): y and dy are
channel-major in memory (see `layout`), so that they are these matrices without a
copy. The columns are built and used one chunk of images at a time (see `im2col`).
They end with a row of ones, so that the bias is one more column of the weights:
y = [W_mat | b] @ [cols; 1] adds it in the product, and [dW_mat | db]^T =
[cols; 1] @ dy_mat^T sums it (measured with OpenBLAS for conv 32->64 at batch 128:
3.4 ms against 4.3 ms for dy_mat @ cols^T, and no separate passes for the bias).

The columns hold C*kh*kw values per output pixel, so their size grows with the batch:
a batch whose workspace would pass MAX_WORKSPACE_BYTES (full-batch training of a CNN)
is refused with an error instead of exhausting memory.
"""

from __future__ import annotations

import numpy as np

from ..errors import NnscratchError, check_int
from .activations import ActivationAfter
from .im2col import Columns
from .layer import Layer, WeightPenalty, init_weights
from .layout import channel_major
from .registry import LAYERS
from .spatial import check_images, conv_padding, out_size, pair, pair_config

MAX_WORKSPACE_BYTES = 2 * 10**9  # per Conv2D call: im2col columns and outputs

# OpenBLAS is slow on a product whose result is tiny beside the sum behind each
# element, such as a first layer's [dW_mat | db]^T: (10, 32) from 43 images' 33,712
# pixels took 0.50-0.52 ms (MKL: 0.17 ms). Summed from products of PIXEL_BLOCK pixels
# each, which OpenBLAS runs on one thread with its small-matrix kernels, it took
# 0.34 ms; 0.57-0.71 of the time for results of 10x8 to 28x32 elements. Blocks of
# 256, 2048 or 4096 pixels lost on some of these, and one product per image lost 1.3-53x
# on images of 100 pixels or fewer. Results of up to THIN_PRODUCT elements are
# summed in blocks; conv 32->64's (289, 64) is faster as one product. Training steps,
# alternating in one process: lenet-like 27.27 -> 26.52 ms, cnn 54.57 -> 54.34 ms,
# fast 15.50 -> 15.40 ms.
THIN_PRODUCT = 1024
PIXEL_BLOCK = 1024


def conv2d_reference_forward(
    x: np.ndarray, W: np.ndarray, b: np.ndarray, stride=(1, 1), padding=(0, 0)
) -> np.ndarray:
    """The convolution by its definition, one output pixel at a time (slow).

    y[n, o, r, s] = b[o] + sum(W[o] * x_padded[n, :, r*sh : r*sh+kh, s*sw : s*sw+kw])
    Shapes: x (N, C, H, W), W (O, C, kh, kw), b (O,) -> y (N, O, Ho, Wo).
    """
    (sh, sw), (ph, pw) = stride, padding
    out_channels, _, kh, kw = W.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # x_padded
    ho, wo = (xp.shape[2] - kh) // sh + 1, (xp.shape[3] - kw) // sw + 1
    y = np.zeros((len(x), out_channels, ho, wo), dtype=np.result_type(x, W))
    for n, o, r, s in np.ndindex(y.shape):
        window = xp[n, :, r * sh : r * sh + kh, s * sw : s * sw + kw]
        y[n, o, r, s] = np.sum(window * W[o]) + b[o]
    return y


def conv2d_reference_backward(
    x: np.ndarray, W: np.ndarray, dy: np.ndarray, stride=(1, 1), padding=(0, 0)
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(dx, dW, db) of `conv2d_reference_forward`, one output pixel at a time (slow).

    Each output pixel y[n, o, r, s] sends dy[n, o, r, s] back through its one product:
    dW[o] += dy * its window of x, dx[that window] += dy * W[o], db[o] += dy.
    """
    (sh, sw), (ph, pw) = stride, padding
    _, _, kh, kw = W.shape
    h, w = x.shape[2:]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    dxp, dW = np.zeros_like(xp, dtype=dy.dtype), np.zeros_like(W, dtype=dy.dtype)
    for n, o, r, s in np.ndindex(dy.shape):
        rows, cols = slice(r * sh, r * sh + kh), slice(s * sw, s * sw + kw)
        dW[o] += dy[n, o, r, s] * xp[n, :, rows, cols]
        dxp[n, :, rows, cols] += dy[n, o, r, s] * W[o]
    db = dy.sum(axis=(0, 2, 3))  # db[o] = the sum of dy[:, o]
    return dxp[:, :, ph : ph + h, pw : pw + w], dW, db


@LAYERS.register
class Conv2D(ActivationAfter, WeightPenalty, Layer):
    """2-D convolution (cross-correlation, like every framework).

    `Conv2D(out_channels, kernel_size)` (Keras' order) takes its input channels from
    the model when built; `Conv2D(in_channels, out_channels, kernel_size, stride,
    padding)` (PyTorch's order) states them. Shapes: x (N, C, H, W) -> y (N, O, Ho, Wo)
    with Ho = (H + 2*ph - kh) // sh + 1; W (O, C, kh, kw), b (O,). `kernel_size`,
    `stride`, `padding` are an int or a (rows, cols) pair; padding is with zeros,
    and may also be "valid" (none) or "same" (Ho = H: odd kernels at stride 1).
    `l1`, `l2` penalise W like Dense; `activation` follows it, as Dense's.
    """

    def __init__(
        self,
        *args,
        in_channels: int | None = None,
        out_channels: int | None = None,
        kernel_size=None,
        stride=1,
        padding=0,
        init: str = "he",
        l1: float = 0.0,
        l2: float = 0.0,
        rng=None,
        dtype=np.float32,
        activation=None,
    ):
        super().__init__()
        self._set_activation(activation, "Conv2D")
        in_channels, out_channels, kernel_size, stride, padding = _conv_arguments(
            args, in_channels, out_channels, kernel_size, stride, padding
        )
        self.out_channels = check_int("Conv2D out_channels", out_channels)
        self.in_channels = (
            None
            if in_channels is None
            else check_int("Conv2D in_channels", in_channels)
        )
        self.kernel_size = pair(kernel_size, "kernel_size", "Conv2D")
        self.stride = pair(stride, "stride", "Conv2D")
        self.padding = conv_padding(padding, self.kernel_size, self.stride)
        self._weight_settings(init, l1, l2, rng, dtype)
        self._columns = Columns(
            self.kernel_size, self.stride, self.padding, self.workspace
        )
        if self.in_channels is not None:
            self.build((self.in_channels, *self.kernel_size))

    def build(self, input_shape: tuple) -> None:
        if len(input_shape) != 3 or self.in_channels not in (None, input_shape[0]):
            with_c = "" if self.in_channels is None else f" with C={self.in_channels}"
            raise NnscratchError(
                f"Conv2D: expected (N, C, H, W){with_c}, got (N, "
                f"{', '.join(map(str, input_shape))})"
            )
        self.in_channels = int(input_shape[0])
        shape = (self.out_channels, self.in_channels, *self.kernel_size)
        self._param("W", shape, self._initial_W)
        self._param("b", shape[:1], lambda: np.zeros(self.out_channels, self.dtype))
        self.built = True

    def _initial_W(self) -> np.ndarray:
        kh, kw = self.kernel_size
        shape = (self.out_channels, self.in_channels, kh, kw)
        fan_in, fan_out = self.in_channels * kh * kw, self.out_channels * kh * kw
        return init_weights(shape, fan_in, fan_out, self.init, self.rng, self.dtype)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """y (N, O, Ho, Wo), channel-major in memory (see `layout`): it is the
        product W_mat @ cols (O, N*Ho*Wo) itself, so no transposed copy is made."""
        if not self.built:  # built on first use, like a Keras layer
            self.build(x.shape[1:])
        self._check_input(x, training)
        n, _, h, w = x.shape
        o, dtype = self.out_channels, np.result_type(x, self.params["W"])
        y = self.workspace.array("y", (o, n, *self._out_hw(h, w)), dtype)
        # each chunk's product is written into its images' part of y as it is made
        for _ in self._chunks(x, training, lambda chunk: y[:, chunk]):
            pass
        return self._activated(y.transpose(1, 0, 2, 3), training)

    def forward_chunks(self, x: np.ndarray, training: bool, out):
        """forward one chunk of images at a time (see `im2col`): y = [W_mat | b] @
        [cols; 1] for images x[chunk] into out(chunk), (O, n, Ho, Wo) (a view of the
        whole output, or a scratch array the caller uses before the next chunk),
        yielding each chunk once its output is written (`fusion.ConvPool`)."""
        if not self.built:
            self.build(x.shape[1:])
        self._check_input(x, training)
        return self._chunks(x, training, out)

    def _chunks(self, x: np.ndarray, training: bool, out):
        """`forward_chunks` of a checked x."""
        o = self.out_channels
        W_and_b = self._weights_and_bias()
        self._x = x  # dx is laid out like x
        for chunk in self._columns.lay_out(x.shape, x.dtype, o, keep=training):
            cols = self._columns.build(x, chunk)
            y_mat = _matrix_view(out(chunk), (o, -1))
            np.matmul(W_and_b, cols.reshape(len(cols), -1), out=y_mat)
            yield chunk

    def _weights_and_bias(self) -> np.ndarray:
        """[W_mat | b], (O, C*kh*kw + 1): the bias is the weight of the columns' row
        of ones."""
        W, b = self.params["W"], self.params["b"]
        o = self.out_channels
        W_and_b = self.workspace.array("W_and_b", (o, W[0].size + 1), W.dtype)
        W_and_b[:, :-1] = W.reshape(o, -1)
        W_and_b[:, -1] = b
        return W_and_b

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        """dy (N, O, Ho, Wo) -> dx (N, C, H, W), or None; fills dW and db (the
        formulas: the module docstring and `backward_chunks`)."""
        o, dy = self.out_channels, self._activation_backward(dy)
        # (O, N, Ho, Wo) in C order, so each chunk's dy_mat is a view: dy itself if it
        # came back channel-major, as the next layers pass it (see `layout`)
        dy = channel_major(
            dy, out=self.workspace.array("dy", _swap(dy.shape), dy.dtype)
        )
        return self.backward_chunks(lambda chunk: _matrix_view(dy[:, chunk], (o, -1)))

    def backward_chunks(self, gradient_of) -> np.ndarray | None:
        """backward over forward's chunks, gradient_of(chunk) giving dy_mat for
        each (O, n*Ho*Wo): dW, db and dx = col2im(W_mat^T @ dy_mat), chunk by chunk
        (a dy of another dtype than x would give other chunk sizes, and read the
        wrong columns). Returns dx (N, C, H, W) laid out like x, or None."""
        W, o = self.params["W"], self.out_channels
        dx = dW_and_db = None
        for index, chunk in enumerate(self._columns.chunks):
            dy_mat = gradient_of(chunk)
            if index == 0:  # dy's dtype is known from here on
                dtype = np.result_type(dy_mat, self._x)
                dW_and_db = self.workspace.array("dW_and_db", (W[0].size + 1, o), dtype)
                if self.needs_input_grad:
                    dtype = np.result_type(dy_mat, W)
                    dx = self.workspace.like("dx", self._x, dtype)
            columns = self._columns  # forward's (training), else made again
            cols = columns[chunk] if columns.kept else columns.build(self._x, chunk)
            dcols = self._bwd(dy_mat, cols, dW_and_db, first=index == 0)
            if dx is not None:
                self._columns.col2im(dcols, dx.transpose(1, 0, 2, 3), chunk)
        np.copyto(_matrix_view(self.grads["W"], (o, -1)), dW_and_db[:-1].T)
        np.copyto(self.grads["b"], dW_and_db[-1])
        self._add_penalty_grad()
        return dx

    def _bwd(
        self, dy_mat: np.ndarray, cols: np.ndarray, dW_and_db: np.ndarray, first: bool
    ) -> np.ndarray | None:
        """For one chunk: [dW_mat | db]^T = [cols; 1] @ dy_mat^T, set into `dW_and_db`
        (the first chunk) or added to it; return dcols = W_mat^T @ dy_mat (K, n,
        Ho*Wo), or None if the input gradient is not needed.

        Shapes: dy_mat (O, n*Ho*Wo), cols (K + 1, n, Ho*Wo) (the columns and the row
        of ones), dW_and_db (K + 1, O).
        """
        W, o = self.params["W"], self.out_channels
        k = len(cols) - 1
        cols_mat = cols.reshape(k + 1, -1)
        part = self.workspace.array("part", dW_and_db.shape, dW_and_db.dtype)
        for index, block in enumerate(_pixel_blocks(cols_mat.shape[1], dW_and_db.size)):
            into = dW_and_db if first and index == 0 else part  # then added to it
            np.matmul(cols_mat[:, block], dy_mat[:, block].T, out=into)
            if into is part:
                dW_and_db += part
        if not self.needs_input_grad:
            return None
        shape = (k, *cols.shape[1:])
        dcols = self.workspace.front("dcols", shape, np.result_type(dy_mat, W))
        np.matmul(W.reshape(o, k).T, dy_mat, out=dcols.reshape(k, -1))
        return dcols

    def _check_input(self, x: np.ndarray, training: bool) -> None:
        """x (N, C, H, W) with the layer's C, at least the kernel's size once padded,
        and a workspace within MAX_WORKSPACE_BYTES (checked before allocating it)."""
        check_images(self, x, self.in_channels)
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        n, c, h, w = x.shape
        ho, wo = self._out_hw(h, w)
        if ho < 1 or wo < 1:
            raise NnscratchError(
                f"Conv2D: input {h}x{w} with padding {ph}x{pw} is smaller than the "
                f"{kh}x{kw} kernel"
            )
        # forward needs the (K, N, pixels) columns and the (O, N, pixels) output;
        # training needs their gradients too, as much again
        itemsize = np.result_type(x, self.params["W"]).itemsize
        k, o = c * kh * kw, self.out_channels
        needed = (k + o) * n * ho * wo * itemsize * (2 if training else 1)
        if needed > MAX_WORKSPACE_BYTES:
            raise NnscratchError(
                f"Conv2D: a batch of {n:,} images of shape {x.shape[1:]} needs "
                f"{needed / 1e9:.1f} GB of workspace (limit "
                f"{MAX_WORKSPACE_BYTES / 1e9:g} GB); use a smaller batch size, e.g. 128"
            )

    def _out_hw(self, h: int, w: int) -> tuple[int, int]:
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)

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
            **self._activation_config(),
        }


def _pixel_blocks(pixels: int, result_size: int) -> list[slice]:
    """The column ranges the weight gradient's product is summed over: all at once,
    or PIXEL_BLOCK columns at a time for a result of up to THIN_PRODUCT elements."""
    if result_size > THIN_PRODUCT:
        return [slice(0, pixels)]
    return [slice(a, a + PIXEL_BLOCK) for a in range(0, pixels, PIXEL_BLOCK)]


def _swap(shape: tuple) -> tuple:
    """(N, C, H, W) -> (C, N, H, W)."""
    return (shape[1], shape[0], *shape[2:])


def _matrix_view(a: np.ndarray, shape: tuple) -> np.ndarray:
    """A reshaped *view* of `a`, so that writing to it with out= writes to `a`."""
    view = a.reshape(shape)
    if not np.shares_memory(view, a):
        raise NnscratchError(f"cannot view an array of shape {a.shape} as {shape}")
    return view


def _conv_arguments(args, in_channels, out_channels, kernel_size, stride, padding):
    """(in_channels, out_channels, kernel_size, stride, padding) from Conv2D's
    positional arguments: (out, kernel) or (in, out, kernel[, stride[, padding]]);
    with kernel_size given by name, (out,) or (in, out)."""
    names = ["in_channels", "out_channels", "kernel_size", "stride", "padding"]
    if kernel_size is not None:
        order = {1: names[1:2], 2: names[:2]}.get(len(args))
    else:
        order = {2: names[1:3], 3: names[:3], 4: names[:4], 5: names}.get(len(args))
    if args and order is None:
        raise NnscratchError(
            "Conv2D: expected Conv2D(out_channels, kernel_size) or Conv2D(in_channels, "
            f"out_channels, kernel_size, stride, padding), got {len(args)} arguments"
        )
    values = [in_channels, out_channels, kernel_size, stride, padding]
    given = dict(zip(names, values))
    for name, value in zip(order or [], args):
        default = {"stride": 1, "padding": 0}.get(name)
        if given[name] != default:
            raise NnscratchError(f"Conv2D: {name} given twice")
        given[name] = value
    if given["out_channels"] is None or given["kernel_size"] is None:
        raise NnscratchError("Conv2D: out_channels and kernel_size are required")
    return tuple(given[name] for name in names)
