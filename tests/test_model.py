import re
import sys
import tracemalloc

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from nnscratch import (
    SGD,
    Adam,
    Callback,
    Conv2D,
    Dense,
    Dropout,
    EarlyStopping,
    Flatten,
    History,
    MaxPool2D,
    NnscratchError,
    ReLU,
    Reshape,
    Sequential,
    Sigmoid,
    Softmax,
    TrainingDivergedError,
)
from nnscratch.nn.batches import EpochBatches, batch_bounds
from nnscratch.nn.kernels import using
from nnscratch.nn.normalization import BatchNorm


def mlp(seed=0, dropout=0.0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    layers = [Flatten(), Dense(16, 12, rng=rng, dtype=dtype), ReLU()]
    layers += [Dropout(dropout)] if dropout else []
    layers += [Dense(12, 3, rng=rng, dtype=dtype)]
    return Sequential(layers, input_shape=(4, 4))


def blobs(n=60, seed=0):
    """Three separable classes of 4x4 uint8 'images'."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.integers(0, 60, (n, 4, 4))
    x[np.arange(n), y, y] += 180  # each class lights up its own pixel
    return x.astype(np.uint8), y


def test_model_gradient_matches_numerical_in_float64():
    from gradcheck import check_model_grads

    model = mlp(dtype=np.float64)
    x = np.random.default_rng(1).random((5, 4, 4))
    y = np.array([0, 1, 2, 1, 0])

    check_model_grads(model, x, y, training=False)


def test_overfits_a_tiny_batch_to_100_percent():
    x, y = blobs(20)
    model = mlp()
    history = model.fit(x, y, epochs=60, batch_size=20, optimizer=Adam(0.01), verbose=0)
    assert history.history["accuracy"][-1] == 1.0
    assert model.evaluate(x, y)["accuracy"] == 1.0
    assert history.history["loss"][-1] < 0.1


def test_history_and_outputs_shapes_and_dtypes():
    x, y = blobs(50)
    model = mlp()
    history = model.fit(
        x,
        y,
        epochs=3,
        batch_size=16,
        validation_data=(x[:10], y[:10]),
        seed=0,
        verbose=0,
    )
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"):
        assert len(history.history[key]) == 3, key
    assert len(history.batch_losses) == 3 * 4  # ceil(50 / 16) steps per epoch
    probs = model.predict(x)
    assert probs.shape == (50, 3) and probs.dtype == np.float32
    assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert set(model.evaluate(x, y)) == {"loss", "accuracy"}
    assert all(p.dtype == np.float32 for p in model.named_params().values())


def test_epoch_loss_is_weighted_by_batch_size():
    x, y = blobs(10)
    model = mlp()
    losses = []

    class Record(Callback):
        def on_batch_end(self, batch, logs):
            losses.append(logs["loss"])

    history = model.fit(
        x,
        y,
        epochs=1,
        batch_size=7,
        optimizer=SGD(1e-9),
        callbacks=[Record()],
        verbose=0,
    )
    assert_allclose(history.history["loss"][0], (7 * losses[0] + 3 * losses[1]) / 10)


def test_callbacks_are_called_in_keras_order():
    x, y = blobs(10)
    calls = []

    class Trace(Callback):
        def on_train_begin(self, logs=None):
            calls.append("train_begin")

        def on_epoch_begin(self, epoch, logs):
            calls.append(f"epoch_begin {epoch}")

        def on_batch_begin(self, batch, logs):
            calls.append(f"batch_begin {batch}")

        def on_batch_end(self, batch, logs):
            calls.append(f"batch_end {batch}")

        def on_epoch_end(self, epoch, logs):
            calls.append(f"epoch_end {epoch}")

        def on_train_end(self, logs=None):
            calls.append("train_end")

    mlp().fit(x, y, epochs=2, batch_size=6, callbacks=[Trace()], verbose=0)
    epoch = ["batch_begin 0", "batch_end 0", "batch_begin 1", "batch_end 1"]
    assert calls == [
        "train_begin",
        "epoch_begin 0", *epoch, "epoch_end 0",
        "epoch_begin 1", *epoch, "epoch_end 1",
        "train_end",
    ]  # fmt: skip


def test_same_seed_same_result():
    x, y = blobs(40)
    runs = []
    for _ in range(2):
        model = mlp(seed=3, dropout=0.3)
        history = model.fit(x, y, epochs=2, batch_size=8, seed=11, verbose=0)
        runs.append((model.flat_params.copy(), history.batch_losses))
    assert_allclose(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    other = mlp(seed=3, dropout=0.3)
    other.fit(x, y, epochs=2, batch_size=8, seed=12, verbose=0)
    assert not np.allclose(other.flat_params, runs[0][0])


def epoch_of(batches: EpochBatches) -> tuple[np.ndarray, np.ndarray, list]:
    """One epoch's batches, copied (the yielded arrays are reused), and their inputs."""
    xs, ys, inputs = [], [], []
    for _, _, xb, yb, _ in batches.epoch():
        xs.append(xb.copy())
        ys.append(yb.copy())
        inputs.append(xb)
    return np.concatenate(xs), np.concatenate(ys), inputs


def test_epoch_batches_shuffle_every_example_once_as_float32():
    x, _ = blobs(23)
    y = np.arange(23)  # labels that name their example
    batches = EpochBatches(x, y, 8, shuffle=True, rng=np.random.default_rng(0))
    assert batches.steps == 3
    orders = []
    for _ in range(2):
        xs, ys, inputs = epoch_of(batches)
        assert sorted(ys) == list(range(23))  # every example once
        assert [len(b) for b in inputs] == [8, 8, 7]
        assert xs.dtype == np.float32
        assert_allclose(xs, x[ys] / 255, rtol=1e-6)  # images stay with their labels
        orders.append(ys)
    assert not np.array_equal(orders[0], orders[1])  # a new order each epoch
    # the same order as a permutation drawn from the same generator
    assert np.array_equal(orders[0], np.random.default_rng(0).permutation(23))


@pytest.mark.parametrize("kind", ["float64", "uint8 strided"])
def test_shuffled_batches_keep_images_labels_and_weights_together(kind):
    x, _ = blobs(40)
    x = x.astype(np.float64) / 255 if kind == "float64" else x[::2]
    y = np.arange(len(x))  # labels that name their example
    weights = y * 0.5
    rng = np.random.default_rng(0)
    batches = EpochBatches(x, y, 8, shuffle=True, rng=rng, weights=weights)
    for _ in range(2):
        got = [(xb.copy(), yb.copy(), wb.copy()) for *_, xb, yb, wb in batches.epoch()]
        xs, ys, ws = (np.concatenate(parts) for parts in zip(*got))
        assert sorted(ys) == list(range(len(x)))
        assert_array_equal(ws, ys * 0.5)
        expected = x[ys] if kind == "float64" else x[ys] / 255
        assert xs.dtype == (np.float64 if kind == "float64" else np.float32)
        assert_allclose(xs, expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint8, np.float32])
