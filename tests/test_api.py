"""The Python API as Keras and PyTorch users drive it: shape inference, freezing,
seeds, weights, losses and metrics, one step at a time, and clear errors."""

import copy
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from gradcheck import check_layer_grads
from numpy.testing import assert_allclose, assert_array_equal

import nnscratch as nn
from nnscratch.errors import NnscratchError, TrainingDivergedError
from nnscratch.nn.saving import model_description


def blobs(n=60, features=6, classes=3, seed=0):
    """Three separable clusters: x (n, features) float32, labels (n,)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    centres = rng.normal(0, 3, (classes, features))
    x = centres[y] + rng.normal(0, 0.5, (n, features))
    return x.astype(np.float32), y


# ----- shape inference -----------------------------------------------------------
def test_layers_without_sizes_equal_explicit_ones_with_the_same_seed():
    nn.set_seed(7)
    inferred = nn.Sequential(
        [nn.Flatten(), nn.Dense(16), nn.ReLU(), nn.Dense(3)], input_shape=(2, 3)
    )
    nn.set_seed(7)
    explicit = nn.Sequential(
        [nn.Flatten(), nn.Dense(6, 16), nn.ReLU(), nn.Dense(16, 3)], input_shape=(2, 3)
    )
    for name, array in explicit.get_weights().items():
        assert_array_equal(inferred.get_weights()[name], array)


def test_conv_and_batch_norm_take_their_channels_from_the_input():
    model = nn.Sequential(
        [nn.Conv2D(4, 3, padding=1), nn.BatchNorm(), nn.ReLU(), nn.MaxPool2D(2),
         nn.Flatten(), nn.Dense(5)],
        input_shape=(2, 6, 6),
    )  # fmt: skip
    assert model.layers[0].params["W"].shape == (4, 2, 3, 3)
    assert model.layers[1].params["gamma"].shape == (4,)
    assert model.layers[5].n_in == 4 * 3 * 3
    assert model.output_shape == (5,)
    summary = model.summary()
    assert "(None, 4, 6, 6)" in summary and "(None, 36)" in summary


def test_a_model_without_input_shape_is_built_by_its_first_batch():
    x, y = blobs()
    model = nn.Sequential([nn.Dense(8), nn.ReLU(), nn.Dense(3)])
    assert not model.built and "?" in model.summary()
    with pytest.raises(NnscratchError, match="not built yet"):
        model.count_params()
    model.fit(x, y, epochs=1, verbose=0)
    assert model.input_shape == (6,) and model.count_params() == 6 * 8 + 8 + 8 * 3 + 3


def test_a_size_mismatch_names_the_layer_and_both_shapes_at_build_time():
    with pytest.raises(
        NnscratchError,
        match=r"layer 2 \(Dense\) does not take input \(N, 100\): "
        r"Dense: expected input \(N, 784\)",
    ):
        nn.Sequential([nn.Dense(100), nn.ReLU(), nn.Dense(784, 10)], input_shape=(50,))


def test_dense_and_conv_accept_both_argument_orders():
    assert nn.Dense(5).n_out == 5 and nn.Dense(3, 5).n_in == 3
    conv = nn.Conv2D(8, 3, stride=2)
    assert (conv.in_channels, conv.out_channels, conv.stride) == (None, 8, (2, 2))
    torch_order = nn.Conv2D(1, 8, 3, 1, 1)
    assert torch_order.padding == (1, 1) and torch_order.params["W"].shape == (
        8,
        1,
        3,
        3,
    )
    with pytest.raises(NnscratchError, match="Dense"):
        nn.Dense(1, 2, 3)
    with pytest.raises(NnscratchError, match="Conv2D"):
        nn.Conv2D(8)


# ----- freezing ------------------------------------------------------------------
def test_a_frozen_layer_is_bit_identical_after_fit_and_the_others_learn():
    x, y = blobs()
    model = nn.Sequential(
        [nn.Dense(6, 8, rng=0), nn.BatchNorm(), nn.ReLU(), nn.Dense(8, 3, rng=1)],
        input_shape=(6,),
    )
    model.layers[0].trainable = model.layers[1].trainable = False
    before = model.get_weights()
    model.fit(x, y, epochs=3, batch_size=10, verbose=0, seed=0)
    after = model.get_weights()
    for name in ("0.W", "0.b", "1.gamma", "1.beta", "1.running_mean", "1.running_var"):
        assert_array_equal(after[name], before[name])
    assert not np.array_equal(after["3.W"], before["3.W"])
    assert model.count_params(trainable_only=True) == 8 * 3 + 3
    assert model.count_params() == 6 * 8 + 8 + 2 * 8 + 8 * 3 + 3
    assert "(frozen)" in model.summary()


def test_freezing_is_saved_and_a_loaded_model_can_be_fine_tuned(tmp_path):
    x, y = blobs()
    model = nn.Sequential([nn.Dense(8), nn.ReLU(), nn.Dense(3)], input_shape=(6,))
    model.fit(x, y, epochs=2, verbose=0, seed=0)
    model.layers[0].trainable = False
    model.save(tmp_path / "m.npz")
    loaded = nn.load_model(tmp_path / "m.npz")
    assert [layer.trainable for layer in loaded.layers] == [False, True, True]
    frozen = loaded.layers[0].params["W"].copy()
    first = loaded.evaluate(x, y)["loss"]
    loaded.fit(x, y, epochs=5, optimizer=nn.Adam(0.01), verbose=0, seed=0)
    assert_array_equal(loaded.layers[0].params["W"], frozen)
    assert loaded.evaluate(x, y)["loss"] < first


def test_a_whole_model_can_be_frozen_and_thawed():
    x, y = blobs()
    model = nn.Sequential([nn.Dense(8), nn.ReLU(), nn.Dense(3)], input_shape=(6,))
    model.fit(x, y, epochs=1, verbose=0, seed=0)  # the optimiser has moments now
    model.trainable = False
    assert not model.trainable and model.count_params(trainable_only=True) == 0
    model.trainable = True
    model.layers[2].trainable = False  # fewer trainable parameters: moments restart
    model.fit(x, y, epochs=1, verbose=0, seed=0)
    assert model.count_params(trainable_only=True) == 6 * 8 + 8


def test_after_freezing_adam_goes_on_exactly_as_a_new_adam():
    """Freezing changes the trainable parameters, so the moments restart from zero;
    Adam's step count must restart with them, or its bias correction scales the next
    steps wrongly (3x too large after 5000 steps; PyTorch's count is per parameter)."""
    x, y = blobs()

    def model():
        layers = [nn.Dense(6, 8, rng=0), nn.ReLU(), nn.Dense(8, 3, rng=1)]
        return nn.Sequential(layers, input_shape=(6,))

    continued = model()
    continued.fit(x, y, epochs=3, optimizer=nn.Adam(0.01), verbose=0, seed=0)
    continued.layers[0].trainable = False
    fresh = model()
    fresh.set_weights(continued.get_weights())
    fresh.layers[0].trainable = False
    continued.fit(x, y, epochs=2, verbose=0, seed=1)  # goes on with its Adam
    fresh.fit(x, y, epochs=2, optimizer=nn.Adam(0.01), verbose=0, seed=1)
    assert_allclose(continued.get_weights()["2.W"], fresh.get_weights()["2.W"])
    assert continued.optimizer.iterations == fresh.optimizer.iterations


def test_a_frozen_layers_penalty_is_left_out_of_the_loss_as_in_keras():
    """Keras 3 adds the regularisers of trainable weights only: a frozen layer's L2
    term is a constant that training does not minimise."""
    x, y = blobs()
    model = nn.Sequential(
        [nn.Dense(8, l2=0.1), nn.ReLU(), nn.Dense(3, l2=0.01)], input_shape=(6,)
    )
    data_loss = nn.SoftmaxCrossEntropy().forward(model(x), y)
    W0, W2 = model.layers[0].params["W"], model.layers[2].params["W"]
    both = data_loss + 0.1 * np.sum(W0**2) + 0.01 * np.sum(W2**2)
    assert_allclose(model.evaluate(x, y)["loss"], both, rtol=1e-5)
    model.layers[0].trainable = False
    only_trained = data_loss + 0.01 * np.sum(W2**2)
    assert_allclose(model.evaluate(x, y)["loss"], only_trained, rtol=1e-5)
    history = model.fit(
        x, y, epochs=1, batch_size=60, optimizer=nn.SGD(1e-9), verbose=0
    )
    assert_allclose(history.history["loss"], [only_trained], rtol=1e-5)


def test_a_layer_frozen_by_a_callback_stays_as_it_was_from_the_next_epoch_on():
    """Keras-style fine-tuning from a callback: freezing is checked once an epoch."""
    x, y = blobs()
    model = nn.Sequential([nn.Dense(8), nn.ReLU(), nn.Dense(3)], input_shape=(6,))
    snapshots = []

    class FreezeFirst(nn.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 0:
                model.layers[0].trainable = False
            snapshots.append(model.get_weights())

    model.fit(
        x, y, epochs=3, batch_size=10, verbose=0, seed=0, callbacks=[FreezeFirst()]
    )
    assert_array_equal(snapshots[2]["0.W"], snapshots[0]["0.W"])
    assert not np.array_equal(snapshots[2]["2.W"], snapshots[1]["2.W"])


# ----- seeds ---------------------------------------------------------------------
def train_once(**model_args):
    x, y = blobs()
    model = nn.Sequential(
        [nn.Dense(16), nn.ReLU(), nn.Dropout(0.3), nn.Dense(3)], input_shape=(6,),
        **model_args,
    )  # fmt: skip
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    return model.get_weights(), history.history["loss"]


def test_set_seed_makes_whole_runs_bit_identical():
    nn.set_seed(3)
    weights_a, losses_a = train_once()
    nn.set_seed(3)
    weights_b, losses_b = train_once()
    assert losses_a == losses_b
    for name in weights_a:
        assert_array_equal(weights_a[name], weights_b[name])


def test_a_model_seed_makes_runs_bit_identical_and_differs_between_seeds():
    (a, _), (b, _), (c, _) = (train_once(seed=s) for s in (1, 1, 2))
    for name in a:
        assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["0.W"], c["0.W"])


def test_a_model_seed_never_redraws_trained_or_loaded_weights(tmp_path):
    # transfer learning: Sequential(base.layers + [head], seed=1) drew the trained
    # base's weights anew from the seed, silently: they were lost before the head
    # trained on them
    x, y = blobs()
    base = nn.Sequential([nn.Dense(8, activation="relu")], input_shape=(6,), seed=0)
    base.fit(x, y, epochs=2, verbose=0, seed=0)
    base.save(tmp_path / "base.npz")
    given = nn.Dense(6, 8, rng=0)  # weights put in by hand (Keras' set_weights)
    nn.Sequential([given]).set_weights([np.full((6, 8), 0.5), np.zeros(8)])
    loaded = nn.load_model(tmp_path / "base.npz")
    for layers in (base.layers, [given], loaded.layers):
        before = [a.copy() for a in nn.Sequential(layers).get_weights().values()]
        head = nn.Sequential([*layers, nn.Dense(3)], input_shape=(6,), seed=1)
        after = list(head.get_weights().values())[: len(before)]
        for array, kept in zip(after, before, strict=True):
            assert_array_equal(array, kept)
        head.fit(x, y, epochs=1, verbose=0)  # the head trains on them
    # layers never trained nor set are still drawn by the seed, as before
    fresh = nn.Dense(6, 8, rng=0)
    drawn = fresh.params["W"].copy()
    nn.Sequential([fresh], input_shape=(6,), seed=1)
    assert not np.array_equal(fresh.params["W"], drawn)


# ----- losses and metrics ------------------------------------------------------------
def test_binary_cross_entropy_trains_a_single_sigmoid_output():
    x, y = blobs(classes=2)
    model = nn.Sequential([nn.Dense(8), nn.ReLU(), nn.Dense(1)], input_shape=(6,))
    history = model.fit(
        x, y, epochs=20, loss="binary_cross_entropy", optimizer=nn.Adam(0.02),
        verbose=0, seed=0,
    )  # fmt: skip
    assert history.history["accuracy"][-1] > 0.95
    probs = model.predict(x)
    assert probs.shape == (len(x), 1) and probs.min() >= 0 and probs.max() <= 1
    assert_allclose(
        probs, 1 / (1 + np.exp(-model.predict(x, probabilities=False))), rtol=1e-5
    )


def test_class_weights_equal_a_hand_weighted_loss():
    x, y = blobs(n=12)
    model = nn.Sequential([nn.Dense(3, rng=0)], input_shape=(6,), loss="cross_entropy")
    weights = {0: 1.0, 1: 3.0, 2: 0.5}
    result = model.evaluate(x, y, sample_weight=np.array([weights[c] for c in y]))
    logits = model.predict(x, probabilities=False).astype(np.float64)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    per_example = -log_probs[np.arange(len(y)), y]
    by_hand = np.mean([weights[c] for c in y] * per_example)  # Keras: sum / N
    assert result["loss"] == pytest.approx(by_hand, rel=1e-5)
    # class_weight in fit weighs the same way: one step equals one on sample weights
    a = nn.Sequential([nn.Dense(3, rng=0)], input_shape=(6,))
    b = nn.Sequential([nn.Dense(3, rng=0)], input_shape=(6,))
    loss_a = a.train_on_batch(x, y, class_weight=weights)["loss"]
    loss_b = b.train_on_batch(x, y, sample_weight=[weights[c] for c in y])["loss"]
    assert loss_a == loss_b
    assert_array_equal(a.layers[0].params["W"], b.layers[0].params["W"])


def test_a_float64_model_weighs_its_loss_by_the_exact_float64_weights():
    # the example weights were rounded to float32 whatever the model: a float64
    # model's weighted loss (and its step) then differed from PyTorch's by ~1e-8
    x, y = blobs(n=12)
    x = x.astype(np.float64)
    weights = np.random.default_rng(1).random(12)  # not float32 numbers
    per_class = {0: 0.1, 1: 0.3, 2: 0.7}
    model = nn.Sequential([nn.Dense(3, rng=0, dtype=np.float64)], input_shape=(6,))
    logits = x @ model.layers[0].params["W"] + model.layers[0].params["b"]
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    per_example = -log_probs[np.arange(len(y)), y]
    by_hand = np.mean(weights * per_example)
    assert model.evaluate(x, y, sample_weight=weights)["loss"] == pytest.approx(
        by_hand, rel=1e-14
    )
    step = model.train_on_batch(x, y, class_weight=per_class)["loss"]
    by_class = np.mean([per_class[c] for c in y] * per_example)
    assert step == pytest.approx(by_class, rel=1e-14)


def test_class_weight_weighs_training_only_not_the_validation_split():
    # class_weight was folded into the held-out examples' weights: the same examples
    # scored another val_loss than as validation_data, and Keras weighs only training
    x, y = blobs(n=40)
    sample_weight = np.random.default_rng(2).random(40)
    val_losses = []
    for weights, class_weight in [
        (sample_weight, None), (sample_weight, {0: 10.0, 1: 0.1}), (None, None)
    ]:  # fmt: skip
        model = nn.Sequential([nn.Dense(3, rng=0)], input_shape=(6,))
        history = model.fit(
            x, y, epochs=1, validation_split=0.25, sample_weight=weights,
            class_weight=class_weight, optimizer=nn.SGD(1e-30), seed=1, verbose=0,
        )  # fmt: skip
        val_losses.append(history.history["val_loss"][0])
    assert val_losses[1] == val_losses[0]
    assert val_losses[2] != val_losses[0]  # the held-out sample weights do count


def test_labels_as_a_column_or_whole_floats_train_as_integer_labels():
    x, y = blobs()
    runs = []
    for labels in (y, y.reshape(-1, 1), y.astype(np.float64)):
        model = nn.Sequential([nn.Dense(8, rng=0), nn.ReLU(), nn.Dense(3, rng=1)])
        history = model.fit(
            x, labels, epochs=2, batch_size=16, seed=0, verbose=0,
            validation_split=0.2, class_weight={0: 1.0, 1: 2.0, 2: 1.0},
        )  # fmt: skip
        history.history.pop("seconds")
        runs.append((model.get_weights(), history.history))
        assert model.evaluate(x, labels)["accuracy"] == model.evaluate(x, y)["accuracy"]
    for weights, history in runs[1:]:
        assert history == runs[0][1]
        for a, b in zip(weights, runs[0][0]):
            assert_array_equal(a, b)


def test_label_smoothing_and_soft_targets_give_the_same_loss():
    logits = np.random.default_rng(0).normal(size=(4, 5))
    labels = np.array([0, 3, 1, 4])
    smoothed = 0.9 * np.eye(5)[labels] + 0.1 / 5
    a, b = nn.SoftmaxCrossEntropy(label_smoothing=0.1), nn.SoftmaxCrossEntropy()
    assert a.forward(logits, labels) == pytest.approx(b.forward(logits, smoothed))
    assert_allclose(a.backward(), b.backward())


def test_regression_reports_no_accuracy_and_takes_targets_of_shape_n():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 3)).astype(np.float32)
    target = 5 * x[:, 0] - x[:, 1]  # (N,) floats for one output
    model = nn.Sequential([nn.Dense(1)], input_shape=(3,))
    history = model.fit(
        x, target, epochs=60, batch_size=8, loss="mse", optimizer=nn.Adam(0.05),
        verbose=0, seed=0,
        metrics=["mae"],
    )  # fmt: skip
    assert "accuracy" not in history.history and "accuracy" not in model.evaluate(
        x, target
    )
    assert history.history["mae"][-1] < 0.2 < history.history["mae"][0]
    assert model.predict(x).shape == (64, 1)


