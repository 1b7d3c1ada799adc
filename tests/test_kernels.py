"""The kernels of nn/kernels/: the speed tricks against NumPy's plain reductions, each
kernel's compiled twin against its NumPy twin, training on either, choosing them;
and Workspace."""

import os
import subprocess
import sys

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import nnscratch as nn
from nnscratch.errors import NnscratchError
from nnscratch.nn import kernels as package
from nnscratch.nn.kernels import (
    backend,
    channel_dot,
    channel_sum,
    column_sum,
    dispatch,
    ones,
    row_max,
    row_sum,
    use,
    using,
    zeros,
)
from nnscratch.nn.kernels import norm_pool as npk
from nnscratch.nn.kernels import normalization as bn
from nnscratch.nn.kernels.columns import col2im_same, im2col_same
from nnscratch.nn.kernels.elementwise import (
    bias_relu,
    relu_backward,
    relu_bias_backward,
    scale_pixels,
    softmax_cross_entropy,
    softmax_cross_entropy_backward,
    take_scaled,
)
from nnscratch.nn.kernels.elementwise import relu as relu_kernel
from nnscratch.nn.kernels.optimizer_steps import adam_step, rmsprop_step, sgd_step
from nnscratch.nn.kernels.pooling import (
    avg_pool_backward,
    avg_pool_forward,
    max_pool_backward,
    max_pool_forward,
)
from nnscratch.nn.kernels.reductions import relu
from nnscratch.nn.kernels.sampling import affine_bilinear
from nnscratch.nn.workspace import Workspace, aligned_empty


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 10), (7, 3), (1024, 10), (0, 10)])
def test_row_max_and_row_sum_equal_numpys_reductions(shape, dtype):
    # softmax takes them in place of a.max / a.sum(axis=1)
    a = np.random.default_rng(1).standard_normal(shape).astype(dtype)
    assert row_max(a).shape == row_sum(a).shape == (shape[0],)
    assert row_max(a).dtype == row_sum(a).dtype == dtype
    assert_array_equal(row_max(a), a.max(axis=1))
    assert_allclose(row_sum(a), a.sum(axis=1), rtol=1e-5, atol=1e-5)
    if shape[0]:
        a[0, 1] = np.nan  # a NaN logit stays visible
        assert np.isnan(row_max(a)[0]) and np.isnan(row_sum(a)[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(5, 4), (1, 3), (3, 4, 2, 5), (2, 3, 1, 1)])
def test_channel_sums_equal_numpys_reductions(shape, dtype):
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((2, *shape)).astype(dtype)
    axes = (0, *range(2, len(shape)))
    assert_allclose(channel_sum(a), a.sum(axis=axes), rtol=1e-5, atol=1e-5)
    assert_allclose(channel_dot(a, b), (a * b).sum(axis=axes), rtol=1e-5, atol=1e-6)
    out = np.empty(shape[1], dtype)
    assert channel_sum(a, out=out) is out
    assert_allclose(out, a.sum(axis=axes), rtol=1e-5, atol=1e-5)
    if len(shape) == 2:
        assert_allclose(column_sum(a), a.sum(axis=0), rtol=1e-5, atol=1e-5)
        assert channel_sum(a).dtype == dtype


def test_relu_and_the_shared_constants():
    x = np.array([[-1.0, 0.0, 2.0], [3.0, -0.5, 0.25]], dtype=np.float32)
    assert_array_equal(relu(x), np.maximum(x, 0))
    out = np.empty_like(x)
    assert relu(x, out=out) is out and out.dtype == np.float32
    long, short = ones(6, np.float64), ones(3, np.float64)
    assert_array_equal(short, 1) and short.shape == (3,) and long.shape == (6,)
    assert zeros((2, 3), np.float32).shape == (2, 3)
    for constant in (long, short, zeros((4,), np.float32)):
        with pytest.raises(ValueError, match="read-only"):
            constant[0] = 5