def test_a_shuffled_epoch_makes_no_copy_of_the_training_set(dtype):
    x = np.zeros((4000, 28, 28), dtype)  # 3.1 MB as uint8, 12.5 MB as float32
    y = np.zeros(4000, np.int64)
    for _ in EpochBatches(x, y, 32, True, np.random.default_rng(0)).epoch():
        pass  # the first batch loads the compiled kernel, which allocates
    tracemalloc.start()
    try:
        batches = EpochBatches(x, y, 32, shuffle=True, rng=np.random.default_rng(0))
        for _ in batches.epoch():
            pass
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < x.nbytes / 10  # the order (32 kB) and a batch (100 kB) at most


def test_epoch_batches_reuse_their_memory():
    x, y = blobs(24)
    batches = EpochBatches(x, y, 8, shuffle=True, rng=np.random.default_rng(0))
    _, _, first = epoch_of(batches)
    _, _, second = epoch_of(batches)
    # every batch of both epochs is scaled into one array, not a new one per batch
    assert all(np.shares_memory(b, first[0]) for b in first + second)
    unshuffled = EpochBatches(x, y, 8, shuffle=False, rng=None)
    xs, ys, _ = epoch_of(unshuffled)
    assert np.array_equal(ys, y)
    assert_allclose(xs, x / 255, rtol=1e-6)


