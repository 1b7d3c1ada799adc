"""Convolutional models end to end: presets saved and loaded, a whole-model gradient
check, a short real MNIST run, augmentation in fit, and the batch-size guard."""

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
from gradcheck import check_model_grads
from numpy.testing import assert_allclose, assert_array_equal

from nnscratch import (
    Adam,
    Augment,
    BatchNorm,
    Conv2D,
    Dense,
    Flatten,
    Layer,
    MaxPool2D,
    NnscratchError,
    ReLU,
    Reshape,
    Sequential,
    load_dataset,
    load_model,
)
from nnscratch.runs.presets import build_model, preset_settings
from nnscratch.runs.settings import RunSettings
from nnscratch.runs.training import run_training

CLASS_NAMES = [str(i) for i in range(10)]

# the layers summary() must list, by index: (class, output shape without the batch)
SUMMARY_ROWS = {
    "cnn": {
        1: ("Conv2D", (32, 28, 28)),
        2: ("BatchNorm", (32, 28, 28)),
        3: ("MaxPool2D", (32, 14, 14)),
        4: ("ReLU", (32, 14, 14)),
        5: ("Conv2D", (64, 14, 14)),
        6: ("BatchNorm", (64, 14, 14)),
        7: ("MaxPool2D", (64, 7, 7)),
        9: ("Conv2D", (128, 7, 7)),
        10: ("BatchNorm", (128, 7, 7)),
        11: ("MaxPool2D", (128, 3, 3)),
        15: ("BatchNorm", (256,)),
        18: ("Dense", (10,)),
    },
    "lenet-like": {
        1: ("Conv2D", (32, 28, 28)),
        2: ("MaxPool2D", (32, 14, 14)),
        3: ("ReLU", (32, 14, 14)),
        4: ("Conv2D", (64, 14, 14)),
        5: ("MaxPool2D", (64, 7, 7)),
        8: ("Dense", (128,)),
        10: ("Dense", (10,)),
    },
}


def random_images(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n)


@pytest.fixture(scope="module", params=["cnn", "lenet-like"])
def trained(request, tmp_path_factory):
    """(preset, model after two training steps on random images, its saved copy)."""
    preset = request.param
    model = build_model(preset_settings(preset), (28, 28), CLASS_NAMES)
    x, y = random_images(32)
    model.fit(x, y, epochs=1, batch_size=16, optimizer=Adam(1e-3), seed=0, verbose=0)
    path = tmp_path_factory.mktemp(preset) / "model.npz"
    model.save(path)
    return preset, model, path


def test_saved_preset_model_predicts_the_same_after_loading(trained):
    _, model, path = trained
    loaded = load_model(path)
    x, y = random_images(20, seed=1)
    assert_array_equal(loaded.predict(x), model.predict(x))
    assert loaded.evaluate(x, y) == model.evaluate(x, y)
    assert loaded.class_names == CLASS_NAMES


def test_batchnorm_running_statistics_are_trained_and_restored(trained):
    preset, model, path = trained
    loaded = load_model(path)
    norms = [
        (i, layer)
        for i, layer in enumerate(model.layers)
        if isinstance(layer, BatchNorm)
    ]
    assert len(norms) == (4 if preset == "cnn" else 0)
    for i, layer in norms:
        mean, var = layer.state["running_mean"], layer.state["running_var"]
        assert np.all(mean != 0) and np.all(var != 1)  # moved off the initial 0 / 1
        assert_array_equal(loaded.layers[i].state["running_mean"], mean)
        assert_array_equal(loaded.layers[i].state["running_var"], var)


def test_a_fresh_interpreter_loads_the_model(trained, tmp_path):
    # the layer classes must be registered by `import nnscratch` alone
    _, model, path = trained
    x, _ = random_images(5, seed=2)
    np.save(tmp_path / "x.npy", x)
    script = (
        "import sys, numpy as np, nnscratch\n"
        "model = nnscratch.load_model(sys.argv[1])\n"
        "np.save(sys.argv[3], model.predict(np.load(sys.argv[2])))\n"
    )
    args = [str(path), str(tmp_path / "x.npy"), str(tmp_path / "probs.npy")]
    subprocess.run([sys.executable, "-c", script, *args], check=True)
    assert_array_equal(np.load(tmp_path / "probs.npy"), model.predict(x))