def test_mae_of_a_classifier_on_labels_or_one_hot_rows_is_the_same():
    # the README's metrics example: mae beside accuracy on class labels (N,) was a
    # raw reshape error inside the first step
    x, y = blobs()
    model = nn.Sequential([nn.Dense(3, rng=0)], input_shape=(6,))
    model.fit(x, y, verbose=0, metrics=["accuracy", nn.TopKAccuracy(k=2), "mae"])
    one_hot = np.eye(3)[y]
    probs = model.predict(x)
    expected = np.abs(probs - one_hot).mean()
    assert model.evaluate(x, y)["mae"] == pytest.approx(expected, rel=1e-5)
    assert model.evaluate(x, one_hot)["mae"] == pytest.approx(expected, rel=1e-5)


def test_top_k_accuracy_counts_labels_among_the_k_largest_outputs():
    outputs = np.array([[0.1, 0.5, 0.4], [0.7, 0.2, 0.1], [0.2, 0.3, 0.5]])
    labels = np.array([2, 2, 0])
    loss = nn.SoftmaxCrossEntropy()
    assert nn.TopKAccuracy(k=2).batch_total(outputs, labels, loss) == 1
    assert nn.TopKAccuracy(k=3).batch_total(outputs, labels, loss) == 3
    assert nn.Accuracy().batch_total(outputs, labels, loss) == 0
    x, y = blobs()
    model = nn.Sequential([nn.Dense(3)], input_shape=(6,))
    logs = model.fit(x, y, verbose=0, metrics=["accuracy", nn.TopKAccuracy(k=2)])
    assert set(logs.history) >= {"loss", "accuracy", "top_2_accuracy"}


