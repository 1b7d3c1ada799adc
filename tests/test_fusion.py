"""nn.fusion: a network runs BatchNorm followed by 2x2 MaxPool2D as one step, with
the numbers the two layers give one after the other (forward exactly, gradients to
float32 rounding), in training and in evaluation, frozen or not, in either layout."""

import itertools

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from nnscratch import (
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    MaxPool2D,
    ReLU,
    Reshape,
    Sequential,
)
from nnscratch.nn import im2col
from nnscratch.nn.fusion import NormPool
from nnscratch.nn.kernels import using


def block(size: int, pool=None, relu_first: bool = False) -> Sequential:
    pool = MaxPool2D(2) if pool is None else pool
    middle = [ReLU(), pool] if relu_first else [pool, ReLU()]
    pooled = (size - pool.pool_size[0]) // pool.stride[0] + 1
    return Sequential(
        [
            Reshape((1, size, size)),
            Conv2D(1, 3, 3, padding=1, rng=0),
            BatchNorm(3),
            *middle,
            Flatten(),
            Dense(3 * pooled**2, 4, rng=1),
        ],
        input_shape=(size, size),
        loss="cross_entropy",
    )


def steps(model) -> list[str]:
    return [type(step).__name__ for step in model._execution_order()]


def test_batch_norm_then_2x2_max_pooling_is_one_step():
    model = block(8)  # conv - BN - pool - ReLU: the three are one step
    assert steps(model) == ["Reshape", "Conv2D", "NormPool", "Flatten", "Dense"]
    assert model._execution_order()[2].layers == tuple(model.layers[2:5])
    # ReLU then pooling commutes first (nn.commute), then fuses
    assert "NormPool" in steps(block(8, relu_first=True))
    # other pools are left alone by batch norm; a max pooling and its ReLU join
    for pool in (MaxPool2D(3), MaxPool2D(2, stride=1)):
        assert "NormPool" not in steps(block(9, pool))
        assert "PoolReLU" in steps(block(9, pool))
    assert {"NormPool", "PoolReLU"}.isdisjoint(steps(block(9, AvgPool2D(2))))


def layer_by_layer(model, x, y, training):
    """Forward and backward through the listed layers one after the other."""
    a = x
    for layer in model.layers:
        a = layer.forward(a, training=training)
    loss = model.loss.forward(a, y)
    g = model.loss.backward()
    for layer in model.layers[:0:-1]:
        g = layer.backward(g)
    return a.copy(), loss, g


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
@pytest.mark.parametrize("size", [8, 7])  # 7: a row and a column left out by pooling
@pytest.mark.parametrize(
    "training, frozen", [(True, False), (True, True), (False, False)]
)
def test_the_fused_step_gives_the_layers_numbers(kernels, size, training, frozen):
    rng = np.random.default_rng(size)
    x = rng.integers(0, 256, (16, size, size)).astype(np.float32) / 255
    y = rng.integers(0, 4, 16)
    results = []
    with using(kernels):
        for fused in (True, False):
            model = block(size)
            model.layers[2].params["gamma"][:] = [1.5, -0.5, 0.8]  # one flips the max
            model.layers[2].trainable = not frozen
            model._bind()
            if fused:
                outputs = model.forward(x, training=training)
                loss = model.loss.forward(outputs, y)
                model.backward(model.loss.backward())
                outputs = outputs.copy()
            else:
                outputs, loss, _ = layer_by_layer(model, x, y, training)
            norm = model.layers[2]
            state = [a.copy() for a in norm.state.values()]
            results.append((outputs, loss, model.flat_grads.copy(), state))
    (out_f, loss_f, grads_f, state_f), (out_l, loss_l, grads_l, state_l) = results
    assert_array_equal(out_f, out_l)
    assert loss_f == loss_l
    for a, b in zip(state_f, state_l):
        assert_array_equal(a, b)  # running statistics updated alike
    assert_allclose(grads_f, grads_l, rtol=1e-4, atol=1e-6)
    assert np.abs(grads_f).max() > 0


def test_the_input_gradient_matches_too_in_either_layout():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((6, 3, 7, 6)).astype(np.float32)
    layouts = {
        "C order": x,
        "channel-major": np.ascontiguousarray(x.transpose(1, 0, 2, 3)).transpose(
            1, 0, 2, 3
        ),
    }
    dy = rng.standard_normal((6, 3, 3, 3)).astype(np.float32)
    for inputs, relu in itertools.product(layouts.values(), (False, True)):
        layers = [BatchNorm(3), MaxPool2D(2)] + ([ReLU()] if relu else [])
        a = inputs
        for layer in layers:
            a = layer.forward(a, training=True)
        want_y, g = a.copy(), dy
        for layer in layers[::-1]:
            g = layer.backward(g)
        want_dx, norm = g.copy(), layers[0]
        want_grads = {k: g.copy() for k, g in norm.grads.items()}
        step = NormPool(BatchNorm(3), MaxPool2D(2), ReLU() if relu else None)
        assert_array_equal(step.forward(inputs, training=True), want_y)
        assert_allclose(step.backward(dy), want_dx, rtol=1e-5, atol=1e-6)
        for key, g in step.norm.grads.items():
            assert_allclose(g, want_grads[key], rtol=1e-5, atol=1e-6)


