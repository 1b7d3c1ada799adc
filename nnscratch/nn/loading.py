"""Loading a model written by `saving`: never unpickles, checks every array first.

The file's layout is described in `saving`. Everything in the file is checked against
the architecture it declares before any array is read: a model file may come from
anywhere.
"""

from __future__ import annotations

import inspect
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from ..errors import ModelFileError, NnscratchError
from .layer import Layer, deferred_weights
from .model import Sequential
from .parameters import all_layers, walk
from .registry import LAYERS, LOSSES, OPTIMIZERS
from .saving import FORMAT, META_KEY, OPTIMIZER_PREFIX, VERSION

MAX_DESCRIPTION_BYTES = 16 * 2**20  # the JSON description (a few KB in practice)
MAX_MODEL_BYTES = 2**31  # all weights: the cnn preset's take 1.7 MB, this 2 GiB
NPY_HEADER_READERS = {  # .npy format version -> NumPy's reader of that header
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def _open_archive(path: Path) -> zipfile.ZipFile:
    if path.is_dir():
        raise ModelFileError(f"{path}: is a directory, expected a .npz model file")
    if not path.exists():
        raise ModelFileError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        # np.load would try other formats (including pickle) on a non-zip file
        raise ModelFileError(f"{path}: not a valid .npz model file (not a zip archive)")
    return zipfile.ZipFile(path)


def _members(path: Path, archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Array name -> zip member: only .npy members, each name once."""
    members = {}
    for member in archive.infolist():
        if not member.filename.endswith(".npy"):
            raise ModelFileError(f"{path}: holds {member.filename!r}, not a .npy array")
        name = member.filename.removesuffix(".npy")
        if name in members:
            raise ModelFileError(f"{path}: holds {member.filename!r} twice")
        members[name] = member
    return members


def _read_header(path: Path, archive, member) -> tuple[tuple, np.dtype, int]:
    """(shape, dtype, data bytes) from a .npy member's header, the data unread. The
    header must promise exactly the bytes the member holds, and no Python objects."""
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
    return shape, dtype, data_bytes


def _read_array(archive, member) -> np.ndarray:
    """A .npy member whose header `_read_header` has checked."""
    with archive.open(member) as f:
        return np.lib.format.read_array(f, allow_pickle=False)


def _parse_description(path: Path, raw: np.ndarray) -> dict:
    if raw.dtype != np.uint8 or raw.ndim != 1:
        raise ModelFileError(f"{path}: {META_KEY} must be a 1-D uint8 array")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        # ValueError: bad JSON, or an integer of thousands of digits
        reason = "nested too deeply" if isinstance(e, RecursionError) else e
        raise ModelFileError(
            f"{path}: the model description is not valid JSON ({reason})"
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
    checks = [("loss", str), ("loss_config", dict), ("metadata", dict),
              ("class_names", list), ("frozen", list)]  # fmt: skip
    for key, kind in checks:
        if meta.get(key) is not None and not isinstance(meta[key], kind):
            raise ModelFileError(f"{path}: {key!r} must be a {kind.__name__}")
    if meta.get("class_names") and not all(
        isinstance(c, str) for c in meta["class_names"]
    ):
        raise ModelFileError(f"{path}: class names must be strings")
    return meta


def _find_class(registry, name, custom_objects: dict):
    """The class a model file names: from `custom_objects` first, then the registry."""
    if not isinstance(name, str):
        return None
    return custom_objects.get(name) or registry.get(name)


def _layer_spec(path: Path, i: int, spec, custom_objects: dict) -> tuple[type, dict]:
    """(layer class, constructor arguments) of layer i's description, checked."""
    if not isinstance(spec, dict) or not isinstance(spec.get("config", {}), dict):
        raise ModelFileError(f"{path}: layer {i} is not described as {{class, config}}")
    name = spec.get("class")
    cls = _find_class(LAYERS, name, custom_objects)
    if cls is None:
        raise ModelFileError(
            f"{path}: layer {i} has unknown class {name!r}; register it with "
            "@nnscratch.register or pass load_model(..., custom_objects={...})"
        )
    config = spec.get("config", {})
    # only what `get_config` writes: not `rng` or `dtype`, say
    signature = inspect.signature(cls).parameters
    takes_any = any(p.kind == p.VAR_KEYWORD for p in signature.values())
    unknown = sorted(set(config) - (set(signature) - {"rng", "dtype"}))
    if unknown and not takes_any:
        raise ModelFileError(
            f"{path}: layer {i} ({name}) has unknown settings {unknown}"
        )
    return cls, config


def _loss(path: Path, meta: dict, custom_objects: dict):
    """The loss the file names, built from its config; None if it names none."""
    name = meta.get("loss")
    if name is None:
        return None
    cls = _find_class(LOSSES, name, custom_objects)
    if cls is None:
        raise ModelFileError(
            f"{path}: unknown loss {name!r}; register it with @nnscratch.register "
            "or pass load_model(..., custom_objects={...})"
        )
    config = meta.get("loss_config") or {}
    try:
        return cls(**config)
    except (TypeError, ValueError, NnscratchError) as e:
        raise ModelFileError(f"{path}: loss {name} has a bad config: {e}") from None


def _read_weights(path: Path, archive, members: dict) -> dict:
    """The weight arrays, after every member's header is checked: floats, and no
    more than MAX_MODEL_BYTES in all (a small file cannot make this allocate much)."""
    total = 0
    for name, member in members.items():
        _, dtype, size = _read_header(path, archive, member)
        if not np.issubdtype(dtype, np.floating):
            raise ModelFileError(
                f"{path}: array {name!r} has dtype {dtype}, expected float"
            )
        total += size
    if total > MAX_MODEL_BYTES:
        raise ModelFileError(
            f"{path}: the weights take {total:,} bytes, more than the"
            f" {MAX_MODEL_BYTES:,} a model file may hold"
        )
    arrays = {name: _read_array(archive, m) for name, m in members.items()}
    for name, array in arrays.items():
        if not np.all(np.isfinite(array)):
            raise ModelFileError(f"{path}: array {name!r} holds NaN or infinite values")
    return arrays


def _read_model_file(path: Path) -> tuple[dict, dict]:
    """(description, weight arrays by name) of a model file."""
    try:
        with _open_archive(path) as archive:
            members = _members(path, archive)
            meta_member = members.pop(META_KEY, None)
            if meta_member is None:
                raise ModelFileError(
                    f"{path}: not an nnscratch model (no {META_KEY} entry)"
                )
            if meta_member.file_size > MAX_DESCRIPTION_BYTES:
                raise ModelFileError(f"{path}: the model description is too large")
            _read_header(path, archive, meta_member)
            meta = _parse_description(path, _read_array(archive, meta_member))
            weights = _read_weights(path, archive, members)
    except ModelFileError:
        raise
    except zipfile.BadZipFile as e:
        raise ModelFileError(f"{path}: not a valid .npz model file ({e})") from None
    except (ValueError, RuntimeError, NotImplementedError) as e:
        # unreadable arrays, encrypted members, unknown compression methods
        raise ModelFileError(f"{path}: unreadable model file ({e})") from None
    except (OSError, EOFError) as e:
        raise ModelFileError(f"{path}: cannot read model file ({e})") from None
    return meta, weights


def _build_layer(path: Path, i: int, cls: type, config: dict) -> Layer:
    try:
        layer = cls(**config)
    except (TypeError, ValueError, NnscratchError) as e:
        raise ModelFileError(
            f"{path}: layer {i} ({cls.__name__}) has a bad config: {e}"
        ) from None
    except MemoryError:
        raise ModelFileError(
            f"{path}: layer {i} ({cls.__name__}) is too large to build"
        ) from None
    if not isinstance(layer, Layer):
        raise ModelFileError(f"{path}: layer {i} ({cls.__name__}) is not a Layer")
    return layer


def _check_input_shape(path: Path, shape) -> tuple | None:
    if shape is None:
        return None
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape
    ):
        raise ModelFileError(f"{path}: bad input_shape {shape}")
    return tuple(shape)


def load_model(path, custom_objects: dict | None = None) -> Sequential:
    """Read a model written by `Sequential.save`. Never unpickles: a file cannot run
    code. Layers and losses are found by class name, in `custom_objects` ({name:
    class}) first, then among the registered ones (`nnscratch.register`).

    The layers are built without drawing or allocating weights: each layer's arrays
    in the file are checked (names and shapes) against the layer as built, then put
    in place, before the layer first runs; nothing larger than the file's arrays is
    allocated for a file that does not match its architecture."""
    path = Path(path)
    custom_objects = dict(custom_objects or {})
    meta, arrays = _read_model_file(path)
    optimizer_arrays = {
        name: arrays.pop(name)
        for name in list(arrays)
        if name.startswith(OPTIMIZER_PREFIX)
    }
    specs = [
        _layer_spec(path, i, s, custom_objects) for i, s in enumerate(meta["layers"])
    ]
    input_shape = _check_input_shape(path, meta.get("input_shape"))
    placed: set[str] = set()

    def place(i: int, layer: Layer) -> None:
        placed.update(_place_arrays(path, f"{i}.", layer, arrays))

    with deferred_weights():
        layers = [_build_layer(path, i, cls, cfg) for i, (cls, cfg) in enumerate(specs)]
        try:
            model = Sequential(layers, class_names=meta.get("class_names"))
            for name in meta.get("frozen") or []:
                _layer_named(path, layers, name).trainable = False
            if input_shape is not None:
                model.build(input_shape, on_built=place)
            else:  # not built when saved: only layers given their sizes have arrays
                for i, layer in enumerate(layers):
                    place(i, layer)
        except (TypeError, ValueError, NnscratchError) as e:
            raise ModelFileError(f"{path}: {e}") from None
        except MemoryError:
            raise ModelFileError(f"{path}: the model is too large to build") from None
    extra = sorted(set(arrays) - placed)
    if extra:
        raise ModelFileError(
            f"{path}: weights do not match the architecture (missing [], extra {extra})"
        )
    model.loss = _loss(path, meta, custom_objects)
    model.metadata = meta.get("metadata") or {}
    model.optimizer = _optimizer(path, meta.get("optimizer"), optimizer_arrays)
    return model


def _optimizer(path: Path, entry, arrays: dict):
    """The optimiser a file saved with `include_optimizer` holds, with its state."""
    if entry is None and not arrays:
        return None
    state: dict = {}
    for name, array in arrays.items():
        group, _, key = name.removeprefix(OPTIMIZER_PREFIX).rpartition("/")
        state.setdefault(group, {})[key] = array
    try:
        optimizer = OPTIMIZERS.get_class(entry["class"])(**entry["config"])
        optimizer.set_state({**entry, "state": state})
    except (KeyError, TypeError, ValueError, NnscratchError) as e:
        raise ModelFileError(
            f"{path}: the saved optimizer is not valid ({e})"
        ) from None
    return optimizer


def _place_arrays(path: Path, prefix: str, layer: Layer, arrays: dict) -> list[str]:
    """Check the file's arrays for `layer` (names starting with `prefix`, "3.")
    against the stand-ins it was built with, then put them in their place."""
    wanted = {
        inner_prefix + key: (store, key)
        for inner_prefix, inner, _ in walk(layer, prefix)
        for store in (inner.params, inner.state)
        for key in store
    }
    given = {name for name in arrays if name.startswith(prefix)}
    if set(wanted) != given:
        missing, extra = sorted(set(wanted) - given), sorted(given - set(wanted))
        raise ModelFileError(
            f"{path}: weights do not match the architecture (missing {missing}, "
            f"extra {extra})"
        )
    for name, (store, key) in wanted.items():
        if arrays[name].shape != store[key].shape:
            raise ModelFileError(
                f"{path}: {name!r} has shape {arrays[name].shape}, expected "
                f"{store[key].shape}"
            )
    for name, (store, key) in wanted.items():
        store[key] = arrays[name].astype(store[key].dtype, copy=False)
    return list(wanted)


def _layer_named(path: Path, layers: list, name) -> Layer:
    """The layer a name such as "3" or "3.dense" points at."""
    for prefix, layer, _ in all_layers(layers):
        if prefix == f"{name}.":
            return layer
    raise ModelFileError(f"{path}: 'frozen' names no layer {name!r}")