def test_bad_sample_weights_are_named():
    x, y = blobs(n=5)
    model = nn.Sequential([nn.Dense(3, rng=0)], input_shape=(6,))
    expected = "sample_weight: expected 5 finite numbers (N,), got"
    cases = [
        ("abc", f"{expected} values that are not numbers"),
        ([1, 1, "x", 1, 1], f"{expected} values that are not numbers"),
        (np.ones(4), f"{expected} shape (4,)"),
        ([1, 1, 1, 1, np.nan], "sample_weight: contains NaN or infinite values"),
    ]
    for weights, message in cases:
        with pytest.raises(NnscratchError) as err:
            model.fit(x, y, sample_weight=weights, verbose=0)
        assert str(err.value) == message


@pytest.mark.parametrize("n, split", [(10, 0.999), (1, 0.5), (3, 0.9)])
def test_a_validation_split_leaving_nothing_to_train_on_says_so(n, split):
    x, y = blobs(n=n)
    model = nn.Sequential([nn.Dense(3, rng=0)], input_shape=(6,))
    with pytest.raises(NnscratchError) as err:
        model.fit(x, y, validation_split=split, verbose=0)
    assert str(err.value) == (
        f"validation_split={split:g} of {n} examples leaves none to train on"
    )


# ----- one optimiser, one model -------------------------------------------------
def small_model(seed=0):
    return nn.Sequential(
        [nn.Dense(8, rng=seed), nn.ReLU(), nn.Dense(3, rng=seed + 1)], input_shape=(6,)
    )


