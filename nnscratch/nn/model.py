"""Sequential: a stack of layers with fit / evaluate / predict (the loop that `fit`
runs is in `trainer`)."""

from __future__ import annotations

import numpy as np

from ..errors import NnscratchError, check_float, check_int
from .activations import Sigmoid, Softmax, softmax
from .batches import EpochBatches, input_buffer, prepare_inputs
from .callbacks import CallbackList, History, check_callbacks
from .layer import Layer
from .losses import MeanSquaredError, SoftmaxCrossEntropy, get_loss
from .optimizers import Adam, Optimizer, get_optimizer
from .progress import ProgressBar
from .saving import save_model
from .summary import summary_table
from .trainer import Trainer


class Sequential:
    """Layers applied one after the other: `Sequential([Flatten(), Dense(784, 10)])`.

    Input: (N, *input_shape) uint8 images (scaled by 1/255) or floats used as given.
    The model keeps all parameters in one flat buffer (and their gradients in another)
    so the optimiser updates everything in a few whole-array passes per step; each
    layer's `params[name]` is a view into it.
    """

    def __init__(self, layers: list[Layer], input_shape=None, class_names=None):
        if not layers or not all(isinstance(layer, Layer) for layer in layers):
            raise NnscratchError(
                "Sequential: expected a non-empty list of Layer objects"
            )
        self.layers = list(layers)
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self.class_names = (
            None if class_names is None else [str(c) for c in class_names]
        )
        self.loss = SoftmaxCrossEntropy()
        self.optimizer: Optimizer | None = None  # the last fit's; the next continues
        self._output_for: tuple | None = None  # (input shape, output shape): see below
        self.metadata: dict = {}
        self.stop_training = False
        self._bind_flat_buffers()

    # ----- parameters -------------------------------------------------------------
    def named_params(self) -> dict[str, np.ndarray]:
        """Every parameter array by name '<layer index>.<param>', e.g. '0.W'."""
        return {
            f"{i}.{k}": p
            for i, layer in enumerate(self.layers)
            for k, p in layer.params.items()
        }

    def _bind_flat_buffers(self) -> None:
        """Copy every parameter into one flat buffer and make the layers use views of it.

        Done again only if a layer's arrays were replaced since: arrays a user holds
        (`layer.params["W"]`) stay the model's own.
        """
        if self._flat_buffers_bound():
            return
        entries = [
            (layer, k, p) for layer in self.layers for k, p in layer.params.items()
        ]
        dtype = np.result_type(*[p for _, _, p in entries]) if entries else np.float32
        total = sum(p.size for _, _, p in entries)
        self.flat_params = np.empty(total, dtype=dtype)
        self.flat_grads = np.zeros(total, dtype=dtype)
        offset = 0
        for layer, k, p in entries:
            view = slice(offset, offset + p.size)
            self.flat_params[view] = p.ravel()
            layer.params[k] = self.flat_params[view].reshape(p.shape)
            layer.grads[k] = self.flat_grads[view].reshape(p.shape)
            offset += p.size
        # only layers after the first trainable one need the gradient of their input
        first = next((i for i, layer in enumerate(self.layers) if layer.params), None)
        for i, layer in enumerate(self.layers):
            layer.needs_input_grad = first is not None and i > first
        self._first_trainable = first

    def _flat_buffers_bound(self) -> bool:
        """Whether every parameter and gradient is a view into the flat buffers."""
        if not hasattr(self, "flat_params"):
            return False
        pairs = [
            (p, layer.grads.get(k))
            for layer in self.layers
            for k, p in layer.params.items()
        ]
        return sum(p.size for p, _ in pairs) == self.flat_params.size and all(
            g is not None
            and np.may_share_memory(p, self.flat_params)
            and np.may_share_memory(g, self.flat_grads)
            for p, g in pairs
        )

    def count_params(self) -> int:
        return int(self.flat_params.size)

    def get_weights(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and state array (batch-norm statistics), by name."""
        weights = {name: p.copy() for name, p in self.named_params().items()}
        for i, layer in enumerate(self.layers):
            weights.update({f"{i}.{k}": s.copy() for k, s in layer.state.items()})
        return weights

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        """Copy arrays from `get_weights()` (or a saved file) into the model, in place."""
        for i, layer in enumerate(self.layers):
            for k, target in {**layer.params, **layer.state}.items():
                name = f"{i}.{k}"
                if name not in weights:
                    raise NnscratchError(f"weights: missing array {name!r}")
                if weights[name].shape != target.shape:
                    raise NnscratchError(
                        f"weights: {name!r} has shape {weights[name].shape}, "
                        f"expected {target.shape}"
                    )
                target[...] = weights[name]

    # ----- forward and backward ------------------------------------------------------
    def _check_x(self, x: np.ndarray, name: str = "x") -> np.ndarray:
        """x as an array of examples the layers take; the first x sets input_shape."""
        x = np.asarray(x)
        if x.ndim < 2:
            raise NnscratchError(
                f"{name}: expected a batch (N, ...), got shape {x.shape}"
            )
        if self.input_shape is None:
            self._output_shape(x.shape[1:])  # raises if the layers cannot take it
            self.input_shape = x.shape[1:]
        elif x.shape[1:] != self.input_shape:
            raise NnscratchError(
                f"{name}: expected (N, {', '.join(map(str, self.input_shape))}), "
                f"got {x.shape}"
            )
        # min and max are NaN or infinite if any value is (and need no temporary array)
        floats = np.issubdtype(x.dtype, np.floating) and x.size
        if floats and not (np.isfinite(x.min()) and np.isfinite(x.max())):
            raise NnscratchError(f"{name}: contains NaN or infinite values")
        return x

    def _output_shape(self, input_shape: tuple) -> tuple:
        """The shape of one example's output ((C,) for a classifier): from a forward
        pass of one example of zeros, done once (the model takes one input shape)."""
        if self._output_for is None or self._output_for[0] != input_shape:
            zeros = np.zeros((1, *input_shape), dtype=np.float32)
            self._output_for = (input_shape, self._forward(zeros, False).shape[1:])
        return self._output_for[1]

    def _check_y(self, y: np.ndarray, n: int, name: str = "y") -> np.ndarray:
        """Labels (n,) as int64 in [0, C); or, for the MSE loss, targets (n, C) too."""
        y = np.asarray(y)
        outputs = self._output_shape(self.input_shape)
        if isinstance(self.loss, MeanSquaredError) and y.ndim == 2:
            if y.shape != (n, *outputs) or not np.issubdtype(y.dtype, np.floating):
                raise NnscratchError(
                    f"{name}: expected float targets of shape {(n, *outputs)} like "
                    f"the outputs, got {y.dtype} {y.shape}"
                )
            return y
        if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer):
            raise NnscratchError(
                f"{name}: expected integer labels of shape ({n},), got {y.dtype} {y.shape}"
            )
        classes = outputs[0] if len(outputs) == 1 else 0
        if n and not (y.min() >= 0 and y.max() < classes):
            raise NnscratchError(
                f"{name}: expected class labels 0 to {classes - 1} (the model has "
                f"{classes} outputs), got labels {y.min()} to {y.max()}"
            )
        return y.astype(np.int64, copy=False)

    @staticmethod
    def _count_correct(outputs: np.ndarray, targets: np.ndarray) -> int:
        """Rows whose largest output is at the label (for (N, C) targets: at the
        largest target, so one-hot targets count as their class)."""
        labels = targets if targets.ndim == 1 else targets.argmax(axis=1)
        return int(np.count_nonzero(outputs.argmax(axis=1) == labels))

    def _forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        for layer in self.layers:
            x = layer.forward(x, training=training)
        return x

    def _backward(self, dy: np.ndarray) -> None:
        # layers before the first trainable one have nothing to learn: stop there
        for layer in reversed(self.layers[self._first_trainable :]):
            dy = layer.backward(dy)

    def _outputs_logits(self) -> bool:
        last = self.layers[-1]
        return isinstance(self.loss, SoftmaxCrossEntropy) and not isinstance(
            last, (Softmax, Sigmoid)
        )

    def _batches(self, x: np.ndarray, batch_size: int):
        """Evaluation-mode outputs batch by batch: the last layer's workspace buffer,
        valid until the next batch (copy it to keep it)."""
        buffer = input_buffer(x, batch_size)
        for start in range(0, len(x), batch_size):
            inputs = prepare_inputs(x[start : start + batch_size], buffer)
            yield start, self._forward(inputs, False)

    def predict(self, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
        """Class probabilities (N, C) float32, in batches (evaluation mode): the
        softmax of the logits; a model ending in Softmax or Sigmoid, or trained with
        the MSE loss, gives its outputs as they are."""
        x = self._check_x(x)
        batch_size = check_int("batch_size", batch_size)
        out = np.empty((len(x), *self._output_shape(self.input_shape)), np.float32)
        for start, outputs in self._batches(x, batch_size):
            probs = softmax(outputs) if self._outputs_logits() else outputs
            out[start : start + len(probs)] = probs
        return out

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = 256) -> dict:
        """{"loss", "accuracy"} in evaluation mode. The loss is the one `fit`
        minimises: the mean data loss plus the layers' L1/L2 penalties (as in Keras)."""
        self._check_loss()
        x = self._check_x(x)
        y = self._check_y(y, len(x))
        batch_size = check_int("batch_size", batch_size)
        if len(x) == 0:
            raise NnscratchError("evaluate: x is empty")
        total_loss, correct = 0.0, 0
        for start, outputs in self._batches(x, batch_size):
            targets = y[start : start + len(outputs)]
            total_loss += self.loss.forward(outputs, targets) * len(targets)
            correct += self._count_correct(outputs, targets)
        loss = total_loss / len(x) + self._penalty()
        return {"loss": loss, "accuracy": correct / len(x)}

    def layer_outputs(self, x: np.ndarray) -> list[np.ndarray]:
        """The output of every layer (copies), evaluation mode: for pictures and the page."""
        x = prepare_inputs(self._check_x(x))
        outputs = []
        for layer in self.layers:
            x = layer.forward(x, training=False)
            outputs.append(x.copy())
        return outputs

    # ----- training -----------------------------------------------------------------
    def fit(
        self,
        x: np.ndarray,
        y: np.ndarray,
        epochs: int = 1,
        batch_size: int = 32,
        optimizer: Optimizer | str | None = None,
        loss=None,
        validation_data: tuple | None = None,
        validation_split: float = 0.0,
        shuffle: bool = True,
        seed: int | None = None,
        callbacks: list | None = None,
        verbose: int = 1,
        augment=None,
        lr_schedule=None,
    ) -> History:
        """Train with mini-batch gradient descent; returns the History (a callback
        that recorded every epoch).

        x: (N, *input_shape) uint8 images or floats; y: (N,) integer labels (or, with
        loss="mse", float targets (N, C)). Every epoch uses one shuffled contiguous
        copy of x (uint8 stays uint8 until a batch is taken); a last batch of one
        example joins the one before. `augment(images, rng)` transforms training
        batches only. `lr_schedule(epoch_float)` sets the optimiser's lr before every
        step. `optimizer`: an Optimizer or a name ('adam', 'sgd', ...); without one,
        training continues with the last fit's optimiser (its moments, its step
        count), or a new Adam() the first time. `validation_split` holds out a random
        fraction of x; with shuffle=False the rest keeps its order. `callbacks` run
        after the History and, unless verbose=0, the ProgressBar (a bar on a
        terminal and one line per epoch).
        """
        self._set_loss(loss)
        x, y = self._check_x(x), self._check_y(y, len(x))
        epochs, batch_size = (
            check_int("epochs", epochs),
            check_int("batch_size", batch_size),
        )
        optimizer = self._set_optimizer(optimizer)
        callbacks = check_callbacks(callbacks)
        shuffle_rng, augment_rng = self._seed(seed)
        x, y, validation_data = self._training_and_validation(
            x, y, validation_data, validation_split, shuffle, shuffle_rng
        )
        self._bind_flat_buffers()  # in case a layer's arrays were replaced since
        batches = EpochBatches(x, y, min(batch_size, len(x)), shuffle, shuffle_rng)
        history = History()
        progress = [ProgressBar(epochs, len(x))] if verbose else []
        callbacks = CallbackList([history, *progress, *callbacks], model=self)
        trainer = Trainer(self, optimizer, callbacks, augment, augment_rng, lr_schedule)
        try:
            trainer.run(batches, epochs, validation_data, max(batch_size, 256))
        finally:  # a diverged loss raises mid-epoch: clear its bar before the error
            for bar in progress:
                bar.close()
        return history

    def _seed(self, seed: int | None) -> tuple:
        """Give every layer its generator; returns those for shuffling and augmenting.

        Independent streams: changing one (e.g. turning augmentation on) leaves the
        others' draws, and so the shuffling and dropout masks, as they were.
        """
        if seed is not None:
            check_int("seed", seed, 0)
        shuffle_rng, augment_rng, layer_rng = np.random.default_rng(seed).spawn(3)
        for layer, child in zip(self.layers, layer_rng.spawn(len(self.layers))):
            layer.set_rng(child)
        return shuffle_rng, augment_rng

    def _set_loss(self, loss) -> None:
        """Use `loss` (a loss object or name) if given."""
        if loss is not None:
            self.loss = get_loss(loss) if isinstance(loss, str) else loss
        self._check_loss()

    def _check_loss(self) -> None:
        """Refuse a softmax before the fused softmax cross-entropy, which would apply
        softmax twice."""
        if isinstance(self.loss, SoftmaxCrossEntropy) and isinstance(
            self.layers[-1], Softmax
        ):
            raise NnscratchError(
                "SoftmaxCrossEntropy takes logits: remove the final Softmax layer"
            )

    def _set_optimizer(self, optimizer) -> Optimizer:
        """The optimiser to train with (see `fit`), kept for the next fit."""
        if isinstance(optimizer, str):
            optimizer = get_optimizer(optimizer)
        elif optimizer is None:
            optimizer = self.optimizer if self.optimizer is not None else Adam()
        elif not isinstance(optimizer, Optimizer):
            raise NnscratchError(
                f"optimizer: expected an Optimizer or its name, got {optimizer!r}"
            )
        self.optimizer = optimizer
        return optimizer

    def _training_and_validation(self, x, y, validation_data, split, shuffle, rng):
        """(x, y, validation_data): the given validation data checked, or a random
        `split` fraction of (x, y) held out, or None."""
        if validation_data is None and split:
            x, y, validation_data = self._split(x, y, split, shuffle, rng)
        if validation_data is not None:
            if (
                not isinstance(validation_data, (tuple, list))
                or len(validation_data) != 2
            ):
                raise NnscratchError("validation_data: expected a pair (x, y)")
            xv = self._check_x(validation_data[0], "validation x")
            yv = self._check_y(validation_data[1], len(xv), "validation y")
            validation_data = (xv, yv)
        if len(x) == 0:
            raise NnscratchError("fit: no training examples")
        return x, y, validation_data

    @staticmethod
    def _split(x, y, fraction, shuffle, rng):
        """A random `fraction` of (x, y) held out; the rest in its order if not
        `shuffle` (else in a random one, as training shuffles it anyway)."""
        check_float("validation_split", fraction, 0, 1, open_low=True, open_high=True)
        order = rng.permutation(len(x))
        n_val = max(1, round(len(x) * fraction))
        val, train = order[:n_val], order[n_val:]
        if not shuffle:
            val, train = np.sort(val), np.sort(train)
        return x[train], y[train], (x[val], y[val])

    def _penalty(self) -> float:
        return sum(layer.penalty() for layer in self.layers)

    # ----- description and files -----------------------------------------------------------
    def summary(self, print_fn=None) -> str:
        """The table of layers, output shapes and parameter counts (`summary_table`),
        also given to `print_fn` if there is one."""
        text = summary_table(self)
        if print_fn is not None:
            print_fn(text)
        return text

    def save(self, path) -> None:
        """Write weights and architecture to one .npz, atomically (see `serialization`)."""
        save_model(self, path)

    def __repr__(self) -> str:
        return f"Sequential({self.layers!r})"
