"""A training run's pictures: the figures (PNG) and the training animation (GIF).

`write_figures` draws every picture of a run into a folder, where the page
(`page.write_report`) finds them; FIGURE_FILES names them all.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from ..errors import NnscratchError
from ..nn.conv import Conv2D
from ..nn.dense import Dense
from .animation import training_animation
from .confusion import confusion_matrix_plot, per_class_bars
from .curves import learning_curves
from .figures import drawn, save_png
from .image_grids import first_layer_features, sample_predictions, top_mistakes
from .metrics import confusion_matrix
from .page import CAPTIONS, NARROW

FIGURE_FILES = (*CAPTIONS, *NARROW.values())  # every picture a report can hold


def first_layer_weights(model) -> np.ndarray | None:
    """W of the first Dense or Conv2D layer, or None if the model has neither."""
    for layer in model.layers:
        if isinstance(layer, (Dense, Conv2D)):
            return layer.params["W"]
    return None


def write_figures(
    figures_dir,
    model,
    history_rows,
    batch_losses,
    x_test,
    y_test,
    class_names,
    recordings=None,
    after_each=None,
    probs=None,
) -> list[Path]:
    """Draw every picture into figures_dir (made if missing); returns the files
    written. Pictures of an earlier report that this one has not (no recordings: no
    training.gif) go.

    history_rows: history.csv rows, a `History` or its dict of per-epoch lists.
    batch_losses: (steps,) or None. x_test (N, H, W), y_test (N,): the test set.
    recordings: a `Recordings` (or None: no training.gif). after_each(): called
    after each picture (a run asked to stop raises there). probs: model.predict(x_test)
    (N, C) if the caller has it already (None: predicted here).
    """
    figures_dir = Path(figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    if probs is None:
        probs = model.predict(x_test)
    cm = confusion_matrix(y_test, probs.argmax(axis=1), len(class_names))
    draw = {
        "learning_curves.png": lambda: learning_curves(history_rows, batch_losses),
        "learning_curves_narrow.png": lambda: learning_curves(
            history_rows, batch_losses, narrow=True
        ),
        "confusion_matrix.png": lambda: confusion_matrix_plot(cm, class_names),
        "confusion_matrix_normalized.png": lambda: confusion_matrix_plot(
            cm, class_names, normalize=True
        ),
        "per_class.png": lambda: per_class_bars(cm, class_names),
        "sample_predictions.png": lambda: sample_predictions(
            x_test, y_test, probs, class_names
        ),
        "top_mistakes.png": lambda: top_mistakes(x_test, y_test, probs, class_names),
    }
    weights = first_layer_weights(model)
    if weights is not None:
        draw["first_layer_features.png"] = lambda: first_layer_features(weights)
    # a figure is drawn here while a thread makes the last one's palette and PNG
    # (Pillow lets go of the GIL)
    with ThreadPoolExecutor(1) as encoder:
        pngs = []
        for name, make in draw.items():
            image = drawn(make())
            pngs.append(encoder.submit(save_png, image, figures_dir / name))
            if after_each is not None:
                after_each()
        gif = None
        if recordings is not None:
            gif = training_animation(figures_dir / "training.gif", recordings)
    written = [png.result() for png in pngs] + ([gif] if gif else [])
    for name in FIGURE_FILES:
        if figures_dir / name not in written:
            (figures_dir / name).unlink(missing_ok=True)
    return written


def model_summary(model) -> str | None:
    """`model.summary()`, or None if the model cannot say (input shape unknown): the
    page does without."""
    try:
        return model.summary()
    except NnscratchError:
        return None
