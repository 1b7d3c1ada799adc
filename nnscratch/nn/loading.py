"""Loading a model written by `saving`: never unpickles, checks every array first.

The file's layout is described in `saving`. Everything in the file is checked against
the architecture it declares before any array is read: a model file may come from
anywhere.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np

from ..errors import ModelFileError, NnscratchError
from .layer import Layer, deferred_weights
from .model import Sequential
from .npz import open_model_archive, parse_description_json
from .parameters import all_layers, check_values, keep_weights, walk
from .registry import LAYERS, LOSSES, OPTIMIZERS
from .saving import FORMAT, META_KEY, OPTIMIZER_PREFIX, VERSION
from .weights import WEIGHTS_FORMAT, mismatch_error

# each layer takes about a millisecond to check and build: a description listing a
# million (16 MB, a deflated file of 50 KB) would keep loading busy for many minutes
MAX_LAYERS = 10_000


def _parse_description(path: Path, raw: np.ndarray) -> dict:
    meta = parse_description_json(path, raw)
    if isinstance(meta, dict) and meta.get("format") == WEIGHTS_FORMAT:
        raise ModelFileError(
            f"{path}: holds weights only (save_weights): build the model and call "
            "its load_weights"
        )
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
    if len(meta["layers"]) > MAX_LAYERS:
        raise ModelFileError(
            f"{path}: the model description lists {len(meta['layers']):,} layers,"
            f" more than the {MAX_LAYERS:,} a model file may hold"
        )
    checks = [("loss", str), ("loss_config", dict), ("metadata", dict),
              ("class_names", list), ("frozen", list), ("optimizer", dict)]  # fmt: skip
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

    The layers are built with read-only stand-ins of their arrays (nothing drawn or
    allocated); each layer's arrays in the file are checked (names and shapes)
    against them before the layer first runs; then the file's data is read straight
    into the model's parameter buffer. Memory: about the size of the weights."""
    path = Path(path)
    custom_objects = dict(custom_objects or {})
    with open_model_archive(path, META_KEY) as archive:
        meta = _parse_description(path, archive.description())
        saved_optimizer = [n for n in archive.headers if n.startswith(OPTIMIZER_PREFIX)]
        weights = {n: h for n, h in archive.headers.items() if n not in saved_optimizer}
        model = _build_model(path, meta, weights, custom_objects)
        _read_weights(path, model, archive)
        optimizer_arrays = {name: archive.read(name) for name in saved_optimizer}
    model.loss = _loss(path, meta, custom_objects)
    model.metadata = meta.get("metadata") or {}
    model.optimizer = _optimizer(path, meta.get("optimizer"), optimizer_arrays)
    return model


def _optimizer(path: Path, entry, arrays: dict):
    """The optimiser a file saved with `include_optimizer` holds, with its state."""
    if entry is None and not arrays:
        return None
    if not isinstance(entry, dict):
        raise ModelFileError(
            f"{path}: holds optimizer arrays but the description names no optimizer"
        )
    state: dict = {}
    for name, array in arrays.items():
        group, _, key = name.removeprefix(OPTIMIZER_PREFIX).rpartition("/")
        state.setdefault(group, {})[key] = array
    try:
        # made with a stand-in rate: set_state sets the saved one, which may be 0 (a
        # schedule's end), a rate the constructor refuses
        config = {**entry["config"], "lr": 1.0}
        optimizer = OPTIMIZERS.get_class(entry["class"])(**config)
        optimizer.set_state({**entry, "state": state})
    except (KeyError, TypeError, ValueError, NnscratchError) as e:
        raise ModelFileError(
            f"{path}: the saved optimizer is not valid ({e})"
        ) from None
    return optimizer