def test_uint8_images_are_scaled_like_floats_in_0_1():
    x, _ = blobs(8)
    model = mlp()
    assert_allclose(
        model.predict(x), model.predict(x.astype(np.float32) / 255), rtol=1e-5
    )


@pytest.mark.parametrize("dtype", ["float16", ">f4", ">f8"])
def test_other_float_inputs_run_as_float32_or_float64(dtype):
    """The compiled kernels take native float32 and float64 only: float16 (data kept
    small) and big-endian floats (read from files) run as those, not crash in numba."""
    x, y = blobs(12)
    floats = (x / 255).astype(dtype)
    wanted = np.float64 if dtype == ">f8" else np.float32
    with using("numba"):
        model = Sequential(
            [Reshape((1, 4, 4)), Conv2D(3, 3, padding=1, rng=0), BatchNorm(),
             MaxPool2D(2), ReLU(), Flatten(), Dense(3, rng=1)],
            input_shape=(4, 4), loss="cross_entropy",
        )  # fmt: skip
        assert_allclose(model.predict(floats), model.predict(floats.astype(wanted)))
        model.fit(floats, y, epochs=1, batch_size=5, verbose=0)
        assert model(floats).dtype == wanted


def test_validation_split_holds_out_a_fraction():
    x, y = blobs(40)
    history = mlp().fit(x, y, epochs=1, batch_size=40, validation_split=0.25, verbose=0)
    assert len(history.batch_losses) == 1 and "val_accuracy" in history.history
    with pytest.raises(NnscratchError, match="validation"):
        mlp().fit(x, y, validation_split=1.5, verbose=0)


def test_early_stopping_restores_best_weights():
    x, y = blobs(60)
    model = mlp()
    stopper = EarlyStopping(monitor="val_loss", patience=2)
    snapshots = []

    class Snapshot(Callback):
        def on_epoch_end(self, epoch, logs):
            snapshots.append((logs["val_loss"], self.model.get_weights()))

    wrong = (y[:20] + 1) % 3  # validation labels the model cannot learn: val_loss rises
    history = model.fit(
        x, y, epochs=200, batch_size=8, optimizer=Adam(0.05), validation_data=(x[:20], wrong),
        callbacks=[Snapshot(), stopper], seed=0, verbose=0,
    )  # fmt: skip
    assert (
        len(history.epoch) == stopper.best_epoch + 3
    )  # patience 2: stops 2 epochs later
    _, best_weights = min(snapshots, key=lambda s: s[0])
    for name, array in model.get_weights().items():
        assert_allclose(array, best_weights[name])


def test_divergence_stops_with_a_clear_message():
    x, y = blobs(30)
    model = mlp()
    with pytest.raises(TrainingDivergedError, match="lower learning rate"):
        model.fit(x, y, epochs=5, batch_size=30, optimizer=SGD(1e30), verbose=0)


