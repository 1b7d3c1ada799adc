"""Channel-major batches (nnscratch.nn.layout): every layer on images gives the same
values whichever layout its input and gradient come in, and lays its output and input
gradient out like its input, so that a conv stack never copies a batch between
layouts."""

import numpy as np
import pytest
from gradcheck import check_model_grads
from numpy.testing import assert_allclose

from nnscratch import Sequential
from nnscratch.nn.activations import LeakyReLU, ReLU, Sigmoid, Tanh
from nnscratch.nn.conv import Conv2D
from nnscratch.nn.dense import Dense
from nnscratch.nn.dropout import Dropout
from nnscratch.nn.kernels import using
from nnscratch.nn.layout import channel_major, is_channel_major, memory_order
from nnscratch.nn.normalization import BatchNorm
from nnscratch.nn.pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from nnscratch.nn.reshape import Flatten, Reshape
from nnscratch.nn.workspace import Workspace


def channel_major_copy(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


def test_the_two_layouts_are_told_apart():
    a = np.zeros((4, 3, 5, 6), np.float32)
    b = channel_major_copy(a)
    assert not is_channel_major(a) and is_channel_major(b)
    assert np.shares_memory(channel_major(b), b)  # a view
    assert channel_major(a).flags.c_contiguous and channel_major(a).shape == (
        3,
        4,
        5,
        6,
    )
    assert not is_channel_major(a[:, :, ::2])  # strided: neither layout
    # with N or C of 1 both layouts are one: such arrays count as C order
    assert not is_channel_major(channel_major_copy(np.zeros((1, 3, 2, 2))))


def test_memory_order_is_a_view_in_either_layout():
    a = np.arange(2 * 3 * 2 * 2, dtype=np.float32).reshape(2, 3, 2, 2)
    b = channel_major_copy(a)
    assert memory_order(a) is a and np.shares_memory(memory_order(b), b)
    assert memory_order(b).flags.c_contiguous
    assert_allclose(np.sort(memory_order(b)), memory_order(a).reshape(-1))
    strided = a[:, ::2]
    assert_allclose(memory_order(strided), strided)


def test_workspace_like_keeps_the_layout_and_in_layout_of_copies_only_when_needed():
    ws = Workspace()
    b = channel_major_copy(np.ones((4, 3, 2, 2)))
    assert is_channel_major(ws.like("y", b))
    assert is_channel_major(ws.like("p", b, shape=(4, 3, 1, 1)))
    assert ws.like("z", np.ones((4, 3, 2, 2))).flags.c_contiguous
    assert ws.in_layout_of("d", b, b) is b
    copy = ws.in_layout_of("d", np.full((4, 3, 2, 2), 2.0), b)
    assert is_channel_major(copy) and np.all(copy == 2)


LAYERS = {
    "MaxPool2D": lambda: MaxPool2D(2),
    "MaxPool2D 3x3 stride 2": lambda: MaxPool2D(3, stride=2),
    "AvgPool2D": lambda: AvgPool2D(2),
    "GlobalAvgPool2D": GlobalAvgPool2D,
    "BatchNorm": lambda: BatchNorm(3, dtype=np.float64),
    "ReLU": ReLU,
    "LeakyReLU": lambda: LeakyReLU(0.1),
    "Sigmoid": Sigmoid,
    "Tanh": Tanh,
    "Flatten": Flatten,
    "Dropout": lambda: Dropout(0.5, rng=0),
    "Conv2D": lambda: Conv2D(3, 4, 3, padding=1, rng=0, dtype=np.float64),
}


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
@pytest.mark.parametrize("name", LAYERS)
@pytest.mark.parametrize("training", [True, False], ids=["training", "inference"])
def test_a_layer_gives_the_same_values_in_either_layout(name, training, kernels):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3, 6, 6))
    x[0, 0, 0, :2] = 1.0  # a tie for max pooling
    results = []
    with using(kernels):
        for x_in, dy_layout in [
            (x, np.asarray),
            (channel_major_copy(x), channel_major_copy),
            (channel_major_copy(x), np.asarray),  # dy in another layout than y
        ]:
            layer = LAYERS[name]()
            y = layer.forward(x_in, training=training)
            dy = np.cos(np.arange(y.size)).reshape(y.shape)
            if y.ndim == 4:
                assert is_channel_major(y) == (
                    is_channel_major(x_in) or isinstance(layer, Conv2D)
                ), "the output keeps the input's layout (a conv's is channel-major)"
                dy = dy_layout(dy)
            dx = layer.backward(dy)
            if dy_layout is not np.asarray or not is_channel_major(x_in):
                # as in a stack, where dy comes from a layer that keeps this rule too
                assert is_channel_major(dx) == is_channel_major(x_in), (
                    "dx laid out like x"
                )
            grads = {k: g.copy() for k, g in layer.grads.items()}
            results.append((y.copy(), dx.copy(), grads))
    (y0, dx0, g0), *others = results
    for y, dx, grads in others:
        assert_allclose(y, y0, rtol=1e-12, atol=1e-12)
        assert_allclose(dx, dx0, rtol=1e-12, atol=1e-12)
        for key, g in grads.items():
            assert_allclose(g, g0[key], rtol=1e-12, atol=1e-12, err_msg=key)


def test_a_conv_stack_passes_channel_major_batches_and_its_gradients_check_out():
    """Two convs (the second reading the first's channel-major output), batch norm,
    both poolings, activations, Flatten: the whole model's gradient in float64
    against central differences."""
    rng = np.random.default_rng(3)
    dtype = np.float64
    model = Sequential(
        [
            Reshape((1, 8, 8)),
            Conv2D(1, 3, 3, padding=1, rng=rng, dtype=dtype),
            BatchNorm(3, dtype=dtype),
            ReLU(),
            MaxPool2D(2),
            Conv2D(3, 4, 3, padding=1, rng=rng, dtype=dtype),
            Tanh(),
            AvgPool2D(2),
            Conv2D(4, 2, (2, 1), stride=(1, 1), rng=rng, dtype=dtype),
            Flatten(),
            Dense(2 * 1 * 2, 3, rng=rng, dtype=dtype),
        ],
        input_shape=(8, 8),
    )
    for layer in model.layers:
        for p in layer.params.values():
            if p.ndim == 1:
                p[...] = rng.uniform(0.5, 1.5, p.shape)
    x = rng.standard_normal((4, 8, 8))
    y = np.array([0, 1, 2, 1])
    a = x
    for layer in model.layers[:9]:
        a = layer.forward(a)
        assert is_channel_major(a) == (layer is not model.layers[0]), layer
    check_model_grads(model, x, y, training=True)
