"""Keras code as its users write it: Keras' names for losses, metrics and the
learning rate, its keyword arguments to evaluate and predict, and one clear line for
what nnscratch does otherwise (a final softmax, channels-last images, validation_freq).
"""

import numpy as np
import pytest
from test_api import blobs

import nnscratch as nn
from nnscratch.errors import NnscratchError
from nnscratch.nn.registry import LOSSES


def mlp(seed=0):
    return nn.Sequential(
        [nn.Dense(8, activation="relu"), nn.Dense(3)], input_shape=(6,), seed=seed
    )


# ----- Keras' names ---------------------------------------------------------------
@pytest.mark.parametrize(
    "name, cls",
    [
        ("sparse_categorical_crossentropy", nn.SoftmaxCrossEntropy),
        ("categorical_crossentropy", nn.SoftmaxCrossEntropy),
        ("binary_crossentropy", nn.BinaryCrossEntropy),
        ("mean_squared_error", nn.MeanSquaredError),
        ("Mean_Absolute_Error", nn.MeanAbsoluteError),
    ],
)
def test_keras_loss_names_give_the_same_loss(name, cls):
    model = mlp()
    model.compile(optimizer="adam", loss=name)
    assert type(model.loss) is cls


def test_keras_loss_names_train_as_ours_and_stay_out_of_the_choices():
    x, y = blobs()
    ours, keras = mlp(), mlp()
    ours.fit(x, y, epochs=2, loss="cross_entropy", seed=1, verbose=0)
    one_hot = np.eye(3, dtype=np.float32)[y]  # what to_categorical gives
    keras.fit(x, one_hot, epochs=2, loss="categorical_crossentropy", seed=1, verbose=0)
    assert_weights_equal(ours, keras)
    assert "sparse_categorical_crossentropy" not in LOSSES.short_names  # CLI choices
    with pytest.raises(NnscratchError, match="loss: expected one of cross_entropy, "):
        mlp().compile(loss="hinge")


def assert_weights_equal(a, b):
    for wa, wb in zip(a.get_weights().values(), b.get_weights().values()):
        np.testing.assert_array_equal(wa, wb)


def test_keras_metric_names_report_accuracy_under_the_name_given():
    x, y = blobs()
    model = mlp()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["acc", "sparse_top_k_categorical_accuracy"])  # fmt: skip
    history = model.fit(x, y, epochs=2, validation_data=(x, y), seed=0, verbose=0)
    keys = ["acc", "sparse_top_k_categorical_accuracy", "val_acc"]
    assert set(keys) <= set(history.history)
    plain = mlp()
    plain.compile(optimizer="adam", metrics=["accuracy"])
    expected = plain.fit(x, y, epochs=2, validation_data=(x, y), seed=0, verbose=0)
    assert history.history["acc"] == expected.history["accuracy"]
    assert history.history["val_acc"] == expected.history["val_accuracy"]
    results = model.evaluate(x, y)
    assert results["sparse_top_k_categorical_accuracy"] == 1.0  # k=5 of 3 classes
    for name in [
        "sparse_categorical_accuracy",
        "categorical_accuracy",
        "mean_squared_error",
    ]:
        model.compile(metrics=[name])
        assert name in model.evaluate(x, y)


def test_mse_and_mae_metrics_of_a_classifier_compare_probabilities_to_one_hot():
    """metrics=["mse"] beside cross-entropy on class labels: it raised NumPy's
    'cannot reshape array of size 60 into shape (60,3)'."""
    x, y = blobs()
    model = mlp()
    model.compile(loss="sparse_categorical_crossentropy", metrics=["mse", "mae"])
    results = model.evaluate(x, y)
    errors = model.predict(x) - np.eye(3)[y]
    assert results["mse"] == pytest.approx(np.mean(errors**2), rel=1e-5)
    assert results["mae"] == pytest.approx(np.mean(np.abs(errors)), rel=1e-5)


def test_compile_names_an_unknown_metric_at_once():
    with pytest.raises(
        NnscratchError, match="metric: expected one of accuracy, .*'auc'"
    ):
        mlp().compile(optimizer="adam", metrics=["auc"])


@pytest.mark.parametrize(
    "bad",
    [
        {"metrics": ["auc"]},  # a typo, fixed in the next compile
        {"loss": "hinge"},
        {"loss": "cross_entropy"},  # on logits, and the model ends with a softmax
    ],
)
def test_a_compile_that_fails_leaves_the_model_as_it_was(bad):
    """A refused compile swapped the trained optimiser for a fresh one (its moments
    and step count lost, and the fresh one free for another model) and kept a
    refused loss."""
    x, y = blobs()
    model = nn.Sequential([nn.Dense(3), nn.Softmax()], input_shape=(6,))
    model.compile(nn.Adam(), loss="mse")
    model.fit(x, y, epochs=1, verbose=0)
    optimizer, loss = model.optimizer, model.loss
    with pytest.raises(NnscratchError):
        model.compile(optimizer="sgd", **{"loss": "mse", **bad})
    assert model.optimizer is optimizer and optimizer.iterations > 0
    assert model.loss is loss


