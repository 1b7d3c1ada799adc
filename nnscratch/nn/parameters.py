"""A model's parameters: their names, one flat buffer for them all, freezing,
getting or setting them as arrays, and putting the layers back after a failed build.

Names are built from the structure: "<layer index>.<param>" ("0.W"), and for a layer
inside a layer "<index>.<attribute>.<param>" ("3.dense.W", "3.blocks.0.W").

The model keeps every parameter in one flat buffer (and every gradient in another),
trainable ones first, so the optimiser updates all of them in a few whole-array passes
per step; each layer's `params[name]` is a view into it. Frozen parameters sit after
the trainable ones, where the optimiser never looks.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from ..errors import NnscratchError
from .layer import Layer
from .workspace import aligned_empty


def walk(layer: Layer, path: str = "", trainable: bool = True) -> Iterator[tuple]:
    """(path, layer, trainable) for `layer` and, depth first, every layer inside it;
    a layer is trainable if it and every layer around it are."""
    trainable = trainable and layer.trainable
    yield path, layer, trainable
    for name, inner in layer.sublayers():
        yield from walk(inner, f"{path}{name}.", trainable)


def all_layers(layers: list[Layer]) -> Iterator[tuple]:
    """(prefix, layer, trainable) for every layer of a model, inner ones included;
    the prefix of a parameter name, e.g. "3." or "3.dense."."""
    for i, layer in enumerate(layers):
        yield from walk(layer, f"{i}.")


def check_distinct(layers: list[Layer]) -> None:
    """Refuse a layer object listed twice in a model: a layer keeps its last input
    for backward, which its second place would overwrite (wrong gradients, or a
    shape error deep in NumPy). (Inside a layer, its own business.)"""
    first: dict[int, int] = {}
    for i, layer in enumerate(layers):
        j = first.setdefault(id(layer), i)
        if j != i:
            given_as = getattr(layer, "moved_out", False) * " given as activation="
            raise NnscratchError(
                f"Sequential: layer {i} is layer {j} again (the same "
                f"{type(layer).__name__} object{given_as}): give each place its own"
            )


@contextmanager
def restored_if_failed(layers):
    """Put every layer of `layers` (inner ones too) back as it was if the block
    raises: a failed build leaves no layer built for the input it refused, or
    with its activation moved out, so a notebook can put the same layer objects
    in a corrected model. Settings and arrays are put back, and the values of the
    arrays there already (a model's `seed` redraws them in place)."""
    layers = [layer for layer in layers if isinstance(layer, Layer)]
    saved = [(layer, _settings(layer)) for _, layer, _ in all_layers(layers)]
    values = [(array, array.copy()) for _, s in saved for array in _arrays(s)]
    try:
        yield
    except BaseException:
        for layer, settings in saved:
            vars(layer).clear()
            vars(layer).update(settings)
        for array, value in values:
            array[...] = value
        raise


def _arrays(settings: dict) -> list[np.ndarray]:
    """The parameter and state arrays among a layer's `_settings` that hold values
    (not a loader's read-only stand-ins, `layer.deferred_weights`)."""
    stores = [settings.get(name) for name in ("params", "state")]
    arrays = [a for store in stores if isinstance(store, dict) for a in store.values()]
    return [a for a in arrays if a.flags.writeable]


def _settings(layer: Layer) -> dict:
    """A layer's attributes, with its dicts of arrays copied (build adds to them)."""
    settings = dict(vars(layer))
    for name in ("params", "grads", "state"):
        if isinstance(settings.get(name), dict):
            settings[name] = dict(settings[name])
    return settings


def named_arrays(layers: list[Layer], kind: str = "params") -> dict[str, np.ndarray]:
    """Every parameter (kind="params") or state array (kind="state") by name."""
    return {
        prefix + key: array
        for prefix, layer, _ in all_layers(layers)
        for key, array in getattr(layer, kind).items()
    }


def check_values(layers: list[Layer]) -> None:
    """NnscratchError naming the first array (parameter or state) of `layers` whose
    values the layer cannot use: NaN or infinite, or negative where the layer lists
    it in `nonnegative` (batch norm's running_var). For arrays read from a file:
    training keeps them finite and a variance never goes below zero."""
    for prefix, layer, _ in all_layers(layers):
        for store in (layer.params, layer.state):
            for key, array in store.items():
                if not np.isfinite(array).all():
                    raise NnscratchError(
                        f"array {prefix + key!r} holds NaN or infinite values"
                    )
                if key in layer.nonnegative and (array < 0).any():
                    raise NnscratchError(
                        f"array {prefix + key!r} holds negative values, which "
                        f"{type(layer).__name__}'s {key} cannot"
                    )


def is_trainable(layer: Layer) -> bool:
    """Whether any parameter of `layer` (or of a layer inside it) is trained."""
    return any(t and inner.params for _, inner, t in walk(layer))


class FlatBuffers:
    """The flat parameter and gradient buffers of a list of layers.

    `params[:trainable]` and `grads[:trainable]` are what the optimiser updates.
    Without `copy_values` the layers' arrays only give the layout (loading fills the
    buffer from a file).
    """

    def __init__(self, layers: list[Layer], copy_values: bool = True):
        entries = [
            (layer, key, p, trainable)
            for _, layer, trainable in all_layers(layers)
            for key, p in layer.params.items()
        ]
        entries.sort(key=lambda entry: not entry[3])  # trainable first, stable
        dtype = np.result_type(*[e[2] for e in entries]) if entries else np.float32
        size = sum(e[2].size for e in entries)
        self.params = aligned_empty((size,), dtype)
        # zeroed pages from the OS: no memory is used until training writes
        # gradients (np.zeros_like would write every zero now)
        self.grads = aligned_empty((size,), dtype, zeros=True)
        self.trainable = sum(e[2].size for e in entries if e[3])
        self.frozen = [(layer, key) for layer, key, _, t in entries if not t]
        offset = 0
        for layer, key, p, _ in entries:
            view = slice(offset, offset + p.size)
            if copy_values:
                self.params[view] = p.ravel()
            layer.params[key] = self.params[view].reshape(p.shape)
            layer.grads[key] = self.grads[view].reshape(p.shape)
            offset += p.size

    def still_bound(self, layers: list[Layer]) -> bool:
        """Whether every parameter is still the view it was given, and whether each is
        still trainable or frozen as it was: otherwise bind again."""
        frozen, pairs = [], []
        for _, layer, trainable in all_layers(layers):  # one walk: it runs every step
            for key, p in layer.params.items():
                pairs.append((p, layer.grads.get(key)))
                if not trainable:
                    frozen.append((layer, key))
        return (
            sum(p.size for p, _ in pairs) == self.params.size
            and [(id(a), k) for a, k in frozen] == [(id(a), k) for a, k in self.frozen]
            and all(
                g is not None
                and np.may_share_memory(p, self.params)
                and np.may_share_memory(g, self.grads)
                for p, g in pairs
            )
        )


def get_weights(layers: list[Layer]) -> dict[str, np.ndarray]:
    """Copies of every parameter and state array (batch-norm statistics), by name."""
    arrays = {**named_arrays(layers, "params"), **named_arrays(layers, "state")}
    return {name: array.copy() for name, array in arrays.items()}


def set_weights(layers: list[Layer], weights) -> None:
    """Copy arrays into the layers, in place: a dict by name (as `get_weights` gives
    and model files hold) or, as Keras takes it, a list in the order of `get_weights`."""
    targets = {**named_arrays(layers, "params"), **named_arrays(layers, "state")}
    if isinstance(weights, (list, tuple)):
        if len(weights) != len(targets):
            raise NnscratchError(
                f"weights: expected a list of {len(targets)} arrays "
                f"({', '.join(targets)}), got {len(weights)}"
            )
        weights = dict(zip(targets, weights))
    if not isinstance(weights, dict):
        raise NnscratchError(
            f"weights: expected a dict of arrays by name or a list of arrays, "
            f"got {type(weights).__name__}"
        )
    for name, target in targets.items():
        if name not in weights:
            raise NnscratchError(f"weights: missing array {name!r}")
        source = np.asarray(weights[name])
        if source.dtype.kind not in "buif":  # text, complex: refused before any copy
            raise NnscratchError(
                f"weights: {name!r} holds {source.dtype} values, expected numbers"
            )
        if source.shape != target.shape:
            raise NnscratchError(
                f"weights: {name!r} has shape {source.shape}, expected {target.shape}"
            )
    for name, target in targets.items():  # all checked first: nothing half-copied
        target[...] = weights[name]
    keep_weights(layers)


def keep_weights(layers: list[Layer]) -> None:
    """Mark the layers (inner ones too) as holding weights that a model's seed must
    not draw anew (`Layer.initial_weights`): trained, set or loaded ones."""
    for _, layer, _ in all_layers(layers):
        layer.initial_weights = False
