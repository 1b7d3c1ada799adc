"""The scikit-learn estimators: scikit-learn's own suite, and the tools people use
them with (Pipeline, GridSearchCV, cross_val_score, joblib)."""

import importlib
import pickle
import sys

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import load_digits, make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, cross_val_score, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler
from sklearn.utils.estimator_checks import check_estimator

from nnscratch import SGD, Conv2D, Sequential, export_onnx, load_model
from nnscratch.sklearn import (
    NeuralNetClassifier,
    NeuralNetRegressor,
    expected_failed_checks,
)


@pytest.fixture(scope="module")
def digits():
    """load_digits split 75/25, stratified: (x_train, x_test, y_train, y_test)."""
    x, y = load_digits(return_X_y=True)
    return train_test_split(x / 16.0, y, test_size=0.25, random_state=0, stratify=y)


SMALL = {"hidden": (16,), "epochs": 20, "lr": 1e-2}  # the defaults pass too, slower


@pytest.mark.parametrize(
    "estimator", [NeuralNetClassifier(**SMALL), NeuralNetRegressor(**SMALL)]
)
def test_scikit_learns_check_estimator_passes(estimator):
    # the checks that cannot pass are declared, with their reasons
    failing = expected_failed_checks(estimator)
    assert len(failing) <= 3 and all(len(reason) > 20 for reason in failing.values())
    results = check_estimator(estimator, expected_failed_checks=failing)
    assert {r["check_name"] for r in results if r["status"] == "xfail"} <= set(failing)
    assert sum(r["status"] == "passed" for r in results) >= 55


def test_grid_search_over_a_pipeline_on_digits(digits):
    x_train, x_test, y_train, y_test = digits
    pipeline = make_pipeline(
        MinMaxScaler(), NeuralNetClassifier(epochs=20, lr=3e-3, random_state=0)
    )
    grid = GridSearchCV(
        pipeline, {"neuralnetclassifier__hidden": [(32,), (64,)]}, cv=3, n_jobs=2
    )
    grid.fit(x_train, y_train)
    assert grid.score(x_test, y_test) > 0.95


def test_cross_val_score_and_a_conv_net_through_image_shape(digits):
    x_train, _, y_train, _ = digits
    net = NeuralNetClassifier(
        (32,), image_shape=(8, 8), conv=(8,), epochs=5, lr=3e-3, random_state=0
    )
    scores = cross_val_score(net, x_train[:600], y_train[:600], cv=2)
    assert scores.min() > 0.8
    net.fit(x_train[:100], y_train[:100])
    assert isinstance(net.model_.layers[1], Conv2D)
    assert net.model_.input_shape == (64,)  # the rows, reshaped inside the network


def test_the_fitted_network_is_a_sequential_that_saves_and_pickles(digits, tmp_path):
    x_train, x_test, y_train, _ = digits
    labels = np.array(["zero", "one", "two", "three", "four", "five", "six", "seven",
                       "eight", "nine"])[y_train]  # fmt: skip
    net = NeuralNetClassifier((16,), epochs=3, random_state=0).fit(x_train, labels)
    assert list(net.classes_) == sorted(set(labels))
    assert isinstance(net.model_, Sequential)
    assert net.model_.class_names == list(net.classes_)
    assert len(net.loss_curve_) == net.n_iter_ == 3
    probs = net.predict_proba(x_test)
    assert probs.shape == (len(x_test), 10) and probs.dtype == np.float64
    np.testing.assert_allclose(probs.sum(axis=1), 1)
    np.testing.assert_allclose(net.model_.predict(x_test), probs, atol=1e-6)
    net.model_.save(tmp_path / "net.npz")
    np.testing.assert_allclose(load_model(tmp_path / "net.npz").predict(x_test), probs,
                               atol=1e-6)  # fmt: skip
    joblib.dump(net, tmp_path / "net.joblib")
    again = joblib.load(tmp_path / "net.joblib")
    np.testing.assert_array_equal(again.predict(x_test), net.predict(x_test))
    np.testing.assert_array_equal(again.predict_proba(x_test), probs)


def test_a_pickled_conv_estimator_is_small_predicts_and_trains_on_the_same(digits):
    # joblib and GridSearchCV(n_jobs>1) pickle estimators: without the last
    # predict's activations and im2col columns, and laid out anew to predict
    x_train, x_test, y_train, _ = digits
    net = NeuralNetClassifier(
        (16,), image_shape=(8, 8), conv=(8,), epochs=2, random_state=0
    ).fit(x_train, y_train)
    probs = net.predict_proba(x_test)
    weights = net.model_.count_params() * 8  # float64: X's type
    again = pickle.loads(pickle.dumps(net))
    assert len(pickle.dumps(net)) < 3 * weights + 30_000  # weights and Adam's moments
    np.testing.assert_array_equal(again.predict_proba(x_test), probs)
    net.partial_fit(x_train, y_train)
    again.partial_fit(x_train, y_train)
    np.testing.assert_array_equal(
        again.predict_proba(x_test), net.predict_proba(x_test)
    )


