"""im2col and col2im for Conv2D: the columns of a batch, built one chunk at a time.

cols[c, i, j, n, r, s] = x[n, c, r*sh + i - ph, s*sw + j - pw], 0 where that falls in
the padding: each output pixel's receptive field as a column, so that a convolution
is a matrix product with W reshaped to (O, C*kh*kw). The columns are laid out as the
matrix (C*kh*kw, n, Ho*Wo) for each chunk of n images, followed by a row of ones: the
input that the bias multiplies, so that the bias is added by the product itself. The
products of forward and backward are each one GEMM per chunk (what BLAS is fastest
at; the weight gradient's in blocks of pixels when its result is small, see
`conv.THIN_PRODUCT`). A chunk holds about CHUNK_BYTES of columns, so they are still
in the processor's cache when the product reads them (forward) or col2im adds them
up (backward): a whole batch's columns (29 MB for conv 32->64 on 14x14 at batch 128)
would come back from main memory.

A stride-1 "same" conv (3x3 with padding 1, ...) on channel-major images, as between
the conv layers of a network (see `layout`), runs the kernels of `kernels.columns`:
one shifted copy (or add) per kernel offset, image by image while it is in cache
(training steps interleaved with their NumPy twins: lenet-like 32.6 -> 30.8 ms, cnn
58.5 -> 56.9 ms). Other convs work one kernel offset (i, j) at a time, on strided
views of whole chunks; `conv.conv2d_reference_forward` is the same result one pixel
at a time.
"""

from __future__ import annotations

import numpy as np

from .kernels.columns import col2im_same, im2col_same
from .spatial import out_size
from .workspace import Workspace

# im2col columns of the images processed together (cache-sized). Measured in training
# steps, epochs interleaved in one process: 6 MB against 4 MB, cnn 58.3 against 60.7
# ms (medians of 10), lenet-like 34.8 against 35.1 ms; 2-3 MB and 12-16 MB no better
CHUNK_BYTES = 6 * 2**20