@pytest.mark.parametrize("cls", [nn.SGD, nn.RMSprop, nn.Adam, nn.AdamW])
def test_optimizers_take_keras_learning_rate(cls):
    optimizer = cls(learning_rate=0.05)
    assert optimizer.lr == optimizer.learning_rate == 0.05
    assert optimizer.get_config() == cls(0.05).get_config()
    optimizer.learning_rate = 0.02  # as Keras code lowers it by hand
    assert optimizer.lr == 0.02
    with pytest.raises(NnscratchError, match="give lr or learning_rate"):
        cls(0.1, learning_rate=0.05)
    with pytest.raises(NnscratchError, match="lr"):
        cls(learning_rate=-1.0)


def test_sgd_keeps_its_other_settings_with_learning_rate():
    optimizer = nn.SGD(learning_rate=0.01, momentum=0.9, nesterov=True)
    assert (optimizer.lr, optimizer.momentum, optimizer.nesterov) == (0.01, 0.9, True)


# ----- Keras' keyword arguments ---------------------------------------------------
def test_evaluate_takes_verbose_and_return_dict(capsys):
    x, y = blobs()
    model = mlp()
    model.fit(x, y, epochs=2, seed=0, verbose=0)
    results = model.evaluate(x, y, verbose=0)
    assert capsys.readouterr().out == ""
    test_loss, test_acc = model.evaluate(x, y, verbose=2, return_dict=False)
    assert [test_loss, test_acc] == [results["loss"], results["accuracy"]]
    assert capsys.readouterr().out == (
        f"loss {results['loss']:.4f} - accuracy {results['accuracy']:.4f}\n"
    )
    model.compile(metrics=[])  # Keras: the loss alone, a scalar
    assert model.evaluate(x, y, return_dict=False) == results["loss"]
    with pytest.raises(NnscratchError, match="verbose: expected 0 .*'auto'"):
        model.evaluate(x, y, verbose=3)


def test_predict_takes_verbose_and_prints_nothing(capsys):
    x, _ = blobs()
    model = mlp()
    probs = model.predict(x, batch_size=16, verbose=1)
    np.testing.assert_array_equal(probs, model.predict(x, verbose=0))
    assert capsys.readouterr().out == ""
    with pytest.raises(NnscratchError, match="verbose"):
        model.predict(x, verbose="yes")


def test_fit_takes_verbose_auto_as_1_and_refuses_validation_freq(capsys):
    x, y = blobs()
    model = mlp()
    model.fit(x, y, epochs=2, verbose="auto", validation_freq=1)
    assert capsys.readouterr().out.count("epoch ") == 2
    with pytest.raises(NnscratchError, match="validation_freq: .* every epoch"):
        model.fit(x, y, validation_data=(x, y), validation_freq=2)


def test_early_stopping_and_model_checkpoint_take_verbose_and_save_weights_only(
    tmp_path, capsys
):
    x, y = blobs()
    model = mlp()
    stop = nn.EarlyStopping(monitor="loss", patience=1, min_delta=1e9, verbose=1)
    path = tmp_path / "best.weights.npz"
    keep = nn.ModelCheckpoint(path, save_weights_only=True, verbose=1)
    model.fit(x, y, epochs=5, callbacks=[stop, keep], verbose=0)
    assert capsys.readouterr().out.splitlines() == [
        f"epoch 1: saved {path}",
        "epoch 2: early stopping, loss has not improved for 1 epochs",
        f"epoch 2: saved {path}",  # the callbacks run in their order
        "restored the weights of epoch 1, the best",
    ]
    with pytest.raises(NnscratchError, match="load_weights"):
        nn.load_model(path)  # the weights alone
    copy = mlp(seed=1)
    copy.load_weights(path)  # epoch 2's, as saved then
    with pytest.raises(NnscratchError, match="save_weights_only .* include_optimizer"):
        nn.ModelCheckpoint(path, save_weights_only=True, include_optimizer=True)


class KerasCallback(nn.Callback):
    """A callback as Keras' guide writes one: super().__init__(), self.params,
    on_train_batch_begin/end."""

    def __init__(self):
        super().__init__()
        self.seen, self.steps = [], []

    def on_train_begin(self, logs=None):
        self.seen.append(dict(self.params))

    def on_train_batch_begin(self, batch, logs=None):
        self.steps.append(("begin", batch))

    def on_train_batch_end(self, batch, logs=None):
        self.steps.append(("end", batch, round(logs["loss"], 12)))


def test_a_keras_callback_gets_params_and_its_train_batch_hooks():
    # self.params was missing (AttributeError), and on_train_batch_end, the name
    # Keras' guide uses, was silently never called
    x, y = blobs(n=40)
    callback = KerasCallback()
    history = mlp().fit(x, y, epochs=2, batch_size=20, callbacks=[callback], verbose=0)
    assert (
        callback.seen == [{"verbose": 0, "epochs": 2, "steps": 2}] == [history.params]
    )
    assert [s[:2] for s in callback.steps] == [
        ("begin", 0), ("end", 0), ("begin", 1), ("end", 1),
    ] * 2  # fmt: skip
    losses = [s[2] for s in callback.steps if s[0] == "end"]
    assert losses == [round(loss, 12) for loss in history.batch_losses]

    # the older on_batch_* names still work, as in Keras (aliases of these)
    class Old(nn.Callback):
        ends = 0

        def on_batch_end(self, batch, logs=None):
            Old.ends += 1

    mlp().fit(x, y, epochs=1, batch_size=20, callbacks=[Old()], verbose=0)
    assert Old.ends == 2


