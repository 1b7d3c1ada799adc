"""`nnscratch evaluate`: a saved model's accuracy, per-class report and confusion
matrix on a test set, as text."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data.catalog import (
    CLASS_NAMES,
    DATASETS,
    TEST_FILES,
    other_test_set,
    still_holding,
)
from ..data.loading import locate_dataset, read_test_set
from ..errors import NnscratchError
from ..nn.loading import load_model
from ..reporting.metrics import (
    classification_report,
    confusion_matrix,
    format_confusion_matrix,
)
from .predict import as_classifier, model_dataset


def evaluation_report(model_path: Path, dataset: str | None, data_dir, warn) -> str:
    """The report of MODEL on the test set of `dataset` (default: the one the model was
    trained on, else mnist); `warn(text)` hears of a dataset other than that one.
    The files are read from `data_dir`, else the folder the model was trained from if
    it still holds them (as `nnscratch report` does), else the usual places; only the
    two test files are needed (and downloaded if found nowhere)."""
    model = as_classifier(load_model(model_path), model_path)
    trained_on = model_dataset(model)
    if dataset is None:
        dataset = trained_on or "mnist"
        if dataset not in DATASETS:
            raise NnscratchError(
                f"{model_path} was trained on {dataset!r}, which nnscratch does not"
                f" know: pass --dataset ({', '.join(sorted(DATASETS))})"
            )
    elif trained_on is not None and dataset != trained_on:
        warn(f"warning: {model_path} was trained on {trained_on}, not {dataset}")
    if data_dir is None and dataset == trained_on:
        data_dir = trained_from(model, dataset)
    folder = locate_dataset(dataset, data_dir, files=TEST_FILES)
    x_test, y_test = read_test_set(dataset, folder)
    if warning := other_test_set(folder, dataset, y_test):
        warn(warning)
    names = test_set_names(model, dataset, trained_on)
    x_test = fitting_inputs(model, model_path, x_test, f"the {dataset} test set")
    check_outputs(
        model, model_path, len(CLASS_NAMES[dataset]), f"the {dataset} test set"
    )
    result, probs = model.evaluate_and_predict(x_test, y_test)
    predicted = probs.argmax(axis=1)
    cm = confusion_matrix(y_test, predicted, len(names))
    summary = f"accuracy {result['accuracy']:.4f}, loss {result['loss']:.4f}"
    return "\n".join(
        [
            f"{dataset} test set: {summary}",
            classification_report(y_test, predicted, names),
            format_confusion_matrix(cm, names),
        ]
    )


def test_set_names(model, dataset: str, trained_on: str | None) -> list[str]:
    """The names of the test set's classes: the model's own, unless they are another
    dataset's (a Fashion-MNIST model scored on digits: a 1 is no "Trouser")."""
    own = model.class_names
    others = [names for name, names in CLASS_NAMES.items() if name != dataset]
    if own and trained_on in (None, dataset) and list(own) not in others:
        return list(own)
    return CLASS_NAMES[dataset]


def trained_from(model, dataset: str) -> str | None:
    """The data folder the model's saved settings record, if it still holds the test
    set of `dataset`."""
    training = model.metadata.get("training")
    folder = training.get("data_dir") if isinstance(training, dict) else None
    return still_holding(dataset, folder, TEST_FILES)


def fitting_inputs(model, model_path, images: np.ndarray, what: str) -> np.ndarray:
    """images (N, H, W) shaped as `model` takes them: as they are, or the same
    pixels in its shape ((N, H*W), (N, 1, H, W)); a one-line error naming the model
    file if it takes images of another size. An unbuilt model is built for them."""
    if not model.built:
        try:
            model.build(images.shape[1:])
        except NnscratchError as e:
            raise NnscratchError(f"{model_path}: {e}") from None
    shape = tuple(model.input_shape)
    if int(np.prod(shape)) != images[0].size:
        size = "x".join(map(str, images.shape[1:]))
        raise NnscratchError(
            f"{model_path} takes inputs of shape {shape}, but {what} has {size} images"
        )
    return images.reshape((len(images), *shape))


def check_outputs(model, model_path, n_classes: int, what: str) -> None:
    """A one-line error naming the model file unless it has one output per class."""
    outputs = tuple(model.output_shape)
    if outputs != (n_classes,):
        n = int(np.prod(outputs))
        raise NnscratchError(
            f"{model_path} has {n} output{'s' if n != 1 else ''}, but {what} has "
            f"{n_classes} classes"
        )