def test_bad_inputs_get_clear_errors():
    model = mlp()
    x, y = blobs(10)
    with pytest.raises(NnscratchError, match=r"expected \(N, 4, 4\), got \(10, 16\)"):
        model.predict(x.reshape(10, 16))
    with pytest.raises(
        NnscratchError, match=r"class labels \(whole numbers\) of shape \(10,\)"
    ):
        model.fit(x, y[:5], verbose=0)
    with pytest.raises(NnscratchError, match="logits"):
        Sequential([Flatten(), Dense(16, 3), Softmax()]).fit(x, y, verbose=0)
    # the same for a sigmoid before the fused binary cross-entropy, which would
    # squash twice and never learn (its accuracy read the probabilities as logits)
    with pytest.raises(NnscratchError, match="remove the final Sigmoid"):
        Sequential([Flatten(), Dense(16, 1), Sigmoid()]).fit(
            x, y % 2, loss="binary_cross_entropy", verbose=0
        )
    with pytest.raises(NnscratchError, match="no layers; add them with model.add"):
        Sequential([]).predict(x)


def test_labels_outside_the_classes_are_refused_before_training():
    x, y = blobs(10)
    for bad in (-1, 3):  # -1 would index the last class; 3 is past it
        labels = y.copy()
        labels[4] = bad
        model = mlp()
        before = model.flat_params.copy()
        with pytest.raises(NnscratchError, match=r"y: expected labels 0 to 2"):
            model.fit(x, labels, verbose=0)
        with pytest.raises(NnscratchError, match=r"validation y: expected labels"):
            model.fit(x, y, validation_data=(x, labels), verbose=0)
        with pytest.raises(NnscratchError, match=r"y: expected labels"):
            model.evaluate(x, labels)
        assert np.array_equal(model.flat_params, before)  # nothing was trained


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda m, x, y: m.fit(x, y, batch_size=0), "batch_size: expected an int >= 1"),
        (lambda m, x, y: m.fit(x, y, batch_size=8.0), "batch_size: expected an int"),
        (lambda m, x, y: m.fit(x, y, epochs=-1), "epochs: expected an int >= 0"),
        (lambda m, x, y: m.fit(x, y, seed="a"), "seed: expected an int >= 0"),
        (
            lambda m, x, y: m.fit(x, y, validation_data=(x,)),
            "validation_data: expected",
        ),
        (lambda m, x, y: m.fit(x, y, callbacks=EarlyStopping()), "callbacks: expected"),
        (
            lambda m, x, y: m.fit(x, y, optimizer="adagrad"),
            "optimizer: expected one of",
        ),
        (
            lambda m, x, y: m.fit(x, y, optimizer=0.1),
            "optimizer: expected an Optimizer",
        ),
        (lambda m, x, y: m.evaluate(x, y, batch_size=-1), "batch_size: expected"),
        (lambda m, x, y: m.predict(x, batch_size=0), "batch_size: expected"),
        (lambda m, x, y: m.predict(np.full((2, 4, 4), np.nan)), "x: contains NaN"),
        (
            lambda m, x, y: m.fit(np.where(x == x.max(), np.inf, 0.5), y),
            "x: contains NaN",
        ),
    ],
)
def test_bad_fit_evaluate_predict_arguments_are_named(call, message):
    x, y = blobs(10)
    with pytest.raises(NnscratchError, match=message):
        call(mlp(), x, y)


def test_a_failed_first_call_does_not_fix_the_input_shape():
    model = Sequential([Flatten(), Dense(16, 3)])
    with pytest.raises(NnscratchError, match=r"Dense: expected input \(N, 16\)"):
        model.predict(np.zeros((2, 5, 5), np.float32))
    assert model.input_shape is None
    assert model.predict(np.zeros((2, 4, 4), np.float32)).shape == (2, 3)
    assert model.input_shape == (4, 4)


def test_predict_on_no_images_has_one_column_per_class():
    assert mlp().predict(np.zeros((0, 4, 4), np.uint8)).shape == (0, 3)


def test_evaluate_refuses_a_softmax_before_the_fused_loss():
    x, y = blobs(10)
    model = Sequential([Flatten(), Dense(16, 3), Softmax()], input_shape=(4, 4))
    with pytest.raises(NnscratchError, match="logits"):
        model.evaluate(x, y)


