"""A trained run's scores as metrics.json holds them: on the test set (an ordinary
run), or on the held-out validation images only (a sweep's trial, whose test set is
scored for the best trial alone, so that choosing among trials never looks at it)."""

from __future__ import annotations

from ..reporting.metrics import confusion_matrix, per_class_rows


def test_metrics(model, x_test, y_test, class_names) -> dict:
    """Test loss, accuracy, confusion matrix and per-class scores as JSON values."""
    result = model.evaluate(x_test, y_test)
    predicted = model.predict(x_test).argmax(axis=1)
    cm = confusion_matrix(y_test, predicted, len(class_names))
    return {
        "test_loss": result["loss"],
        "test_accuracy": result["accuracy"],
        "test_examples": len(y_test),
        "confusion_matrix": cm.tolist(),
        "per_class": per_class_rows(cm, class_names),
    }


def validation_metrics(model, validation: tuple) -> dict:
    """Validation loss and accuracy of (x_val, y_val)."""
    x_val, y_val = validation[:2]
    result = model.evaluate(x_val, y_val)
    return {
        "val_loss": result["loss"],
        "val_accuracy": result["accuracy"],
        "val_examples": len(y_val),
    }