def test_another_dtype_than_batch_norms_runs_the_two_layers_in_turn():
    step = NormPool(BatchNorm(3), MaxPool2D(2))  # float32 parameters
    x = np.random.default_rng(4).standard_normal((4, 3, 4, 4))  # float64
    step.forward(x.astype(np.float32), training=True)
    y = step.forward(x, training=True)
    assert y.shape == (4, 3, 2, 2) and not step._fused
    assert step.backward(np.ones_like(y)).shape == x.shape


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
@pytest.mark.parametrize("pool", [(2, 2), (3, 2), (3, 1)])  # (size, stride)
def test_max_pooling_and_relu_as_one_step_give_the_layers_numbers(kernels, pool):
    """lenet-like's conv - max pool - ReLU: the fused PoolReLU against the layers."""
    size, stride = pool
    rng = np.random.default_rng(5)
    x = rng.integers(0, 256, (8, 9, 9)).astype(np.float32) / 255
    y = rng.integers(0, 4, 8)
    pooled = (9 - size) // stride + 1

    def model():
        return Sequential(
            [
                Reshape((1, 9, 9)),
                Conv2D(1, 3, 3, padding=1, rng=0),
                MaxPool2D(size, stride=stride),
                ReLU(),
                Flatten(),
                Dense(3 * pooled**2, 4, rng=1),
            ],
            input_shape=(9, 9), loss="cross_entropy",
        )  # fmt: skip

    step = "ConvPool" if size == stride else "PoolReLU"  # windows side by side
    with using(kernels):
        (out_f, grads_f), (out_l, grads_l) = fused_then_layers(model, step, x, y)
    assert_array_equal(out_f, out_l)
    for name, grad in grads_l.items():  # the same operations: the same bits
        assert_array_equal(grads_f[name], grad, err_msg=name)


