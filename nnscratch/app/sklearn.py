"""scikit-learn estimators around `Sequential`: NeuralNetClassifier, NeuralNetRegressor.

They follow scikit-learn's conventions (checked by its `check_estimator`), so they work
in `Pipeline`, `GridSearchCV`, `cross_val_score` and with joblib. X is (N, features);
`image_shape` makes each row an image for convolutional layers. The fitted network is
`model_`, a `Sequential` like any other (save it, export it, look at its layers).
X is numbers whatever its type, as in scikit-learn: uint8 X is used as 0..255, where
a `Sequential` (so `model_`, its saved file and its ONNX export) takes uint8 as
pixels / 255; give those floats, or fit on X / 255.
Public path: `nnscratch.sklearn`; needs the extra: `pip install 'nnscratch[sklearn]'`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..nn.callbacks import EarlyStopping
from ..nn.model import Sequential
from .sklearn_network import NetworkSettings

try:
    from sklearn.base import (
        BaseEstimator,
        ClassifierMixin,
        RegressorMixin,
        is_classifier,
    )
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import (
        _check_sample_weight,
        check_is_fitted,
        validate_data,
    )
except ImportError as e:  # the optional extra
    raise ImportError(
        "nnscratch.sklearn needs scikit-learn: pip install 'nnscratch[sklearn]'"
    ) from e

FLOATS = (np.float64, np.float32)  # X is kept in either, other types become float64
PREDICT_BATCH = 1024  # rows per forward pass when predicting

# checks of scikit-learn's suite that a network trained by mini-batch gradient
# descent cannot pass, and why (check_estimator's `expected_failed_checks`)
EXPECTED_FAILED_CHECKS = {
    "check_sample_weight_equivalence_on_dense_data": (
        "mini-batch training: a weight of 2 is not the same as a repeated example, "
        "whose two copies fall in other batches and change the shuffling"
    ),
}


def expected_failed_checks(estimator) -> dict[str, str]:
    """{check name: reason} for `check_estimator` or `parametrize_with_checks`."""
    return dict(EXPECTED_FAILED_CHECKS)


class _NeuralNet(NetworkSettings, BaseEstimator):
    """What both estimators share: the settings, the network they describe, training.

    Settings (stored as given; checked by `fit`):
    - `hidden`: the sizes of the hidden Dense layers, each followed by `activation`
      ("relu", "leaky_relu", "sigmoid", "tanh") and, if `dropout` > 0, Dropout;
    - `image_shape`: (C, H, W) or (H, W): each row of X is reshaped to it, and `conv`
      lists the output channels of 3x3 convolution blocks (conv, activation, 2x2
      max-pool while the image is at least 2x2) before the dense layers;
    - `optimizer`: a name ("adam", "adamw", "sgd", "rmsprop") used with `lr`, or an
      nnscratch Optimizer (copied at each `fit`; `lr` is then its own);
    - `batch_size`, `epochs`, `l2` (penalty on every weight matrix, Keras' l2);
    - `early_stopping`: hold out `validation_fraction` of the examples (stratified by
      class for the classifier, as scikit-learn's MLP) and stop when
      their loss has not improved for `patience` epochs (keeping the best weights);
      `fit` only: `partial_fit` trains on all of its X (as scikit-learn's MLP);
    - `random_state`: initial weights, shuffling, dropout; `verbose`: 1 prints a line
      per epoch.
    """

    def __init__(
        self,
        hidden=(100,),
        *,
        activation="relu",
        dropout=0.0,
        image_shape=None,
        conv=(),
        optimizer="adam",
        lr=1e-3,
        batch_size=32,
        epochs=100,
        l2=0.0,
        early_stopping=False,
        validation_fraction=0.1,
        patience=10,
        random_state=None,
        verbose=0,
    ):
        self.hidden = hidden
        self.activation = activation
        self.dropout = dropout
        self.image_shape = image_shape
        self.conv = conv
        self.optimizer = optimizer
        self.lr = lr
        self.batch_size = batch_size
        self.epochs = epochs
        self.l2 = l2
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.patience = patience
        self.random_state = random_state
        self.verbose = verbose

    _loss = "cross_entropy"
    _y_validation: ClassVar[dict] = {}  # how validate_data checks y

    # ----- training ------------------------------------------------------------
    def _train(
        self, X, y, sample_weight, reset: bool, classes=None, partial: bool = False
    ):
        """Check the data (and the settings, on a new network), then train `epochs`,
        or one epoch on all of X if `partial` (no early stopping, as scikit-learn's
        MLP: a validation set held out of each call's few rows wastes them)."""
        if reset:  # a fit that fails leaves the estimator unfitted, not the last
            # fit's network beside this one's classes_ or targets
            self.__dict__.pop("model_", None)
        X, y = validate_data(
            self, X, y, reset=reset, dtype=FLOATS, **self._y_validation
        )
        if reset:  # before any fitted attribute is set
            self._check_settings(X.shape[1])
            self._dtype = X.dtype  # the network computes in X's float type, and so
            # do a regressor's targets (`_targets`)
        targets = self._targets(y, reset, classes)
        if sample_weight is not None:
            # ValueError, scikit-learn's, for a negative weight (as for a NaN)
            sample_weight = _check_sample_weight(
                sample_weight, X, ensure_non_negative=True
            )
        if reset:
            self._rng = np.random.default_rng(
                check_random_state(self.random_state).randint(2**31)
            )
            self.model_ = Sequential(
                self._layers(self._n_outputs()),
                input_shape=(X.shape[1],),
                class_names=self._class_names(),
                seed=int(self._rng.integers(2**31)),
                loss=self._loss,
            )
            self.loss_curve_, self.n_iter_ = [], 0
        early = self.early_stopping and not partial
        X, validation = X.astype(self._dtype, copy=False), None
        if early:
            X, targets, sample_weight, validation = self._hold_out(
                X, targets, sample_weight
            )
        history = self.model_.fit(
            X,
            targets,
            epochs=1 if partial else self.epochs,
            batch_size=self.batch_size,
            optimizer=self._optimizer() if reset else None,
            validation_data=validation,
            seed=int(self._rng.integers(2**31)),
            callbacks=[EarlyStopping(patience=self.patience)] if early else [],
            verbose=self.verbose,
            sample_weight=sample_weight,
        )
        self.loss_curve_ = self.loss_curve_ + history.history["loss"]
        self.n_iter_ += len(history.history["loss"])
        return self

    def _hold_out(self, X, targets, sample_weight):
        """(X, targets, sample_weight) of the rest, and the validation_data early
        stopping watches: `validation_fraction` of the examples, drawn from the
        estimator's generator and, for a classifier, stratified (as scikit-learn's
        MLP does), so that each class is held out in its share."""
        weights = [] if sample_weight is None else [sample_weight]
        try:
            parts = train_test_split(
                X, targets, *weights,
                test_size=float(self.validation_fraction),  # not a NumPy float32
                random_state=int(self._rng.integers(2**31)),
                stratify=targets if is_classifier(self) else None,
            )  # fmt: skip
        except ValueError as e:  # its reason names its own test_size: name ours
            raise ValueError(
                f"early_stopping: cannot hold out validation_fraction="
                f"{self.validation_fraction} of {len(X)} examples: {e}"
            ) from None
        rest, held = parts[0::2], parts[1::2]  # (train, test) per array given
        if sample_weight is None:
            return (*rest, None, tuple(held))
        return (*rest, tuple(held))

    def _class_names(self) -> list[str] | None:
        return None

    def __sklearn_is_fitted__(self) -> bool:
        """Fitted once a fit (or a first partial_fit) has built `model_` (what
        `check_is_fitted` asks; `n_features_in_` alone is set by a failed one)."""
        return hasattr(self, "model_")

    # ----- predicting --------------------------------------------------------------
    def _outputs(self, X) -> np.ndarray:
        """The network's raw outputs (N, outputs) for X (logits for a classifier),
        in the network's float type: the same for a row whatever the others."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=FLOATS)
        X = X.astype(self._dtype, copy=False)
        return np.concatenate(
            [
                self.model_(X[start : start + PREDICT_BATCH])
                for start in range(0, max(len(X), 1), PREDICT_BATCH)
            ]
        )


class NeuralNetClassifier(ClassifierMixin, _NeuralNet):
    """A neural-network classifier: an MLP (or conv net) trained on softmax
    cross-entropy. Labels of any type (`classes_` in sorted order); see `_NeuralNet`
    for the settings. Attributes after `fit`: `model_` (the Sequential, ending in
    logits), `classes_`, `n_features_in_`, `feature_names_in_` (DataFrame input),
    `loss_curve_` (the training loss of every epoch), `n_iter_` (epochs run).
    """

    def fit(self, X, y, sample_weight=None):
        """Train a new network for `epochs` on X (N, features), y (N,)."""
        return self._train(X, y, sample_weight, reset=True)

    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch on X, y: a new network at the first call (which needs `classes`,
        every label there will be), else the fitted one trained on."""
        first = not hasattr(self, "model_")
        if first and classes is None:
            raise ValueError("partial_fit: the first call needs classes=")
        if (
            not first
            and classes is not None
            and not np.array_equal(np.unique(classes), self.classes_)
        ):
            raise ValueError(
                f"partial_fit: classes={classes!r} differs from the classes of "
                f"the first call, {self.classes_!r}"
            )
        return self._train(
            X, y, sample_weight, reset=first, classes=classes, partial=True
        )

    def _targets(self, y, reset: bool, classes=None) -> np.ndarray:
        """Class indices (N,) int64 into `classes_`."""
        check_classification_targets(y)
        if reset:
            found = np.unique(y if classes is None else classes)
            if len(found) < 2:
                raise ValueError(
                    "NeuralNetClassifier needs examples of at least 2 classes, got "
                    f"1 class ({found[0]!r})"
                )
            self.classes_ = found
        labels = np.searchsorted(self.classes_, y)
        labels = np.minimum(labels, len(self.classes_) - 1)
        unknown = self.classes_[labels] != y
        if unknown.any():
            raise ValueError(
                f"y holds labels not in classes_ {self.classes_!r}: "
                f"{np.unique(y[unknown])!r}"
            )
        return labels.astype(np.int64)

    def _n_outputs(self) -> int:
        return len(self.classes_)

    def _class_names(self) -> list[str]:
        return [str(c) for c in self.classes_]

    def predict_log_proba(self, X) -> np.ndarray:
        """log P(class | x), (N, classes), from the logits (no log of 0)."""
        logits = self._outputs(X).astype(np.float64)
        shifted = logits - logits.max(axis=1, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))

    def predict_proba(self, X) -> np.ndarray:
        """P(class | x), (N, classes), columns in the order of `classes_`."""
        return np.exp(self.predict_log_proba(X))

    def predict(self, X) -> np.ndarray:
        """The most likely class of each row, (N,), labels as in `classes_`."""
        logits = self._outputs(X)
        return self.classes_[logits.argmax(axis=1)]


class NeuralNetRegressor(RegressorMixin, _NeuralNet):
    """A neural-network regressor: an MLP (or conv net) trained on mean squared error,
    one output per target (y (N,) or (N, targets)); see `_NeuralNet` for the
    settings. Targets are used as given: standardise them (TransformedTargetRegressor)
    if they are far from unit scale. Attributes after `fit`: `model_`,
    `n_outputs_`, `n_features_in_`, `feature_names_in_`, `loss_curve_`, `n_iter_`.
    """

    _loss = "mse"
    _y_validation: ClassVar[dict] = {"y_numeric": True, "multi_output": True}

    def fit(self, X, y, sample_weight=None):
        """Train a new network for `epochs` on X (N, features), y (N,) or (N, K)."""
        return self._train(X, y, sample_weight, reset=True)

    def partial_fit(self, X, y, sample_weight=None):
        """One epoch on X, y: a new network at the first call, else the fitted one
        trained on."""
        first = not hasattr(self, "model_")
        return self._train(X, y, sample_weight, reset=first, partial=True)

    def _targets(self, y, reset: bool, classes=None) -> np.ndarray:
        """Float targets (N, outputs), in the network's float type."""
        y = np.asarray(y, dtype=self._dtype)
        if reset:
            self._one_target = y.ndim == 1
            self.n_outputs_ = 1 if y.ndim == 1 else y.shape[1]
        y = y.reshape(len(y), -1)
        if y.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {y.shape[1]} targets, the network was fitted on "
                f"{self.n_outputs_}"
            )
        return y

    def _n_outputs(self) -> int:
        return self.n_outputs_

    def predict(self, X) -> np.ndarray:
        """The predicted targets, (N,) or (N, targets) as y was in `fit`."""
        outputs = self._outputs(X).astype(np.float64)
        return outputs.ravel() if self._one_target else outputs

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