def test_predict_log_proba_stays_finite_where_probabilities_underflow():
    x, y = make_blobs(60, centers=2, random_state=0)
    net = NeuralNetClassifier((8,), epochs=50, lr=0.05, random_state=0).fit(x * 100, y)
    log_probs = net.predict_log_proba(x * 100)
    assert np.isfinite(log_probs).all() and log_probs.min() < -745  # exp() gives 0


def test_partial_fit_trains_on_and_needs_the_classes_first(digits):
    x_train, _, y_train, _ = digits
    net = NeuralNetClassifier((16,), random_state=0)
    with pytest.raises(ValueError, match="classes="):
        net.partial_fit(x_train, y_train)
    net.partial_fit(x_train[:500], y_train[:500], classes=np.arange(10))
    net.partial_fit(x_train[500:], y_train[500:])
    assert net.n_iter_ == 2 and net.loss_curve_[1] < net.loss_curve_[0]
    with pytest.raises(ValueError, match="differs"):
        net.partial_fit(x_train, y_train, classes=np.arange(11))


def test_partial_fit_trains_on_every_row_even_with_early_stopping(digits):
    # as scikit-learn's MLP: no validation rows held out of each call
    x_train, _, y_train, _ = digits
    plain = NeuralNetClassifier((16,), random_state=0)
    early = NeuralNetClassifier((16,), early_stopping=True, random_state=0)
    for net in (plain, early):
        net.partial_fit(x_train[:200], y_train[:200], classes=np.arange(10))
        net.partial_fit(x_train[200:201], y_train[200:201])  # a stream's one row
    np.testing.assert_array_equal(
        early.predict_proba(x_train), plain.predict_proba(x_train)
    )


def test_sample_weights_count(digits):
    x_train, _, y_train, _ = digits
    weights = np.where(y_train == 3, 20.0, 1.0)
    plain = NeuralNetClassifier((16,), epochs=2, random_state=0).fit(x_train, y_train)
    weighted = NeuralNetClassifier((16,), epochs=2, random_state=0)
    weighted.fit(x_train, y_train, sample_weight=weights)
    assert (weighted.predict(x_train) == 3).sum() > (plain.predict(x_train) == 3).sum()
    with pytest.raises(ValueError, match="Negative values in data passed to `sample_w"):
        weighted.fit(x_train, y_train, sample_weight=-weights)


def test_dataframe_columns_become_feature_names_in_():
    x, y = make_blobs(40, n_features=3, random_state=0)
    frame = pd.DataFrame(x, columns=["a", "b", "c"])
    net = NeuralNetRegressor((8,), epochs=2, random_state=0).fit(frame, y)
    assert list(net.feature_names_in_) == ["a", "b", "c"] and net.n_features_in_ == 3


def test_early_stopping_stops_and_keeps_the_best_epoch(digits):
    x_train, _, y_train, _ = digits
    net = NeuralNetClassifier(
        (32,), lr=0.05, epochs=300, early_stopping=True, patience=2, random_state=0
    ).fit(x_train, y_train)
    assert net.n_iter_ < 300


def test_early_stopping_holds_out_each_class_in_its_share(monkeypatch):
    """As scikit-learn's MLPClassifier: the validation_fraction early stopping
    watches is stratified (a random one held out 1 of the 3 rare examples, or 0,
    or all: then the rare class was never learnt, or never checked)."""
    held = []
    fit = Sequential.fit

    def recorded(self, x, y, *args, validation_data=None, **kwargs):
        held.append((len(y), np.bincount(validation_data[1], minlength=3)))
        return fit(self, x, y, *args, validation_data=validation_data, **kwargs)

    monkeypatch.setattr(Sequential, "fit", recorded)
    x = np.random.default_rng(0).normal(size=(120, 4))
    y = np.repeat(["common", "rare", "usual"], [60, 10, 50])
    weights = np.ones(120)
    for seed in range(5):
        net = NeuralNetClassifier((4,), epochs=2, early_stopping=True,
                                  validation_fraction=0.2, random_state=seed)  # fmt: skip
        net.fit(x, y, sample_weight=weights if seed else None)
    assert all(n == 96 and list(counts) == [12, 2, 10] for n, counts in held)


def test_regressor_fits_several_targets():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (400, 2))
    y = np.stack([np.sin(3 * x[:, 0]), x[:, 0] * x[:, 1]], axis=1)
    net = NeuralNetRegressor((32,), activation="tanh", epochs=60, lr=1e-2,
                             random_state=0).fit(x, y)  # fmt: skip
    assert net.predict(x).shape == (400, 2) and net.n_outputs_ == 2
    assert net.score(x, y) > 0.9
    assert net.fit(x, y[:, 0]).predict(x).shape == (400,)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"hidden": (0,)}, "hidden size"),
        ({"hidden": None}, "hidden: expected an int or a sequence"),
        ({"conv": None, "image_shape": (2, 2)}, "conv: expected an int or a seq"),
        ({"activation": "swish"}, "activation"),
        ({"dropout": 1.0}, "dropout"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"image_shape": (3, 3)}, "image_shape"),
        ({"conv": (4,)}, "image_shape"),
        ({"validation_fraction": 0.0}, "validation_fraction"),
        ({"verbose": 10}, "verbose: expected 0, 1 or 2"),
    ],
)
def test_settings_are_checked_by_fit_with_a_value_error(settings, message):
    net = NeuralNetClassifier(**settings)  # stored as given: clone and set_params work
    assert net.get_params()[next(iter(settings))] == next(iter(settings.values()))
    x, y = make_blobs(20, n_features=4, random_state=0)
    with pytest.raises(ValueError, match=message):
        net.fit(x, y)


