"""Extending nnscratch: the layers and losses of tests/custom_parts.py, written as a
user would, train, save and load like the built-in ones, here and in a fresh Python
process; a layer holding layers gets the gradients, counts, freezing and files of its
inner layers right."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from custom_parts import (
    Huber,
    Residual,
    Scale,
    SmoothedCrossEntropy,
    UnregisteredHuber,
    UnregisteredScale,
)
from gradcheck import ATOL, RTOL, check_layer_grads, check_model_grads, numerical_grad
from numpy.testing import assert_allclose, assert_array_equal

import nnscratch
from nnscratch import Adam, Dense, ModelFileError, ReLU, Sequential, load_model
from nnscratch.errors import NnscratchError

TESTS = Path(__file__).resolve().parent

# What a user's program does in a new process: import the module defining the classes,
# load the model. Saves its predictions for x and prints its loss.
LOAD_SCRIPT = """
import json, sys
import numpy as np
import custom_parts
from nnscratch import load_model

path, x_path, out_path, with_custom_objects = sys.argv[1:]
custom_objects = {
    "UnregisteredScale": custom_parts.UnregisteredScale,
    "UnregisteredHuber": custom_parts.UnregisteredHuber,
}
model = load_model(path, custom_objects if with_custom_objects == "yes" else None)
np.save(out_path, model.predict(np.load(x_path)))
print(json.dumps([type(model.loss).__name__, model.loss.get_config()]))
"""


def load_in_fresh_process(path: Path, x, custom_objects: bool) -> tuple:
    """(predictions for x, [loss class name, loss config]) of the model at `path`,
    loaded by LOAD_SCRIPT in a new Python process."""
    x_path, out_path = path.with_suffix(".x.npy"), path.with_suffix(".out.npy")
    np.save(x_path, x)
    args = [str(path), str(x_path), str(out_path), "yes" if custom_objects else "no"]
    result = subprocess.run(
        [sys.executable, "-c", LOAD_SCRIPT, *args],
        cwd=TESTS,  # `python -c` puts the working directory first on sys.path
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return np.load(out_path), json.loads(result.stdout)


def regression_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 4)).astype(np.float32)
    return x, np.tanh(x @ rng.standard_normal((4, 2))).astype(np.float32)


def classification_data():
    x = np.random.default_rng(1).standard_normal((60, 6)).astype(np.float32)
    return x, x[:, :3].argmax(axis=1)


# ----- a custom layer and a custom loss -------------------------------------------------
def test_scale_gradients():
    x = np.random.default_rng(0).standard_normal((4, 5))
    check_layer_grads(Scale(0.7, dtype=np.float64), x)


def test_huber_gradient_with_sample_weights_on_both_sides_of_delta():
    rng = np.random.default_rng(0)
    outputs, targets = 2 * rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    weights = rng.random(5)
    assert (np.abs(outputs - targets) > 1).any() and (
        np.abs(outputs - targets) < 1
    ).any()
    loss = Huber(delta=1.0)

    def f():
        return loss.forward(outputs, targets, weights)

    f()
    analytic = loss.backward().copy()
    assert_allclose(analytic, numerical_grad(f, outputs), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    "scale_class, loss_class, custom_objects",
    [(Scale, Huber, False), (UnregisteredScale, UnregisteredHuber, True)],
    ids=["registered", "custom_objects"],
)
def test_custom_layer_and_loss_train_save_and_load_in_a_fresh_process(
    tmp_path, scale_class, loss_class, custom_objects
):
    x, y = regression_data()
    layers = [Dense(8), ReLU(), scale_class(0.5), Dense(2)]
    model = Sequential(layers, input_shape=(4,), seed=0)
    history = model.fit(
        x, y, epochs=10, loss=loss_class(0.5), optimizer=Adam(0.01), seed=0, verbose=0
    )
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert float(model.layers[2].params["s"]) != 0.5  # s was trained
    model.save(tmp_path / "model.npz")
    predictions, loss = load_in_fresh_process(tmp_path / "model.npz", x, custom_objects)
    assert_array_equal(predictions, model.predict(x))
    assert loss == [loss_class.__name__, {"delta": 0.5}]


@pytest.mark.parametrize(
    "layer_class, loss_class, unregistered",
    [(UnregisteredScale, Huber, UnregisteredScale),
     (Scale, UnregisteredHuber, UnregisteredHuber)],
)  # fmt: skip
def test_an_unregistered_class_is_a_one_line_error_naming_it_and_the_fix(
    tmp_path, layer_class, loss_class, unregistered
):
    model = Sequential([Dense(2), layer_class()], input_shape=(3,), loss=loss_class())
    model.save(tmp_path / "model.npz")
    with pytest.raises(ModelFileError) as error:
        load_model(tmp_path / "model.npz")
    message, name = str(error.value), unregistered.__name__
    assert "\n" not in message and repr(name) in message
    assert "@nnscratch.register" in message and "custom_objects" in message
    loaded = load_model(tmp_path / "model.npz", custom_objects={name: unregistered})
    assert (type(loaded.layers[1]), type(loaded.loss)) == (layer_class, loss_class)


class Times(nnscratch.Layer):
    """y = k x, with k given to the constructor but left out of get_config."""

    def __init__(self, k, *, dtype=np.float32):
        super().__init__()
        self.k = k

    def forward(self, x, training=False):
        return self.k * x

    def backward(self, dy):
        return self.k * dy


class SavedTimes(Times):
    def get_config(self):
        return {"k": self.k}


class Shifted(nnscratch.Loss):
    """Mean of (y - t - shift)^2 over (N, K); shift left out of get_config."""

    def __init__(self, shift):
        self.shift = shift

    def forward(self, outputs, targets, sample_weight=None):
        self._diff = outputs - targets - self.shift
        return float(np.mean(self._diff**2))

    def backward(self):
        return 2 * self._diff / self._diff.size


def test_a_part_whose_config_cannot_rebuild_it_is_refused_at_save(tmp_path):
    # save wrote the file, and load_model failed on it later ("missing 1 required
    # positional argument: 'k'"): Keras refuses such a layer when it saves it
    path = tmp_path / "model.npz"
    model = Sequential([Dense(2), Times(3.0)], input_shape=(3,), loss="mse")
    with pytest.raises(NnscratchError, match=r"^save: layer 1 \(Times\) takes k, "):
        model.save(path)
    assert not path.exists()
    model = Sequential([Dense(2)], input_shape=(3,), loss=Shifted(1.0))
    with pytest.raises(NnscratchError, match=r"^save: the loss \(Shifted\) takes sh"):
        model.save(path)
    assert not path.exists()
    model.save_weights(path)  # the weights alone need no config
    model = Sequential([Dense(2, rng=0), SavedTimes(3.0)], input_shape=(3,))
    model.save(path)  # as the message says
    loaded = load_model(path, custom_objects={"SavedTimes": SavedTimes})
    x = np.ones((2, 3), np.float32)
    assert_array_equal(loaded.predict(x), model.predict(x))


# ----- a layer holding layers ---------------------------------------------------------
def residual_model(seed: int = 0) -> Sequential:
    return Sequential([Dense(6), Residual(), Dense(3)], input_shape=(6,), seed=seed)


def test_residual_gradients_of_dx_and_of_the_inner_dense():
    block = Residual(dtype=np.float64)
    block.build((5,))
    block.dense.params["b"][:] = np.random.default_rng(1).standard_normal(5)
    check_layer_grads(block, np.random.default_rng(0).standard_normal((4, 5)))


def test_residual_gradients_through_the_model_buffer():
    rng = np.random.default_rng(0)
    layers = [
        Dense(5, 6, rng=rng, dtype=np.float64),
        Residual(dtype=np.float64),
        Dense(3, dtype=np.float64),
    ]
    model = Sequential(layers, input_shape=(5,))
    assert model.flat_params.dtype == np.float64
    x, labels = rng.standard_normal((4, 5)), np.array([0, 2, 1, 2])
    check_model_grads(model, x, labels, training=True)


def test_residual_names_and_counts_its_inner_parameters_and_trains_them():
    model = residual_model()
    assert list(model.named_params()) == [
        "0.W", "0.b", "1.dense.W", "1.dense.b", "2.W", "2.b",
    ]  # fmt: skip
    assert model.count_params() == 42 + 42 + 21
    x, labels = classification_data()
    before = model.get_weights()
    history = model.fit(x, labels, epochs=20, optimizer=Adam(0.01), seed=0, verbose=0)
    assert history.history["loss"][-1] < 0.8 * history.history["loss"][0]
    assert not np.array_equal(model.get_weights()["1.dense.W"], before["1.dense.W"])


def test_a_model_seed_draws_the_weights_of_layers_made_in_build():
    first, second = residual_model(seed=3).get_weights(), residual_model(seed=3)
    for name, array in second.get_weights().items():
        assert_array_equal(array, first[name], err_msg=name)


def test_residual_save_and_load_give_identical_predictions(tmp_path):
    model = residual_model()
    x, labels = classification_data()
    model.fit(x, labels, epochs=2, seed=0, verbose=0)
    model.save(tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")
    assert isinstance(loaded.layers[1], Residual)
    assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.count_params() == model.count_params()


@pytest.mark.parametrize("frozen", ["1", "1.dense"])
def test_freezing_the_block_or_its_dense_keeps_the_dense_bit_identical(
    tmp_path, frozen
):
    model = residual_model()
    block = model.layers[1]
    (block if frozen == "1" else block.dense).trainable = False
    assert not block.dense.trainable
    assert model.count_params(trainable_only=True) == 42 + 21
    before = model.get_weights()
    x, labels = classification_data()
    model.fit(x, labels, epochs=3, seed=0, verbose=0)
    after = model.get_weights()
    for name in ["1.dense.W", "1.dense.b"]:
        assert after[name].tobytes() == before[name].tobytes(), name
    assert not np.array_equal(after["0.W"], before["0.W"])  # the others trained
    model.save(tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")
    assert loaded.count_params(trainable_only=True) == 42 + 21
    assert not loaded.layers[1].dense.trainable


# ----- subclassing a built-in loss -------------------------------------------------
def test_a_registered_cross_entropy_subclass_saves_and_loads_as_itself(tmp_path):
    x, labels = classification_data()
    model = Sequential([Dense(3)], input_shape=(6,), seed=0)
    history = model.fit(
        x, labels, epochs=2, loss="smoothed_cross_entropy", seed=0, verbose=0
    )
    assert type(model.loss) is SmoothedCrossEntropy
    assert model.loss.label_smoothing == 0.1 and "accuracy" in history.history
    model.loss = SmoothedCrossEntropy(label_smoothing=0.2)
    model.save(tmp_path / "model.npz")
    loaded = load_model(tmp_path / "model.npz")
    assert type(loaded.loss) is SmoothedCrossEntropy
    assert loaded.loss.label_smoothing == 0.2
    assert_array_equal(loaded.predict(x), model.predict(x))
    assert_allclose(loaded.predict(x).sum(axis=1), 1, rtol=1e-6)  # softmax, inherited


# ----- the documentation --------------------------------------------------------------
def test_the_classes_in_how_it_works_are_the_ones_tested_here():
    text = (TESTS.parent / "docs" / "how-it-works.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    blocks = [b for b in blocks if re.search(r"^class ", b, re.MULTILINE)]
    assert len(blocks) >= 2
    source = (TESTS / "custom_parts.py").read_text()
    for block in blocks:
        assert block in source, f"not in tests/custom_parts.py:\n{block}"
