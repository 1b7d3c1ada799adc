"""BatchNorm: gradients in both modes, running statistics, dtypes, errors."""

import numpy as np
import pytest
from gradcheck import check_layer_grads
from numpy.testing import assert_allclose

import nnscratch as nn
from nnscratch.errors import NnscratchError
from nnscratch.nn.normalization import BatchNorm
from nnscratch.nn.registry import LAYERS


def make_layer(features, rng):
    layer = BatchNorm(features, dtype=np.float64)
    layer.params["gamma"][:] = rng.uniform(0.5, 2.0, features)
    layer.params["beta"][:] = rng.standard_normal(features)
    return layer


@pytest.mark.parametrize("shape", [(5, 3), (3, 4, 3, 2)])
def test_batchnorm_training_gradients(shape):
    rng = np.random.default_rng(0)
    layer = make_layer(shape[1], rng)
    x = 2.0 * rng.standard_normal(shape) + 1.0
    check_layer_grads(layer, x, training=True)


@pytest.mark.parametrize("shape", [(5, 3), (3, 4, 3, 2)])
def test_batchnorm_eval_gradients(shape):
    rng = np.random.default_rng(1)
    layer = make_layer(shape[1], rng)
    layer.state["running_mean"][:] = rng.standard_normal(shape[1])
    layer.state["running_var"][:] = rng.uniform(0.5, 2.0, shape[1])
    check_layer_grads(layer, rng.standard_normal(shape), training=False)


def test_batchnorm_training_output_is_normalised_per_channel():
    rng = np.random.default_rng(2)
    layer = BatchNorm(3, dtype=np.float64)
    x = rng.standard_normal((4, 3, 5, 5)) * np.array([1.0, 5.0, 0.1])[:, None, None]
    x += np.array([3.0, -2.0, 0.5])[:, None, None]
    y = layer.forward(x, training=True)
    assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    assert_allclose(y.var(axis=(0, 2, 3)), 1.0, rtol=1e-3)  # eps shrinks it a little


@pytest.mark.parametrize("shape", [(6, 2), (2, 2, 3, 4)])
def test_batchnorm_running_statistics_drive_eval_mode(shape):
    rng = np.random.default_rng(3)
    layer = make_layer(2, rng)
    layer.momentum = 0.25
    axes = (0,) if len(shape) == 2 else (0, 2, 3)
    count = np.prod([shape[a] for a in axes])
    mean, var = np.zeros(2), np.ones(2)
    for _ in range(2):
        x = 3.0 * rng.standard_normal(shape) - 1.0
        layer.forward(x, training=True)
        mean = 0.75 * mean + 0.25 * x.mean(axis=axes)
        var = 0.75 * var + 0.25 * x.var(axis=axes) * count / (count - 1)  # unbiased
    assert_allclose(layer.state["running_mean"], mean, rtol=1e-12)
    assert_allclose(layer.state["running_var"], var, rtol=1e-12)
    x = rng.standard_normal(shape)
    vec = (1, 2) if len(shape) == 2 else (1, 2, 1, 1)
    expected = (x - mean.reshape(vec)) / np.sqrt(var.reshape(vec) + 1e-5)
    expected = expected * layer.params["gamma"].reshape(vec) + layer.params[
        "beta"
    ].reshape(vec)
    assert_allclose(layer.forward(x, training=False), expected, rtol=1e-12)
    # evaluation leaves the running statistics alone
    assert_allclose(layer.state["running_mean"], mean, rtol=1e-12)


def test_batchnorm_float32_and_config():
    layer = BatchNorm(4, momentum=0.2, eps=1e-3)
    x = np.random.default_rng(4).random((8, 4, 3, 3), dtype=np.float32)
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32
    assert layer.backward(np.ones_like(y)).dtype == np.float32
    assert layer.state["running_var"].dtype == np.float32
    assert layer.forward(x).dtype == np.float32
    rebuilt = LAYERS["BatchNorm"](**layer.get_config())
    assert rebuilt.get_config() == {"num_features": 4, "momentum": 0.2, "eps": 1e-3}


def test_batchnorm_rejects_bad_input():
    layer = BatchNorm(3)
    with pytest.raises(
        NnscratchError, match=r"expected \(N, 3\) or \(N, 3, H, W\), got"
    ):
        layer.forward(np.zeros((4, 2)))
    with pytest.raises(NnscratchError, match="more than 1 value per feature"):
        layer.forward(np.zeros((1, 3)), training=True)
    with pytest.raises(NnscratchError, match="momentum"):
        BatchNorm(3, momentum=1.5)
    with pytest.raises(NnscratchError, match="num_features"):
        BatchNorm(0)


def test_a_frozen_batch_norm_trains_in_inference_mode_as_in_keras():
    # what the README promises: normalised with its running statistics, which stay
    # as they were (PyTorch's frozen parameters would still update them)
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 1, 4, 4)), rng.integers(0, 3, 8)
    model = nn.Sequential(
        [nn.Conv2D(4, 3, padding="same"), nn.BatchNorm(), nn.MaxPool2D(2),
         nn.ReLU(), nn.Flatten(), nn.Dense(3)],
        input_shape=(1, 4, 4), seed=0,
    )  # fmt: skip
    norm = model.layers[1]
    norm.trainable = False
    norm.state["running_mean"][...], norm.state["running_var"][...] = 0.3, 2.0
    model.fit(x, y, epochs=2, batch_size=4, verbose=0)
    assert_allclose(norm.state["running_mean"], 0.3)
    assert_allclose(norm.state["running_var"], 2.0)
    assert_allclose(norm.params["gamma"], 1.0)
    assert_allclose(model.forward(x, training=True), model.forward(x, training=False))