def test_evaluate_adds_the_weight_penalty_like_the_training_loss():
    x, y = blobs(30)
    penalised = Sequential([Flatten(), Dense(16, 3, l2=0.1, rng=0)], input_shape=(4, 4))
    plain = Sequential([Flatten(), Dense(16, 3, rng=0)], input_shape=(4, 4))
    W = penalised.layers[1].params["W"]
    expected = plain.evaluate(x, y)["loss"] + 0.1 * float(
        np.sum(W.astype(np.float64) ** 2)
    )
    assert penalised.evaluate(x, y)["loss"] == pytest.approx(expected, rel=1e-6)
    # at batch 30 (the whole set, one step) the epoch's loss is that of the start
    history = penalised.fit(x, y, epochs=1, batch_size=30, verbose=0)
    assert history.history["loss"][0] == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(
    "loss, last", [("cross_entropy", None), ("mse", None), (None, Softmax())]
)
def test_evaluate_and_predict_is_both_from_one_pass(forward_rows, loss, last):
    x, y = blobs(30)
    layers = [Flatten(), Dense(16, 3, l2=0.01, rng=0)] + ([last] if last else [])
    model = Sequential(layers, input_shape=(4, 4))
    if loss:
        model.compile(loss=loss, metrics=["accuracy", "mae"])
    elif last:
        model.compile(loss="mse")  # a Softmax layer: predict gives its outputs
    expected = model.evaluate(x, y, batch_size=8), model.predict(x, batch_size=8)
    forward_rows.clear()
    results, probs = model.evaluate_and_predict(x, y, batch_size=8)
    assert forward_rows == [8, 8, 8, 6]  # x went through the network once
    assert results == expected[0]  # the same floats, not merely close ones
    assert probs.dtype == np.float32
    assert_array_equal(probs, expected[1])


def test_a_last_batch_of_one_example_joins_the_one_before():
    assert batch_bounds(33, 32) == [(0, 33)]
    assert batch_bounds(65, 32) == [(0, 32), (32, 65)]
    assert batch_bounds(34, 32) == [(0, 32), (32, 34)]
    assert batch_bounds(1, 32) == [(0, 1)]
    # except when single examples were asked for: one step per example
    assert batch_bounds(3, 1) == [(0, 1), (1, 2), (2, 3)]
    # so batch norm, which cannot normalise one example, trains on 33 examples
    x, y = blobs(33)
    model = Sequential(
        [Flatten(), Dense(16, 8, rng=0), BatchNorm(8), ReLU(), Dense(8, 3, rng=1)],
        input_shape=(4, 4),
    )
    history = model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    assert len(history.batch_losses) == 4  # 16 and 17 examples, twice


def test_validation_split_without_shuffling_keeps_the_order():
    from nnscratch.nn.layer import Layer

    class Recorder(Layer):
        """Passes its input on and notes which images (numbered in pixel 0) it saw."""

        def __init__(self):
            super().__init__()
            self.training_ids, self.other_ids = [], []

        def forward(self, x, training=False):
            ids = np.rint(x[:, 0, 0] * 100).astype(int).tolist()
            (self.training_ids if training else self.other_ids).extend(ids)
            return x

        def backward(self, dy):
            return dy

    images = np.zeros((20, 4, 4), np.float32)
    images[:, 0, 0] = np.arange(20) / 100  # each image carries its number
    recorder = Recorder()
    model = Sequential([recorder, Flatten(), Dense(16, 3, rng=0)], input_shape=(4, 4))
    model.fit(images, np.arange(20) % 3, epochs=1, batch_size=4, shuffle=False,
              validation_split=0.25, seed=0, verbose=0)  # fmt: skip
    trained = recorder.training_ids
    validated = recorder.other_ids[-5:]  # after the shape probe: the validation pass
    assert len(trained) == 15 and trained == sorted(trained)
    assert validated == sorted(validated) and sorted(trained + validated) == list(
        range(20)
    )


