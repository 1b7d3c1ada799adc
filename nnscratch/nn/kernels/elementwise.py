"""ReLU's two passes as kernels, Dense's bias with them, softmax cross-entropy on
class labels, and uint8 pixels scaled to floats (a batch, or shuffled rows).

ReLU: the NumPy twins are ufuncs (forward one, against an array of zeros,
`reductions.relu`; backward two, a mask then the gradient times it); the compiled
ones a single loop, with no zeros or mask to read. They agree to the bit: the loops'
"0 if v <= 0 else v" keeps a NaN and makes -0.0 0.0, as NumPy's maximum against zeros
does (with "v < 0", -0.0 would stay -0.0: the same value, another sign bit). A
Dense layer followed by ReLU (`fusion.DenseReLU`) adds its bias and applies ReLU in
one pass over its output, and takes ReLU's mask and the bias's gradient in one pass
over the gradient.
Softmax cross-entropy on (N, C) logits with labels (N,): NumPy spends a dozen calls on
a batch's small array, the compiled twin one pass over its rows.
"""

from __future__ import annotations

import numpy as np

from .dispatch import Kernel
from .reductions import column_sum
from .reductions import relu as _relu_against_zeros


def _relu(x, y):
    """y = max(x, 0), element-wise (a NaN stays NaN); contiguous x and y."""
    _relu_against_zeros(x, out=y)


relu = Kernel(_relu)


@relu.compiled
def _relu_loops(x, y):
    xs, ys = x.reshape(-1), y.reshape(-1)
    zero = ys.dtype.type(0)
    for i in range(xs.shape[0]):
        v = xs[i]
        ys[i] = zero if v <= 0 else v  # NaN kept, -0.0 made 0.0, as np.maximum


def _relu_backward(dy, y, dx, mask):
    """dx = dy where y > 0, else 0 (dy times 1 or 0); mask: NumPy's bool scratch."""
    np.greater(y, 0, out=mask)
    np.multiply(dy, mask, out=dx)


relu_backward = Kernel(_relu_backward)


@relu_backward.compiled
def _relu_backward_loops(dy, y, dx, mask):
    gs, ys, out = dy.reshape(-1), y.reshape(-1), dx.reshape(-1)
    one, zero = out.dtype.type(1), out.dtype.type(0)
    for i in range(gs.shape[0]):
        out[i] = gs[i] * (one if ys[i] > 0 else zero)


def _scale_pixels(x, scale, out):
    """out = x * scale: uint8 pixels as floats (scale 1/255 in out's dtype); NumPy
    converts through a buffer, 1.4x slower at batch 1024 and 2x at batch 32."""
    np.multiply(x, scale, out=out)


scale_pixels = Kernel(_scale_pixels)


@scale_pixels.compiled
def _scale_pixels_loops(x, scale, out):
    xs, outs = x.reshape(-1), out.reshape(-1)
    for i in range(xs.shape[0]):
        outs[i] = outs.dtype.type(xs[i]) * scale


def _take_scaled(x, rows, scale, out):
    """out[i] = x[rows[i]] * scale: a shuffled batch of uint8 images gathered and
    scaled to floats in one pass, straight from the training set (no shuffled copy of
    it). Shapes: x (N, D) uint8, rows (B,) int64 in 0..N-1, out (B, D)."""
    np.multiply(np.take(x, rows, axis=0), scale, out=out)


take_scaled = Kernel(_take_scaled)


@take_scaled.compiled
def _take_scaled_loops(x, rows, scale, out):
    for i in range(rows.shape[0]):
        image = x[rows[i]]
        for j in range(image.shape[0]):
            out[i, j] = out.dtype.type(image[j]) * scale


def _bias_relu(y, b, relu):
    """y = y + b (b added to each row), then max(y, 0) if `relu`; in place.
    Shapes: y (N, F), b (F,)."""
    np.add(y, b, out=y)
    if relu:
        _relu_against_zeros(y, out=y)


bias_relu = Kernel(_bias_relu)


@bias_relu.compiled
def _bias_relu_loops(y, b, relu):
    zero = y.dtype.type(0)
    if relu:
        for n in range(y.shape[0]):
            for j in range(y.shape[1]):
                v = y[n, j] + b[j]
                y[n, j] = zero if v <= 0 else v  # as `_relu_loops`
    else:
        for n in range(y.shape[0]):
            for j in range(y.shape[1]):
                y[n, j] += b[j]


def _relu_bias_backward(dy, y, dz, db, mask):
    """dz = dy where y > 0, else 0 (ReLU's backward), and db = the sum of dz's rows
    (the gradient of the bias added before ReLU); mask: NumPy's bool scratch.
    Shapes: dy, y, dz (N, F); db (F,)."""
    np.greater(y, 0, out=mask)
    np.multiply(dy, mask, out=dz)
    column_sum(dz, out=db)


relu_bias_backward = Kernel(_relu_bias_backward)


@relu_bias_backward.compiled
def _relu_bias_backward_loops(dy, y, dz, db, mask):
    sums = np.zeros(db.shape[0], np.float64)  # in float64: N may be a whole dataset
    one, zero = dz.dtype.type(1), dz.dtype.type(0)
    for n in range(dy.shape[0]):
        for j in range(dy.shape[1]):
            g = dy[n, j] * (one if y[n, j] > 0 else zero)
            dz[n, j] = g
            sums[j] += g
    for j in range(db.shape[0]):
        db[j] = sums[j]


def _softmax_cross_entropy(logits, labels, probs):
    """probs = softmax(logits) row by row; returns the sum over rows of
    -log(probs[n, labels[n]]) = log(sum exp(shifted_n)) - shifted_n[label], with
    shifted = logits - the row's maximum (exp cannot overflow).
    Shapes: logits, probs (N, C); labels (N,) int64 in 0..C-1."""
    n = len(logits)
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=probs)
    sums = np.add.reduce(probs, axis=1, keepdims=True)
    probs /= sums
    return float(np.log(sums).sum() - shifted[np.arange(n), labels].sum())


softmax_cross_entropy = Kernel(_softmax_cross_entropy)


@softmax_cross_entropy.compiled
def _softmax_cross_entropy_loops(logits, labels, probs):
    n, c = logits.shape
    loss = 0.0
    for a in range(n):
        row, out = logits[a], probs[a]
        top = row[0]
        for j in range(1, c):
            top = max(top, row[j])
        total = out.dtype.type(0)
        for j in range(c):
            out[j] = np.exp(row[j] - top)
            total += out[j]
        for j in range(c):
            out[j] /= total
        loss += np.log(total) - (row[labels[a]] - top)
    return loss


def _softmax_cross_entropy_backward(probs, labels, scale, dlogits):
    """dlogits = (probs - one_hot(labels)) * scale (scale 1/N: the batch mean).
    Shapes: probs, dlogits (N, C); labels (N,)."""
    np.copyto(dlogits, probs)
    dlogits[np.arange(len(probs)), labels] -= 1
    dlogits *= scale


softmax_cross_entropy_backward = Kernel(_softmax_cross_entropy_backward)


@softmax_cross_entropy_backward.compiled
def _softmax_cross_entropy_backward_loops(probs, labels, scale, dlogits):
    n, c = probs.shape
    one, zero = dlogits.dtype.type(1), dlogits.dtype.type(0)
    for a in range(n):
        for j in range(c):
            dlogits[a, j] = (probs[a, j] - (one if j == labels[a] else zero)) * scale
