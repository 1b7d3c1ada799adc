"""A stack of layers and its parameters: building it for an input shape, the flat
parameter buffers, freezing, weights, and running the layers forward and back. What
trains it (fit, evaluate, predict) is `model.Sequential`, built on it."""

from __future__ import annotations

import numpy as np

from ..errors import ModelFileError, NnscratchError, check_finite
from .activations import expand_activations, model_running
from .batches import prepare_inputs
from .commute import commute
from .fusion import fuse
from .inputs import (
    channels_last_hint,
    check_batch,
    check_input_shape,
    check_layer,
    warn_if_unscaled,
)
from .kernels import backend
from .layer import Layer, deferring_weights
from .parameters import (
    FlatBuffers,
    all_layers,
    check_distinct,
    get_weights,
    is_trainable,
    restored_if_failed,
    set_weights,
)
from .summary import summary_table


class Network:
    """Layers applied one after the other, with their parameters in one buffer.

    `seed` draws every layer's initial weights from one seed; `class_names` name the
    outputs (one per output, two for a single binary output). A layer object is
    listed once (it keeps its last input for backward); two models may share it.
    """

    def __init__(self, layers=None, class_names=None, seed=None):
        if isinstance(layers, Layer) or isinstance(class_names, Layer):
            raise NnscratchError(
                "Sequential: pass the layers as one list: Sequential([layer, ...])"
            )
        layers = [] if layers is None else layers
        if not isinstance(layers, (list, tuple)):
            raise NnscratchError(
                f"Sequential: expected a list of Layer objects, got {layers!r}"
            )
        for i, layer in enumerate(layers):
            check_layer(layer, f"Sequential: item {i}")
        self.layers = expand_activations(layers)
        self.class_names = (
            None if class_names is None else [str(c) for c in class_names]
        )
        self.input_shape = None
        self.output_shape: tuple | None = None
        self._buffers: FlatBuffers | None = None
        self._ordered: tuple = ()  # the layers `_order` was made for
        self._built_for: tuple = ()  # the layers `build` last ran on
        self._seeds = None if seed is None else np.random.SeedSequence(seed)
        self._seeded: set[int] = set()  # id() of the layers whose weights `seed` drew
        if seed is not None:
            self._reseed_layers()

    # ----- building ---------------------------------------------------------------
    def build(self, input_shape, on_built=None) -> None:
        """Build every layer for examples of `input_shape` (without the batch axis):
        layers without input sizes take theirs, explicit ones are checked.
        `on_built(i, layer)` runs after each layer is built, before it first runs
        (loading puts a file's arrays in place there)."""
        shape = check_input_shape(input_shape)
        # a layer put in `layers` by hand (not by `add`) may still hold its activation
        self.layers[:] = expand_activations(self.layers, again=True)
        check_distinct(self.layers)
        if not self.layers:
            raise NnscratchError(
                "Sequential: the model has no layers; add them with model.add(layer)"
            )
        backend()  # a bad NNSCRATCH_KERNELS says so, not that a layer refused x
        seeded = set(self._seeded)
        try:
            with restored_if_failed(self.layers):
                output_shape = self._build_layers(shape, on_built)
        except BaseException:  # weights put back: the seed draws them on next build
            self._seeded = seeded
            raise
        self.input_shape, self.output_shape = shape, output_shape
        self._built_for = tuple(self.layers)
        self._check_class_names()
        if not deferring_weights():  # else the loader binds, once it has the arrays
            self._bind()

    def _build_layers(self, shape: tuple, on_built) -> tuple:
        """Build each layer in turn for the output of the one before (see `build`);
        returns the last one's output shape."""
        x = np.zeros((1, *shape), dtype=np.float32)
        for i, layer in enumerate(self.layers):
            try:
                layer.build(x.shape[1:])
                if self._seeds is not None:  # layers made inside it by its build
                    self._reseed_layers()
                if on_built is not None:
                    on_built(i, layer)
                with model_running(self.layers):
                    x = layer.forward(x, training=False)
            except ModelFileError:
                raise  # `on_built` found a file's arrays wrong, not the input
            except (NnscratchError, ValueError) as e:
                raise NnscratchError(
                    f"layer {i} ({type(layer).__name__}) does not take input "
                    f"(N, {', '.join(map(str, x.shape[1:]))}): {e}"
                    + (channels_last_hint(shape) if i == 0 else "")
                ) from None
        return x.shape[1:]

    def _check_class_names(self) -> None:
        names, outputs = self.class_names, self.output_shape
        if names is None or outputs is None:
            return
        # one name per output; a single (binary) output has two classes
        if len(outputs) != 1 or len(names) != max(outputs[0], 2):
            raise NnscratchError(
                f"class_names: {len(names)} class names for outputs of shape {outputs}"
            )

    @property
    def built(self) -> bool:
        """Built for the layers it holds: a layer added to, removed from or replaced
        in `layers` since (Keras' add and pop) makes it build again on next use."""
        return (
            self.input_shape is not None
            and bool(self.layers)
            and self._built_for == tuple(self.layers)
        )

    def _require_built(self, what: str) -> None:
        self._rebuild_if_changed()
        if not self.built:
            raise NnscratchError(
                f"{what}: the model is not built yet; give Sequential an input_shape "
                "or call build(input_shape)"
            )

    def add(self, layer: Layer) -> None:
        """Append a layer (Keras' `add`); the model builds again on next use."""
        check_layer(layer, "add: the argument")
        self.layers.extend(expand_activations([layer]))

    def pop(self) -> Layer:
        """Remove and return the last layer (Keras' `pop`); the model builds again
        on next use. A layer added with `activation=` goes with its activation,
        which it still holds: after `add(Dense(64, activation="relu"))`, `pop`
        removes both and returns the Dense, which brings its activation to the
        model it is added to next."""
        if not self.layers:
            raise NnscratchError("pop: the model has no layers")
        last = self.layers.pop()
        before = self.layers[-1] if self.layers else None
        if getattr(last, "moved_out", False) and (
            getattr(before, "activation", None) is last
        ):
            last = self.layers.pop()
        return last

    def _rebuild_if_changed(self) -> None:
        """Build again for the same input shape if `layers` changed since `build`."""
        if self.input_shape is not None and not self.built:
            self.build(self.input_shape)

    def _bind(self, copy_values: bool = True) -> None:
        """(Re)make the flat buffers if the layers' arrays or freezing changed
        (without `copy_values`, the buffer is left for the caller to fill)."""
        if self._buffers is None or not self._buffers.still_bound(self.layers):
            self._buffers = FlatBuffers(self.layers, copy_values)
            first = next(
                (i for i, layer in enumerate(self.layers) if is_trainable(layer)), None
            )
            # only layers after the first trainable one need their input's gradient
            for i, layer in enumerate(self.layers):
                layer.needs_input_grad = first is not None and i > first
            # steps before the first trainable layer's have nothing to learn: backward
            # stops there
            steps = self._execution_order()
            first_step = next(
                (i for i, step in enumerate(steps) if _any_trainable(step)), len(steps)
            )
            self._backward_layers = steps[first_step:][::-1]
            # a frozen layer's penalty is a constant training does not minimise:
            # left out of the loss, as Keras 3 adds trainable weights' regularisers
            self._penalized = [
                layer
                for _, layer, trainable in all_layers(self.layers)
                if trainable and type(layer).penalty is not Layer.penalty
            ]

    def _reseed_layers(self) -> None:
        """Draw the initial weights of every layer the model's seed has not drawn yet
        (inner ones included) from that seed; not those of a layer that was trained,
        set or loaded (`Layer.initial_weights`)."""
        layers = [
            layer
            for _, layer, _ in all_layers(self.layers)
            if id(layer) not in self._seeded and layer.initial_weights
        ]
        for layer, seed in zip(layers, self._seeds.spawn(len(layers))):
            layer.reset_parameters(np.random.default_rng(seed))
        self._seeded.update(id(layer) for layer in layers)

    # ----- copies (pickle, copy.deepcopy) ---------------------------------------------
    def __getstate__(self) -> dict:
        """The layers, settings and optimiser; not what is made again on use (the
        flat buffers, whose views the layers' copied arrays no longer are, and the
        fused steps, which keep the last call's arrays)."""
        skip = {"_buffers", "_order", "_backward_layers", "_penalized"}
        state = {k: v for k, v in vars(self).items() if k not in skip}
        state.update(_buffers=None, _ordered=())
        # ids of layers do not survive a copy: the layers themselves do
        state["_seeded"] = [
            layer
            for _, layer, _ in all_layers(self.layers)
            if id(layer) in self._seeded
        ]
        return state

    def __setstate__(self, state: dict) -> None:
        vars(self).update(state)
        self._seeded = {id(layer) for layer in state["_seeded"]}

    # ----- parameters -------------------------------------------------------------
    @property
    def trainable(self) -> bool:
        """False once every layer is frozen; setting it freezes or unfreezes all."""
        return any(layer.trainable for layer in self.layers)

    @trainable.setter
    def trainable(self, value: bool) -> None:
        for layer in self.layers:
            layer.trainable = bool(value)

    def named_params(self, trainable_only: bool = False) -> dict[str, np.ndarray]:
        """Every parameter array (the model's own, not copies) by name, e.g. '0.W'
        or '3.dense.b'; with `trainable_only`, not the frozen ones."""
        return {
            prefix + key: array
            for prefix, layer, trainable in all_layers(self.layers)
            for key, array in layer.params.items()
            if trainable or not trainable_only
        }

    @property
    def flat_params(self) -> np.ndarray:
        """Every parameter in one array, trainable ones first (`parameters`)."""
        self._require_built("flat_params")
        self._bind()
        return self._buffers.params

    @property
    def flat_grads(self) -> np.ndarray:
        """The gradients of `flat_params`, in the same order."""
        self._require_built("flat_grads")
        self._bind()
        return self._buffers.grads

    def count_params(self, trainable_only: bool = False) -> int:
        """How many numbers training can change (`trainable_only`) or that the
        layers' parameters hold in all (frozen included; not batch-norm statistics)."""
        self._require_built("count_params")
        self._bind()
        buffers = self._buffers
        return int(buffers.trainable if trainable_only else buffers.params.size)

    def get_weights(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and state array (batch-norm statistics), by name."""
        self._rebuild_if_changed()  # layers added since build get their arrays now
        return get_weights(self.layers)

    def set_weights(self, weights) -> None:
        """Copy arrays into the model, in place: a dict like `get_weights()` gives (or
        a model file holds), or a list of arrays in that order (Keras' form)."""
        self._rebuild_if_changed()
        set_weights(self.layers, weights)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """The outputs of a prepared batch (floats, the model's input shape): each
        layer's forward in turn. The result may be a layer's workspace array, reused
        by the next call: copy it to keep it (`model(x)` returns a copy)."""
        # activations listed as layers run as those layers
        with model_running(self.layers):
            for step in self._execution_order():
                x = step.forward(x, training=training)
        return x

    def _execution_order(self) -> list:
        """The steps forward and backward run: the layers, reordered where ReLU and
        max pooling commute (`commute`) and fused where two run faster as one
        (`fusion`); the same numbers as the listed layers one after the other, up to
        rounding. Made again when the list changes."""
        if self._ordered != tuple(self.layers):
            self._ordered = tuple(self.layers)
            self._order = fuse(commute(self.layers))
        return self._order

    def _forget_last_batch(self) -> None:
        """Drop what the last forward kept for backward (each layer's, fused step's
        and the loss's `forward_cache`), once no backward will use it (after
        predict, evaluate and fit): views of the caller's x (or fit's batch, the
        whole training set in full-batch training) would stay alive through it.
        What the model keeps is then its workspace: one batch's arrays."""
        steps = [layer for _, layer, _ in all_layers(self.layers)]
        for step in [*steps, *self._execution_order(), getattr(self, "loss", None)]:
            for name in getattr(step, "forward_cache", ()):
                vars(step).pop(name, None)

    def _release_scratch(self) -> None:
        """Drop every layer's workspace arrays, after fit: a model then used only to
        predict would keep the backward pass's scratch (`cnn` preset: 146 -> 50 MB)."""
        for _, layer, _ in all_layers(self.layers):
            layer.workspace.clear()

    def backward(self, doutputs: np.ndarray) -> None:
        """Send dL/doutputs of the last `forward` back through the layers, filling
        every trainable layer's `grads` (views of `flat_grads`)."""
        self._bind()
        self._bound_backward(doutputs)

    def _bound_backward(self, doutputs: np.ndarray) -> None:
        """`backward` as the layers were bound last (`_bind`): a training loop binds
        once an epoch, not every step (the check walks every layer: ~40 us a step)."""
        with model_running(self.layers):
            for layer in self._backward_layers:
                doutputs = layer.backward(doutputs)

    def named_grads(self, trainable_only: bool = False) -> dict[str, np.ndarray]:
        """The gradient of every parameter, by the names of `named_params`."""
        self._bind()
        return {
            prefix + key: layer.grads[key]
            for prefix, layer, trainable in all_layers(self.layers)
            for key in layer.params
            if trainable or not trainable_only
        }

    def _penalty(self) -> float:
        """The trainable layers' L1/L2 terms of the loss (a frozen one's is left out)."""
        self._bind()
        return self._bound_penalty()

    def _bound_penalty(self) -> float:
        """`_penalty` over the layers as bound last (see `_bound_backward`)."""
        return sum(layer.penalty() for layer in self._penalized)

    def _check_x(self, x, name: str = "x") -> np.ndarray:
        """x as a batch the layers take; the first x builds an unbuilt model."""
        x = check_batch(x, name, self.input_shape)
        if not self.built:  # the first x, or `layers` changed since
            self.build(x.shape[1:])
        if not getattr(self, "_warned_unscaled", False):
            self._warned_unscaled = warn_if_unscaled(x, name)
        return x

    def __call__(self, x, training: bool = False) -> np.ndarray:
        """The raw outputs of one batch (a copy), as the last layer gives them.

        `training=True` runs dropout and batch norm as in training (batch norm's
        running statistics are updated)."""
        x = prepare_inputs(self._check_x(x))
        return self.forward(x, training=bool(training)).copy()

    def layer_outputs(self, x) -> list[np.ndarray]:
        """The output of every layer (copies), evaluation mode: for pictures and the
        page. NonFiniteOutputError if any is NaN or infinite."""
        x = prepare_inputs(self._check_x(x))
        outputs = []
        with np.errstate(all="ignore"), model_running(self.layers):  # see check_finite
            for layer in self.layers:
                x = layer.forward(x, training=False)
                outputs.append(x.copy())
        check_finite(*outputs, model=self)
        return outputs

    def summary(self, print_fn=None) -> str:
        """The table of layers, output shapes and parameter counts (`summary_table`),
        also given to `print_fn` if there is one."""
        self._rebuild_if_changed()
        text = summary_table(self)
        if print_fn is not None:
            print_fn(text)
        return text

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.layers!r})"


def _any_trainable(step) -> bool:
    """Has a step (a layer, or a fused `fusion` step of several) anything to learn?"""
    return any(is_trainable(layer) for layer in getattr(step, "layers", (step,)))