@pytest.mark.parametrize("how", ["fit", "compile", "assigned"])
def test_an_optimizer_that_trained_one_model_is_refused_by_another(how):
    # its velocity and step count were the first model's: carried into a second model
    # of as many parameters they changed its training silently (Keras 3 refuses an
    # optimizer built for other variables; PyTorch's belongs to its parameters)
    x, y = blobs(n=16)
    first, second = small_model(0), small_model(5)
    optimizer = nn.SGD(0.1, momentum=0.9)
    first.fit(x, y, epochs=1, batch_size=8, optimizer=optimizer, verbose=0)
    before = second.get_weights()
    with pytest.raises(NnscratchError, match="trained another model.*its own"):
        if how == "fit":
            second.fit(x, y, epochs=1, batch_size=8, optimizer=optimizer, verbose=0)
        elif how == "compile":
            second.compile(optimizer=optimizer)
        else:  # Keras lets `model.optimizer` be set; fit then trains with it
            second.optimizer = optimizer
            second.train_on_batch(x, y)
    for name, array in before.items():
        assert_array_equal(second.get_weights()[name], array)
    if how != "assigned":
        assert second.optimizer is None
    # a new optimiser trains the second model; the first goes on with its own
    second.fit(x, y, epochs=1, batch_size=8, optimizer=nn.SGD(0.1, 0.9), verbose=0)
    first.fit(x, y, epochs=1, batch_size=8, optimizer=optimizer, verbose=0)
    assert optimizer.iterations == 4


def test_the_refusal_counts_one_step_in_the_singular():
    x, y = blobs(n=16)
    first, second = small_model(0), small_model(5)
    first.compile(optimizer=nn.SGD(0.1))
    first.train_on_batch(x, y)
    with pytest.raises(NnscratchError, match=r"another model \(1 step; its moments"):
        second.compile(optimizer=first.optimizer)


def test_an_optimizer_stays_with_its_model_its_copies_and_its_file(tmp_path):
    x, y = blobs(n=16)
    model = small_model()
    unused = nn.Adam(0.01)  # no state yet: any model may take it
    small_model(3).compile(optimizer=unused)
    model.compile(optimizer=unused)
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    model.fit(x, y, epochs=1, batch_size=8, optimizer=model.optimizer, verbose=0)
    model.train_on_batch(x, y)
    twin = copy.deepcopy(model)  # with a copy of the optimiser, which is the twin's
    twin.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert twin.optimizer is not model.optimizer
    model.save(tmp_path / "m.npz", include_optimizer=True)
    loaded = nn.load_model(tmp_path / "m.npz")
    loaded.fit(x, y, epochs=1, batch_size=8, verbose=0)
    assert loaded.optimizer.iterations == model.optimizer.iterations + 2
    with pytest.raises(NnscratchError, match="another model"):
        twin.fit(x, y, epochs=1, optimizer=model.optimizer, verbose=0)