def test_workspace_reuses_an_array_until_the_shape_or_dtype_changes():
    ws = Workspace()
    a = ws.array("y", (2, 3), np.float32)
    assert ws.array("y", (2, 3), np.float32) is a
    assert ws.like("y", a) is a
    assert ws.array("y", (3, 2), np.float32) is not a
    assert ws.array("y", (3, 2), np.float64).dtype == np.float64
    filled = ws.array("z", (4,), np.int64, fill=7)
    filled[0] = 1  # filled once, when allocated: what is written stays
    assert_array_equal(ws.array("z", (4,), np.int64, fill=7), [1, 7, 7, 7])
    ws.discard("z")
    assert_array_equal(ws.array("z", (4,), np.int64, fill=7), [7, 7, 7, 7])
    assert len(ws) == 2


def test_workspace_front_grows_to_the_largest_size_and_reuses_it():
    ws = Workspace()
    big = ws.front("chunk", (4, 5), np.float32)
    small = ws.front("chunk", (2, 3), np.float32)
    assert small.shape == (2, 3) and np.shares_memory(big, small)
    bigger = ws.front("chunk", (6, 5), np.float32)
    assert bigger.shape == (6, 5) and not np.shares_memory(big, bigger)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8])
@pytest.mark.parametrize("shape", [(3, 5), (0, 7), (1,), ()])
def test_aligned_arrays_start_on_a_cache_line(shape, dtype):
    for zeroed in (False, True):
        a = aligned_empty(shape, dtype, zeros=zeroed)
        assert a.shape == shape and a.dtype == dtype and a.flags.c_contiguous
        assert a.flags.writeable
        assert a.size == 0 or a.ctypes.data % 64 == 0  # (empty: nothing to read)
        if zeroed:
            assert not a.any()


def test_scratch_and_parameter_buffers_are_aligned():
    # OpenBLAS's small products run faster on aligned rows (workspace.aligned_empty)
    ws = Workspace()
    assert ws.array("y", (32, 10), np.float32).ctypes.data % 64 == 0
    assert ws.front("cols", (9, 100), np.float32, fill=0).ctypes.data % 64 == 0
    model = nn.Sequential(
        [nn.Dense(256), nn.ReLU(), nn.Dense(10)], input_shape=(784,), seed=0
    )
    assert model.flat_params.ctypes.data % 64 == 0
    assert model.layers[0].grads["W"].ctypes.data % 64 == 0


# ----- each kernel's two twins, and training on each -----------------------------
# The compiled twins (numba) do the NumPy twins' arithmetic in loops. Element-wise
# kernels round alike, operation for operation, so they must agree exactly, in
# float32 and float64; sums add in another order (float32 tolerance, or 1e-12 in
# float64).

FLOATS = [np.float32, np.float64]


def tolerance(dtype):
    if dtype == np.float32:
        return {"rtol": 2e-6, "atol": 1e-6}
    return {"rtol": 1e-12, "atol": 1e-12}


def both_twins(kernel, make_args, *, exact=True, outputs=None):
    """Run `kernel`'s NumPy and compiled twins each on fresh arrays from
    `make_args()`; compare the returned value and every array argument afterwards
    (`outputs`: their positions, default all; `exact`: to the bit, but for NaN's
    payload); returns the arrays of both."""
    results = []
    for twin in (kernel.numpy, kernel.numba):
        args = make_args()
        value = twin(*args)
        arrays = [a for a in args if isinstance(a, np.ndarray)]
        results.append((value, arrays))
    (value_a, arrays_a), (value_b, arrays_b) = results
    if value_a is not None:
        assert_allclose(value_b, value_a, rtol=1e-6 if exact else 1e-5)
    chosen = range(len(arrays_a)) if outputs is None else outputs
    for i in chosen:
        a, b = arrays_a[i], arrays_b[i]
        assert a.dtype == b.dtype
        if exact:  # to the bit: the sign of a zero too (-0.0 == 0.0 to NumPy)
            assert_array_equal(b, a, err_msg=f"array argument {i}")
            if a.dtype.kind == "f":
                same_signs = np.signbit(b) == np.signbit(a)
                assert (same_signs | np.isnan(a)).all(), f"array argument {i}: signs"
        else:
            assert_allclose(b, a, **tolerance(a.dtype), err_msg=f"array argument {i}")
    return arrays_a, arrays_b


