"""Saving and loading models: one .npz of weights plus a JSON description, never pickle.

Layout of the file (a zip of .npy arrays):
- "__model__": the JSON description as a uint8 array of UTF-8 bytes: format name and
  version, every layer's class and constructor arguments, input shape, class names,
  preprocessing, loss, and free-form metadata (training settings);
- "<layer index>.<name>": every parameter and state array, e.g. "0.W", "3.running_mean".
"""

from __future__ import annotations

import json
import math
import zipfile
from pathlib import Path

import numpy as np

from .errors import ModelFileError, NnscratchError
from .files import atomic_open
from .layers import LAYER_CLASSES
from .losses import LOSS_CLASSES
from .model import UINT8_SCALE, Sequential

FORMAT = "nnscratch-model"
VERSION = 1
META_KEY = "__model__"
NPY_HEADER_READERS = {  # .npy format version -> NumPy's reader of that header
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def describe(model: Sequential) -> dict:
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
        "loss": type(model.loss).__name__,
        "metadata": model.metadata,
    }


def save_model(model: Sequential, path) -> None:
    """Write `model` to `path` (.npz) atomically: a temporary file, then a rename."""
    path = Path(path)
    text = json.dumps(describe(model))
    arrays = {META_KEY: np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}
    arrays.update(model.get_weights())
    if not path.parent.is_dir():
        raise NnscratchError(f"save: directory {path.parent} does not exist")
    with atomic_open(path, "wb") as f:
        np.savez(f, **arrays)


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    """Every array of the .npz at `path`, each checked before it is read."""
    if path.is_file() and not zipfile.is_zipfile(path):
        # np.load would try other formats (including pickle) on a non-zip file
        raise ModelFileError(f"{path}: not a valid .npz model file (not a zip archive)")
    try:
        with zipfile.ZipFile(path) as archive:
            return {
                member.filename.removesuffix(".npy"): _read_member(
                    path, archive, member
                )
                for member in archive.infolist()
            }
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file") from None
    except IsADirectoryError:
        raise ModelFileError(
            f"{path}: is a directory, expected a .npz model file"
        ) from None
    except zipfile.BadZipFile as e:
        raise ModelFileError(f"{path}: not a valid .npz model file ({e})") from None
    except ModelFileError:
        raise
    except ValueError as e:  # object arrays refuse to load without pickle
        raise ModelFileError(f"{path}: unsafe or unreadable array ({e})") from None
    except (OSError, EOFError) as e:
        raise ModelFileError(f"{path}: cannot read model file ({e})") from None


def _read_member(path: Path, archive: zipfile.ZipFile, member: zipfile.ZipInfo):
    """One .npy member: its header must promise exactly the bytes the member holds,
    so a small crafted file cannot make NumPy allocate terabytes, and no objects."""
    if not member.filename.endswith(".npy"):
        raise ModelFileError(f"{path}: holds {member.filename!r}, not a .npy array")
    with archive.open(member) as f:
        read_header = NPY_HEADER_READERS.get(np.lib.format.read_magic(f))
        if read_header is None:
            raise ModelFileError(
                f"{path}: {member.filename!r} has an unknown .npy version"
            )
        shape, _, dtype = read_header(f)
        data_bytes = member.file_size - f.tell()
    if dtype.hasobject:
        raise ModelFileError(f"{path}: array {member.filename!r} holds Python objects")
    if math.prod(shape) * dtype.itemsize != data_bytes:
        raise ModelFileError(
            f"{path}: array {member.filename!r} declares shape {shape} of {dtype} but"
            f" holds {data_bytes:,} bytes"
        )
    with archive.open(member) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def _parse_description(path: Path, arrays: dict) -> dict:
    raw = arrays.pop(META_KEY, None)
    if raw is None:
        raise ModelFileError(f"{path}: not an nnscratch model (no {META_KEY} entry)")
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError(f"{path}: {META_KEY} must be a 1-D uint8 array")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelFileError(
            f"{path}: the model description is not valid JSON ({e})"
        ) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(
            f"{path}: not an nnscratch model (format is not {FORMAT!r})"
        )
    if meta.get("version") != VERSION:
        raise ModelFileError(
            f"{path}: model format version {meta.get('version')!r}, this nnscratch reads {VERSION}"
        )
    if not isinstance(meta.get("layers"), list) or not meta["layers"]:
        raise ModelFileError(f"{path}: the model description lists no layers")
    return meta


def _build_layer(path: Path, i: int, spec) -> object:
    if not isinstance(spec, dict) or not isinstance(spec.get("config", {}), dict):
        raise ModelFileError(f"{path}: layer {i} is not described as {{class, config}}")
    cls = LAYER_CLASSES.get(spec.get("class"))
    if cls is None:
        raise ModelFileError(
            f"{path}: layer {i} has unknown class {spec.get('class')!r}"
        )
    try:
        return cls(**spec.get("config", {}))
    except (TypeError, ValueError, NnscratchError) as e:
        raise ModelFileError(
            f"{path}: layer {i} ({spec['class']}) has a bad config: {e}"
        ) from None
    except MemoryError:
        raise ModelFileError(
            f"{path}: layer {i} ({spec['class']}) is too large to build"
        ) from None


def _check_shapes(path: Path, model: Sequential) -> None:
    """input_shape positive ints that the layers take; one class name per output."""
    shape = model.input_shape
    if shape is None:
        return
    if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape):
        raise ModelFileError(f"{path}: bad input_shape {list(shape)}")
    try:
        outputs = model._output_shape(shape)
    except (NnscratchError, ValueError, MemoryError) as e:
        raise ModelFileError(
            f"{path}: the layers do not take input {shape}: {e}"
        ) from None
    names = model.class_names
    if names is not None and (len(outputs) != 1 or len(names) != outputs[0]):
        raise ModelFileError(
            f"{path}: {len(names)} class names for outputs of shape {outputs}"
        )


def load_model(path) -> Sequential:
    """Read a model written by `Sequential.save`. Never unpickles: a file cannot run code."""
    path = Path(path)
    arrays = _read_arrays(path)
    meta = _parse_description(path, arrays)
    layers = [_build_layer(path, i, spec) for i, spec in enumerate(meta["layers"])]
    try:
        model = Sequential(
            layers,
            input_shape=meta.get("input_shape"),
            class_names=meta.get("class_names"),
        )
    except (TypeError, NnscratchError) as e:
        raise ModelFileError(f"{path}: bad model description: {e}") from None
    expected = set(model.get_weights())
    if set(arrays) != expected:
        missing, extra = sorted(expected - set(arrays)), sorted(set(arrays) - expected)
        raise ModelFileError(
            f"{path}: weights do not match the architecture (missing {missing}, extra {extra})"
        )
    for name, array in arrays.items():
        if not np.issubdtype(array.dtype, np.floating):
            raise ModelFileError(
                f"{path}: array {name!r} has dtype {array.dtype}, expected float"
            )
        if not np.all(np.isfinite(array)):
            raise ModelFileError(f"{path}: array {name!r} holds NaN or infinite values")
    try:
        model.set_weights(arrays)
    except NnscratchError as e:
        raise ModelFileError(f"{path}: {e}") from None
    _check_shapes(path, model)
    model.loss = LOSS_CLASSES.get(
        meta.get("loss"), LOSS_CLASSES["SoftmaxCrossEntropy"]
    )()
    model.metadata = meta.get("metadata") or {}
    return model