# ----- one step at a time ----------------------------------------------------------
def test_a_low_level_loop_equals_fit_for_one_batch():
    x, y = blobs(n=16)
    by_fit = nn.Sequential(
        [nn.Dense(8, rng=0), nn.ReLU(), nn.Dense(3, rng=1)], input_shape=(6,)
    )
    by_hand = nn.Sequential(
        [nn.Dense(8, rng=0), nn.ReLU(), nn.Dense(3, rng=1)], input_shape=(6,)
    )
    by_fit.fit(
        x, y, epochs=1, batch_size=16, shuffle=False, optimizer=nn.Adam(0.01), verbose=0
    )
    # the loop that `fit` runs, written out: forward, loss, backward, optimiser step
    loss, optimizer = nn.SoftmaxCrossEntropy(), nn.Adam(0.01)
    outputs = by_hand.forward(x, training=True)
    loss.forward(outputs, y)
    by_hand.backward(loss.backward())
    optimizer.step(by_hand.named_params(), by_hand.named_grads())
    for name, array in by_fit.get_weights().items():
        assert_array_equal(by_hand.get_weights()[name], array)
    # and train_on_batch is one such step
    third = nn.Sequential(
        [nn.Dense(8, rng=0), nn.ReLU(), nn.Dense(3, rng=1)], input_shape=(6,)
    )
    third.compile(optimizer=nn.Adam(0.01))
    third.train_on_batch(x, y)
    for name, array in by_fit.get_weights().items():
        assert_array_equal(third.get_weights()[name], array)


def test_calling_a_model_gives_raw_outputs_and_test_on_batch_evaluates():
    x, y = blobs(n=8)
    model = nn.Sequential([nn.Dense(3, rng=0)], input_shape=(6,), loss="cross_entropy")
    raw = model(x)
    assert_allclose(
        raw, x @ model.layers[0].params["W"] + model.layers[0].params["b"], rtol=1e-6
    )
    assert_allclose(model.predict(x).sum(axis=1), 1, rtol=1e-6)
    assert_array_equal(model.predict(x, probabilities=False), raw)
    assert model.test_on_batch(x, y) == model.evaluate(x, y)


def test_a_feature_extractor_predicts_its_features():
    x, _ = blobs(n=8)
    features = nn.Sequential([nn.Dense(4, rng=0), nn.ReLU()], input_shape=(6,))
    assert_array_equal(features.predict(x), np.maximum(features(x), 0))
    assert (features.predict(x) >= 0).all() and not np.allclose(
        features.predict(x).sum(1), 1
    )


def test_the_readme_loop_leaves_a_frozen_layer_as_it_is():
    # the README's loop, as written there, with the first layer frozen: the step on
    # every parameter moved the frozen weights (weight decay, and the momentum of
    # the steps before the freeze)
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    (call,) = re.findall(r"`(optimizer\.step\(model\..*?\))`", readme)
    x, y = blobs(n=16)
    model, loss = small_model(), nn.SoftmaxCrossEntropy()
    optimizer = nn.SGD(0.1, momentum=0.9, weight_decay=0.1)
    for frozen in (False, True):
        model.layers[0].trainable = not frozen
        before = model.layers[0].params["W"].copy()
        outputs = model.forward(x, training=True)
        loss.forward(outputs, y)
        model.backward(loss.backward())
        eval(call, {"optimizer": optimizer, "model": model})
    assert_array_equal(model.layers[0].params["W"], before)
    trained, initial = model.layers[2].params["W"], small_model().layers[2].params["W"]
    assert not np.array_equal(trained, initial)


# ----- the smaller defects ------------------------------------------------------------
def test_set_weights_takes_keras_list_form_and_checks_it():
    model = nn.Sequential([nn.Dense(2, 3)])
    W, b = np.ones((2, 3), np.float32), np.arange(3, dtype=np.float32)
    model.set_weights([W, b])
    assert_array_equal(model.layers[0].params["b"], b)
    with pytest.raises(
        NnscratchError, match=r"expected a list of 2 arrays \(0.W, 0.b\), got 1"
    ):
        model.set_weights([W])
    with pytest.raises(
        NnscratchError, match=r"'0.W' has shape \(3, 2\), expected \(2, 3\)"
    ):
        model.set_weights([W.T, b])
    # text (or complex numbers) in the second array: a raw "could not convert
    # string to float" after W had been overwritten already
    for bad in (np.full(3, "x"), np.full(3, 1 + 2j)):
        with pytest.raises(
            NnscratchError, match=r"^weights: '0.b' holds .* values, expected numbers"
        ):
            model.set_weights([2 * W, bad])
        assert_array_equal(model.layers[0].params["W"], W)  # nothing half-copied


def test_sequential_needs_one_list_of_layers():
    with pytest.raises(NnscratchError, match=r"one list: Sequential\(\[layer, ...\]\)"):
        nn.Sequential(nn.Dense(2, 3), nn.ReLU())
    with pytest.raises(NnscratchError, match="item 1 is not a Layer"):
        nn.Sequential([nn.Dense(2, 3), "relu"])
    with pytest.raises(NnscratchError, match="list of Layer objects, got 'dense'"):
        nn.Sequential("dense")


def test_layers_added_one_at_a_time_train_as_the_same_list(tmp_path):
    """Keras' Sequential() then add(...): the same model, seeded the same way."""
    x, y = blobs()
    added = nn.Sequential(seed=0)
    for layer in (nn.Dense(8), nn.ReLU(), nn.Dense(3)):
        added.add(layer)
    listed = nn.Sequential([nn.Dense(8), nn.ReLU(), nn.Dense(3)], seed=0)
    for model in (added, listed):
        model.fit(x, y, epochs=2, batch_size=16, verbose=0)
    for a, b in zip(added.get_weights().values(), listed.get_weights().values()):
        assert_array_equal(a, b)
    added.save(tmp_path / "added.npz")
    assert_array_equal(
        nn.load_model(tmp_path / "added.npz").predict(x), added.predict(x)
    )


def test_a_model_given_its_input_shape_first_builds_once_layers_are_added():
    model = nn.Sequential(input_shape=(6,))
    assert not model.built
    model.add(nn.Dense(4))
    assert "Total params: 28" in model.summary()  # built for (6,) by the summary
    assert isinstance(model.pop(), nn.Dense) and model.layers == []
    model.add(nn.Dense(5))
    assert model.predict(blobs()[0][:2]).shape == (2, 5)


