import numpy as np
import pytest
from gradcheck import ATOL, RTOL, check_layer_grads, numerical_grad
from numpy.testing import assert_allclose

from nnscratch import (
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    LeakyReLU,
    NnscratchError,
    ReLU,
    Reshape,
    Sigmoid,
    Softmax,
    Tanh,
)
from nnscratch.nn.activations import get_activation


def away_from_zero(shape, rng):
    """Inputs with |x| >= 0.1, so kinks (ReLU at 0) are out of the difference's reach."""
    x = rng.standard_normal(shape)
    return x + 0.1 * np.sign(x)


@pytest.mark.parametrize("init", ["he", "xavier", "normal"])
def test_dense_gradients(init):
    rng = np.random.default_rng(0)
    layer = Dense(5, 4, init=init, rng=rng, dtype=np.float64)
    layer.params["b"][:] = rng.standard_normal(4)
    check_layer_grads(layer, rng.standard_normal((3, 5)))


def test_dense_l1_l2_penalty_gradient():
    rng = np.random.default_rng(1)
    layer = Dense(4, 3, l1=0.01, l2=0.02, rng=rng, dtype=np.float64)
    x, dy = rng.standard_normal((5, 4)), rng.standard_normal((5, 3))

    def f():
        return float(np.sum(layer.forward(x) * dy)) + layer.penalty()

    layer.forward(x)
    layer.backward(dy)
    assert_allclose(layer.grads["W"], numerical_grad(f, layer.params["W"]), rtol=RTOL)


@pytest.mark.parametrize(
    "layer", [ReLU(), LeakyReLU(0.1), Sigmoid(), Tanh(), Softmax()], ids=repr
)
def test_activation_gradients(layer):
    x = away_from_zero((4, 6), np.random.default_rng(2))
    check_layer_grads(layer, x)


def test_shape_layers_gradients():
    x = np.random.default_rng(3).standard_normal((3, 2, 4))
    check_layer_grads(Flatten(), x.copy())
    check_layer_grads(Reshape((4, 2)), x.copy())
    assert Flatten().forward(x).shape == (3, 8)


def test_dropout_gradient_with_a_fixed_mask():
    layer = Dropout(0.4, rng=np.random.default_rng(0))
    x = np.random.default_rng(4).standard_normal((5, 6))
    layer.forward(x, training=True)
    scale = layer._scale.copy()  # the mask drawn once; check dx for that mask
    dy = np.random.default_rng(5).standard_normal(x.shape)
    assert_allclose(layer.backward(dy), dy * scale)
    assert set(np.unique(scale)) <= {0.0, 1 / 0.6}


def test_dropout_is_inverted_and_inactive_in_evaluation():
    layer = Dropout(0.5, rng=np.random.default_rng(0))
    x = np.ones((200, 500), dtype=np.float32)
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32
    assert 0.45 < np.mean(y == 0) < 0.55
    assert abs(y.mean() - 1.0) < 0.02  # E[y] = x thanks to the 1/(1-rate) scale
    assert layer.forward(x, training=False) is x


def test_sigmoid_and_softmax_do_not_overflow():
    x = np.array([[-1000.0, 0.0, 1000.0]])
    assert_allclose(Sigmoid().forward(x), [[0.0, 0.5, 1.0]])
    assert_allclose(Softmax().forward(x), [[0.0, 0.0, 1.0]])


def test_float32_in_float32_out_and_grads():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    for layer in [
        Dense(5, 3, rng=0),
        ReLU(),
        LeakyReLU(),
        Sigmoid(),
        Tanh(),
        Dropout(0.2),
    ]:
        y = layer.forward(x, training=True)
        dx = layer.backward(np.ones_like(y))
        assert y.dtype == np.float32 and dx.dtype == np.float32, layer
        assert all(g.dtype == np.float32 for g in layer.grads.values())