def random_arrays(seed, dtype, *shapes):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(shape).astype(dtype) for shape in shapes]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    "l2, decay, flush", [(0.0, 1.0, False), (0.1, 1.0, True), (0.0, 0.99, True)]
)
def test_adam_step_twins_agree_exactly(dtype, l2, decay, flush):
    def args():
        p, g, m = random_arrays(3, dtype, (1000,), (1000,), (1000,))
        v = np.abs(random_arrays(4, dtype, (1000,))[0])
        m[:5], g[:5], p[:5] = 1e-35, 0, 0  # tiny moments: flushed if flush_below
        scalars = [0.9, 0.999, 3e-3, 1e-8, l2, decay, 1e-30 if flush else 0.0]
        return [p, g, m, v, np.empty_like(p), *map(np.dtype(dtype).type, scalars)]

    arrays, _ = both_twins(kernels_adam_step(), args, outputs=[0, 2, 3])
    assert (arrays[2][:5] == 0).all() == flush


def kernels_adam_step():

    return adam_step


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    "momentum, nesterov, l2", [(0.0, False, 0.0), (0.9, False, 0.1), (0.9, True, 0.0)]
)
def test_sgd_step_twins_agree_exactly(dtype, momentum, nesterov, l2):

    def args():
        p, g, velocity = random_arrays(5, dtype, (777,), (777,), (777,))
        scalars = [np.dtype(dtype).type(s) for s in (0.05, momentum)]
        flush = np.dtype(dtype).type(1e-30)
        return [p, g, velocity, np.empty_like(p), *scalars, nesterov, dtype(l2), flush]

    both_twins(sgd_step, args, outputs=[0, 2] if momentum else [0])


@pytest.mark.parametrize("dtype", FLOATS)
def test_rmsprop_step_twins_agree_exactly(dtype):

    def args():
        p, g = random_arrays(6, dtype, (500,), (500,))
        s = np.abs(random_arrays(7, dtype, (500,))[0])
        scalars = (1e-3, 0.99, 1 - 0.99, 1e-8, 0.0)
        return [p, g, s, np.empty_like(p), *map(np.dtype(dtype).type, scalars)]

    both_twins(rmsprop_step, args, outputs=[0, 2])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(7, 13), (3, 4, 5, 6)])
def test_relu_twins_agree_exactly(dtype, shape):

    def forward_args():
        (x,) = random_arrays(8, dtype, shape)
        x.flat[:3] = [0.0, -0.0, np.nan]  # NaN kept; -0.0 -> 0.0 in both
        return [x, np.empty_like(x)]

    (_, y), _ = both_twins(relu_kernel, forward_args)
    assert np.isnan(y.flat[2]) and np.nanmin(y) == 0

    def backward_args():
        dy, y = random_arrays(9, dtype, shape, shape)
        return [dy, np.maximum(y, 0), np.empty_like(dy), np.empty(shape, np.bool_)]

    both_twins(relu_backward, backward_args, outputs=[2])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("relu_after", [True, False])