def test_weights_of_layers_added_to_a_model_with_an_input_shape_are_there_at_once():
    # Keras builds a layer added to a model that knows its input: get_weights and
    # set_weights (copying another model's weights in) work before any predict
    source = nn.Sequential([nn.Dense(4), nn.Dense(3)], input_shape=(6,), seed=0)
    model = nn.Sequential(input_shape=(6,))
    model.add(nn.Dense(4))
    model.add(nn.Dense(3))
    assert list(model.get_weights()) == ["0.W", "0.b", "1.W", "1.b"]
    fresh = nn.Sequential(input_shape=(6,))
    fresh.add(nn.Dense(4))
    fresh.add(nn.Dense(3))
    fresh.set_weights(source.get_weights())
    x = blobs()[0][:5]
    assert_array_equal(fresh.predict(x), source.predict(x))


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda m, x, y: m.fit(x, y, verbose=0),
            "Sequential: the model has no layers; add",
        ),
        (lambda m, x, y: m.predict(x), "Sequential: the model has no layers; add"),
        (lambda m, x, y: m.save("never.npz"), "save: the model has no layers"),
        (lambda m, x, y: m.pop(), "pop: the model has no layers"),
        (lambda m, x, y: m.add("relu"), "add: the argument is not a Layer: 'relu'"),
    ],
)
def test_a_model_without_layers_says_so(call, match, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    x, y = blobs()
    with pytest.raises(NnscratchError, match=match):
        call(nn.Sequential(), x, y)
    assert not any(tmp_path.iterdir())


def test_activation_arguments_train_as_activation_layers(tmp_path):
    """Keras' Dense(16, activation="relu"): the same model as Dense(16), ReLU(),
    listed so (and so fused, saved and exported), bit-identical."""
    rng = np.random.default_rng(0)
    x, y = (rng.random((40, 10, 10)) * 255).astype(np.uint8), np.arange(40) % 3
    keras_style = nn.Sequential(
        [nn.Reshape((1, 10, 10)), nn.Conv2D(4, 3, activation="relu"),
         nn.MaxPool2D(2), nn.Flatten(), nn.Dense(16, activation=nn.LeakyReLU(0.2))],
        input_shape=(10, 10), seed=0,
    )  # fmt: skip
    keras_style.add(nn.Dense(3, activation="linear"))
    listed = nn.Sequential(
        [nn.Reshape((1, 10, 10)), nn.Conv2D(4, 3), nn.ReLU(), nn.MaxPool2D(2),
         nn.Flatten(), nn.Dense(16), nn.LeakyReLU(0.2), nn.Dense(3)],
        input_shape=(10, 10), seed=0,
    )  # fmt: skip
    names = [type(layer).__name__ for layer in keras_style.layers]
    assert names == [type(layer).__name__ for layer in listed.layers]
    assert keras_style.layers[6].alpha == 0.2
    for model in (keras_style, listed):
        model.fit(x, y, epochs=2, batch_size=8, seed=1, verbose=0)
    for a, b in zip(keras_style.get_weights().values(), listed.get_weights().values()):
        assert_array_equal(a, b)
    keras_style.save(tmp_path / "m.npz")
    assert_array_equal(nn.load_model(tmp_path / "m.npz").predict(x), listed.predict(x))
    # a layer given an activation after the model was built: built again with it
    keras_style.layers.append(nn.Dense(2, activation="softmax"))
    assert keras_style.predict(x[:3]).sum(axis=1) == pytest.approx(1.0)
    assert type(keras_style.layers[-1]) is nn.Softmax


def test_pop_removes_a_layer_with_its_activation_as_keras_does():
    model = nn.Sequential(input_shape=(6,))
    model.add(nn.Dense(8, activation="relu"))
    model.add(nn.Dense(3, activation="tanh"))
    assert [type(layer).__name__ for layer in model.layers] == [
        "Dense", "ReLU", "Dense", "Tanh",
    ]  # fmt: skip
    last = model.pop()
    assert type(last) is nn.Dense and type(last.activation) is nn.Tanh
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "ReLU"]
    model.add(last)  # back with its activation
    assert model.predict(blobs()[0][:2]).shape == (2, 3)
    assert type(model.layers[-1]) is nn.Tanh
    plain = nn.Sequential([nn.Dense(3), nn.ReLU()], input_shape=(6,))
    assert type(plain.pop()) is nn.ReLU  # a ReLU given as a layer is a layer


def test_a_layer_with_an_activation_shared_by_two_models_has_it_in_both():
    # the first model took the activation out of the layer: the second had none
    x = blobs()[0][:4]
    hidden = nn.Dense(8, activation="tanh", rng=0)
    first = nn.Sequential([hidden, nn.Dense(3, rng=1)], input_shape=(6,))
    second = nn.Sequential([hidden, nn.Dense(2, rng=2)], input_shape=(6,))
    assert [type(layer).__name__ for layer in second.layers] == [
        "Dense",
        "Tanh",
        "Dense",
    ]
    assert type(hidden.activation) is nn.Tanh  # it keeps it, as a Keras layer does
    assert_allclose(second.layer_outputs(x)[1], first.layer_outputs(x)[1])
    assert second.layer_outputs(x)[1].min() > -1  # tanh's range, in both
    # a model of another's layers (Keras' Sequential(model.layers[:-1])) lists it once
    cut = nn.Sequential(first.layers[:-1])
    assert [type(layer).__name__ for layer in cut.layers] == ["Dense", "Tanh"]
    assert_array_equal(cut.predict(x), first.layer_outputs(x)[1])
    # saved as Dense, Tanh, Dense: the activation once
    names = [spec["class"] for spec in model_description(second)["layers"]]
    assert names == ["Dense", "Tanh", "Dense"]