def test_summary_lists_the_layers_with_their_output_shapes(trained):
    preset, model, _ = trained
    rows = {}
    for line in model.summary().splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0].isdigit():
            rows[int(parts[0])] = (parts[1], parts[2].rsplit(None, 1)[0])
    assert len(rows) == len(model.layers)
    for i, (name, shape) in SUMMARY_ROWS[preset].items():
        assert rows[i] == (name, str((None, *shape))), i


def test_maxpool_then_relu_equals_relu_then_maxpool_forward_and_backward():
    # the presets pool before ReLU (cheaper); both orders must give the same numbers,
    # including windows whose values tie or are all <= 0
    rng = np.random.default_rng(0)
    x = rng.integers(-2, 3, (4, 3, 6, 6)).astype(np.float32)  # many ties, zeros
    dy = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    x[0, 0, :2, :2] = np.nan  # and a window with NaNs
    results = []
    for first, second in ([ReLU(), MaxPool2D(2)], [MaxPool2D(2), ReLU()]):
        y = second.forward(first.forward(x, training=True), training=True).copy()
        dx = first.backward(second.backward(dy)).copy()
        results.append((y, dx))
    assert_array_equal(results[0][0], results[1][0])
    assert_array_equal(results[0][1], results[1][1])
    assert np.count_nonzero(results[0][1]) > 0


def test_a_model_runs_relu_then_maxpool_as_maxpool_then_relu():
    """nn.commute: the same predictions and gradients as the layers in their listed
    order, with the ReLU run on the pooled map."""
    rng = np.random.default_rng(1)

    def model():
        return Sequential(
            [
                Reshape((1, 8, 8)),
                Conv2D(1, 4, 3, padding=1, rng=0, dtype=np.float64),
                ReLU(), MaxPool2D(2),
                Conv2D(4, 3, 3, padding=1, rng=1, dtype=np.float64),
                ReLU(), MaxPool2D(2), ReLU(),  # only the pair is swapped
                Flatten(), Dense(12, 3, rng=2, dtype=np.float64),
            ],
            input_shape=(8, 8), loss="cross_entropy",
        )  # fmt: skip

    x = rng.standard_normal((5, 8, 8))
    y = np.array([0, 1, 2, 1, 0])
    fast = model()
    logits = fast.forward(x, training=True)
    fast.loss.forward(logits, y)
    fast.backward(fast.loss.backward())
    # the ReLU runs after the pooling (fused with the conv and it, nn.fusion): on the
    # pooled map
    order = [
        step.layers if hasattr(step, "layers") else step
        for step in fast._execution_order()
    ]
    assert order[1] == (fast.layers[1], fast.layers[3], fast.layers[2])
    listed = model()
    a = x
    for layer in listed.layers:  # one after the other, as listed
        a = layer.forward(a, training=True)
    assert_allclose(logits, a, rtol=1e-12, atol=1e-12)
    listed.loss.forward(a, y)
    g = listed.loss.backward()
    for layer in listed.layers[:0:-1]:
        g = layer.backward(g)
    assert_allclose(fast.flat_grads, listed.flat_grads, rtol=1e-12, atol=1e-12)


def test_whole_conv_model_gradient_matches_numerical_in_float64():
    rng = np.random.default_rng(0)
    dtype = np.float64
    model = Sequential(
        [
            Reshape((1, 6, 6)),
            Conv2D(1, 3, 3, padding=1, rng=rng, dtype=dtype),
            BatchNorm(3, dtype=dtype),
            ReLU(),
            MaxPool2D(2),
            Flatten(),
            Dense(3 * 3 * 3, 4, rng=rng, dtype=dtype),
        ],
        input_shape=(6, 6),
    )
    for layer in model.layers[1:3]:  # biases, gamma and beta away from 0 and 1
        for p in layer.params.values():
            if p.ndim == 1:
                p[...] = rng.uniform(0.5, 1.5, p.shape)
    x = rng.standard_normal((5, 6, 6))
    y = np.array([0, 1, 2, 3, 1])

    # training mode: batch statistics, which are a deterministic function of x
    # (the conv bias gradient is ~0: the batch mean that follows cancels the bias)
    check_model_grads(model, x, y, training=True)