def test_dense_backward_writes_grads_in_place_and_can_skip_dx():
    layer = Dense(3, 2, rng=0, dtype=np.float64)
    grads_before = {k: id(g) for k, g in layer.grads.items()}
    layer.needs_input_grad = False
    layer.forward(np.ones((2, 3)))
    assert layer.backward(np.ones((2, 2))) is None
    assert {k: id(g) for k, g in layer.grads.items()} == grads_before
    assert_allclose(layer.grads["b"], [2.0, 2.0])


def test_dense_rejects_wrong_input_shape():
    with pytest.raises(NnscratchError, match=r"expected input \(N, 3\), got \(2, 4\)"):
        Dense(3, 2).forward(np.ones((2, 4), dtype=np.float32))


def test_same_seed_same_weights():
    a, b = Dense(6, 4, rng=7), Dense(6, 4, rng=7)
    assert_allclose(a.params["W"], b.params["W"])
    assert not np.allclose(a.params["W"], Dense(6, 4, rng=8).params["W"])


def test_he_and_xavier_scales():
    he = Dense(1000, 500, init="he", rng=0).params["W"]
    xavier = Dense(1000, 500, init="xavier", rng=0).params["W"]
    assert abs(he.std() - np.sqrt(2 / 1000)) < 1e-3
    assert abs(xavier.std() - np.sqrt(2 / 1500)) < 1e-3
    with pytest.raises(NnscratchError, match="init"):
        Dense(3, 2, init="zeros")


def test_dropout_gradients_match_central_differences():
    """Each forward draws a new mask; giving the layer the same generator state before
    every call fixes the mask, and dx is checked like any layer's."""
    layer = Dropout(0.4)
    x = np.random.default_rng(6).standard_normal((5, 6))

    def forward():
        layer.set_rng(np.random.default_rng(7))  # the same mask at every call
        return layer.forward(x, training=True)

    dy = np.random.default_rng(8).standard_normal(x.shape)
    forward()
    dx = layer.backward(dy).copy()
    assert 0 < np.count_nonzero(dx) < dx.size  # some units dropped, some kept
    assert_allclose(
        dx, numerical_grad(lambda: np.sum(forward() * dy), x), rtol=RTOL, atol=ATOL
    )


@pytest.mark.parametrize("activation", ["tanh", "sigmoid", "softmax", "leaky_relu"])
def test_a_dense_or_conv_layer_used_alone_applies_its_activation(activation):
    """Keras' activation=: applied after the layer in its forward and backward
    (inside a Sequential it becomes a layer of its own)."""
    rng = np.random.default_rng(0)
    dense = Dense(5, 4, rng=rng, dtype=np.float64, activation=activation)
    check_layer_grads(dense, rng.standard_normal((3, 5)))
    if activation != "softmax":  # softmax takes (N, C) rows
        conv = Conv2D(
            2, 3, 3, padding=1, rng=rng, dtype=np.float64, activation=activation
        )
        check_layer_grads(conv, rng.standard_normal((2, 2, 5, 4)))
    plain = Dense(5, 4, rng=np.random.default_rng(1), dtype=np.float64)
    same = Dense(
        5, 4, rng=np.random.default_rng(1), dtype=np.float64, activation=activation
    )
    x = rng.standard_normal((3, 5))
    expected = get_activation(activation, "test").forward(plain.forward(x))
    np.testing.assert_allclose(same.forward(x), expected)


def test_a_layer_is_called_like_a_keras_or_pytorch_layer():
    # layer(x) was "TypeError: 'Dense' object is not callable"
    rng = np.random.default_rng(0)
    dense = Dense(5, 4, rng=rng, dtype=np.float64, activation="relu")
    x1, x2 = rng.standard_normal((3, 5)), rng.standard_normal((2, 5))
    first = dense(x1)
    np.testing.assert_array_equal(first, dense.forward(x1))
    dense(x2.tolist())  # array-likes too
    # a copy: forward's array is the layer's workspace, rewritten by the next call
    np.testing.assert_array_equal(first, np.maximum(x1 @ dense.params["W"], 0))
    dropout = Dropout(0.5)
    assert (dropout(x1) == x1).all() and (dropout(x1, training=True) != x1).any()