def _build_model(path: Path, meta: dict, headers: dict, custom_objects: dict):
    """The model the description declares, built with stand-ins that match the
    file's arrays (`headers`: name -> (shape, dtype)), frozen as the file says."""
    specs = [
        _layer_spec(path, i, s, custom_objects) for i, s in enumerate(meta["layers"])
    ]
    input_shape = _check_input_shape(path, meta.get("input_shape"))
    matched: set[str] = set()

    def check(i: int, layer: Layer) -> None:
        matched.update(_check_layer_arrays(path, f"{i}.", layer, headers))

    with deferred_weights():
        layers = [
            _build_layer(path, i, cls, {**cfg, **_saved_dtype(cls, f"{i}.", headers)})
            for i, (cls, cfg) in enumerate(specs)
        ]
        try:
            model = Sequential(layers, class_names=meta.get("class_names"))
            if input_shape is not None:
                model.build(input_shape, on_built=check)
            else:  # not built when saved: only layers given their sizes have arrays
                for i, layer in enumerate(layers):
                    check(i, layer)
        except ModelFileError:  # from `check`: it names the file already
            raise
        except (TypeError, ValueError, NnscratchError) as e:
            raise ModelFileError(f"{path}: {e}") from None
        except MemoryError:
            raise ModelFileError(f"{path}: the model is too large to build") from None
    extra = sorted(set(headers) - matched)
    if extra:
        raise mismatch_error(path, [], extra)
    # once built: a layer that another makes in its `build` ("3.dense") exists now
    for name in meta.get("frozen") or []:
        _layer_named(path, layers, name).trainable = False
    return model


def _saved_dtype(cls: type, prefix: str, headers: dict) -> dict:
    """{"dtype": float64} for a layer whose arrays in the file (names starting with
    `prefix`, "3.") are all float64 and whose class takes a dtype; else {} (float32,
    the default). `get_config` leaves dtype out: without this a float64 model (the
    scikit-learn estimators' on float64 X) would load rounded to float32."""
    dtypes = {dtype for name, (_, dtype) in headers.items() if name.startswith(prefix)}
    takes_dtype = "dtype" in inspect.signature(cls).parameters
    if takes_dtype and dtypes == {np.dtype(np.float64)}:
        return {"dtype": np.float64}
    return {}


def _check_layer_arrays(path: Path, prefix: str, layer: Layer, headers: dict) -> list:
    """The names of `layer`'s arrays (those starting with `prefix`, "3."), checked
    against the file's: the same names, each of the stand-in's shape."""
    wanted = {
        inner_prefix + key: array.shape
        for inner_prefix, inner, _ in walk(layer, prefix)
        for store in (inner.params, inner.state)
        for key, array in store.items()
    }
    given = {name for name in headers if name.startswith(prefix)}
    if set(wanted) != given:
        missing, extra = sorted(set(wanted) - given), sorted(given - set(wanted))
        raise mismatch_error(path, missing, extra)
    for name, shape in wanted.items():
        if headers[name][0] != shape:
            raise ModelFileError(
                f"{path}: {name!r} has shape {headers[name][0]}, expected {shape}"
            )
    return list(wanted)


def _read_weights(path: Path, model: Sequential, archive) -> None:
    """Read every array of the file into the model: parameters straight into the
    flat buffer (when the model is built), the rest into arrays of their own; then
    check their values (`parameters.check_values`)."""
    if model.built:
        model._bind(copy_values=False)  # the buffer's values come from the file
    for prefix, layer, _ in all_layers(model.layers):
        for store in (layer.params, layer.state):
            for key, target in store.items():
                if not target.flags.writeable:  # a stand-in: give it memory
                    target = store[key] = np.empty(target.shape, target.dtype)
                archive.read_into(prefix + key, target)
    try:
        check_values(model.layers)
    except NnscratchError as e:
        raise ModelFileError(f"{path}: {e}") from None
    keep_weights(model.layers)  # another model's seed leaves them be


def _layer_named(path: Path, layers: list, name) -> Layer:
    """The layer a name such as "3" or "3.dense" points at."""
    for prefix, layer, _ in all_layers(layers):
        if prefix == f"{name}.":
            return layer
    raise ModelFileError(f"{path}: 'frozen' names no layer {name!r}")
