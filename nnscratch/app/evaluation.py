"""`nnscratch evaluate`: a saved model's accuracy, per-class report and confusion
matrix on a test set, as text."""

from __future__ import annotations

from pathlib import Path

from ..data.catalog import CLASS_NAMES
from ..data.loading import load_dataset
from ..nn.loading import load_model
from ..reporting.metrics import (
    classification_report,
    confusion_matrix,
    format_confusion_matrix,
)
from .predict import as_classifier, model_dataset


def evaluation_report(model_path: Path, dataset: str | None, data_dir, warn) -> str:
    """The report of MODEL on the test set of `dataset` (default: the one the model was
    trained on, else mnist); `warn(text)` hears of a dataset other than that one."""
    model = as_classifier(load_model(model_path))
    trained_on = model_dataset(model)
    if dataset is None:
        dataset = trained_on or "mnist"
    elif trained_on is not None and dataset != trained_on:
        warn(f"warning: {model_path} was trained on {trained_on}, not {dataset}")
    _, (x_test, y_test) = load_dataset(dataset, data_dir)
    result = model.evaluate(x_test, y_test)
    predicted = model.predict(x_test).argmax(axis=1)
    names = model.class_names or CLASS_NAMES[dataset]
    cm = confusion_matrix(y_test, predicted, len(names))
    summary = f"accuracy {result['accuracy']:.4f}, loss {result['loss']:.4f}"
    return "\n".join(
        [
            f"{dataset} test set: {summary}",
            classification_report(y_test, predicted, names),
            format_confusion_matrix(cm, names),
        ]
    )