def test_fit_again_continues_with_the_same_optimizer():
    x, y = blobs(20)
    model = mlp()
    model.fit(x, y, epochs=1, batch_size=10, optimizer="sgd", verbose=0)
    first = model.optimizer
    assert type(first).__name__ == "SGD" and first.iterations == 2
    model.fit(x, y, epochs=1, batch_size=10, verbose=0)
    assert model.optimizer is first and first.iterations == 4
    model.fit(x, y, epochs=1, batch_size=10, optimizer=Adam(), verbose=0)
    assert isinstance(model.optimizer, Adam) and model.optimizer.iterations == 2


def test_arrays_taken_before_fit_stay_the_models_own():
    x, y = blobs(20)
    model = mlp()
    W = model.layers[1].params["W"]
    start = W.copy()
    model.fit(x, y, epochs=1, batch_size=10, verbose=0)
    assert model.layers[1].params["W"] is W and not np.array_equal(W, start)
    # a layer's array replaced by the user is copied into new flat buffers
    model.layers[1].params["W"] = np.zeros_like(W)
    model.fit(x, y, epochs=1, batch_size=10, verbose=0)
    assert np.shares_memory(model.layers[1].params["W"], model.flat_params)


def test_mse_trains_on_float_targets_like_the_outputs():
    x, y = blobs(30)
    one_hot = np.eye(3, dtype=np.float32)[y]
    model = mlp()
    history = model.fit(
        x,
        one_hot,
        epochs=30,
        batch_size=10,
        optimizer=Adam(0.02),
        loss="mse",
        verbose=0,
    )
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert "accuracy" not in history.history  # float targets: regression
    model.compile(metrics=["accuracy"])  # asked for: one-hot rows count as classes
    result = model.evaluate(x, one_hot)
    assert result["accuracy"] == model.evaluate(x, y)["accuracy"] > 0.9
    with pytest.raises(
        NnscratchError, match=r"expected float targets of shape \(30, 3\)"
    ):
        model.fit(x, one_hot[:, :2], verbose=0)


def test_verbose_prints_one_line_per_epoch(capsys):
    x, y = blobs(20)
    mlp().fit(x, y, epochs=2, batch_size=10, verbose=1)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2 - loss")
    mlp().fit(x, y, epochs=2, batch_size=10, verbose=0)
    assert capsys.readouterr().out == ""


EPOCH_LINE = (
    r"epoch {}/2 - loss \d\.\d{{4}} - accuracy \d\.\d{{4}} - val_loss \d+\.\d{{4}} - "
    r"val_accuracy \d\.\d{{4}} - lr 1\.00e-03 - \d+\.\ds"
)


@pytest.mark.parametrize("verbose", [0, 1, 2])
def test_each_verbose_level_prints_what_it_did_before(verbose, capsys):
    x, y = blobs(20)
    mlp().fit(x, y, epochs=2, batch_size=10, validation_split=0.25, verbose=verbose)
    out, err = capsys.readouterr()
    assert err == ""  # no progress bar off a terminal
    if verbose == 0:
        assert out == ""
    else:  # 1 and 2 alike: one line per epoch
        lines = out.splitlines()
        assert len(lines) == 2 and out.endswith("\n")
        for epoch, line in enumerate(lines, 1):
            assert re.fullmatch(EPOCH_LINE.format(epoch), line), line


