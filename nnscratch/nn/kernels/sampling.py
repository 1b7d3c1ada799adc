"""Warping images: each image of a batch sampled through its own affine map (and an
optional field of extra offsets), by bilinear interpolation, 0 outside the image.

Shapes: images and out (N, H, W); cos, sin, shift_y, shift_x (N,); displacement
(N, 2, H, W) of (rows, cols) offsets, read only if `displaced`. Output pixel (r, c)
of image n samples image n at

    src_y = cos * (r - cy - shift_y) + sin * (c - cx - shift_x) + cy
    src_x = -sin * (r - cy - shift_y) + cos * (c - cx - shift_x) + cx

(cy, cx the centre; cos and sin already divided by the scale), plus the displacement.
The NumPy twin builds those points as whole arrays and gathers the four neighbours of
each with one flat index into a zero-bordered copy of the batch; the compiled twin
computes each point where it is needed and reads its neighbours from a
zero-bordered copy of one image at a time. A batch of 128 28x28 images: 0.60 ms
compiled, against 1.07 ms for the NumPy code it replaced (which reused its scratch
arrays from batch to batch) and 3.2 ms for the NumPy twin (which does not).
"""

from __future__ import annotations

import numpy as np

from .dispatch import Kernel


def _affine_bilinear(images, out, cos, sin, shift_y, shift_x, displacement, displaced):
    """out = images sampled at the source points of the maps above (see the module)."""
    n, h, w = images.shape
    dtype = cos.dtype
    cy, cx = dtype.type((h - 1) / 2), dtype.type((w - 1) / 2)
    rows = np.arange(h, dtype=dtype)[None, :, None] - (cy + shift_y[:, None, None])
    cols = np.arange(w, dtype=dtype)[None, None, :] - (cx + shift_x[:, None, None])
    cos, sin = cos[:, None, None], sin[:, None, None]
    src_y = cos * rows + (sin * cols + cy)
    src_x = -sin * rows + (cos * cols + cx)
    if displaced:
        src_y += displacement[:, 0]
        src_x += displacement[:, 1]
    # a 2-pixel zero border, and corners clipped into it, make every point outside
    # read only zeros, so one flat index serves all four neighbours: +1 (right),
    # +w+4 (below), +w+5
    padded = np.zeros((n, h + 4, w + 4), dtype)
    padded[:, 2:-2, 2:-2] = images
    floor_y, floor_x = np.floor(src_y), np.floor(src_x)
    frac_y, frac_x = src_y - floor_y, src_x - floor_x
    row = np.clip(floor_y, -2, h).astype(np.intp) + 2
    col = np.clip(floor_x, -2, w).astype(np.intp) + 2
    index = row * (w + 4) + col + (np.arange(n) * ((h + 4) * (w + 4)))[:, None, None]
    flat = padded.ravel()
    v00, v01 = flat[index], flat[index + 1]
    v10, v11 = flat[index + w + 4], flat[index + w + 5]
    # lerp as a + (b - a) * f: stays within [min, max] of the pixels, so [0, 1] holds
    top = v00 + (v01 - v00) * frac_x
    bottom = v10 + (v11 - v10) * frac_x
    np.copyto(out, top + (bottom - top) * frac_y, casting="unsafe")


affine_bilinear = Kernel(_affine_bilinear)


@affine_bilinear.compiled
def _affine_bilinear_loops(
    images, out, cos, sin, shift_y, shift_x, displacement, displaced
):
    n, h, w = images.shape
    dtype = cos.dtype
    cy, cx = dtype.type((h - 1) / 2), dtype.type((w - 1) / 2)
    low, high_y, high_x = dtype.type(-2), dtype.type(h), dtype.type(w)
    padded = np.zeros((h + 4, w + 4), dtype)  # one image at a time, as in NumPy
    for a in range(n):
        padded[2 : h + 2, 2 : w + 2] = images[a]
        for r in range(h):
            row = dtype.type(r) - (cy + shift_y[a])
            for c in range(w):
                col = dtype.type(c) - (cx + shift_x[a])
                sy = cos[a] * row + (sin[a] * col + cy)
                sx = -sin[a] * row + (cos[a] * col + cx)
                if displaced:
                    sy += displacement[a, 0, r, c]
                    sx += displacement[a, 1, r, c]
                fy, fx = np.floor(sy), np.floor(sx)
                ty, tx = sy - fy, sx - fx
                i = int(min(max(fy, low), high_y)) + 2
                j = int(min(max(fx, low), high_x)) + 2
                top = padded[i, j] + (padded[i, j + 1] - padded[i, j]) * tx
                bottom = (
                    padded[i + 1, j] + (padded[i + 1, j + 1] - padded[i + 1, j]) * tx
                )
                out[a, r, c] = top + (bottom - top) * ty