@pytest.mark.parametrize("shape", [(1, 3), (32, 256), (7, 13)])
def test_dense_bias_and_relu_twins_agree_exactly(dtype, relu_after, shape):
    """Dense's y += b (then ReLU), and backward's ReLU mask with the bias's sum."""

    def forward_args():
        y, b = random_arrays(10, dtype, shape, shape[1:])
        y.flat[:3] = [0.0, -0.0, np.nan]
        return [y, b, relu_after]

    (y, b), _ = both_twins(bias_relu, forward_args)
    before, _, _ = forward_args()
    expected = before + b
    assert_array_equal(y, np.maximum(expected, 0) if relu_after else expected)

    def backward_args():
        dy, y = random_arrays(11, dtype, shape, shape)
        dy.flat[0] = np.nan  # where y <= 0 too: NaN * 0 is NaN in both
        y = np.maximum(y, 0)
        y.flat[0] = 0
        return [
            dy,
            y,
            np.empty_like(dy),
            np.empty(shape[1], dtype),
            np.empty(shape, bool),
        ]

    both_twins(relu_bias_backward, backward_args, outputs=[2])  # the mask: exact
    (dy, y, dz, db, _), _ = both_twins(
        relu_bias_backward, backward_args, exact=False, outputs=[3]
    )  # the sum: in float64 in the loops, by BLAS in NumPy
    assert_array_equal(dz[y > 0], dy[y > 0]) and (dz[1:][y[1:] <= 0] == 0).all()
    assert_allclose(db[1:], dz[:, 1:].sum(axis=0, dtype=np.float64), rtol=1e-5)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    "channels, batch, h, w, kernel, chunk",
    [
        (3, 5, 4, 6, (3, 3), slice(1, 3)),
        (2, 3, 1, 1, (3, 3), slice(0, 3)),  # every offset but the centre: padding
        (2, 4, 5, 5, (5, 5), slice(2, 4)),
        (2, 2, 2, 3, (5, 3), slice(1, 2)),  # offsets that shift past the image
        (4, 6, 14, 14, (3, 3), slice(3, 6)),
    ],
)
def test_same_conv_columns_twins_agree_exactly(
    dtype, channels, batch, h, w, kernel, chunk
):
    """im2col and col2im of a stride-1 "same" conv on channel-major images: both
    twins against each other and against the definition (windows of the padded
    images; col2im is im2col's adjoint)."""
    (kh, kw), n = kernel, chunk.stop - chunk.start
    ph, pw, size, start = (kh - 1) // 2, (kw - 1) // 2, n * h * w, chunk.start * h * w
    (images,) = random_arrays(12, dtype, (channels, batch * h * w))

    def im2col_args():
        return [
            images,
            start,
            np.full((channels, kh, kw, size), 7, dtype),
            h,
            w,
            ph,
            pw,
        ]

    (_, cols), _ = both_twins(im2col_same, im2col_args)
    x = images[:, start : start + size].reshape(channels, n, h, w)
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    for i, j in np.ndindex(kh, kw):
        window = padded[:, :, i : i + h, j : j + w].reshape(channels, size)
        assert_array_equal(cols[:, i, j], window)

    (dcols,) = random_arrays(13, dtype, (channels, kh, kw, size))

    def col2im_args():
        dx = np.full((channels, batch * h * w), 5, dtype)
        return [dcols.copy(), dx, start, h, w, ph, pw]

    (_, dx), _ = both_twins(col2im_same, col2im_args, outputs=[1])
    outside = np.ones(batch * h * w, bool)
    outside[start : start + size] = False
    assert (dx[:, outside] == 5).all()  # other images' gradients are left alone
    # <im2col(x), dcols> = <x, col2im(dcols)>, in float64
    inner = np.sum(cols.astype(np.float64) * dcols)
    assert_allclose(
        inner,
        np.sum(x.reshape(channels, size) * dx[:, ~outside], dtype=np.float64),
        rtol=1e-4,
    )


@pytest.mark.parametrize("dtype", FLOATS)
def test_scale_pixels_twins_agree_exactly(dtype):
    pixels = np.arange(256, dtype=np.uint8).reshape(4, 8, 8)

    def args():
        return [pixels, np.dtype(dtype).type(1 / 255), np.empty(pixels.shape, dtype)]

    (_, out), _ = both_twins(scale_pixels, args)
    assert out[0, 0, 0] == 0 and out[-1, -1, -1] == 1
    assert_array_equal(out, np.multiply(pixels, 1 / 255, dtype=dtype))


@pytest.mark.parametrize("dtype", FLOATS)
def test_take_scaled_twins_agree_exactly(dtype):
    pixels = np.random.default_rng(0).integers(0, 256, (30, 49), dtype=np.uint8)
    rows = np.array([29, 0, 7, 7, 13])  # any rows, in any order, even twice

    def args():
        return [pixels, rows, np.dtype(dtype).type(1 / 255), np.empty((5, 49), dtype)]

    (_, _, out), _ = both_twins(take_scaled, args)
    assert_array_equal(out, np.multiply(pixels[rows], 1 / 255, dtype=dtype))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("n, c", [(1, 2), (5, 10), (128, 10)])