def test_the_progress_bar_is_cleared_when_training_diverges(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    x, y = blobs(30)
    with pytest.raises(TrainingDivergedError) as caught:  # keeps fit's frame alive
        mlp().fit(x, y, epochs=3, batch_size=30, optimizer=SGD(1e30), verbose=1)
    out, err = capsys.readouterr()
    assert "lower learning rate" in str(caught.value)
    assert out.startswith("epoch 1/3 - loss") and "epoch 2/3:" in err
    assert err.endswith("\r")  # closed (leave=False clears it), not left open


def test_fit_returns_the_history_callback_it_added():
    x, y = blobs(20)
    losses = []

    class Record(Callback):
        def on_batch_end(self, batch, logs):
            losses.append(logs["loss"])

    history = mlp().fit(x, y, epochs=3, batch_size=10, callbacks=[Record()], verbose=0)
    assert isinstance(history, History) and history.model is not None
    assert history.batch_losses == losses and len(losses) == 3 * 2
    assert history.epoch == [0, 1, 2]
    assert set(history.history) == {"loss", "accuracy", "lr", "seconds"}
    assert all(len(values) == 3 for values in history.history.values())


def test_summary_lists_layers_shapes_and_counts():
    text = mlp().summary()
    assert "Dense" in text and "(None, 12)" in text and "Total params: 243" in text


def test_layer_outputs_returns_every_layer():
    x, _ = blobs(2)
    outputs = mlp().layer_outputs(x)
    assert [o.shape for o in outputs] == [(2, 16), (2, 12), (2, 12), (2, 3)]


def test_layers_added_or_removed_after_building_rebuild_the_model():
    # Keras' pop and add, PyTorch's append: the model builds again for its input
    # shape, keeping the weights of the layers it had
    x, y = blobs(12)
    model = mlp()
    model.fit(x, y, epochs=1, verbose=0, seed=0)
    hidden = model.layer_outputs(x)[2]  # Flatten, Dense, ReLU: (12, 12)
    model.layers.pop()
    np.testing.assert_array_equal(model(x), hidden)
    assert model.predict(x, probabilities=False).shape == (12, 12)
    assert model.count_params() == 16 * 12 + 12
    model.layers.append(Dense(2, rng=0))
    model.fit(x, y % 2, epochs=1, verbose=0, seed=0)
    assert model.predict(x).shape == (12, 2)
    assert "(None, 2)" in model.summary()


def test_the_model_keeps_no_array_of_the_caller_after_predict_evaluate_and_fit():
    # the layers keep their inputs for backward: after predict, evaluate and fit
    # those were views of the caller's x, which the model kept alive
    import gc
    import weakref

    def arrays():
        x, y = blobs(600)
        return x.astype(np.float32) / 255, y

    model = mlp()
    model.fit(*arrays(), epochs=1, verbose=0)  # builds and compiles
    for use in (
        lambda m, x, y: m.predict(x, batch_size=64),
        lambda m, x, y: m.evaluate(x, y, batch_size=64),
        lambda m, x, y: m.fit(x, y, epochs=1, shuffle=False, verbose=0),
        lambda m, x, y: m.fit(x, y, epochs=1, batch_size=600, verbose=0),
    ):
        x, y = arrays()
        use(model, x, y)
        gone = weakref.ref(x), weakref.ref(y)
        del x, y
        gc.collect()
        assert gone[0]() is None and gone[1]() is None


def test_after_full_batch_training_the_model_keeps_no_training_size_array():
    # full-batch training gathers all of x into one float32 batch (the seed-2layer
    # preset: 188 MB for MNIST) that the first layer kept as its input
    import gc

    x = np.random.default_rng(0).integers(0, 256, (4000, 8, 8), dtype=np.uint8)
    y = np.zeros(4000, np.int64)
    model = Sequential([Flatten(), Dense(4), ReLU(), Dense(3)], input_shape=(8, 8))
    model.fit(x[:50], y[:50], epochs=1, batch_size=50, verbose=0)  # compiles kernels
    tracemalloc.start()
    try:
        model.fit(x, y, epochs=1, batch_size=len(x), verbose=0)
        gc.collect()  # the fit's own objects (the trainer and its batches)
        kept, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the layers' arrays for one batch of 4 and 3 outputs stay (~270 kB); the batch
    # of float32 images (1 MB) goes
    assert kept < x.size * 4 / 2
