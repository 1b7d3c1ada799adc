"""Copies of models and layers (pickle, copy.deepcopy, as joblib and scikit-learn
make them): small, independent of the original, and going on exactly like it."""

import copy
import pickle

import numpy as np
import pytest
from custom_parts import Residual, Scale
from numpy.testing import assert_array_equal

from nnscratch import (
    Adam,
    BatchNorm,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Sequential,
)
from nnscratch.nn.parameters import all_layers


def pickled(obj):
    return pickle.loads(pickle.dumps(obj))


COPIES = {"pickle": pickled, "deepcopy": copy.deepcopy}


def cnn():
    """Conv (same padding, bias as the im2col ones row) - BatchNorm - pool - ReLU,
    a LeakyReLU and Dropout: every layer that keeps arrays for backward."""
    layers = [
        Conv2D(6, 3, padding="same"), BatchNorm(), MaxPool2D(2), ReLU(),
        Conv2D(8, 3), LeakyReLU(0.1), Flatten(), Dropout(0.2), Dense(10),
    ]  # fmt: skip
    return Sequential(layers, input_shape=(1, 12, 12), seed=0)


def mlp():
    layers = [Flatten(), Dense(64), ReLU(), Dropout(0.1), Dense(10)]
    return Sequential(layers, input_shape=(12, 12), seed=0)


def custom():
    """Layers of a user's, written as docs/how-it-works.md shows (`self._x = x`)."""
    layers = [Flatten(), Dense(16), Residual(), Scale(0.5), Dense(10)]
    return Sequential(layers, input_shape=(12, 12), seed=0)


def data(n=300, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, 12, 12), dtype=np.float32), rng.integers(0, 10, n)


def trained(make):
    """A model after a fit (Adam has moments) and a predict on 300 examples (in
    batches of 256 and 44)."""
    x, y = data()
    model = make()
    if make is not cnn:
        x = x[:, 0]
    model.fit(x, y, epochs=2, batch_size=32, optimizer=Adam(3e-3), verbose=0, seed=0)
    model.predict(x)
    return model, x, y


@pytest.mark.parametrize("make", [mlp, cnn, custom])
@pytest.mark.parametrize("how", COPIES)
def test_a_copy_holds_the_weights_and_optimizer_state_not_the_last_batch(make, how):
    model = trained(make)[0]
    weights = model.count_params() * 4
    # the parameters and Adam's two moments; the last predict's activations and
    # im2col columns (over 5 MB for the cnn) stay behind
    assert len(pickle.dumps(model)) < 3 * weights + 30_000
    again = COPIES[how](model)
    assert len(pickle.dumps(again)) < 3 * weights + 30_000
    for _, layer, _ in all_layers(again.layers):
        assert not {"_x", "_y", "_winner", "_scale", "_slope"} & set(vars(layer))
        assert len(layer.workspace) == 0


@pytest.mark.parametrize("make", [mlp, cnn, custom])
@pytest.mark.parametrize("how", COPIES)
def test_a_copy_predicts_and_trains_on_exactly_like_the_original(make, how):
    model, x, y = trained(make)
    again = COPIES[how](model)
    # the last batch the original ran (44 images): the copy lays out its conv
    # columns anew, zeros and the bias's ones included
    assert_array_equal(again.predict(x[256:]), model.predict(x[256:]))
    assert_array_equal(again.predict(x), model.predict(x))
    assert_array_equal(again.predict(x[:7]), model.predict(x[:7]))
    assert_array_equal(again.evaluate(x, y)["loss"], model.evaluate(x, y)["loss"])
    histories = [
        m.fit(x, y, epochs=2, batch_size=32, verbose=0, seed=1).history["loss"]
        for m in (model, again)
    ]
    assert histories[0] == histories[1]
    assert again.optimizer.iterations == model.optimizer.iterations
    for name, array in model.get_weights().items():
        assert_array_equal(again.get_weights()[name], array, err_msg=name)


@pytest.mark.parametrize("how", COPIES)
def test_training_a_copy_leaves_the_original_as_it_was(how):
    model, x, y = trained(cnn)
    weights, probs = model.get_weights(), model.predict(x)
    moments = copy.deepcopy(model.optimizer.state)
    again = COPIES[how](model)
    again.fit(x, y, epochs=1, verbose=0, seed=2)
    again.layers[0].trainable = False
    assert not np.array_equal(again.predict(x), probs)
    assert_array_equal(model.predict(x), probs)
    for name, array in weights.items():  # batch norm's running statistics too
        assert_array_equal(model.get_weights()[name], array, err_msg=name)
    assert_array_equal(model.optimizer.state["all"]["m"], moments["all"]["m"])
    assert model.layers[0].trainable


@pytest.mark.parametrize("how", COPIES)
def test_a_seeded_copy_keeps_its_trained_weights_when_a_layer_is_added(how):
    # the model's seed draws the weights of layers it has not drawn yet: a copy's
    # trained layers must not count as new ones
    model = trained(mlp)[0]
    again = COPIES[how](model)
    before = again.get_weights()
    again.pop()
    again.add(Dense(10))
    again.build((12, 12))
    for name in ("1.W", "1.b"):
        assert_array_equal(again.get_weights()[name], before[name])


def test_a_copied_layer_drops_its_last_batch_and_runs_alone():
    rng = np.random.default_rng(0)
    layer = Dense(5, 3, rng=0, dtype=np.float64)
    x, dy = rng.random((4, 5)), rng.random((4, 3))
    y = layer.forward(x).copy()
    dx = layer.backward(dy).copy()
    again = copy.deepcopy(layer)
    assert not hasattr(again, "_x")
    assert {k: g.shape for k, g in again.grads.items()} == {"W": (5, 3), "b": (3,)}
    assert not any(g.any() for g in again.grads.values())  # zeros, not the last ones
    assert_array_equal(again.forward(x), y)
    assert_array_equal(again.backward(dy), dx)
    assert_array_equal(again.grads["W"], layer.grads["W"])
    assert again.params["W"] is not layer.params["W"]


@pytest.mark.parametrize("make", [mlp, cnn, custom])
def test_a_fitted_model_keeps_no_training_scratch_and_goes_on_the_same(
    make, garbage_scratch
):
    """After fit a model holds its weights and optimiser state, not the backward
    pass's scratch (the `cnn` preset's was 85 MB), and what it does next is as
    if it had kept it: predict and a further fit give the same numbers."""
    x, y = data(256)  # batches of 32 only: the next fit's first is as the last
    if make is not cnn:
        x = x[:, 0]
    lean, kept = make(), make()
    optimizers = Adam(3e-3), Adam(3e-3)
    kept_scratch = [layer.workspace for _, layer, _ in all_layers(kept.layers)]
    for workspace in [*kept_scratch, optimizers[1]._scratch]:
        workspace.clear = lambda: None  # the twin that keeps its scratch
    for model, optimizer in zip((lean, kept), optimizers):
        model.fit(x, y, epochs=1, batch_size=32, optimizer=optimizer, verbose=0)
    for _, layer, _ in all_layers(lean.layers):
        assert len(layer.workspace) == 0
    assert len(lean.optimizer._scratch) == 0
    assert any(len(w) for w in kept_scratch) and len(kept.optimizer._scratch)
    for model in (lean, kept):  # the same batches: layouts as in the first fit
        model.fit(x, y, epochs=1, batch_size=32, verbose=0, seed=5)
    for name, array in lean.get_weights().items():
        assert_array_equal(kept.get_weights()[name], array, err_msg=name)
    assert_array_equal(lean.predict(x), kept.predict(x))