def test_lenet_like_learns_mnist_in_one_short_epoch(data_dir):
    (x_train, y_train), (x_test, y_test) = load_dataset("mnist", data_dir)
    model = build_model(preset_settings("lenet-like"), (28, 28), CLASS_NAMES)
    model.fit(
        x_train[:3000], y_train[:3000], epochs=1, batch_size=32, optimizer=Adam(1e-3),
        seed=0, verbose=0,
    )  # fmt: skip
    assert model.evaluate(x_test[:2000], y_test[:2000])["accuracy"] > 0.85


class Recorder(Layer):
    """Passes its input on unchanged and keeps a copy of every batch it sees."""

    def __init__(self):
        super().__init__()
        self.seen = []  # (training, x)

    def forward(self, x, training=False):
        self.seen.append((training, x.copy()))
        return x

    def backward(self, dy):
        return dy


def test_augment_changes_training_batches_but_never_the_test_set():
    rng = np.random.default_rng(3)
    x = np.zeros((8, 12, 12), dtype=np.uint8)
    x[:, 3:9, 4:8] = rng.integers(100, 256, (8, 6, 4))  # a blob away from the edges
    y = rng.integers(0, 3, 8)
    x_test, y_test = x[:4].copy(), y[:4]
    scaled = x.astype(np.float32) / 255
    for augment in (None, Augment()):
        recorder = Recorder()
        model = Sequential(
            [recorder, Flatten(), Dense(144, 3, rng=0)], input_shape=(12, 12)
        )
        model.fit(
            x, y, epochs=2, batch_size=8, shuffle=False, validation_data=(x_test, y_test),
            augment=augment, seed=0, verbose=0,
        )  # fmt: skip
        model.evaluate(x_test, y_test)
        model.predict(x_test)
        training = [batch for is_training, batch in recorder.seen if is_training]
        testing = [batch for is_training, batch in recorder.seen if not is_training]
        # the first is the model's probe of its output shape: one image of zeros
        probe, testing = testing[0], testing[1:]
        assert probe.shape == (1, 12, 12) and not probe.any()
        assert len(training) == 2 and len(testing) == 4
        for batch in testing:  # validation, evaluate and predict: the images as given
            assert_allclose(batch, scaled[:4], rtol=1e-6)
        for batch in training:
            assert batch.shape == scaled.shape and batch.dtype == np.float32
            changed = np.abs(batch - scaled).max(axis=(1, 2)) > 0.1
            assert changed.all() if augment else not changed.any()
        if augment:  # a new draw every epoch
            assert not np.allclose(training[0], training[1])
    assert_array_equal(x[:4], x_test)  # the caller's arrays are not modified


def test_full_batch_training_of_a_cnn_fails_clearly():
    x = np.zeros((24_345, 28, 28), dtype=np.uint8)  # the size of our MNIST training set
    y = np.zeros(len(x), dtype=np.int64)
    model = build_model(preset_settings("lenet-like"), (28, 28), CLASS_NAMES)
    with pytest.raises(
        NnscratchError, match=r"24,345 images .* use a smaller batch size"
    ):
        model.fit(x, y, epochs=1, batch_size=len(x), verbose=0)
    # the same images in batches of the default size are fine
    assert model.predict(x[:512]).shape == (512, 10)


def test_run_training_with_batch_size_none_fails_clearly(data_dir, tmp_path):
    # what `nnscratch train --batch-size full` asks for: one batch of every image
    settings = preset_settings("lenet-like", batch_size=None, dataset="mnist")
    with pytest.raises(NnscratchError, match="GB of workspace.*smaller batch size"):
        run_training(settings, data_dir=data_dir, out=tmp_path, report=False, verbose=0)


def test_conv_presets_write_only_the_settings_they_use():
    assert "hidden" not in preset_settings("cnn").to_dict()
    assert "dropout" in preset_settings("cnn").to_dict()
    assert not {"hidden", "activation", "dropout"} & set(
        preset_settings("lenet-like").to_dict()
    )
    # the MLP's: every setting, but momentum, which its adamw does not take
    fields = [field.name for field in dataclasses.fields(RunSettings)]
    fields.remove("momentum")
    assert list(preset_settings("default").to_dict()) == fields


def test_conv_presets_take_init_and_l2_from_the_settings():
    settings = preset_settings("lenet-like", init="xavier", l2=1e-4)
    model = build_model(settings, (28, 28), CLASS_NAMES)
    weighted = [layer for layer in model.layers if "W" in layer.params]
    assert all(layer.l2 == 1e-4 and layer.init == "xavier" for layer in weighted)
