"""Saving a model: one .npz of weights plus a JSON description, never pickle.

Layout of the file (a zip of .npy arrays):
- "__model__": the JSON description as a uint8 array of UTF-8 bytes: format name and
  version, every layer's class and constructor arguments, input shape, class names,
  preprocessing, loss, and free-form metadata (training settings);
- "<layer index>.<name>": every parameter and state array, e.g. "0.W", "3.running_mean";
- with `include_optimizer`, "optimizer/<name>/<key>": the optimiser's state arrays
  (its class, settings and step count are in the description's "optimizer").

The zip members carry a fixed date, so the same model gives the same bytes.

Reading it back, with every check a file from elsewhere needs, is `loading`.
"""

from __future__ import annotations

import inspect
import json
import zipfile
from pathlib import Path

import numpy as np

from ..errors import NnscratchError
from ..files import atomic_open
from .activations import listed_config
from .batches import UINT8_SCALE
from .parameters import all_layers

FORMAT = "nnscratch-model"
VERSION = 1
META_KEY = "__model__"
OPTIMIZER_PREFIX = "optimizer/"
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest a zip can hold: no clock in the bytes


def model_description(model) -> dict:
    """The JSON-able description of a model's architecture and settings."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "layers": [
            {"class": type(layer).__name__, "config": listed_config(layer)}
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


def save_model(model, path, include_optimizer: bool = False) -> None:
    """Write `model` to `path` (.npz) atomically: a temporary file, then a rename.

    With `include_optimizer`, the optimiser of its last fit too (class, settings,
    step count, moments): the loaded model's next `fit` continues it."""
    path = Path(path)
    description = model_description(model)
    for i, (layer, spec) in enumerate(zip(model.layers, description["layers"])):
        check_rebuildable(layer, spec["config"], f"layer {i}")
    if model.loss is not None:
        check_rebuildable(model.loss, description["loss_config"], "the loss")
    arrays = model.get_weights()
    optimizer = getattr(model, "optimizer", None)
    if include_optimizer and optimizer is not None:
        state = optimizer.get_state()
        description["optimizer"] = {k: v for k, v in state.items() if k != "state"}
        for name, entries in state["state"].items():
            for key, array in entries.items():
                arrays[f"{OPTIMIZER_PREFIX}{name}/{key}"] = array
    write_described(path, description, arrays, "save")


def check_rebuildable(part, config: dict, what: str) -> None:
    """Refuse a layer or loss whose `config` leaves out an argument its constructor
    requires: the file would be written, and `load_model` would fail on it later
    (Keras refuses such a layer when it saves it, too)."""
    cls = type(part)
    required = [
        p.name
        for p in inspect.signature(cls).parameters.values()
        if p.default is p.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name not in config
    ]
    if required:
        raise NnscratchError(
            f"save: {what} ({cls.__name__}) takes {', '.join(required)}, which its "
            "get_config() does not return: return every constructor argument from "
            "get_config so that load_model can rebuild it"
        )


def check_npz_name(path, who: str) -> None:
    """Refuse a file name that does not end in .npz: the file is an .npz whatever
    its name, so "model.h5" or "model.keras" would promise a Keras file that Keras
    cannot read (Keras 3 likewise refuses a name without its .keras)."""
    path = Path(path)
    if path.suffix.lower() != ".npz" and not path.is_dir():  # a folder: said later
        raise NnscratchError(
            f"{who}: {path}: nnscratch saves its own .npz format (not Keras' .h5 or "
            f".keras): name the file {path.with_suffix('').name or path.name}.npz"
        )


def write_described(path: Path, description: dict, arrays: dict, who: str) -> None:
    """The arrays and the JSON description (as META_KEY) to `path`, atomically."""
    check_npz_name(path, who)
    text = json.dumps(description)
    arrays = {META_KEY: np.frombuffer(text.encode("utf-8"), dtype=np.uint8), **arrays}
    if not path.parent.is_dir():
        raise NnscratchError(f"{who}: directory {path.parent} does not exist")
    with atomic_open(path, "wb") as f:
        write_npz(f, arrays)


def write_npz(f, arrays: dict[str, np.ndarray]) -> None:
    """np.savez's layout (a zip of "<name>.npy" members, stored), with a fixed date
    on every member: the same arrays always give the same bytes."""
    with zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_DATE)
            with archive.open(info, "w", force_zip64=True) as member:
                np.lib.format.write_array(
                    member, np.asanyarray(array), allow_pickle=False
                )