def test_a_layer_that_was_in_a_model_still_applies_its_activation_alone():
    # the model had moved the activation out into a layer of its own, and the
    # layer called alone afterwards (a notebook checking one layer) skipped it
    x64 = np.random.default_rng(0).standard_normal((3, 6))
    dense = nn.Dense(6, 4, rng=0, dtype=np.float64, activation="relu")
    conv = nn.Conv2D(1, 2, 3, rng=0, dtype=np.float64, activation="tanh")
    images = np.random.default_rng(1).standard_normal((2, 1, 5, 5))
    before = dense.forward(x64).copy(), conv.forward(images).copy()
    model = nn.Sequential([dense, nn.Dense(3)], input_shape=(6,), seed=0)
    cnn = nn.Sequential([conv, nn.Flatten()], input_shape=(1, 5, 5))
    model.fit(*blobs(), epochs=1, verbose=0, seed=0)  # trained inside the model
    dense.params["W"][...] = np.random.default_rng(2).standard_normal((6, 4))
    assert dense.forward(x64).min() == 0  # ReLU's, alone
    W, b = dense.params["W"], dense.params["b"]
    assert_allclose(dense.forward(x64), np.maximum(x64 @ W + b, 0))
    assert_allclose(conv.forward(images), before[1])
    assert conv.forward(images).max() < 1
    dense.needs_input_grad = conv.needs_input_grad = True  # models: first layers
    check_layer_grads(dense, x64)  # backward goes through the activation too
    check_layer_grads(conv, images)
    # and the models still apply it once, as their own layer
    assert_allclose(cnn.predict(images), before[1].reshape(2, -1), rtol=1e-6)
    hidden = model.layer_outputs(x64.astype(np.float32))
    assert_allclose(hidden[1], np.maximum(hidden[0], 0))
    assert [type(layer).__name__ for layer in model.layers] == [
        "Dense", "ReLU", "Dense",
    ]  # fmt: skip


def test_a_failed_build_leaves_the_layers_as_they_were():
    # a notebook: the first try names a wrong n_in; the same layer objects, fixed,
    # were refused because the failed try had built the first Dense for 4 inputs
    hidden, wrong = nn.Dense(8, activation="relu"), nn.Dense(5, 3)
    with pytest.raises(NnscratchError, match=r"layer 2 \(Dense\) does not take"):
        nn.Sequential([hidden, wrong], input_shape=(4,))
    assert (hidden.n_in, hidden.built, hidden.params) == (None, False, {})
    assert type(hidden.activation) is nn.ReLU
    model = nn.Sequential([hidden, nn.Dense(3)], input_shape=(6,))
    assert [type(layer).__name__ for layer in model.layers] == [
        "Dense",
        "ReLU",
        "Dense",
    ]
    assert model.predict(blobs()[0][:2]).shape == (2, 3)
    # a model built before, given a layer that does not fit, builds as it was again
    model.add(nn.Dense(7, 2))
    with pytest.raises(NnscratchError, match=r"layer 3 \(Dense\)"):
        model.predict(blobs()[0][:2])
    model.pop()
    assert model.predict(blobs()[0][:2]).shape == (2, 3)


def test_a_failed_build_with_a_seed_leaves_built_layers_weights_as_they_were():
    # the model's seed redrew the weights of an already built layer in place; the
    # build then failed, and the notebook's layer had silently new weights
    built, wrong = nn.Dense(6, 4, rng=0), nn.Conv2D(2, 3)
    norm = nn.BatchNorm()
    norm.build((4,))
    norm.state["running_mean"][...] = 0.5
    before = {**built.params, **norm.state}
    before = {name: array.copy() for name, array in before.items()}
    with pytest.raises(NnscratchError, match=r"layer 2 \(Conv2D\)"):
        nn.Sequential([built, norm, wrong], input_shape=(6,), seed=3)
    for name, array in {**built.params, **norm.state}.items():
        assert_array_equal(array, before[name])
    model = nn.Sequential(seed=3)  # the same when the seed draws at build
    model.add(built)
    model.add(wrong)
    with pytest.raises(NnscratchError, match=r"layer 1 \(Conv2D\)"):
        model.build((6,))
    assert_array_equal(built.params["W"], before["W"])
    model.pop()  # corrected, the model's seed draws the layer's weights again
    model.build((6,))
    assert not np.allclose(built.params["W"], before["W"])


def test_a_layer_object_listed_twice_in_a_model_is_refused():
    # its second place overwrote what the first kept for backward: wrong gradients
    # (two 5-wide Tanh) or a broadcast ValueError from inside Tanh.backward
    tanh = nn.Tanh()
    with pytest.raises(
        NnscratchError, match=r"^Sequential: layer 3 is layer 1 again \(the same Tanh"
    ):
        nn.Sequential([nn.Dense(5), tanh, nn.Dense(5), tanh], input_shape=(6,))
    with pytest.raises(NnscratchError, match="Tanh object given as activation="):
        nn.Sequential(
            [nn.Dense(5, activation=tanh), nn.Dense(3, activation=tanh)],
            input_shape=(6,),
        )
    model = nn.Sequential([nn.Dense(5), tanh], input_shape=(6,))
    model.add(tanh)
    with pytest.raises(NnscratchError, match="layer 2 is layer 1 again"):
        model.predict(blobs()[0][:2])


def test_an_unknown_activation_is_named_with_the_known_ones():
    with pytest.raises(
        NnscratchError, match="Dense activation: expected None, 'linear', one of relu,"
    ):
        nn.Dense(3, activation="gelu")
    layer = nn.Dense(3, 4, activation=nn.LeakyReLU(0.3))
    assert nn.Dense(**layer.get_config()).activation.alpha == 0.3  # saved alone


