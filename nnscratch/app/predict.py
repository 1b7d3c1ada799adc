"""Classifying a user's own pictures of digits (`nnscratch predict MODEL IMAGE...`).

Also the helpers the web app shares: fitting a 28x28 digit to a model's input shape
and the most likely classes with their probabilities.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..data.catalog import dataset_info
from ..errors import DataError, NnscratchError, NonFiniteOutputError
from ..imaging import decode, images
from ..nn.activations import Sigmoid, Softmax
from ..reporting.figures import image_axes, new_figure, plain_text, save_figure

NO_DIGIT = (
    "no digit found (the image is blank, the ink too faint, or only a dot or a dash)"
)


def as_classifier(model, name="the model"):
    """`model`, set to answer class probabilities: a model saved without a loss (never
    compiled or trained) is taken to output logits, as every classifier nnscratch
    trains does, unless it ends in its own Softmax or Sigmoid.

    Raises NnscratchError, naming the model `name` (its file), for a model with a
    single output (a regression, or a yes/no question): its output is no class, and
    would be shown as class "0".
    """
    outputs = model.output_shape
    if outputs is not None and int(np.prod(outputs)) < 2:
        raise NnscratchError(
            f"{name} gives one output per image, not one per class "
            f"(output shape {tuple(outputs)}): a classifier is needed"
        )
    if model.loss is None and not isinstance(model.layers[-1], (Softmax, Sigmoid)):
        model.compile(loss="cross_entropy")
    return model


def model_input(model, digit: np.ndarray) -> np.ndarray:
    """A (28, 28) digit -> a batch of one shaped for `model`: (1, *model.input_shape)."""
    return model_inputs(model, digit[None])


def model_inputs(model, digits: np.ndarray) -> np.ndarray:
    """(k, 28, 28) digits -> a batch shaped for `model`: (k, *model.input_shape)."""
    shape = tuple(model.input_shape) if model.input_shape is not None else (28, 28)
    if int(np.prod(shape)) != digits[0].size:
        raise NnscratchError(
            f"the model expects inputs of shape {shape}, not a 28x28 image"
        )
    return digits.astype(np.float32).reshape((len(digits), *shape))


def class_names(model, n_classes: int) -> list[str]:
    names = model.class_names
    if names is None or len(names) != n_classes:
        return [str(i) for i in range(n_classes)]
    return list(names)


def top_classes(probs: np.ndarray, names: list[str], top: int = 3) -> dict:
    """(C,) probabilities -> {"digit", "label", "probability", "top", "probabilities"}.

    "digit" is the class index (the digit itself for MNIST); "top" lists the `top`
    most likely classes, best first, as {"digit", "label", "probability"}.
    """
    order = np.argsort(-probs, kind="stable")[:top]
    best = int(order[0])
    return {
        "digit": best,
        "label": names[best],
        "probability": float(probs[best]),
        "top": [
            {"digit": int(i), "label": names[i], "probability": float(probs[i])}
            for i in order
        ],
        "probabilities": [float(p) for p in probs],
    }


def model_dataset(model) -> str | None:
    """The dataset the model was trained on, from its saved settings (None if unknown),
    as the catalog spells it ("MNIST" -> "mnist"); a name it does not know as it is."""
    training = model.metadata.get("training")
    dataset = training.get("dataset") if isinstance(training, dict) else None
    if not isinstance(dataset, str):
        return None
    try:
        return dataset_info(dataset).name
    except DataError:
        return dataset


def predict_file(model, path: Path, max_pixels: int) -> tuple[dict, np.ndarray | None]:
    """Predict one image file: (result, its grayscale picture or None if unreadable).

    The result is `top_classes(...)` plus "file" and "input" (the 28x28 digit), or
    {"file", "digit": None, "error"} when the file could not be used (the error
    message starts with the file name).
    """
    try:
        gray = decode.load_image(path, max_pixels=max_pixels)
    except NnscratchError as e:
        return {"file": str(path), "digit": None, "error": str(e)}, None
    digit = images.to_mnist(gray, **images.layout_for(model_dataset(model)))
    if digit is None:
        return {"file": str(path), "digit": None, "error": f"{path}: {NO_DIGIT}"}, gray
    try:
        probs = model.predict(model_input(model, digit))[0]
    except NonFiniteOutputError as e:
        return {"file": str(path), "digit": None, "error": f"{path}: {e}"}, gray
    result = {"file": str(path), **top_classes(probs, class_names(model, probs.size))}
    result["input"] = digit
    return result, gray


def format_result(result: dict) -> str:
    """One line: 'digit.png: 7 (97.3%), then 1 (1.5%), 9 (0.6%)'."""
    best, *rest = result["top"]
    line = f"{result['file']}: {best['label']} ({best['probability']:.1%})"
    if rest:
        others = ", ".join(f"{r['label']} ({r['probability']:.1%})" for r in rest)
        line += f", then {others}"
    return line


def save_comparison(rows: list[tuple[dict, np.ndarray]], out: Path) -> None:
    """Save a PNG: each input picture beside the 28x28 image the network saw."""
    fig = new_figure((5.0, 2.4 * len(rows)))
    axes = image_axes(fig, 2 * len(rows), len(rows), 2).reshape(len(rows), 2)
    for (result, gray), (ax_in, ax_net) in zip(rows, axes):
        ax_in.imshow(gray, cmap="gray", vmin=0, vmax=1)
        ax_in.set_title(plain_text([Path(result["file"]).name])[0], fontsize=9)
        if result.get("input") is not None:
            ax_net.imshow(result["input"], cmap="gray", vmin=0, vmax=1)
            label = plain_text([result["label"]])[0]
            title = f"seen: {label} ({result['probability']:.0%})"
        else:
            ax_net.imshow(np.zeros((28, 28)), cmap="gray", vmin=0, vmax=1)
            title = "seen: no digit"
        ax_net.set_title(title, fontsize=9)
    save_figure(fig, out, dpi=100)


def results_json(results: list[dict]) -> str:
    """`predict_file` results as one JSON list (the 28x28 inputs rounded to 4 places)."""
    rows = [
        {**r, "input": np.round(r["input"], 4).tolist()} if "input" in r else r
        for r in results
    ]
    return json.dumps(rows, indent=2, allow_nan=False)  # NaN is not JSON