def test_without_scikit_learn_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.base", None)  # "not installed"
    monkeypatch.delitem(sys.modules, "nnscratch.app.sklearn")
    with pytest.raises(ImportError, match=r"nnscratch\[sklearn\]"):
        importlib.import_module("nnscratch.app.sklearn")


def test_the_float64_network_exports_to_onnx_as_predict_proba(digits, tmp_path):
    ort = pytest.importorskip("onnxruntime")  # the onnx extra, installed in CI
    x_train, x_test, y_train, _ = digits
    net = NeuralNetClassifier((16,), image_shape=(8, 8), conv=(4,), epochs=2,
                              random_state=0).fit(x_train, y_train)  # fmt: skip
    assert net.model_.layers[1].params["W"].dtype == np.float64
    path = export_onnx(net.model_, tmp_path / "digits.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for n in (1, 37):  # any batch size
        (probs,) = session.run(["probs"], {"images": x_test[:n].astype(np.float32)})
        np.testing.assert_allclose(probs, net.predict_proba(x_test[:n]), atol=1e-6)


def test_a_float64_regressor_trains_on_float64_targets():
    # y was rounded to float32 for the float64 network: the loss it reported was
    # not that of its own predictions (off by ~4e-9 here)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((6, 4)), 0.1 + rng.standard_normal(6)
    net = NeuralNetRegressor(
        hidden=(5,), optimizer=SGD(lr=1e-300), epochs=1, batch_size=6, random_state=0
    ).fit(X, y)  # one step on the whole batch, whose loss is before the update
    assert net.loss_curve_[0] == pytest.approx(
        np.mean((net.predict(X) - y) ** 2), rel=1e-12
    )


def test_a_failed_fit_leaves_the_estimator_unfitted_not_half_refitted(digits):
    # the failed fit's classes_ (or targets) beside the last fit's network: predict
    # raised an IndexError, predict_proba gave 10 columns for 2 classes_, and the
    # regressor 2 values per row, flattened, for a one-target y
    x_train, x_test, y_train, _ = digits
    net = NeuralNetClassifier((8,), epochs=1, random_state=0).fit(x_train, y_train)
    with pytest.raises(ValueError, match="sample_weight"):
        net.fit(x_train, y_train % 2, sample_weight=np.ones(3))
    for method in (net.predict, net.predict_proba):
        with pytest.raises(NotFittedError):
            method(x_test)
    regressor = NeuralNetRegressor((8,), epochs=1, random_state=0)
    regressor.fit(x_train, np.stack([y_train, -y_train], axis=1))
    with pytest.raises(ValueError, match="sample_weight"):
        regressor.fit(x_train, y_train, sample_weight=np.ones(3))
    with pytest.raises(NotFittedError):
        regressor.predict(x_test)
    # a first partial_fit that failed: not fitted either (was an AttributeError)
    net = NeuralNetClassifier((8,), random_state=0)
    with pytest.raises(ValueError, match="not in classes_"):
        net.partial_fit(x_train, y_train, classes=[0, 1])
    with pytest.raises(NotFittedError):
        net.predict(x_test)
    assert net.partial_fit(x_train, y_train, classes=np.arange(10)).n_iter_ == 1


def test_a_float32_validation_fraction_holds_out_its_share():
    # as every other setting, a NumPy number (a float32 grid's) works: it reached
    # train_test_split as it was, which refused it naming its own 'test_size'
    x, y = make_blobs(40, n_features=4, random_state=0)
    net = NeuralNetClassifier((4,), epochs=2, early_stopping=True, random_state=0,
                              validation_fraction=np.float32(0.25))  # fmt: skip
    assert net.fit(x, y).n_iter_ == 2


@pytest.mark.parametrize(
    "net, n, reason",
    [
        (NeuralNetClassifier, 20, "test_size = 2 should be greater or equal to the n"),
        (NeuralNetClassifier, 30, "only 1 member"),
        (NeuralNetRegressor, 1, "the resulting train set will be empty"),
    ],
)
def test_too_few_examples_to_hold_out_names_early_stopping(digits, net, n, reason):
    # train_test_split's reason alone named its own test_size, not a setting
    x_train, _, y_train, _ = digits
    y = np.where(np.arange(n) == 0, 1, 0) if n == 30 else y_train[:n]
    net = net((4,), epochs=1, early_stopping=True)
    match = rf"early_stopping: cannot hold out validation_fraction=0.1 of {n} ex"
    with pytest.raises(ValueError, match=match) as error:
        net.fit(x_train[:n], y)
    assert reason in str(error.value)