def test_build_takes_keras_input_shape_with_its_batch_axis():
    # Keras' model.build((None, 6)) names the batch axis as None: it was refused
    # ("expected a tuple of sizes, got (None, 6)")
    model = mlp()
    model.build((None, 6))
    assert model.input_shape == (6,) and model.count_params() == 6 * 8 + 8 + 8 * 3 + 3
    convnet = nn.Sequential(
        [nn.Conv2D(2, 3), nn.Flatten()], input_shape=[None, 1, 5, 5]
    )
    assert convnet.input_shape == (1, 5, 5)
    for shape in [(6, None), (None,), (None, None, 6)]:  # None only as the batch axis
        with pytest.raises(NnscratchError, match="input_shape: expected"):
            mlp().build(shape)


def test_a_model_given_as_a_layer_says_to_list_its_layers():
    # Keras' transfer learning, Sequential([base, Dense(3)]): "item 0 is not a
    # Layer: Sequential([Dense(...), ReLU()])", which did not say what to do
    base = mlp()
    hint = r"is a model, not a Layer: give its layers, as in Sequential\(\[\*model"
    with pytest.raises(NnscratchError, match="^Sequential: item 0 " + hint):
        nn.Sequential([base, nn.Dense(3)])
    with pytest.raises(NnscratchError, match="^add: the argument " + hint):
        nn.Sequential().add(base)
    head = nn.Sequential([*base.layers, nn.Dense(2)])  # as the message says
    assert head.layers[0] is base.layers[0]


def test_batch_size_none_is_the_default_as_in_keras():
    # Keras: "batch_size: Integer or None ... If unspecified, will default to 32";
    # code passing None on (a wrapper's default) got "expected an int >= 1"
    x, y = blobs(n=40)
    model, same = mlp(), mlp()
    history = model.fit(x, y, batch_size=None, verbose=0, seed=0)
    assert history.params["steps"] == 2  # 40 examples in batches of 32
    same.fit(x, y, verbose=0, seed=0)
    np.testing.assert_array_equal(model.predict(x, batch_size=None), same.predict(x))
    assert model.evaluate(x, y, batch_size=None) == same.evaluate(x, y)


# ----- what nnscratch does otherwise, said in one line ------------------------------
def test_a_final_softmax_is_refused_naming_keras_activation():
    model = nn.Sequential(
        [nn.Dense(8, activation="relu"), nn.Dense(3, activation="softmax")],
        input_shape=(6,),
    )
    with pytest.raises(NnscratchError, match="activation='softmax'"):
        model.compile(optimizer="adam", loss="categorical_crossentropy")


def test_channels_last_images_get_a_hint():
    def convnet():
        return [nn.Conv2D(4, kernel_size=(3, 3), activation="relu"), nn.Flatten(),
                nn.Dense(3)]  # fmt: skip

    with pytest.raises(
        NnscratchError, match=r"channels-first.*transpose\(0, 3, 1, 2\)"
    ):
        nn.Sequential(convnet(), input_shape=(8, 8, 1))
    model = nn.Sequential(convnet(), input_shape=(1, 8, 8))
    with pytest.raises(NnscratchError, match=r"got \(2, 8, 8, 1\); images here are"):
        model.predict(np.zeros((2, 8, 8, 1), np.float32))
    with pytest.raises(NnscratchError) as error:  # another shape: no hint
        model.predict(np.zeros((2, 8, 7, 1), np.float32))
    assert "channels" not in str(error.value)


# ----- a Keras tutorial on real data ------------------------------------------------
def test_the_tensorflow_fashion_mnist_tutorial_runs_as_keras_users_write_it(data_dir):
    """TensorFlow's "Basic classification", changed only where the README says."""
    (train_images, train_labels), (test_images, test_labels) = nn.load_dataset(
        "fashion-mnist", data_dir
    )
    train_images, test_images = train_images[:3000] / 255.0, test_images[:1000] / 255.0
    train_labels, test_labels = train_labels[:3000], test_labels[:1000]
    nn.set_seed(0)
    model = nn.Sequential(
        [nn.Flatten(), nn.Dense(128, activation="relu"), nn.Dense(10)],
        input_shape=(28, 28),
    )
    model.compile(optimizer=nn.Adam(learning_rate=1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])  # fmt: skip
    model.fit(train_images, train_labels, epochs=2, verbose=0)
    test_loss, test_acc = model.evaluate(
        test_images, test_labels, verbose=0, return_dict=False
    )
    assert test_acc > 0.7 and test_loss < 1.0
    predictions = model.predict(test_images, verbose=0)
    assert np.mean(predictions.argmax(axis=1) == test_labels) == test_acc
