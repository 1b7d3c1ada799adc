"""Saving a model: one .npz of weights plus a JSON description, never pickle.

Layout of the file (a zip of .npy arrays):
- "__model__": the JSON description as a uint8 array of UTF-8 bytes: format name and
  version, every layer's class and constructor arguments, input shape, class names,
  preprocessing, loss, and free-form metadata (training settings);
- "<layer index>.<name>": every parameter and state array, e.g. "0.W", "3.running_mean".

Reading it back, with every check a file from elsewhere needs, is `loading`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import NnscratchError
from ..files import atomic_open
from .batches import UINT8_SCALE
from .parameters import all_layers

FORMAT = "nnscratch-model"
VERSION = 1
META_KEY = "__model__"


def model_description(model) -> dict:
    """The JSON-able description of a model's architecture and settings."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "layers": [
            {"class": type(layer).__name__, "config": layer.get_config()}
            for layer in model.layers
        ],
        "input_shape": None if model.input_shape is None else list(model.input_shape),
        "class_names": model.class_names,
        "preprocessing": {"uint8_scale": UINT8_SCALE},
        "loss": None if model.loss is None else type(model.loss).__name__,
        "loss_config": None if model.loss is None else model.loss.get_config(),
        "frozen": frozen_layers(model.layers),
        "metadata": model.metadata,
    }


def frozen_layers(layers) -> list[str]:
    """The names of the frozen layers ("3", "3.dense"): the outermost of each."""
    frozen = []
    for prefix, layer, _ in all_layers(layers):
        name = prefix.rstrip(".")
        inside_frozen = any(name.startswith(f + ".") for f in frozen)
        if not layer.trainable and not inside_frozen:
            frozen.append(name)
    return frozen


def save_model(model, path) -> None:
    """Write `model` to `path` (.npz) atomically: a temporary file, then a rename."""
    path = Path(path)
    text = json.dumps(model_description(model))
    arrays = {META_KEY: np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}
    arrays.update(model.get_weights())
    if not path.parent.is_dir():
        raise NnscratchError(f"save: directory {path.parent} does not exist")
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)
