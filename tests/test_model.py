import numpy as np
import pytest
from numpy.testing import assert_allclose

from nnscratch import (
    SGD,
    Adam,
    Callback,
    Dense,
    Dropout,
    EarlyStopping,
    Flatten,
    NnscratchError,
    ReLU,
    Sequential,
    Softmax,
    TrainingDivergedError,
)
from nnscratch.model import EpochBatches


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
    for _, _, xb, yb in batches.epoch():
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
    with pytest.raises(NnscratchError, match="integer labels"):
        model.fit(x, y[:5], verbose=0)
    with pytest.raises(NnscratchError, match="logits"):
        Sequential([Flatten(), Dense(16, 3), Softmax()]).fit(x, y, verbose=0)
    with pytest.raises(NnscratchError, match="Layer"):
        Sequential([])


def test_verbose_prints_one_line_per_epoch(capsys):
    x, y = blobs(20)
    mlp().fit(x, y, epochs=2, batch_size=10, verbose=1)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2 - loss")
    mlp().fit(x, y, epochs=2, batch_size=10, verbose=0)
    assert capsys.readouterr().out == ""


def test_summary_lists_layers_shapes_and_counts():
    text = mlp().summary()
    assert "Dense" in text and "(None, 12)" in text and "Total params: 243" in text


def test_layer_outputs_returns_every_layer():
    x, _ = blobs(2)
    outputs = mlp().layer_outputs(x)
    assert [o.shape for o in outputs] == [(2, 16), (2, 12), (2, 12), (2, 3)]
