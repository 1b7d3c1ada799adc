"""Classification metrics: accuracy, confusion matrix, per-class precision/recall/F1.

Labels and predictions are 1-D integer arrays of class indices, shape (N,). Where a
score is undefined (a class never predicted, or absent from the labels) it is 0, like
scikit-learn's `zero_division=0`.
"""

from __future__ import annotations

import numbers

import numpy as np

from ..errors import DataError, check_same_length


def _check_class_indices(
    name: str, values, num_classes: int | None = None
) -> np.ndarray:
    """`values` as a 1-D int64 array, checked to hold class indices in [0, num_classes)."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        hint = " (for probabilities pass probs.argmax(axis=1))" if arr.ndim == 2 else ""
        raise DataError(
            f"{name}: expected a 1-D array of class indices, got shape "
            f"{arr.shape}{hint}"
        )
    # Whole-valued floats (labels read back from CSV/JSON) are accepted; 2.5 is not.
    whole_floats = np.issubdtype(arr.dtype, np.floating) and bool(
        np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))
    )
    if arr.size and not (np.issubdtype(arr.dtype, np.integer) or whole_floats):
        raise DataError(
            f"{name}: expected integer class indices, got dtype {arr.dtype}"
        )
    arr = arr.astype(np.int64)
    if num_classes is not None and arr.size:
        low, high = int(arr.min()), int(arr.max())
        if low < 0 or high >= num_classes:
            bad = low if low < 0 else high
            raise DataError(f"{name}: class index {bad} is outside [0, {num_classes})")
    return arr


def _check_pair(labels, predicted, num_classes: int | None = None):
    """labels and predicted as (N,) int64 class indices, the same N >= 1 of each."""
    labels = _check_class_indices("labels", labels, num_classes)
    predicted = _check_class_indices("predicted", predicted, num_classes)
    check_same_length(labels=labels, predicted=predicted)
    if labels.size == 0:
        raise DataError("labels: expected at least one example, got an empty array")
    return labels, predicted


def accuracy(labels, predicted) -> float:
    """Fraction of examples where predicted == labels. Shapes: (N,), (N,) -> float."""
    labels, predicted = _check_pair(labels, predicted)
    return float(np.mean(labels == predicted))


def confusion_matrix(labels, predicted, num_classes: int) -> np.ndarray:
    """Counts of (true, predicted) pairs: cm[i, j] = #examples of class i predicted j.

    Shapes: labels (N,), predicted (N,) -> (num_classes, num_classes) int64; rows are the
    true classes, columns the predicted ones.
    """
    if not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise DataError(
            f"num_classes: expected a positive integer, got {num_classes!r}"
        )
    num_classes = int(num_classes)
    labels, predicted = _check_pair(labels, predicted, num_classes)
    flat = np.bincount(labels * num_classes + predicted, minlength=num_classes**2)
    return flat.reshape(num_classes, num_classes).astype(np.int64)


def check_confusion_matrix(cm) -> np.ndarray:
    """`cm` as an array, checked to be (C, C) counts with C >= 1 (figures use it too)."""
    try:  # a hand-edited metrics.json may hold texts or nulls
        cm = np.asarray(cm)
    except ValueError:  # ragged rows
        raise DataError("confusion matrix: expected a square (C, C) array") from None
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1] or cm.shape[0] == 0:
        raise DataError(
            f"confusion matrix: expected a square (C, C) array, got shape {cm.shape}"
        )
    if cm.dtype.kind not in "biuf":
        raise DataError(f"confusion matrix: expected counts, got dtype {cm.dtype}")
    if not np.all(np.isfinite(cm)) or np.any(cm < 0):
        raise DataError("confusion matrix: counts must be finite and not negative")
    return cm


def _safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den elementwise, 0 where den == 0."""
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def per_class_scores(cm) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support of each class from a confusion matrix.

    Shapes: cm (C, C) -> dict of (C,) arrays: precision, recall, f1 (float64) and
    support (int64, the number of true examples of each class).
    """
    cm = check_confusion_matrix(cm)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    precision = _safe_divide(tp, cm.sum(axis=0).astype(np.float64))
    recall = _safe_divide(tp, support.astype(np.float64))
    f1 = _safe_divide(2 * precision * recall, precision + recall)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "support": support.astype(np.int64),
    }


def per_class_rows(cm, class_names) -> list[dict]:
    """The per-class scores as JSON-ready rows: {class, precision, recall, f1, support}."""
    cm = check_confusion_matrix(cm)
    names = check_class_names(class_names, cm)
    scores = per_class_scores(cm)
    return [
        {
            "class": name,
            "precision": float(scores["precision"][i]),
            "recall": float(scores["recall"][i]),
            "f1": float(scores["f1"][i]),
            "support": int(scores["support"][i]),
        }
        for i, name in enumerate(names)
    ]


def check_class_names(class_names, cm: np.ndarray) -> list[str]:
    """The class names as strings, checked to be one per row of the (C, C) `cm`."""
    names = [str(name) for name in class_names]
    n, c = len(names), len(cm)
    if n != c:  # either side may be the wrong one: say what each implies
        raise DataError(
            f"class_names: expected {c} names, got {n} (the confusion matrix is"
            f" {cm.shape}; {n} names go with ({n}, {n}))"
        )
    return names


def classification_report(labels, predicted, class_names, digits: int = 2) -> str:
    """A text table of per-class precision, recall, F1 and support, like scikit-learn's.

    Shapes: labels (N,), predicted (N,); class_names has one name per class (C). Ends with
    the accuracy, the macro average (plain mean over classes) and the weighted average
    (weighted by support).
    """
    names = [str(name) for name in class_names]
    if not names:
        raise DataError("class_names: expected at least one name, got none")
    cm = confusion_matrix(labels, predicted, len(names))
    scores = per_class_scores(cm)
    support = scores["support"]
    total = int(support.sum())

    width = max(max(len(name) for name in names), len("weighted avg"), digits)
    header = f"{'':>{width}} " + "".join(
        f" {h:>9}" for h in ("precision", "recall", "f1-score", "support")
    )

    def row(name, p, r, f, n):
        return f"{name:>{width}}  {p:>9.{digits}f} {r:>9.{digits}f} {f:>9.{digits}f} {n:>9}"

    lines = [header, ""]
    for i, name in enumerate(names):
        lines.append(
            row(
                name,
                scores["precision"][i],
                scores["recall"][i],
                scores["f1"][i],
                int(support[i]),
            )
        )
    lines.append("")
    acc = np.trace(cm) / total
    lines.append(
        f"{'accuracy':>{width}}  {'':>9} {'':>9} {acc:>9.{digits}f} {total:>9}"
    )
    keys = ("precision", "recall", "f1")
    macro = [scores[k].mean() for k in keys]
    weighted = [np.average(scores[k], weights=support) for k in keys]
    lines.append(row("macro avg", *macro, total))
    lines.append(row("weighted avg", *weighted, total))
    return "\n".join(lines) + "\n"


def format_confusion_matrix(cm, class_names) -> str:
    """The confusion matrix as an aligned text table: rows true, columns predicted.

    Shapes: cm (C, C). Columns are headed by the class names when they are short (at
    most 6 characters) and by the class indices otherwise, with the rows naming both.
    """
    cm = check_confusion_matrix(cm)
    names = check_class_names(class_names, cm)
    short = all(len(name) <= 6 for name in names)
    col_heads = names if short else [str(i) for i in range(len(names))]
    row_heads = names if short else [f"{i} {name}" for i, name in enumerate(names)]
    cell = max(max(len(h) for h in col_heads), len(str(int(cm.max()))))
    corner = "true \\ pred"
    width = max(max(len(h) for h in row_heads), len(corner))
    lines = [f"{corner:<{width}} " + " ".join(f"{h:>{cell}}" for h in col_heads)]
    for head, counts in zip(row_heads, cm):
        lines.append(
            f"{head:<{width}} " + " ".join(f"{int(c):>{cell}}" for c in counts)
        )
    return "\n".join(lines) + "\n"