def two_conv_blocks(relu: bool, pool=2) -> Sequential:
    """lenet-like in small: (conv - max pool - [ReLU]) twice, then Dense."""

    def tail():
        return [ReLU()] if relu else []

    return Sequential(
        [
            Reshape((1, 8, 8)),
            Conv2D(1, 3, 3, padding=1, rng=0), MaxPool2D(pool), *tail(),
            Conv2D(3, 4, 3, padding=1, rng=1), MaxPool2D(2), *tail(),
            Flatten(),
            Dense(4 * (8 // pool // 2) ** 2, 5, rng=2),
        ],
        input_shape=(8, 8), loss="cross_entropy",
    )  # fmt: skip


def test_conv_then_tiled_max_pooling_is_one_step():
    assert steps(two_conv_blocks(True)) == [
        "Reshape", "ConvPool", "ConvPool", "Flatten", "Dense"
    ]  # fmt: skip
    model = two_conv_blocks(False)
    assert steps(model)[1:3] == ["ConvPool", "ConvPool"]
    assert model._execution_order()[1].layers == tuple(model.layers[1:3])
    overlapping = Sequential(
        [Reshape((1, 8, 8)), Conv2D(1, 2, 3, rng=0), MaxPool2D(3, stride=2)],
        input_shape=(8, 8),
    )
    assert steps(overlapping) == ["Reshape", "Conv2D", "MaxPool2D"]


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("chunk", [None, 3])  # images per im2col chunk (None: all)
def test_conv_and_pooling_as_one_step_give_the_layers_numbers(
    kernels, relu, chunk, monkeypatch
):
    """Chunk by chunk (the last chunk smaller), the pooled map and every gradient
    are the layers' bits, in training; and in evaluation, the outputs."""
    if chunk is not None:  # the second conv's rows: 3 * 9 + 1 > 4 channels
        monkeypatch.setattr(im2col, "CHUNK_BYTES", chunk * 28 * 16 * 4)
    rng = np.random.default_rng(6)
    x = rng.standard_normal((10, 8, 8)).astype(np.float32)
    y = rng.integers(0, 5, 10)
    with using(kernels):
        results = fused_then_layers(lambda: two_conv_blocks(relu), "ConvPool", x, y)
        (out_f, grads_f), (out_l, grads_l) = results
        assert_array_equal(out_f, out_l)
        for name, grad in grads_l.items():
            assert_array_equal(grads_f[name], grad, err_msg=name)
        model = two_conv_blocks(relu)
        evaluated = model.forward(x, training=False).copy()
        layers, _, _ = layer_by_layer(model, x, y, False)
    assert_array_equal(evaluated, layers)


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
@pytest.mark.parametrize("n, channels", [(1, 3), (6, 1), (1, 1)])
def test_conv_and_pooling_as_one_step_with_one_image_or_one_channel(
    kernels, n, channels
):
    """N or C of 1 (one image to predict: `nnscratch predict`, the web app): the
    pooled map's two layouts are then both C-contiguous, the kernels still take it
    as (C, N, H, W). Training and evaluation give the layers' numbers."""

    def model():
        return Sequential(
            [
                Reshape((1, 8, 8)),
                Conv2D(1, channels, 3, padding=1, rng=0), MaxPool2D(2), ReLU(),
                Flatten(),
                Dense(channels * 16, 5, rng=2),
            ],
            input_shape=(8, 8), loss="cross_entropy",
        )  # fmt: skip

    rng = np.random.default_rng(8)
    x = rng.standard_normal((n, 8, 8)).astype(np.float32)
    y = rng.integers(0, 5, n)
    with using(kernels):
        (out_f, grads_f), (out_l, grads_l) = fused_then_layers(model, "ConvPool", x, y)
        assert_array_equal(out_f, out_l)
        for name, grad in grads_l.items():
            assert_array_equal(grads_f[name], grad, err_msg=name)
        fresh = model()
        fresh.forward(rng.standard_normal((4, 8, 8)).astype(np.float32))  # larger first
        evaluated = fresh.forward(x, training=False).copy()
        layers, _, _ = layer_by_layer(fresh, x, y, False)
    assert_array_equal(evaluated, layers)


def test_a_conv_pool_step_runs_other_dtypes_layer_by_layer():
    model = two_conv_blocks(True)
    x = np.random.default_rng(7).standard_normal((4, 1, 8, 8))  # float64
    step = model._execution_order()[1]
    y = step.forward(x, training=True)
    assert y.dtype == np.float64 and y.shape == (4, 3, 4, 4) and not step._fused
    conv = model.layers[1]
    conv.grads["W"][:] = 0
    step.backward(np.ones_like(y))  # the first conv: no input gradient, but dW
    assert np.abs(conv.grads["W"]).sum() > 0


def fused_then_layers(make_model, step: str, x, y) -> list[tuple]:
    """(outputs, named grads) of a training forward and backward of two fresh models
    from `make_model`: one run by steps (with a fused `step`), one layer by layer."""
    results = []
    for fused in (True, False):
        m = make_model()
        if fused:
            assert step in steps(m)
            outputs = m.forward(x, training=True).copy()
            m.loss.forward(outputs, y)
            m.backward(m.loss.backward())
        else:
            outputs, _, _ = layer_by_layer(m, x, y, True)
        results.append((outputs, {k: g.copy() for k, g in m.named_grads().items()}))
    return results


def mlp() -> Sequential:
    """An MLP in small: Dense - ReLU - Dense - ReLU - Dense."""
    return Sequential(
        [
            Flatten(),
            Dense(36, 16, rng=0), ReLU(),
            Dense(16, 8, rng=1), ReLU(),
            Dense(8, 4, rng=2),
        ],
        input_shape=(6, 6), loss="cross_entropy",
    )  # fmt: skip


def test_dense_then_relu_is_one_step_for_those_exact_classes():
    assert steps(mlp()) == ["Flatten", "DenseReLU", "DenseReLU", "Dense"]
    model = mlp()
    assert model._execution_order()[1].layers == tuple(model.layers[1:3])

    class MyDense(Dense):  # a subclass may change forward: left alone
        pass

    model.layers[1] = MyDense(36, 16, rng=0)
    assert steps(model)[1:3] == ["MyDense", "ReLU"]
    apart = [Flatten(), Dense(36, 8, rng=0), Dropout(0.5), ReLU(), Dense(8, 4, rng=1)]
    assert steps(Sequential(apart)) == ["Flatten", "Dense", "Dropout", "ReLU", "Dense"]


@pytest.mark.parametrize("kernels", ["numba", "numpy"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dense_and_relu_as_one_step_give_the_layers_numbers(kernels, dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((32, 6, 6)).astype(dtype)
    y = rng.integers(0, 4, 32)

    def model():
        m = mlp()
        m.set_weights({k: w.astype(dtype) for k, w in m.get_weights().items()})
        return m

    with using(kernels):
        (out_f, grads_f), (out_l, grads_l) = fused_then_layers(model, "DenseReLU", x, y)
    assert_array_equal(out_f, out_l)  # y = x W, + b, then ReLU: the same operations
    for name, grad in grads_l.items():
        if name.endswith("b"):  # the bias's sum is taken in another order
            assert_allclose(grads_f[name], grad, rtol=1e-5, atol=1e-7)
        else:  # dW = x^T dz with the same dz: the same bits
            assert_array_equal(grads_f[name], grad, err_msg=name)