class Columns:
    """The im2col columns of a batch, built one chunk of images at a time into one
    flat buffer reused batch after batch.

    Training keeps every chunk's columns for backward (`keep`); evaluation needs each
    only for its product, so all chunks share one chunk's room (a smaller last chunk
    has its own: its padding lies elsewhere). Shapes: images (N, C, H, W); a chunk's
    columns and its row of ones (C*kh*kw + 1, n, Ho*Wo). The padding's columns are
    set to zero and the ones row to one when the layout is made; `build` writes
    only zeros there again (a stride-1 copy that runs over a row's end zeroes what
    it wrapped into). The buffer only grows (a new batch size, or evaluation's larger
    batches between training epochs, allocated ~200 MB anew each time: 0.3 s an
    epoch of the `cnn` preset).
    """

    def __init__(self, kernel_size, stride, padding, workspace: Workspace):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.workspace = workspace
        self.x_shape: tuple | None = None  # the images the buffer is laid out for
        self.chunks: list[slice] = []
        self.kept = False  # does the buffer hold every chunk's columns?
        self._layout: tuple | None = None
        self._buffer: np.ndarray | None = None  # the memory `_layout` was written in

    def __reduce__(self):
        # a copy (pickle, deepcopy) is laid out anew: its workspace starts empty, and
        # a new buffer must get its zeros and ones (`lay_out`), not only its shape
        args = (self.kernel_size, self.stride, self.padding, self.workspace)
        return Columns, args

    def lay_out(
        self, x_shape: tuple, dtype, out_channels: int = 0, keep: bool = True
    ) -> list[slice]:
        """Ready the buffer for images of `x_shape` and `dtype`; return the chunks
        (slices of the batch) to `build`, kept in `chunks` for backward.

        A chunk holds about CHUNK_BYTES of columns, or of the product's output if it
        has more rows (`out_channels` > C*kh*kw, as in a first layer on 1-channel
        images), so that a chunk's output is no larger than that either.
        """
        n, c, h, w = x_shape
        (kh, kw), dtype = self.kernel_size, np.dtype(dtype)
        k, pixels = c * kh * kw, self._pixels(h, w)
        rows = max(k + 1, out_channels)
        per_chunk = max(1, CHUNK_BYTES // (rows * pixels * dtype.itemsize))
        count = -(-n // per_chunk)  # ceil
        per_chunk = -(-n // count)  # equal chunks rather than a small last one
        self.chunks = [slice(a, min(a + per_chunk, n)) for a in range(0, n, per_chunk)]
        self.x_shape, self.kept = x_shape, keep
        images = n if keep else per_chunk + self.chunks[-1].stop % per_chunk
        self._flat = self.workspace.front("cols", ((k + 1) * images * pixels,), dtype)
        # the memory the view lies in: a new one (the workspace grew, or a fit
        # ended and dropped it) holds neither the zeros nor the ones
        buffer = self._flat.base
        if self._layout != (x_shape, dtype, keep) or buffer is not self._buffer:
            # another layout puts the padding elsewhere, where values of the last
            # one's images would be read: start from zeros, and the ones
            self._flat.fill(0)
            for chunk in self.chunks:
                self._matrix(chunk)[-1] = 1
            self._layout, self._buffer = (x_shape, dtype, keep), buffer
        return self.chunks

    def build(self, x: np.ndarray, chunk: slice) -> np.ndarray:
        """im2col: fill the columns of images x[chunk]; return them and the row of
        ones, (C*kh*kw + 1, n, P)."""
        cols = self._block(chunk)
        images = x.transpose(1, 0, 2, 3)  # (C, N, H, W)
        whole = _flat_view(images)
        if whole is not None and self._same(x.shape):
            c, kh, kw, n, h, w = cols.shape
            flat_cols = cols.reshape(c, kh, kw, n * h * w)
            im2col_same(whole, chunk.start * h * w, flat_cols, h, w, *self.padding)
            return self[chunk]
        for part, image_part, padding in _pieces(
            cols, images[:, chunk], self.stride, self.padding
        ):
            part[...] = image_part
            for zeros in padding:
                zeros[...] = 0
        return self[chunk]

    def __getitem__(self, chunk: slice) -> np.ndarray:
        """The columns `build` made for images `chunk` and the row of ones,
        (C*kh*kw + 1, n, Ho*Wo); only when `kept` (or just built)."""
        n = chunk.stop - chunk.start
        return self._matrix(chunk).reshape(-1, n, self._pixels(*self.x_shape[2:]))

    def col2im(self, dcols: np.ndarray, dx: np.ndarray, chunk: slice) -> None:
        """dx[:, chunk] (C, n, H, W) = the sum of each kernel offset's part of dcols
        (C*kh*kw, n, Ho*Wo) put back where `build` read it from (the padding's
        gradient goes nowhere). dcols is used as scratch; dx is the whole batch's
        (C, N, H, W), a view of any layout."""
        (kh, kw), (c, _, h, w) = self.kernel_size, dx.shape
        dcols = dcols.reshape(c, kh, kw, -1, *self._out_hw(h, w))
        if self._same(self.x_shape):
            self._col2im_same(dcols, dx, chunk)
            return
        dx = dx[:, chunk]
        pieces = list(_pieces(dcols, dx, self.stride, self.padding))
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

    def _same(self, x_shape: tuple) -> bool:
        """A stride-1 conv whose output is its input's size (3x3 with padding 1...)?"""
        h, w = x_shape[2:]
        return self.stride == (1, 1) and self._out_hw(h, w) == (h, w)

    def _col2im_same(self, dcols: np.ndarray, dx: np.ndarray, chunk: slice) -> None:
        """col2im of a "same" conv (`kernels.columns`), straight into dx if it is
        channel-major (C, N*H*W) in memory, else through a (C, n*H*W) scratch.
        Shapes: dcols (C, kh, kw, n, H, W), dx (C, N, H, W)."""
        c, kh, kw, n, h, w = dcols.shape
        flat_dcols = dcols.reshape(c, kh, kw, n * h * w)
        whole = _flat_view(dx)
        if whole is not None:
            col2im_same(flat_dcols, whole, chunk.start * h * w, h, w, *self.padding)
            return
        total = self.workspace.front("dx_channels", (c, n * h * w), dx.dtype)
        col2im_same(flat_dcols, total, 0, h, w, *self.padding)
        np.copyto(dx[:, chunk], total.reshape(c, n, h, w))

    def _matrix(self, chunk: slice) -> np.ndarray:
        """Images chunk's columns and row of ones, (C*kh*kw + 1, n*Ho*Wo),
        contiguous."""
        _, c, h, w = self.x_shape
        (kh, kw), pixels = self.kernel_size, self._pixels(h, w)
        per_image, n = (c * kh * kw + 1) * pixels, chunk.stop - chunk.start
        full = self.chunks[0].stop  # images in a chunk (the last may have fewer)
        first = chunk.start if self.kept else (0 if n == full else full)
        block = self._flat[first * per_image : (first + n) * per_image]
        return block.reshape(-1, n * pixels)

    def _block(self, chunk: slice) -> np.ndarray:
        """Images chunk's columns, (C, kh, kw, n, Ho, Wo): contiguous."""
        _, c, h, w = self.x_shape
        (kh, kw), (ho, wo) = self.kernel_size, self._out_hw(h, w)
        n = chunk.stop - chunk.start
        return self._matrix(chunk)[:-1].reshape(c, kh, kw, n, ho, wo)

    def _out_hw(self, h: int, w: int) -> tuple[int, int]:
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return out_size(h, kh, sh, ph), out_size(w, kw, sw, pw)

    def _pixels(self, h: int, w: int) -> int:
        ho, wo = self._out_hw(h, w)
        return ho * wo


def _pieces(cols: np.ndarray, images: np.ndarray, stride, padding):
    """For each kernel offset (i, j): (the part of cols it fills, the part of the
    images that goes there, parts of cols that must read padding zeros instead).

    Shapes: cols (C, kh, kw, n, Ho, Wo), images (C, n, H, W); all parts are views.
    """
    c, kh, kw, n, ho, wo = cols.shape
    h, w = images.shape[2:]
    (sh, sw), (ph, pw) = stride, padding
    if stride == (1, 1) and wo == w:
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


def _flat_view(a: np.ndarray) -> np.ndarray | None:
    """a (C, n, H, W) as (C, n*H*W), a view; None if that needs a copy."""
    c, n, h, w = a.shape
    if a.strides[1:] != (h * w * a.itemsize, w * a.itemsize, a.itemsize):
        return None
    return a.reshape(c, n * h * w)