def test_softmax_cross_entropy_twins_agree(dtype, n, c):

    labels = np.random.default_rng(10).integers(0, c, n)

    def forward_args():
        (logits,) = random_arrays(11, dtype, (n, c))
        logits[0] *= 300  # large logits: exp of the shifted ones cannot overflow
        return [logits, labels, np.empty_like(logits)]

    (_, _, probs), _ = both_twins(softmax_cross_entropy, forward_args, exact=False)
    assert_allclose(probs.sum(axis=1), 1, **tolerance(dtype))

    def backward_args():
        return [probs.copy(), labels, np.dtype(dtype).type(1 / n), np.empty_like(probs)]

    both_twins(softmax_cross_entropy_backward, backward_args, outputs=[2])


POOLS = [  # (kh, kw, sh, sw) on images (H, W)
    ((2, 2, 2, 2), (8, 10)),  # the common case: windows side by side
    ((2, 2, 2, 2), (7, 7)),  # floor mode leaves the last row and column out
    ((3, 2, 3, 2), (9, 7)),  # side by side, not 2x2
    ((3, 3, 2, 2), (9, 9)),  # overlapping
    ((2, 3, 1, 2), (6, 7)),  # overlapping along one axis, gaps along none
    ((2, 2, 3, 3), (8, 8)),  # gaps between windows
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("window, size", POOLS)
@pytest.mark.parametrize("relu", [False, True])  # ReLU after it, fused (nn.fusion)
def test_max_pool_twins_agree_exactly(dtype, window, size, relu):

    kh, kw, sh, sw = window
    ho, wo = (size[0] - kh) // sh + 1, (size[1] - kw) // sw + 1
    rng = np.random.default_rng(12)
    x = rng.integers(-2, 3, (3, 4, *size)).astype(dtype)  # many ties
    x[0, 0, 1, 1], x[2, 3, 0, 0] = np.nan, np.nan  # the first NaN of a window wins

    def forward_args():
        y = np.empty((3, 4, ho, wo), dtype)
        return [x.copy(), y, np.empty(y.shape, np.uint8), 0, *window, relu]

    (_, y, winner), _ = both_twins(max_pool_forward, forward_args)
    assert np.isnan(y[0, 0]).any() and winner.max() < kh * kw
    assert not (relu and (y < 0).any())
    (dy,) = random_arrays(13, dtype, y.shape)

    def backward_args():  # dx starts as garbage: the kernels must overwrite it all
        return [dy, y, relu, winner, 0, np.full(x.shape, 7, dtype), *window]

    tiled = (kh, kw) == (sh, sw)
    both_twins(max_pool_backward, backward_args, exact=tiled, outputs=[3])

    # images 1..2 of x into places 2..3 of a larger y (a chunk, nn.fusion.ConvPool)
    part = x[:, 1:3]

    def chunk_forward_args():
        y = np.full((3, 6, ho, wo), 5, dtype)
        return [part.copy(), y, np.zeros(y.shape, np.uint8), 2, *window, relu]

    (_, y_chunk, winner_chunk), _ = both_twins(max_pool_forward, chunk_forward_args)
    assert_array_equal(y_chunk[:, 2:4], y[:, 1:3])
    assert (y_chunk[:, [0, 1, 4, 5]] == 5).all()  # the other images are left alone
    padded = np.zeros((3, 6, ho, wo), dtype)
    padded[:, 2:4] = dy[:, 1:3]

    def chunk_backward_args():
        dx = np.full(part.shape, 7, dtype)
        return [padded, y_chunk, relu, winner_chunk, 2, dx, *window]

    (*_, dx_chunk), _ = both_twins(
        max_pool_backward, chunk_backward_args, exact=tiled, outputs=[3]
    )
    (*_, dx_whole), _ = both_twins(
        max_pool_backward, backward_args, exact=tiled, outputs=[3]
    )
    assert_allclose(dx_chunk, dx_whole[:, 1:3], rtol=1e-6)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("window, size", POOLS)
def test_avg_pool_twins_agree(dtype, window, size):

    kh, kw, sh, sw = window
    ho, wo = (size[0] - kh) // sh + 1, (size[1] - kw) // sw + 1
    scale = np.dtype(dtype).type(1 / (kh * kw))
    (x,) = random_arrays(14, dtype, (2, 3, *size))

    def forward_args():
        return [x, np.empty((2, 3, ho, wo), dtype), scale, *window]

    (_, y), _ = both_twins(avg_pool_forward, forward_args, outputs=[1])
    (dy,) = random_arrays(15, dtype, y.shape)

    def backward_args():
        return [dy, np.full(x.shape, 7, dtype), scale, *window]

    tiled = (kh, kw) == (sh, sw)
    both_twins(avg_pool_backward, backward_args, exact=tiled, outputs=[1])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("shape", [(6, 3, 1), (4, 5, 49), (3, 2, 1000)])
def test_batch_norm_twins_agree(dtype, shape):

    c = shape[1]
    x, dy = random_arrays(16, dtype, shape, shape)
    x += 3.0  # a mean far from 0, as after a layer with a bias

    def statistics_args():
        return [x, np.empty(c, dtype), np.empty(c, dtype)]

    (_, mean, var), _ = both_twins(bn.batch_statistics, statistics_args, exact=False)
    assert_allclose(mean, x.mean(axis=(0, 2)), **tolerance(dtype))
    assert_allclose(var, x.var(axis=(0, 2)), **tolerance(dtype))
    scale, shift, coefficient, mean_dy = random_arrays(17, dtype, *[(c,)] * 4)

    def scale_shift_args():
        return [x, scale, shift, np.empty_like(x)]

    both_twins(bn.scale_shift, scale_shift_args, outputs=[3])

    def sums_args():
        return [dy, x, mean, np.empty(c, dtype), np.empty(c, dtype)]

    both_twins(bn.gradient_sums, sums_args, exact=False, outputs=[3, 4])

    def dx_args():
        return [dy, x, mean, coefficient, mean_dy, scale, np.empty_like(x)]

    both_twins(bn.batch_norm_dx, dx_args, outputs=[6])


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("channel", [0, 1])
@pytest.mark.parametrize("size", [(6, 8), (7, 5)])  # (7, 5): rows, columns left out
@pytest.mark.parametrize("relu", [False, True])
def test_norm_max_pool_twins_agree(dtype, channel, size, relu):
    """Batch norm then 2x2 max pooling (then ReLU), fused: forward and dx exactly,
    the sums to float tolerance; ties, a NaN, and floor mode's left-out rows and
    columns."""
    rng = np.random.default_rng(19)
    shape = (3, 4, *size)
    c = shape[channel]
    x = rng.integers(-2, 3, shape).astype(dtype)  # ties after scale and shift too
    x[1, 2, 0, 1] = np.nan
    scale, shift, mean, coefficient, mean_dy = random_arrays(20, dtype, *[(c,)] * 5)
    pooled = (3, 4, size[0] // 2, size[1] // 2)

    def forward_args():
        return [x, scale, shift, channel, relu, np.empty(pooled, dtype),
                np.empty(pooled, np.uint8)]  # fmt: skip

    (_, _, _, y, winner), _ = both_twins(npk.norm_max_pool_forward, forward_args)
    assert np.isnan(y).sum() == 1 and winner.max() <= 3
    assert (y < 0).any() != relu
    (dy,) = random_arrays(21, dtype, pooled)
    x_finite = np.nan_to_num(x)

    def sums_args():
        return [dy, y, relu, winner, x_finite, mean, channel, np.empty(c, dtype),
                np.empty(c, dtype)]  # fmt: skip

    both_twins(npk.norm_max_pool_sums, sums_args, exact=False, outputs=[5, 6])

    def dx_args():  # dx starts as garbage: the kernels must overwrite it all
        return [dy, y, relu, winner, x_finite, mean, channel, coefficient, mean_dy,
                scale, np.full(shape, 7, dtype)]  # fmt: skip

    both_twins(npk.norm_max_pool_dx, dx_args, outputs=[8])


@pytest.mark.parametrize("center", [1e4, -3e5])
def test_batch_statistics_in_one_pass_keep_a_small_spread_around_a_large_mean(center):
    """The compiled twin sums x - (the channel's first value) and its square in one
    pass: a mean 1e4 or 3e5 times the spread must not cancel the variance away."""
    rng = np.random.default_rng(18)
    x = (center + rng.standard_normal((64, 3, 50))).astype(np.float32)
    mean, var = np.empty(3, np.float32), np.empty(3, np.float32)
    bn.batch_statistics.numba(x, mean, var)
    exact = x.astype(np.float64)
    assert_allclose(mean, exact.mean(axis=(0, 2)), rtol=1e-7)
    assert_allclose(var, exact.var(axis=(0, 2)), rtol=1e-5)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("displaced", [False, True])
def test_affine_bilinear_twins_agree(dtype, displaced):
    """Points inside, on the edges and far outside (large shifts and scales)."""
    n, h, w = 6, 9, 7
    rng = np.random.default_rng(16)
    images = rng.random((n, h, w)).astype(dtype)
    theta = rng.uniform(-np.pi, np.pi, n)
    scale = rng.uniform(0.3, 2.0, n)
    cos, sin = (
        (np.cos(theta) / scale).astype(dtype),
        (np.sin(theta) / scale).astype(dtype),
    )
    shift_y, shift_x = rng.uniform(-12, 12, (2, n)).astype(dtype)
    shift_y[0] = shift_x[0] = 0  # one identity-like map: exact pixel centres
    cos[0], sin[0] = 1, 0
    field = rng.normal(0, 2, (n, 2, h, w)).astype(dtype)

    def args():
        displacement = field if displaced else np.zeros((0, 2, 0, 0), dtype)
        out = np.full((n, h, w), 7, dtype)
        return [images, out, cos, sin, shift_y, shift_x, displacement, displaced]

    (_, out, *_), _ = both_twins(affine_bilinear, args, exact=False, outputs=[1])
    if not displaced:
        assert_array_equal(out[0], images[0])  # no shift, turn or scale: the image
    assert 0 <= out.min() and out.max() <= 1  # lerps stay within the pixels' range
    assert (out == 0).any()  # points outside read the zero background


def test_every_kernel_has_a_compiled_twin_and_a_test():
    tested = {
        "_adam_step", "_sgd_step", "_rmsprop_step", "_relu", "_relu_backward",
        "_softmax_cross_entropy", "_softmax_cross_entropy_backward",
        "_max_pool_forward", "_max_pool_backward", "_avg_pool_forward",
        "_avg_pool_backward", "_batch_statistics", "_scale_shift", "_gradient_sums",
        "_batch_norm_dx", "_affine_bilinear", "_norm_max_pool_forward",
        "_norm_max_pool_sums", "_norm_max_pool_dx", "_bias_relu",
        "_relu_bias_backward", "_im2col_same", "_col2im_same", "_scale_pixels",
        "_take_scaled",
    }  # fmt: skip
    defined = package.kernels()
    assert {k.__name__ for k in defined} == tested
    assert all(k.loops is not None for k in defined)


def small_models(dtype, seed=0):
    """An MLP and a conv net with batch norm and both poolings, as (model, optimizer)
    factories (each call makes the same untrained model)."""

    def mlp():
        layers = [nn.Flatten(), nn.Dense(16, dtype=dtype), nn.ReLU(),
                  nn.Dense(12, dtype=dtype), nn.ReLU(), nn.Dense(3, dtype=dtype)]  # fmt: skip
        return nn.Sequential(layers, input_shape=(6, 6), seed=seed), nn.Adam(1e-2)

    def conv():
        layers = [
            nn.Reshape((1, 6, 6)), nn.Conv2D(4, 3, padding=1, dtype=dtype),
            nn.BatchNorm(dtype=dtype), nn.MaxPool2D(2), nn.ReLU(),
            nn.Conv2D(5, 2, dtype=dtype), nn.AvgPool2D(2), nn.Flatten(),
            nn.Dense(8, dtype=dtype), nn.BatchNorm(dtype=dtype), nn.ReLU(),
            nn.Dense(3, dtype=dtype),
        ]  # fmt: skip
        return nn.Sequential(layers, input_shape=(6, 6), seed=seed), nn.SGD(
            0.05, momentum=0.9, nesterov=True
        )

    return {"mlp": mlp, "conv": conv}


def train_a_few_steps(make, dtype, backend, steps=4):

    rng = np.random.default_rng(20)
    x = rng.random((steps * 8, 6, 6)).astype(dtype)
    y = rng.integers(0, 3, steps * 8)
    with using(backend):
        model, optimizer = make()
        history = model.fit(
            x, y, epochs=2, batch_size=8, optimizer=optimizer, verbose=0, seed=1
        )
    return model.flat_params.copy(), history.history["loss"]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("net", ["mlp", "conv"])
def test_training_steps_agree_on_both_twins(net, dtype):
    make = small_models(dtype)[net]
    weights_numpy, losses_numpy = train_a_few_steps(make, dtype, "numpy")
    weights_numba, losses_numba = train_a_few_steps(make, dtype, "numba")
    assert weights_numba.dtype == dtype
    if dtype == np.float32:  # rounding differences, carried through 8 steps
        assert_allclose(weights_numba, weights_numpy, rtol=1e-4, atol=1e-5)
        assert_allclose(losses_numba, losses_numpy, rtol=1e-5)
    else:
        assert_allclose(weights_numba, weights_numpy, rtol=1e-9, atol=1e-11)
        assert_allclose(losses_numba, losses_numpy, rtol=1e-11)


@pytest.mark.parametrize("net", ["mlp", "conv"])
def test_compiled_training_repeats_bit_for_bit(net):
    make = small_models(np.float32)[net]
    first, losses = train_a_few_steps(make, np.float32, "numba")
    again, losses_again = train_a_few_steps(make, np.float32, "numba")
    assert_array_equal(first, again)
    assert losses == losses_again


def test_choosing_the_twins_in_python_and_by_environment(monkeypatch):

    before = backend()
    with using("numpy"):
        assert backend() == "numpy"
        with using("numba"):
            assert backend() == "numba"
        assert backend() == "numpy"
    assert backend() == before
    with pytest.raises(NnscratchError, match="kernels: expected one of numba, numpy"):
        use("cuda")
    monkeypatch.setattr(dispatch, "_backend", None)  # as at the start of a process
    monkeypatch.setenv("NNSCRATCH_KERNELS", " NumPy ")
    assert backend() == "numpy"
    monkeypatch.setattr(dispatch, "_backend", None)
    monkeypatch.setenv("NNSCRATCH_KERNELS", "fortran")
    with pytest.raises(NnscratchError, match="NNSCRATCH_KERNELS: expected one of"):
        backend()
    # as itself when a model is built (every CLI command), not as a layer that
    # "does not take input (N, 1, 28, 28)"
    with pytest.raises(NnscratchError, match="^NNSCRATCH_KERNELS: expected one of"):
        small_models(np.float32)["conv"]()
    monkeypatch.setattr(dispatch, "_backend", before)


def test_importing_nnscratch_compiles_nothing():
    # numba takes ~0.2 s to import: only a kernel's first call may import it

    code = (
        "import sys, nnscratch, nnscratch.cli; from nnscratch.nn.kernels import "
        "backend; assert 'numba' not in sys.modules, 'numba imported'; "
        "print(backend())"
    )
    env = {**os.environ, "NNSCRATCH_KERNELS": "numpy"}
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "numpy"


def test_compile_seconds_count_compiling_only(monkeypatch, tmp_path):
    # a kernel compiled now counts; the same loops loaded from numba's cache do not
    import numba

    monkeypatch.setattr(numba.config, "CACHE_DIR", str(tmp_path))  # a cold cache
    monkeypatch.setattr(dispatch, "_kernels", list(dispatch._kernels))
    monkeypatch.setattr(dispatch, "_compile_seconds", 0.0)

    def loops(x):
        return x.sum() * 2.0

    with using("numba"):
        assert dispatch.Kernel(np.sum).compiled(loops)(np.ones(3)) == 6.0
        counted = dispatch.compile_seconds()
        assert counted > 0
        assert dispatch.Kernel(np.sum).compiled(loops)(np.ones(3)) == 6.0
    assert dispatch.compile_seconds() == counted
