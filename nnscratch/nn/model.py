"""Sequential: a stack of layers with fit / evaluate / predict (the loop that `fit`
runs is in `trainer`, the parameter buffers in `parameters`)."""

from __future__ import annotations

import numpy as np

from ..errors import NnscratchError, check_finite, check_int
from .activations import Sigmoid, Softmax
from .backup import resumed_seed
from .batches import EpochBatches, input_buffer, prepare_inputs
from .callbacks import CallbackList, History, check_callbacks
from .inputs import (
    check_augment,
    check_batch_size,
    check_input_shape,
    example_weights,
    hold_out,
    validation_parts,
)
from .losses import BinaryCrossEntropy, Loss, SoftmaxCrossEntropy, get_loss
from .metrics import get_metrics
from .network import Network
from .optimizers import Adam, Optimizer, get_optimizer
from .parameters import keep_weights, restored_if_failed
from .progress import ProgressBar, check_verbose, results_line
from .saving import save_model
from .schedules import checked_schedule
from .seeding import new_seed
from .trainer import Trainer, seed_layers
from .weights import load_weights, save_weights


class Sequential(Network):
    """Layers applied one after the other: `Sequential([Flatten(), Dense(10)],
    input_shape=(28, 28))`.

    Input: (N, *input_shape) uint8 images (scaled by 1/255) or floats used as given.
    Layers given no input size are built on first use from the model's input_shape
    (or the first batch's shape). `seed` draws every layer's initial weights from one
    seed and seeds every `fit` that is given none. `loss` says what `predict`
    returns; without one (until `compile` or `fit`), the raw outputs. Layers can
    also be added one at a time, as in Keras: `model = Sequential(input_shape=(28,
    28))`, then `model.add(Flatten())`, `model.add(Dense(10))` (`pop` removes the
    last).
    """

    def __init__(
        self, layers=None, input_shape=None, class_names=None, *, seed=None, loss=None
    ):
        given = layers if isinstance(layers, (list, tuple)) else []
        with restored_if_failed(given):  # activations moved out, weights reseeded
            super().__init__(layers, class_names=class_names, seed=seed)
            self.loss: Loss | None = None if loss is None else get_loss(loss)
            self.optimizer: Optimizer | None = None  # the last fit's, continued
            self._optimizer_key = object()  # what its optimiser is claimed for
            self.metrics = None  # the last compile's or fit's metric names or objects
            self.metadata: dict = {}
            self.stop_training = False
            if input_shape is not None and self.layers:
                self.build(input_shape)
            elif input_shape is not None:  # built once layers are added (`add`)
                self.input_shape = check_input_shape(input_shape)

    # ----- forward and backward ------------------------------------------------------
    def _check_y(self, y, n: int, name: str = "y") -> np.ndarray:
        """Targets for n examples, as the loss takes them (labels, probabilities...)."""
        return self.loss.check_targets(y, (n, *self.output_shape), name)

    def _batches(self, x: np.ndarray, batch_size: int):
        """Evaluation-mode outputs batch by batch: the last layer's workspace buffer,
        valid until the next batch (copy it to keep it)."""
        buffer = input_buffer(x, batch_size)
        try:
            for start in range(0, len(x), batch_size):
                inputs = prepare_inputs(x[start : start + batch_size], buffer)
                yield start, self.forward(inputs, False)
        finally:  # the layers' last inputs are views of x: not kept alive
            self._forget_last_batch()

    def predict(
        self, x, batch_size: int = 256, probabilities: bool = True, verbose=0
    ) -> np.ndarray:
        """The model's answers for x, (N, *output_shape) float32, in batches.

        With `probabilities` and a loss that defines them (cross-entropy: softmax of
        the logits; binary cross-entropy: sigmoid), the probabilities; a model ending
        in Softmax or Sigmoid, a regression loss, no loss, or probabilities=False:
        the outputs as they are. NonFiniteOutputError if any is NaN or infinite.
        The layers keep their arrays for one batch of `batch_size` for the next
        call (docs/how-it-works.md), nothing of x. `verbose` (Keras') is checked
        but prints nothing at any level: predicting has no progress worth showing."""
        check_verbose(verbose, "0, 1 or 2 (all silent here)")
        x = self._check_x(x)
        batch_size = check_batch_size(batch_size, 256)
        answers = self._answers(probabilities)
        out = np.empty((len(x), *self.output_shape), np.float32)
        with np.errstate(all="ignore"):  # an overflow is reported once, below
            for start, outputs in self._batches(x, batch_size):
                out[start : start + len(outputs)] = answers(outputs)
        check_finite(out, model=self)
        return out

    def _answers(self, probabilities: bool = True):
        """outputs -> what `predict` returns for them (see there)."""
        convert = probabilities and self.loss is not None
        convert = convert and not isinstance(self.layers[-1], (Softmax, Sigmoid))
        return self.loss.predictions if convert else lambda outputs: outputs

    def evaluate(
        self, x, y, batch_size: int = 256, sample_weight=None, verbose=0,
        return_dict: bool = True,
    ):  # fmt: skip
        """{"loss", and each metric} in evaluation mode. The loss is the one `fit`
        minimises (weighted by sample_weight if given) plus the trainable layers'
        L1/L2 penalties, as in Keras; metrics are unweighted.

        verbose: 0 silent, 1 or 2 (or "auto") print the results on one line.
        return_dict=False gives Keras' default form instead: [loss, *metrics] in
        that order, or the loss alone (a float) when there are no metrics."""
        verbose = check_verbose(verbose, "0 (silent), 1 or 2 (print the results)")
        results, _ = self._score(x, y, batch_size, sample_weight)
        if verbose:
            print(results_line(results), flush=True)
        if return_dict:
            return results
        return list(results.values()) if len(results) > 1 else results["loss"]

    def evaluate_and_predict(
        self, x, y, batch_size: int = 256
    ) -> tuple[dict, np.ndarray]:
        """`evaluate(x, y)` and `predict(x)` from one pass of x through the network
        instead of two: the same results dict and the same (N, *output_shape)
        float32 answers (a test set's scores and its confusion matrix, say)."""
        return self._score(x, y, batch_size, None, keep_answers=True)

    def _score(self, x, y, batch_size, sample_weight, keep_answers=False):
        """(evaluate's results, predict's answers or None), from one pass over x."""
        self._ensure_loss()
        x = self._check_x(x)
        y = self._check_y(y, len(x))
        weights = example_weights(sample_weight, None, y, len(x), self._float_dtype())
        batch_size = check_batch_size(batch_size, 256)
        if len(x) == 0:
            raise NnscratchError("evaluate: x is empty")
        metrics = get_metrics(self.metrics, self.loss, y)
        total_loss, totals = 0.0, [0.0] * len(metrics)
        kept, answers = None, self._answers()
        if keep_answers:
            kept = np.empty((len(x), *self.output_shape), np.float32)
        with np.errstate(all="ignore"):  # an overflow is reported once, below
            for start, outputs in self._batches(x, batch_size):
                check_finite(outputs, model=self)
                part = slice(start, start + len(outputs))
                w = None if weights is None else weights[part]
                total_loss += self.loss.forward(outputs, y[part], w) * len(outputs)
                for j, metric in enumerate(metrics):
                    totals[j] += metric.batch_total(outputs, y[part], self.loss)
                if kept is not None:  # the loss leaves the outputs as they were
                    kept[part] = answers(outputs)
        results = {"loss": total_loss / len(x) + self._penalty()}
        results.update({m.name: t / len(x) for m, t in zip(metrics, totals)})
        return results, kept  # finite outputs have finite answers

    # ----- training -----------------------------------------------------------------
    def compile(self, optimizer=None, loss=None, metrics=None) -> None:
        """Choose what `fit` trains with (Keras' compile): an optimiser (object or
        name), a loss (object or name) and metrics (names or Metric objects)."""
        loss = self.loss if loss is None else get_loss(loss)
        self._check_loss(loss)  # everything checked before anything changes
        if metrics is not None:  # unknown names said now, as Keras does
            get_metrics(metrics, loss, None)
        if optimizer is not None:  # last: a refused compile keeps a trained one
            self._set_optimizer(optimizer)
        self.loss, self.metrics = loss, metrics

    def fit(
        self, x, y, epochs: int = 1, batch_size: int = 32, optimizer=None, loss=None,
        validation_data=None, validation_split: float = 0.0, shuffle: bool = True,
        seed: int | None = None, callbacks=None, verbose: int = 1, augment=None,
        lr_schedule=None, sample_weight=None, class_weight=None, metrics=None,
        initial_epoch: int = 0, validation_freq: int = 1,
    ) -> History:  # fmt: skip
        """Train with mini-batch gradient descent; returns the History (a callback
        that recorded every epoch).

        x: (N, *input_shape) uint8 images or floats; y: what the loss takes (class
        labels (N,) or (N, 1) for cross-entropy, also probabilities (N, C); float
        targets for "mse"/"mae"; 0/1 (N,) or (N, K) for "binary_cross_entropy").
        `batch_size` None is 32, as in Keras (and 256 for evaluate and predict).
        Every epoch takes its batches in a new random order, straight from x
        (uint8 stays uint8 until a batch is taken); a last batch of one example
        joins the one before (unless batch_size is 1). `sample_weight` (N,) and
        `class_weight` {class: weight} weigh each example's loss (Keras' semantics:
        class_weight the training examples only, not the validation ones).
        `epochs`: the epoch to end with, starting from `initial_epoch` (0-based; as
        in Keras, `fit(epochs=10, initial_epoch=5)` after a 5-epoch fit trains 5 more,
        numbered 6 to 10, and `lr_schedule` goes on from epoch 5; epochs <=
        initial_epoch trains nothing).
        `metrics`: names or Metric objects (default: accuracy when the targets are
        classes, none for regression). `augment(images, rng)` transforms training
        batches only. `lr_schedule(epoch_float)` sets the optimiser's lr before
        every step (a rate that is not a number >= 0 is an error). `optimizer`: an
        Optimizer or a name; without one, training continues with the last one (its
        moments and step count), or a new Adam(). An optimiser that has trained
        another model is refused: its state is that model's (Keras' rule).
        `seed` (default: drawn from the model's seed or `set_seed`, if either was
        given, else from the OS) fixes shuffling, the validation split, dropout and
        augmentation; the initial weights come from the layers (their `rng`), the
        model's `seed` or `set_seed`. `callbacks` run after the History and, unless
        verbose=0, the ProgressBar (verbose=1: a bar on a terminal and one line per
        epoch; 2: the lines only, as in Keras); a `BackupAndRestore` among them
        continues an interrupted fit from its last checkpoint. `verbose="auto"`
        is 1, as in Keras. `validation_freq`: only 1 (validate after every epoch);
        Keras' other values are refused.
        """
        if loss is not None:
            self.loss = get_loss(loss)
        self._ensure_loss()
        if metrics is not None:
            self.metrics = metrics
        x = self._check_x(x)
        y = self._check_y(y, len(x))
        check_augment(augment, x)
        # checked now; class_weight weighs the training examples only (as in Keras),
        # so it is applied after validation_split has held some out
        sample_weight = example_weights(sample_weight, None, y, len(x), np.float64)
        epochs = check_int("epochs", epochs, 0)
        batch_size = check_batch_size(batch_size, 32)
        initial_epoch = check_int("initial_epoch", initial_epoch, 0)
        verbose = check_verbose(
            verbose,
            "0 (silent), 1 (a progress bar and a line per epoch) or 2 (a line per "
            "epoch)",
        )
        if not (isinstance(validation_freq, int) and validation_freq == 1):
            raise NnscratchError(
                f"validation_freq: fit validates after every epoch, only 1 is "
                f"accepted, got {validation_freq!r}"
            )
        optimizer = self._set_optimizer(optimizer)
        lr_schedule = checked_schedule(lr_schedule)
        callbacks = check_callbacks(callbacks)
        seed = self._fit_seed(seed, callbacks)
        shuffle_rng, augment_rng = seed_layers(seed, self.layers)
        if validation_data is None and validation_split:
            x, y, sample_weight, validation_data = hold_out(
                x, y, sample_weight, validation_split, shuffle, shuffle_rng
            )
        if validation_data is not None:
            validation_data = self._check_validation(validation_data)
        weights = example_weights(
            sample_weight, class_weight, y, len(x), self._float_dtype()
        )
        if len(x) == 0:
            raise NnscratchError("fit: no training examples")
        batches = EpochBatches(
            x, y, min(batch_size, len(x)), shuffle, shuffle_rng, weights
        )
        history = History(
            {"verbose": verbose, "epochs": epochs, "steps": batches.steps}
        )
        progress = [ProgressBar(epochs, len(x), bar=verbose == 1)] if verbose else []
        callbacks = CallbackList(
            [history, *progress, *callbacks], model=self, params=history.params
        )
        metrics = get_metrics(self.metrics, self.loss, y)
        trainer = Trainer(
            self, optimizer, callbacks, metrics, augment, augment_rng, lr_schedule, seed
        )
        keep_weights(self.layers)  # trained: another model's seed leaves them be
        try:
            trainer.run(
                batches, epochs, validation_data, max(batch_size, 256), initial_epoch
            )
        finally:  # a diverged loss raises mid-epoch: clear its bar before the error
            for bar in progress:
                bar.close()
            self._forget_last_batch()  # the batch buffers (full batch: all of x)
            self._release_scratch()
            optimizer.release_scratch()
        return history

    def _fit_seed(self, seed, callbacks) -> int:
        """The seed of a fit: `seed` if given; else drawn from the model's seed or
        `set_seed`, or from the OS. A fit given no seed that a BackupAndRestore
        continues takes the seed of the fit it continues, so that it holds out the
        same validation examples."""
        if seed is not None:
            return check_int("seed", seed, 0)
        # drawn even when a checkpoint gives the seed: the model's and set_seed's
        # streams then advance as in the fit never stopped
        if self._seeds is not None:
            drawn = np.random.default_rng(self._seeds.spawn(1)[0]).integers(2**63)
        else:
            drawn = new_seed()
            if drawn is None:
                drawn = np.random.default_rng().integers(2**63)
        resumed = resumed_seed(callbacks)
        return int(drawn) if resumed is None else resumed

    def train_on_batch(self, x, y, sample_weight=None, class_weight=None) -> dict:
        """One optimiser step on one batch; returns its {"loss", metrics...} as
        computed in that step (before the update), like `fit` reports batches."""
        self._ensure_loss()
        x = self._check_x(x)
        if len(x) == 0:  # the loss is a mean over the batch
            raise NnscratchError("train_on_batch: x is empty")
        y = self._check_y(y, len(x))
        weights = example_weights(
            sample_weight, class_weight, y, len(x), self._float_dtype()
        )
        optimizer = self._set_optimizer(None)
        trainer = Trainer(
            self, optimizer, CallbackList(), get_metrics(self.metrics, self.loss, y)
        )
        keep_weights(self.layers)
        return trainer.step_logs(prepare_inputs(x), y, weights)

    def test_on_batch(self, x, y, sample_weight=None) -> dict:
        """{"loss", metrics...} of one batch in evaluation mode (no update)."""
        return self.evaluate(
            x, y, batch_size=max(len(x), 1), sample_weight=sample_weight
        )

    def _ensure_loss(self) -> None:
        """Softmax cross-entropy unless a loss was chosen."""
        if self.loss is None:
            self.loss = SoftmaxCrossEntropy()
        self._check_loss(self.loss)

    def _check_loss(self, loss) -> None:
        """Refuse a softmax before the fused softmax cross-entropy, or a sigmoid
        before the fused binary cross-entropy: either would be applied twice (a
        Keras model's usual Dense(1), Sigmoid() would not learn)."""
        if loss is not None and not isinstance(loss, Loss):
            raise NnscratchError(f"loss: expected a Loss, got {loss!r}")
        fused = {SoftmaxCrossEntropy: Softmax, BinaryCrossEntropy: Sigmoid}
        last = self.layers[-1] if self.layers else None  # none yet: `add` comes later
        for loss_class, last_class in fused.items():
            if isinstance(loss, loss_class) and isinstance(last, last_class):
                name = last_class.__name__
                raise NnscratchError(
                    f"{loss_class.__name__} takes logits: remove the final {name} "
                    f"layer (Keras' activation='{name.lower()}'); predict still "
                    "returns probabilities"
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
        optimizer.claim(self._optimizer_key)  # not one that trained another model
        self.optimizer = optimizer
        return optimizer

    def _float_dtype(self) -> np.dtype:
        """The float type of the (built) model's parameters, float32 unless they are
        wider: what example weights are kept as, so that they weigh the losses of a
        float64 model exactly and leave a float32 model's losses float32."""
        dtypes = [p.dtype for p in self.named_params().values()]
        return np.result_type(np.float32, *dtypes)

    def _check_validation(self, validation_data) -> tuple:
        """(x, y, weights or None) from validation_data, checked like x and y."""
        xv, yv, wv = validation_parts(validation_data)
        xv = self._check_x(xv, "validation x")
        yv = self._check_y(yv, len(xv), "validation y")
        return xv, yv, example_weights(wv, None, yv, len(xv), self._float_dtype())

    # ----- description and files -----------------------------------------------------------
    def save(self, path, include_optimizer: bool = False) -> None:
        """Write weights and architecture to one .npz, atomically (see `saving`);
        a name not ending in .npz ("model.h5", "model.keras") is refused. With
        `include_optimizer`, the optimiser's state too, so that `fit` on the
        loaded model continues where this one stopped."""
        if not self.layers:  # a file that no loader could make a model of
            raise NnscratchError("save: the model has no layers")
        save_model(self, path, include_optimizer)

    def save_weights(self, path) -> None:
        """Write the weights alone (and batch-norm statistics) to one .npz (the
        name must end in .npz), atomically, as Keras' save_weights; `load_weights` reads them back."""
        self._require_built("save_weights")
        save_weights(self, path)

    def load_weights(self, path) -> None:
        """Read weights saved by `save_weights` (or a whole model file by `save`)
        into this built model of the same layers, as Keras' load_weights."""
        self._require_built("load_weights")
        load_weights(self, path)