def test_get_config_keeps_the_activation_after_the_layer_was_in_a_model(tmp_path):
    # Keras' round trip Dense(**layer.get_config()): once a model had listed the
    # activation as a layer of its own, the config left it out and the copy had none
    dense = nn.Dense(4, activation=nn.LeakyReLU(0.3), l2=0.01, rng=0)
    conv = nn.Conv2D(2, 3, activation="tanh")
    before = dense.get_config(), conv.get_config()
    model = nn.Sequential([dense, nn.Dense(3)], input_shape=(6,), seed=0)
    nn.Sequential([conv, nn.Flatten()], input_shape=(1, 5, 5))
    assert dense.get_config() == {**before[0], "n_in": 6}
    assert conv.get_config() == {**before[1], "in_channels": 1}
    copy = nn.Dense(**dense.get_config())
    assert type(copy.activation) is nn.LeakyReLU and copy.activation.alpha == 0.3
    # the model file still holds the activation once, as the layer after the Dense
    layers = model_description(model)["layers"]
    assert [spec["class"] for spec in layers] == ["Dense", "LeakyReLU", "Dense"]
    assert "activation" not in layers[0]["config"]
    model.save(tmp_path / "m.npz")
    loaded = nn.load_model(tmp_path / "m.npz")
    assert [type(layer).__name__ for layer in loaded.layers] == [
        "Dense", "LeakyReLU", "Dense",
    ]  # fmt: skip
    x = blobs()[0][:4]
    assert_array_equal(loaded.predict(x), model.predict(x))


class _Wrapper(nn.Layer):
    """A custom layer holding another layer and running it as its own."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def build(self, input_shape):
        self.inner.build(input_shape)
        self.built = True

    def forward(self, x, training=False):
        return self.inner.forward(x, training)

    def backward(self, dy):
        return self.inner.backward(dy)


def test_a_layer_from_a_model_inside_a_custom_layer_applies_its_activation():
    # the first model listed the ReLU as its own layer; inside the custom layer of
    # a second model (which lists no ReLU) the Dense skipped it all the same
    rng = np.random.default_rng(0)
    x, dy = rng.standard_normal((5, 6)), rng.standard_normal((5, 4))
    inner = nn.Dense(6, 4, activation="relu", rng=0, dtype=np.float64)
    first = nn.Sequential([inner, nn.Dense(3, rng=1)], input_shape=(6,))
    second = nn.Sequential([_Wrapper(inner)], input_shape=(6,))
    z = x @ inner.params["W"] + inner.params["b"]
    assert_allclose(second.forward(x, training=True), np.maximum(z, 0))
    second.backward(dy)  # through the ReLU too
    assert_allclose(inner.grads["W"], x.T @ (dy * (z > 0)))
    assert_allclose(second(x), inner(x))
    # the first model still runs it once, as its own layer
    assert [type(layer).__name__ for layer in first.layers] == [
        "Dense", "ReLU", "Dense",
    ]  # fmt: skip
    hidden = first.layer_outputs(x)
    assert_allclose(hidden[0], z, rtol=1e-6)
    assert_allclose(hidden[1], np.maximum(z, 0), rtol=1e-6)


def test_the_number_of_class_names_is_checked_when_the_model_is_built():
    with pytest.raises(NnscratchError, match="2 class names for outputs of shape"):
        nn.Sequential([nn.Dense(4, 3)], input_shape=(4,), class_names=["a", "b"])
    model = nn.Sequential([nn.Dense(3)], class_names=["a", "b"])  # not built yet
    with pytest.raises(NnscratchError, match="2 class names"):
        model.fit(*blobs(), verbose=0)


def test_unscaled_float_pixels_are_warned_about_once():
    images = np.random.default_rng(0).integers(0, 256, (20, 4, 4)).astype(np.float32)
    labels = np.arange(20) % 3
    model = nn.Sequential([nn.Flatten(), nn.Dense(3)])
    with pytest.warns(UserWarning, match="look like unscaled pixels; divide by 255"):
        model.fit(images, labels, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(images)
        model.fit(images / 255, labels, verbose=0)


def test_the_unscaled_pixels_warning_points_at_the_users_line():
    # a fixed stacklevel pointed evaluate's and validation data's warnings into
    # model.py, where a user cannot tell which call of theirs it was about
    images = np.random.default_rng(0).integers(0, 256, (20, 4, 4)).astype(np.float32)
    labels = np.arange(20) % 3
    calls = [
        lambda model: model.evaluate(images, labels),
        lambda model: model.evaluate_and_predict(images, labels),
        lambda model: model.predict(images),
        lambda model: model.fit(
            images / 255, labels, validation_data=(images, labels), verbose=0
        ),
    ]
    for call in calls:
        model = nn.Sequential([nn.Flatten(), nn.Dense(3)], input_shape=(4, 4))
        with pytest.warns(UserWarning, match="unscaled pixels") as record:
            call(model)
        assert [w.filename for w in record] == [__file__]


def test_a_huge_finite_loss_stops_training_as_divergence():
    x, y = blobs()
    model = nn.Sequential([nn.Dense(3, rng=0)], input_shape=(6,))
    W = model.layers[0].params["W"]
    W *= 1e22  # logits near 1e22-1e23: a finite but absurd loss
    with pytest.raises(
        TrainingDivergedError, match="training diverged: the loss became"
    ):
        model.fit(x, y, verbose=0)


def test_an_empty_batch_is_refused_by_every_batch_method():
    # train_on_batch divided the loss by the batch size: a ZeroDivisionError
    x, y = blobs(n=5)
    model = nn.Sequential([nn.Dense(3, rng=0)], input_shape=(6,))
    model.compile(nn.SGD(0.1))
    before = model.get_weights()
    with pytest.raises(NnscratchError, match="^train_on_batch: x is empty$"):
        model.train_on_batch(x[:0], y[:0])
    with pytest.raises(NnscratchError, match="^evaluate: x is empty$"):
        model.test_on_batch(x[:0], y[:0])
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_weights_beyond_float32_are_refused_by_name():
    # they became inf in the float32 weights: an inf loss that evaluate returned and
    # fit called divergence ("try a lower learning rate")
    x, y = blobs(n=5)
    model = nn.Sequential([nn.Dense(3, rng=0)], input_shape=(6,))
    big = np.full(5, 1e39)
    with pytest.raises(NnscratchError, match="^sample_weight: weights up to 1e"):
        model.evaluate(x, y, sample_weight=big)
    with pytest.raises(NnscratchError, match=r"^class_weight: weights up to 1e\+300 "):
        model.fit(x, y, class_weight={0: 1e300}, verbose=0)
    with pytest.raises(NnscratchError, match="^sample_weight times class_weight: "):
        model.fit(x, y, sample_weight=big / 1e20, class_weight={0: 1e20}, verbose=0)
