"""The speed tricks of nn/kernels.py against NumPy's plain reductions, and Workspace."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from nnscratch.nn.kernels import (
    channel_dot,
    channel_sum,
    column_sum,
    ones,
    row_max,
    row_sum,
    zeros,
)
from nnscratch.nn.kernels.reductions import relu
from nnscratch.nn.workspace import Workspace


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
