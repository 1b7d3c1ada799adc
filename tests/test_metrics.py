import re

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from nnscratch.errors import DataError
from nnscratch.reporting.metrics import (
    accuracy,
    classification_report,
    confusion_matrix,
    format_confusion_matrix,
    per_class_rows,
    per_class_scores,
)

# Three classes; class 1 is never predicted correctly, class 0 is over-predicted.
LABELS = np.array([0, 1, 2, 2, 2])
PREDICTED = np.array([0, 0, 2, 2, 1])


def test_accuracy():
    assert accuracy(LABELS, PREDICTED) == pytest.approx(3 / 5)
    assert accuracy([1, 1], [1, 1]) == 1.0
    assert accuracy(np.array([3.0, 4.0]), np.array([3, 5])) == 0.5


def test_confusion_matrix_rows_are_true_columns_predicted():
    cm = confusion_matrix(LABELS, PREDICTED, 3)
    assert cm.dtype == np.int64
    assert_array_equal(cm, [[1, 0, 0], [1, 0, 0], [0, 1, 2]])
    # A class absent from both arrays still gets its row and column.
    assert_array_equal(confusion_matrix([0], [0], 2), [[1, 0], [0, 0]])


def test_per_class_scores_by_hand():
    scores = per_class_scores(confusion_matrix(LABELS, PREDICTED, 3))
    # precision = tp / predicted count: 1/2, 0/1, 2/2; recall = tp / true count: 1/1, 0/1, 2/3
    assert_allclose(scores["precision"], [0.5, 0.0, 1.0])
    assert_allclose(scores["recall"], [1.0, 0.0, 2 / 3])
    assert_allclose(scores["f1"], [2 / 3, 0.0, 0.8])
    assert_array_equal(scores["support"], [1, 1, 3])


def test_undefined_scores_are_zero():
    # Class 1 never appears and is never predicted; class 2 is predicted but never true.
    cm = np.array([[2, 0, 1], [0, 0, 0], [0, 0, 0]])
    with np.errstate(all="raise"):  # no 0/0 warnings on the way
        scores = per_class_scores(cm)
    assert_allclose(scores["precision"], [1.0, 0.0, 0.0])
    assert_allclose(scores["recall"], [2 / 3, 0.0, 0.0])
    assert_allclose(scores["f1"], [0.8, 0.0, 0.0])
    assert_array_equal(scores["support"], [3, 0, 0])


def test_per_class_rows_are_json_ready():
    rows = per_class_rows(confusion_matrix(LABELS, PREDICTED, 3), ["a", "b", "c"])
    assert rows[2] == {
        "class": "c",
        "precision": 1.0,
        "recall": pytest.approx(2 / 3),
        "f1": pytest.approx(0.8),
        "support": 3,
    }
    assert all(type(row["support"]) is int for row in rows)


def test_classification_report_matches_scikit_learn_layout():
    # The exact text scikit-learn 1.x prints for these inputs and target_names.
    expected = (
        "              precision    recall  f1-score   support\n"
        "\n"
        "     class 0       0.50      1.00      0.67         1\n"
        "     class 1       0.00      0.00      0.00         1\n"
        "     class 2       1.00      0.67      0.80         3\n"
        "\n"
        "    accuracy                           0.60         5\n"
        "   macro avg       0.50      0.56      0.49         5\n"
        "weighted avg       0.70      0.60      0.61         5\n"
    )
    names = ["class 0", "class 1", "class 2"]
    assert classification_report(LABELS, PREDICTED, names) == expected


def test_classification_report_long_names_widen_first_column():
    names = ["T-shirt/top and more", "b", "c"]
    text = classification_report(LABELS, PREDICTED, names, digits=3)
    lines = text.splitlines()
    assert lines[2].startswith("T-shirt/top and more  ")
    assert "0.667" in lines[2]
    assert len({len(line) for line in lines if line}) == 1  # every row aligned


def test_format_confusion_matrix():
    cm = confusion_matrix(LABELS, PREDICTED, 3)
    assert format_confusion_matrix(cm, ["a", "b", "c"]) == (
        "true \\ pred a b c\na           1 0 0\nb           1 0 0\nc           0 1 2\n"
    )
    long_names = format_confusion_matrix(cm * 100, ["T-shirt/top", "Trouser", "Bag"])
    lines = long_names.splitlines()
    assert lines[0].split()[-3:] == ["0", "1", "2"]  # indices head the columns
    assert lines[3].startswith("2 Bag") and lines[3].endswith("  0 100 200")


@pytest.mark.parametrize(
    "labels, predicted, message",
    [
        ([0, 1, 2], [0, 1], "same length, got 3 and 2"),
        ([0, 3], [0, 1], "labels: class index 3 is outside [0, 3)"),
        ([0, 1], [0, -1], "predicted: class index -1 is outside [0, 3)"),
        ([[0.1, 0.9]], [1], "probs.argmax(axis=1)"),
        ([0.5, 1], [0, 1], "expected integer class indices, got dtype float64"),
        ([], [], "at least one example"),
    ],
)
def test_bad_inputs_get_clear_errors(labels, predicted, message):
    with pytest.raises(DataError, match=re.escape(message)):
        confusion_matrix(labels, predicted, 3)


def test_bad_matrix_and_names():
    with pytest.raises(DataError, match=r"square \(C, C\) array, got shape \(2, 3\)"):
        per_class_scores(np.zeros((2, 3)))
    with pytest.raises(DataError, match="class_names: expected 3 names, got 2"):
        format_confusion_matrix(np.eye(3, dtype=int), ["a", "b"])
    with pytest.raises(DataError, match="labels: class index 2 is outside"):
        classification_report([0, 2], [0, 1], ["a", "b"])
    with pytest.raises(DataError, match="num_classes: expected a positive integer"):
        confusion_matrix([0], [0], 0)


@pytest.mark.parametrize(
    "cm, message",
    [
        ([[np.nan, 1], [0, 1]], "counts must be finite"),
        ([[np.inf, 1], [0, 1]], "counts must be finite"),
        ([["a", "b"], ["c", "d"]], "expected counts, got dtype <U1"),
        ([[1, None], [0, 1]], "expected counts, got dtype object"),
        ([[1, 2], [3]], "expected a square"),
    ],
)
def test_a_matrix_of_non_counts_gets_a_clear_error(cm, message):
    # as read from a damaged metrics.json: NaN gave a support of -2**63, texts a
    # UFuncTypeError
    with pytest.raises(DataError, match=re.escape(message)):
        per_class_scores(cm)
