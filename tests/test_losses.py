import numpy as np
import pytest
from gradcheck import ATOL, RTOL, numerical_grad, on_numpy_twins
from numpy.testing import assert_allclose

from nnscratch import (
    BinaryCrossEntropy,
    MeanAbsoluteError,
    MeanSquaredError,
    NnscratchError,
    SoftmaxCrossEntropy,
)


def test_cross_entropy_value_by_hand():
    logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.0]])
    labels = np.array([0, 2])
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    expected = -np.mean(np.log(probs[[0, 1], labels]))
    assert_allclose(SoftmaxCrossEntropy().forward(logits, labels), expected)


def test_cross_entropy_gradient_is_probs_minus_one_hot_over_n():
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((4, 5)), np.array([0, 3, 4, 1])
    loss = SoftmaxCrossEntropy()

    def f():
        return loss.forward(logits, labels)

    f()
    analytic = loss.backward().copy()
    assert_allclose(analytic, numerical_grad(f, logits), rtol=RTOL, atol=ATOL)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    probs[np.arange(4), labels] -= 1
    assert_allclose(analytic, probs / 4)


def test_cross_entropy_is_stable_for_huge_logits():
    loss = SoftmaxCrossEntropy()
    value = loss.forward(np.array([[1e4, -1e4, 0.0]]), np.array([1]))
    assert np.isfinite(value) and abs(value - 2e4) < 1e-6
    assert np.all(np.isfinite(loss.backward()))


def test_cross_entropy_float32_in_float32_gradient():
    logits = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    loss = SoftmaxCrossEntropy()
    loss.forward(logits, np.array([0, 1, 2]))
    assert loss.backward().dtype == np.float32


@pytest.mark.parametrize(
    "loss, targets",
    [
        (SoftmaxCrossEntropy(), np.array([0, 1, 2])),
        (BinaryCrossEntropy(), np.ones((3, 4), np.float32)),
        (MeanSquaredError(), np.ones((3, 4), np.float32)),
        (MeanAbsoluteError(), np.ones((3, 4), np.float32)),
    ],
)
def test_float32_outputs_keep_float32_gradients_with_float64_sample_weights(
    loss, targets
):
    # sample weights given as NumPy's float64 (or a list) turned the gradient of
    # BinaryCrossEntropy, MeanSquaredError and MeanAbsoluteError into float64
    outputs = np.random.default_rng(1).standard_normal((3, 4)).astype(np.float32)
    loss.forward(outputs, targets, sample_weight=np.array([0.5, 1.0, 2.0]))
    assert loss.backward().dtype == np.float32


def test_mse_value_and_gradient():
    rng = np.random.default_rng(2)
    outputs, targets = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    loss = MeanSquaredError()
    assert_allclose(loss.forward(outputs, targets), np.mean((outputs - targets) ** 2))

    def f():
        return loss.forward(outputs, targets)

    f()
    assert_allclose(loss.backward(), numerical_grad(f, outputs), rtol=RTOL, atol=ATOL)


def test_mse_takes_integer_labels_as_one_hot():
    outputs = np.array([[0.9, 0.1], [0.2, 0.8]])
    value = MeanSquaredError().forward(outputs, np.array([0, 1]))
    assert_allclose(value, np.mean([0.01, 0.01, 0.04, 0.04]))


def test_losses_reject_mismatched_shapes():
    with pytest.raises(NnscratchError, match="labels"):
        SoftmaxCrossEntropy().forward(np.zeros((3, 2)), np.zeros(4, dtype=int))
    with pytest.raises(NnscratchError, match="targets"):
        MeanSquaredError().forward(np.zeros((3, 2)), np.zeros((3, 3)))


@pytest.mark.parametrize("loss", [SoftmaxCrossEntropy(), MeanSquaredError()])
@pytest.mark.parametrize("bad", [-1, 3])
def test_losses_reject_labels_outside_the_classes(loss, bad):
    # -1 would index the last class and quietly train towards it
    with pytest.raises(
        NnscratchError, match=rf"expected labels 0 to 2, got labels {bad}"
    ):
        loss.forward(np.zeros((2, 3)), np.array([bad, bad]))


@pytest.mark.parametrize(
    "labels",
    [
        np.array([[0], [2]]),  # a column, as Keras' sparse cross-entropy takes
        np.array([0.0, 2.0]),  # whole-number floats (labels read from a CSV)
        np.array([[0.0], [2.0]], np.float32),
    ],
)
def test_cross_entropy_takes_labels_as_a_column_and_as_whole_floats(labels):
    logits = np.array([[2.0, 1.0, 0.1], [0.5, 2.5, 0.0]])
    loss = SoftmaxCrossEntropy()
    value = loss.forward(logits, labels)
    assert value == SoftmaxCrossEntropy().forward(logits, np.array([0, 2]))
    checked = loss.check_targets(labels, logits.shape)
    assert checked.dtype == np.int64 and checked.shape == (2,)


