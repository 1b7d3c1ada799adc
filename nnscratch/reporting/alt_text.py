"""The report's text alternatives: what each picture shows, with its key numbers, for
a reader who cannot see it (the caption under it says what it is for)."""

from __future__ import annotations

import numpy as np

from ..errors import DataError
from .curves import history_columns
from .metrics import check_confusion_matrix, per_class_scores

# What each picture draws, in words; `alt_texts` adds the run's numbers where it can.
DRAWN = {
    "learning_curves.png": "Line charts of the loss and the accuracy per epoch and"
    " of the loss of every batch",
    "training.gif": "Animation, one frame per epoch: the loss curves so far beside"
    " the same test images, each titled with its predicted class and probability, a"
    " check mark if right, a cross if wrong",
    "confusion_matrix.png": "Heat map of the confusion matrix, a row per true class"
    " and a column per predicted class, each cell holding its count",
    "confusion_matrix_normalized.png": "Heat map of the confusion matrix, each row"
    " as % of its true class",
    "per_class.png": "Horizontal bars of each class's precision and recall, a dotted"
    " line at the overall accuracy",
    "sample_predictions.png": "Grid of the first test images, each titled with its"
    " predicted class and probability; the wrong ones have a thick vermillion frame,"
    " a cross and their true class underneath",
    "top_mistakes.png": "Grid of the wrong predictions made with the highest"
    " probability, surest first: the predicted class and its probability above each"
    " image, the true class and its probability below",
    "first_layer_features.png": "Grid of small images, one per first-layer unit or"
    " kernel: its weights, positive in red, negative in blue, near zero white",
}


def alt_texts(history_rows=None, cm=None, class_names=()) -> dict[str, str]:
    """Picture file name -> its alt text: DRAWN, plus the first and last value of
    each curve (history_rows: rows, a `History` or its dict) and the largest
    confusions, recalls and precisions (cm (C, C) counts and its C class names; other
    names are taken as 0..C-1)."""
    texts = dict(DRAWN)
    if history_rows is not None:
        texts["learning_curves.png"] += _curve_ends(history_columns(history_rows))
    try:
        cm = None if cm is None else check_confusion_matrix(cm)
    except DataError:  # a damaged matrix: the words alone
        cm = None
    if cm is None or cm.sum() == 0:
        return texts
    names = [str(name) for name in class_names]
    if len(names) != len(cm):
        names = [str(i) for i in range(len(cm))]
    scores = per_class_scores(cm)
    texts["confusion_matrix.png"] += _confusions(cm, names)
    texts["confusion_matrix_normalized.png"] += (
        "; the diagonal, each class's recall, runs " + _range(scores["recall"], names)
    )
    texts["per_class.png"] += "".join(
        f"; {key} {_range(scores[key], names)}" for key in ("precision", "recall")
    )
    return texts


def _curve_ends(columns: dict) -> str:
    """ ": training loss 1.6538 at epoch 1, 0.7613 at epoch 3; ..." for each recorded
    curve: its first and last finite value."""
    parts = []
    for key, label, spec in (
        ("loss", "training loss", ".4f"),
        ("val_loss", "validation loss", ".4f"),
        ("accuracy", "training accuracy", ".2%"),
        ("val_accuracy", "validation accuracy", ".2%"),
    ):
        epochs = np.flatnonzero(np.isfinite(columns.get(key, [])))
        if epochs.size:
            first, last = epochs[0], epochs[-1]
            values = columns[key]
            parts.append(
                f"{label} {values[first]:{spec}} at epoch {first + 1},"
                f" {values[last]:{spec}} at epoch {last + 1}"
            )
    return ": " + "; ".join(parts) if parts else ""


def _confusions(cm: np.ndarray, names: list[str], top: int = 3) -> str:
    """ "; the most frequent mistakes: Shirt taken for Coat 316 times, ..."."""
    off = cm * (1 - np.eye(len(cm), dtype=cm.dtype))
    cells = np.argsort(-off, axis=None, kind="stable")[:top]
    pairs = [np.unravel_index(k, cm.shape) for k in cells if off.flat[k] > 0]
    if not pairs:
        return "; no mistakes"
    said = [
        f"{names[i]} {'taken ' if n == 0 else ''}for {names[j]} {cm[i, j]:,} times"
        for n, (i, j) in enumerate(pairs)
    ]
    return "; the most frequent mistakes: " + ", ".join(said)


def _range(values: np.ndarray, names: list[str]) -> str:
    """ "from 18.0% (Shirt) to 93.4% (Ankle boot)": the lowest and highest of values
    (C,), one per class."""
    low, high = int(np.argmin(values)), int(np.argmax(values))
    return (
        f"from {values[low]:.1%} ({names[low]}) to {values[high]:.1%} ({names[high]})"
    )
