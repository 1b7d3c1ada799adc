"""im2col and col2im of a stride-1 "same" convolution (3x3, padding 1, ...) on
channel-major images, as kernels.

Channel-major images (see `nn.layout`) hold each channel's pixels for a chunk of n
images as one run, (C, n*H*W). A kernel offset (di, dj) from the centre then reads
each output pixel's input at one fixed flat shift, di*W + dj: im2col is one shifted
copy of each channel's run per offset, and col2im one shifted add. The shift also
reaches pixels it must not (one row up or down wraps into the next image; one column
left or right wraps into the neighbouring row): those places read the zero padding
instead (im2col writes 0 there; col2im drops them).

The NumPy twins do exactly that on whole chunks: a shifted copy or add per offset,
then a pass that writes the zeros, over strided views one value per image row wide.
The compiled twins take one image of one channel at a time, so the zeros are written
while its values are still in the processor's cache; col2im adds each pixel's kh*kw
terms (nine for 3x3) in the twins' order (the centre first), and im2col copies the
same values.

Shapes: images (C, total) C-contiguous, of which the chunk is columns start ...
start + n*H*W; cols and dcols (C, kh, kw, n*H*W); dx (C, total), written at the same
columns as the chunk's images.
"""

from __future__ import annotations

import numpy as np

from .dispatch import Kernel


def _reads(kh, kw, ph, pw, h, w, size):
    """For each kernel offset (i, j) in row-major order: (i, j, the flat shift, the
    run lo..hi of a chunk of `size` output pixels whose shifted read stays in the
    chunk, the output rows r0..r1 and columns s0..s1 whose input pixel is inside the
    image)."""
    for i in range(kh):
        for j in range(kw):
            di, dj = i - ph, j - pw
            shift = di * w + dj
            lo = min(size, max(0, -shift))
            hi = max(lo, min(size, size - shift))  # empty: the shift passes the end
            rows = max(0, -di), min(h, h - di)
            columns = max(0, -dj), min(w, w - dj)
            yield i, j, shift, (lo, hi), rows, columns


def _padding_views(part, rows, columns):
    """The views of part (..., H, W) whose input pixel lies in the padding."""
    (r0, r1), (s0, s1) = rows, columns
    return [part[..., :r0, :], part[..., r1:, :], part[..., :s0], part[..., s1:]]


def _im2col_same(images, start, cols, h, w, ph, pw):
    """cols[c, i, j, p] = images[c, start + p + (i - ph)*W + (j - pw)] where that
    pixel is in output pixel p's image, else 0 (the padding)."""
    c, kh, kw, size = cols.shape
    flat = images[:, start : start + size]
    for i, j, shift, (lo, hi), rows, columns in _reads(kh, kw, ph, pw, h, w, size):
        part = cols[:, i, j]
        part[:, lo:hi] = flat[:, lo + shift : hi + shift]
        part[:, :lo] = 0
        part[:, hi:] = 0
        for zeros in _padding_views(part.reshape(c, -1, h, w), rows, columns):
            zeros[...] = 0


im2col_same = Kernel(_im2col_same)


@im2col_same.compiled
def _im2col_same_loops(images, start, cols, h, w, ph, pw):
    c_count, kh, kw, size = cols.shape
    hw, zero = h * w, cols.dtype.type(0)
    for c in range(c_count):
        for i in range(kh):
            r0, r1 = max(0, ph - i), min(h, h + ph - i)
            for j in range(kw):
                s0, s1 = max(0, pw - j), min(w, w + pw - j)
                shift = (i - ph) * w + (j - pw)
                # the run of output pixels from (r0, s0) to (r1 - 1, s1 - 1): its
                # reads all fall inside the image (the columns that wrap to a
                # neighbouring row are zeroed apart); empty if no row reads inside
                a = min(hw, r0 * w + s0)
                b = max(a, r1 * w - (w - s1))
                for base in range(0, size, hw):  # one image at a time
                    # as slices, indexed from 0 up: the loop compiles to vector code
                    part = cols[c, i, j, base : base + hw]
                    first = start + base + a + shift
                    run, source = part[a:b], images[c, first : first + b - a]
                    for q in range(b - a):
                        run[q] = source[q]
                    for q in range(a):
                        part[q] = zero
                    for q in range(b, hw):
                        part[q] = zero
                    for r in range(r0, r1):  # the columns that wrapped to a row
                        for s in range(s0):
                            part[r * w + s] = zero
                        for s in range(s1, w):
                            part[r * w + s] = zero


def _col2im_same(dcols, dx, start, h, w, ph, pw):
    """dx[c, start + p] = the sum over kernel offsets (i, j) of dcols[c, i, j, p - (i
    - ph)*W - (j - pw)], where that output pixel read p (not the padding): each
    offset's part added back where im2col took it from, the centre's first. dcols is
    used as scratch (its padding reads are zeroed)."""
    c, kh, kw, size = dcols.shape
    total = dx[:, start : start + size]
    np.copyto(total, dcols[:, ph, pw])  # the centre reads every pixel
    for i, j, shift, (lo, hi), rows, columns in _reads(kh, kw, ph, pw, h, w, size):
        if (i, j) == (ph, pw):
            continue
        part = dcols[:, i, j]
        for zeros in _padding_views(part.reshape(c, -1, h, w), rows, columns):
            zeros[...] = 0
        total[:, lo + shift : hi + shift] += part[:, lo:hi]


col2im_same = Kernel(_col2im_same)


@col2im_same.compiled
def _col2im_same_loops(dcols, dx, start, h, w, ph, pw):
    c_count, kh, kw, size = dcols.shape
    hw, zero = h * w, dcols.dtype.type(0)
    for c in range(c_count):
        for base in range(0, size, hw):  # one image at a time: its sums stay in cache
            total = dx[c, start + base : start + base + hw]
            centre = dcols[c, ph, pw, base : base + hw]
            for q in range(hw):
                total[q] = centre[q]
            for i in range(kh):
                r0, r1 = max(0, ph - i), min(h, h + ph - i)
                for j in range(kw):
                    if i == ph and j == pw:
                        continue
                    s0, s1 = max(0, pw - j), min(w, w + pw - j)
                    part = dcols[c, i, j, base : base + hw]
                    for r in range(r0, r1):  # the columns that wrapped to a row
                        for s in range(s0):
                            part[r * w + s] = zero
                        for s in range(s1, w):
                            part[r * w + s] = zero
                    a = min(hw, r0 * w + s0)  # the run, as in im2col
                    b = max(a, r1 * w - (w - s1))
                    shift = (i - ph) * w + (j - pw)
                    run, sums = part[a:b], total[a + shift : b + shift]
                    for q in range(b - a):
                        sums[q] += run[q]