@pytest.mark.parametrize(
    "labels, match",
    [
        (np.array([0.5, 2.0]), r"class labels \(whole numbers\) of shape \(2,\)"),
        (np.array([np.nan, 1.0]), "whole numbers"),
        (np.array([0.0, 3.0]), "expected labels 0 to 2, got labels 0.0 to 3.0"),
        (np.array([[0, 1]]).T.repeat(2, axis=1), r"got int64 \(2, 2\)"),
    ],
)
def test_cross_entropy_refuses_labels_that_are_no_classes(labels, match):
    with pytest.raises(NnscratchError, match=match):
        SoftmaxCrossEntropy().forward(np.zeros((2, 3)), labels)


def test_cross_entropy_with_one_output_takes_a_float_column_as_probabilities():
    targets = np.array([[1.0], [1.0]])
    assert SoftmaxCrossEntropy().check_targets(targets, (2, 1)).shape == (2, 1)


def test_cross_entropy_backward_twice_gives_the_same_gradient():
    loss = SoftmaxCrossEntropy()
    loss.forward(np.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]), np.array([1, 2]))
    assert_allclose(loss.backward(), loss.backward())


def loss_targets(kind: str, rng) -> np.ndarray:
    """Targets for outputs (4, 3): class labels, class probabilities, 0/1 answers or
    regression values."""
    if kind == "labels":
        return np.array([0, 2, 1, 2])
    if kind == "probabilities":
        t = rng.random((4, 3))
        return t / t.sum(axis=1, keepdims=True)
    if kind == "binary":
        return (rng.random((4, 3)) > 0.5).astype(np.float64)
    return rng.standard_normal((4, 3))


# every built-in loss, on every kind of target it takes
LOSS_CASES = [
    (SoftmaxCrossEntropy(), "labels"),
    (SoftmaxCrossEntropy(), "probabilities"),
    (SoftmaxCrossEntropy(label_smoothing=0.2), "labels"),
    (SoftmaxCrossEntropy(label_smoothing=0.2), "probabilities"),
    (BinaryCrossEntropy(), "binary"),
    (BinaryCrossEntropy(), "probabilities"),
    (BinaryCrossEntropy(label_smoothing=0.1), "binary"),
    (MeanSquaredError(), "values"),
    (MeanSquaredError(), "labels"),
    (MeanAbsoluteError(), "values"),
    (MeanAbsoluteError(), "labels"),
]


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("loss, kind", LOSS_CASES, ids=lambda c: str(c))
@on_numpy_twins
def test_loss_gradients_match_central_differences(loss, kind, weighted):
    rng = np.random.default_rng(0)
    # MAE's kink at y = t is out of the differences' reach: |y - t| > 1e-6 here
    outputs, targets = rng.standard_normal((4, 3)), loss_targets(kind, rng)
    sample_weight = np.array([1.0, 0.5, 2.0, 0.0]) if weighted else None

    def f():
        return loss.forward(outputs, targets, sample_weight=sample_weight)

    f()
    analytic = loss.backward().copy()
    assert_allclose(analytic, numerical_grad(f, outputs), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@on_numpy_twins
def test_binary_cross_entropy_gradient_for_one_output_and_targets_n(weighted):
    rng = np.random.default_rng(1)
    logits, targets = rng.standard_normal((5, 1)), np.array([0.0, 1.0, 1.0, 0.0, 1.0])
    sample_weight = rng.uniform(0, 2, 5) if weighted else None
    loss = BinaryCrossEntropy()

    def f():
        return loss.forward(logits, targets, sample_weight=sample_weight)

    f()
    analytic = loss.backward().copy()
    assert_allclose(analytic, numerical_grad(f, logits), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(
    "loss, outputs, targets",
    [
        (SoftmaxCrossEntropy(), np.empty((0, 10)), np.empty(0, int)),
        (SoftmaxCrossEntropy(label_smoothing=0.1), np.empty((0, 10)), np.empty(0, int)),
        (BinaryCrossEntropy(), np.empty((0, 1)), np.empty(0)),
        (MeanSquaredError(), np.empty((0, 3)), np.empty((0, 3))),
        (MeanAbsoluteError(), np.empty((0, 3)), np.empty((0, 3))),
    ],
)
def test_a_loss_used_alone_refuses_an_empty_batch_in_one_line(loss, outputs, targets):
    # was ZeroDivisionError, "cannot reshape array of size 0" or NaN with a warning
    name = type(loss).__name__
    with pytest.raises(
        NnscratchError,
        match=rf"^{name}: .* at least one example, got shape \(0, \d+\)$",
    ):
        loss.forward(outputs, targets)
