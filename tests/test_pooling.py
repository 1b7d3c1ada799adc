"""Pooling: forward against loops, gradients against central differences, ties."""

import numpy as np
import pytest
from gradcheck import check_layer_grads
from numpy.testing import assert_allclose, assert_array_equal

from nnscratch.errors import NnscratchError
from nnscratch.nn.pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from nnscratch.nn.registry import LAYERS


def naive_pool(x, pool, stride, reduce):
    (kh, kw), (sh, sw) = pool, stride
    ho, wo = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
    y = np.zeros(x.shape[:2] + (ho, wo))
    for r in range(ho):
        for s in range(wo):
            window = x[:, :, r * sh : r * sh + kh, s * sw : s * sw + kw]
            y[:, :, r, s] = reduce(window, axis=(2, 3))
    return y


POOL_CASES = [
    # (pool, stride, H x W): tiled fast path first, then overlapping / ragged ones
    (2, None, (4, 6)),
    ((2, 3), None, (4, 6)),
    (2, None, (5, 7)),
    ((2, 3), None, (7, 8)),  # side by side, floor mode leaves 1 row and 2 columns out
    (3, 2, (7, 6)),
    (2, 1, (4, 5)),
    ((3, 1), (1, 2), (5, 4)),
]


@pytest.mark.parametrize("pool, stride, hw", POOL_CASES)
@pytest.mark.parametrize("cls, reduce", [(MaxPool2D, np.max), (AvgPool2D, np.mean)])
def test_pooling_forward_and_gradients(cls, reduce, pool, stride, hw):
    rng = np.random.default_rng(5)
    layer = cls(pool, stride)
    # distinct values, so max pooling has no ties for the finite differences to trip on
    x = rng.permutation(2 * 3 * hw[0] * hw[1]).reshape(2, 3, *hw) / 7.0
    assert_allclose(
        layer.forward(x), naive_pool(x, layer.pool_size, layer.stride, reduce)
    )
    check_layer_grads(layer, x)


@pytest.mark.parametrize("stride", [None, 1])
def test_max_pool_ties_go_to_the_first_maximum(stride):
    layer = MaxPool2D(2, stride)
    x = np.array([[[[1.0, 3.0, 3.0], [3.0, 3.0, 0.0], [2.0, 3.0, 3.0]]]])
    y = layer.forward(x, training=True)
    dy = np.arange(1.0, y.size + 1).reshape(y.shape)
    dx = layer.backward(dy)
    if stride is None:  # one window: [[1, 3], [3, 3]]; row-major first 3 is (0, 1)
        expected = [[0, 1, 0], [0, 0, 0], [0, 0, 0]]
    else:  # four overlapping windows, maxima at (0,1), (0,1), (1,0), (1,1)
        expected = [[0, 1 + 2, 0], [3, 4, 0], [0, 0, 0]]
    assert_array_equal(dx[0, 0], expected)


def test_max_pool_ties_in_wide_windows():
    # every value equal: each window's gradient goes to its top-left element only
    layer = MaxPool2D(3, 2)
    x = np.ones((1, 2, 5, 5))
    dy = np.array([[1.0, 2.0], [3.0, 4.0]]) * np.ones((1, 2, 1, 1))
    layer.forward(x, training=True)
    dx = layer.backward(dy)
    expected = np.zeros((5, 5))
    expected[0:3:2, 0:3:2] = [[1, 2], [3, 4]]
    assert_array_equal(dx[0, 1], expected)


def test_max_pool_ties_in_side_by_side_windows_three_wide():
    # windows that tile the row, three wide: equal values send all to the first of each
    layer = MaxPool2D((2, 3))
    x = np.ones((2, 1, 2, 6), dtype=np.float32)
    dy = np.array([[5.0, 7.0]], dtype=np.float32) * np.ones((2, 1, 1, 1), np.float32)
    layer.forward(x, training=True)
    dx = layer.backward(dy)
    expected = np.zeros((2, 6), np.float32)
    expected[0, [0, 3]] = [5, 7]
    assert_array_equal(dx[1, 0], expected)


def test_pooling_is_float32_and_rejects_bad_input():
    x = np.random.default_rng(6).random((2, 3, 6, 6), dtype=np.float32)
    for layer in (MaxPool2D(), AvgPool2D(3), GlobalAvgPool2D()):
        y = layer.forward(x, training=True)
        assert y.dtype == np.float32
        assert layer.backward(np.ones_like(y)).dtype == np.float32
        with pytest.raises(
            NnscratchError, match=r"expected \(N, C, H, W\), got \(6, 6\)"
        ):
            layer.forward(x[0, 0])
    with pytest.raises(NnscratchError, match="smaller than the 3x3 pool"):
        MaxPool2D(3).forward(x[:, :, :2])
    assert MaxPool2D((2, 3), 1).get_config() == {"pool_size": [2, 3], "stride": 1}
    assert LAYERS["AvgPool2D"](**AvgPool2D(3).get_config()).stride == (3, 3)


def test_global_avg_pool():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 4, 5, 2))
    layer = GlobalAvgPool2D()
    assert_allclose(layer.forward(x), x.mean(axis=(2, 3)))
    check_layer_grads(layer, x)


def test_pooling_layers_load_by_name_and_from_their_old_module():
    # saved models name the class only; code written before pooling.py imported
    # the layers from nnscratch.conv
    from nnscratch.nn.pooling import MaxPool2D as OldMaxPool2D

    assert OldMaxPool2D is MaxPool2D
    for cls in (MaxPool2D, AvgPool2D, GlobalAvgPool2D):
        assert LAYERS[cls.__name__] is cls
