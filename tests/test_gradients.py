"""The options that change a layer's math, the fused steps a network runs and the
losses on outputs of any shape, against central differences in float64
(tests/gradcheck.py): dx and every parameter's gradient, penalties included. The
layers' own test files check their main cases; these tables add the rest, so that no
backward is only ever compared with another backward."""

import numpy as np
import pytest
from gradcheck import ATOL, RTOL, check_layer_grads, check_model_grads, numerical_grad
from numpy.testing import assert_allclose

from nnscratch import (
    AvgPool2D,
    BatchNorm,
    BinaryCrossEntropy,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    LeakyReLU,
    MaxPool2D,
    MeanAbsoluteError,
    MeanSquaredError,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)
from nnscratch.nn import im2col

F64 = {"dtype": np.float64}
W64 = {"rng": 0, **F64}  # float64 weights drawn from seed 0
PENALTIES = {"l1": 0.02, "l2": 0.03}


def inputs(shape: tuple, kind: str, rng) -> np.ndarray:
    """float64 inputs: "normal"; "away" from 0 (|x| >= 0.1, out of reach of ReLU's
    kink); "distinct" values 0.1 apart (no max-pooling ties within eps)."""
    if kind == "distinct":
        return rng.permutation(np.prod(shape)).reshape(shape) / 10.0 - 1.0
    x = rng.standard_normal(shape)
    return x + 0.1 * np.sign(x) if kind == "away" else x


def biases_away_from_zero(layers, rng) -> None:
    """Biases (and batch norm's beta) still 0 drawn around -1: a missing one shows,
    and some of a ReLU's inputs are negative, so its mask is checked too."""
    for layer in layers:
        for name in ("b", "beta"):
            if name in layer.params and not layer.params[name].any():
                shape = layer.params[name].shape
                layer.params[name][:] = rng.standard_normal(shape) - 1.0


def norm(features: int, eps: float = 1e-5, trainable: bool = True) -> BatchNorm:
    """A float64 BatchNorm with gamma, beta and running statistics away from their
    initial 1, 0, 0, 1 (which would hide a term that multiplies by them)."""
    rng = np.random.default_rng(4)
    layer = BatchNorm(features, eps=eps, **F64)
    layer.params["gamma"][:] = rng.uniform(0.5, 2.0, features)
    layer.params["beta"][:] = rng.standard_normal(features)
    layer.state["running_mean"][:] = rng.standard_normal(features)
    layer.state["running_var"][:] = rng.uniform(0.5, 2.0, features)
    layer.trainable = trainable
    return layer


def case(name: str, make, shape: tuple, kind: str = "normal", training: bool = True):
    """A row of LAYER_CASES: make() gives the layer, run on inputs of `shape`."""
    return pytest.param(make, shape, kind, training, id=name)


LAYER_CASES = [
    # Conv2D: padding by name, 1x1 and non-square kernels, Keras' order (the input
    # channels from x), penalties, activation=, inference (columns made again)
    case("conv same 3x3", lambda: Conv2D(2, 3, 3, padding="same", **W64), (3, 2, 5, 6)),
    case(
        "conv same 3x5",
        lambda: Conv2D(2, 2, (3, 5), padding="same", **W64),
        (2, 2, 4, 6),
    ),
    case(
        "conv valid stride 2",
        lambda: Conv2D(2, 3, 3, 2, padding="valid", **W64),
        (2, 2, 7, 6),
    ),
    case("conv 1x1", lambda: Conv2D(3, 4, 1, **W64), (2, 3, 3, 4)),
    case(
        "conv 1x3 stride (2, 1)",
        lambda: Conv2D(2, 2, (1, 3), (2, 1), (0, 1), **W64),
        (2, 2, 5, 4),
    ),
    case("conv keras order", lambda: Conv2D(3, (2, 3), padding=1, **W64), (2, 2, 4, 5)),
    case(
        "conv penalties",
        lambda: Conv2D(2, 3, (2, 3), (2, 1), (1, 2), **PENALTIES, **W64),
        (2, 2, 5, 4),
    ),
    case(
        "conv relu",
        lambda: Conv2D(2, 3, 3, padding=1, activation="relu", **W64),
        (2, 2, 4, 5),
    ),
    case(
        "conv inference",
        lambda: Conv2D(2, 3, 3, 2, 1, **W64),
        (2, 2, 5, 5),
        training=False,
    ),
    # Dense: penalties (with dx and b); built from x, with activation=; one unit
    case("dense penalties", lambda: Dense(5, 4, **PENALTIES, **W64), (3, 5)),
    case("dense from x, relu", lambda: Dense(4, activation="relu", **W64), (3, 6)),
    case("dense 1 to 1", lambda: Dense(1, 1, **W64), (4, 1)),
    # activations on images, and other slopes
    case("relu on images", ReLU, (2, 3, 4, 5), "away"),
    case("leaky_relu 0.3 on images", lambda: LeakyReLU(0.3), (2, 3, 4, 5), "away"),
    case("leaky_relu 0", lambda: LeakyReLU(0.0), (3, 5), "away"),
    case("leaky_relu 2", lambda: LeakyReLU(2.0), (3, 5), "away"),
    case("sigmoid on images", Sigmoid, (2, 3, 4, 5)),
    case("tanh on images", Tanh, (2, 3, 4, 5)),
    case("softmax, wide rows", Softmax, (5, 9)),
    # pooling: overlapping windows, strides other than the pool's size, floor mode,
    # a window the size of the image (global pooling)
    case("max 3x3 stride 1", lambda: MaxPool2D(3, 1), (2, 2, 5, 6), "distinct"),
    case(
        "max 2x2 stride (1, 2)", lambda: MaxPool2D(2, (1, 2)), (2, 2, 5, 7), "distinct"
    ),
    case("max 3x3 stride 2, floor", lambda: MaxPool2D(3, 2), (2, 2, 8, 6), "distinct"),
    case("max global", lambda: MaxPool2D((4, 5)), (3, 2, 4, 5), "distinct"),
    case("avg 3x3 stride 1", lambda: AvgPool2D(3, 1), (2, 2, 5, 6)),
    case("avg 3x2 stride 2, floor", lambda: AvgPool2D((3, 2), 2), (2, 2, 8, 7)),
    case("avg global", lambda: AvgPool2D((4, 5)), (3, 2, 4, 5)),
    case("global avg, non-square", GlobalAvgPool2D, (3, 2, 3, 5)),
    # BatchNorm: a large eps (a backward that left it out would be off by ~10%), in
    # training (batch statistics), inference (running ones) and frozen (running ones
    # while training, as in Keras); built from x
    case("batchnorm eps 0.5", lambda: norm(3, eps=0.5), (5, 3)),
    case("batchnorm eps 0.5 on images", lambda: norm(3, eps=0.5), (3, 3, 2, 4)),
    case(
        "batchnorm eps 0.5, inference",
        lambda: norm(3, eps=0.5),
        (3, 3, 2, 4),
        training=False,
    ),
    case("batchnorm frozen", lambda: norm(3, trainable=False), (3, 3, 2, 4)),
    case("batchnorm from x", lambda: BatchNorm(**F64), (4, 2, 3, 3)),
    # Dropout: nothing dropped at rate 0, nor in inference
    case("dropout rate 0", lambda: Dropout(0.0), (3, 5)),
    case("dropout inference", lambda: Dropout(0.5), (2, 3, 4, 5), training=False),
]


@pytest.mark.parametrize("make, shape, kind, training", LAYER_CASES)
def test_layer_gradients(make, shape, kind, training):
    rng = np.random.default_rng(1)  # not check_layer_grads' seed 0: x is not its dy
    layer = make()
    x = inputs(shape, kind, rng)
    layer.forward(x, training=training)  # built, if it takes its sizes from x
    biases_away_from_zero([layer], rng)
    check_layer_grads(layer, x, training=training)


def conv_model(*middle, penalties: bool = False) -> list:
    """A conv from 2 to 3 channels, then `middle`, then Flatten and a Dense to 3
    classes: `middle`'s input gradient is checked through the first conv's weights."""
    return [
        Conv2D(2, 3, 3, padding=1, rng=1, **F64),
        *middle,
        Flatten(),
        Dense(3, rng=2, **(PENALTIES if penalties else {}), **F64),
    ]


def conv(penalties: bool = False, bias: float = 0.0) -> Conv2D:
    """A second conv, 3 to 3 channels; a `bias` low enough makes some of the windows
    a max pooling takes of its output all negative, for a ReLU after it."""
    layer = Conv2D(3, 3, 3, padding=1, rng=3, **(PENALTIES if penalties else {}), **F64)
    layer.params["b"][:] = bias
    return layer


def dense_model(*middle) -> list:
    return [Dense(6, rng=1, **F64), *middle, Dense(3, rng=3, **F64)]


def fused(name: str, layers, step: str, training: bool = True):
    """A row of MODEL_CASES: layers() give a model that must run `step`."""
    return pytest.param(layers, step, training, id=name)


MODEL_CASES = [
    fused(
        "dense-relu", lambda: dense_model(Dense(5, rng=2, **F64), ReLU()), "DenseReLU"
    ),
    fused(
        "dense activation=relu, penalties",
        lambda: dense_model(Dense(5, activation="relu", **PENALTIES, rng=2, **F64)),
        "DenseReLU",
    ),
    fused(
        "pool-relu, overlapping",
        lambda: conv_model(MaxPool2D(3, 2), ReLU()),
        "PoolReLU",
    ),
    fused("conv-pool", lambda: conv_model(conv(), MaxPool2D(2)), "ConvPool"),
    fused(
        "conv-relu-pool, 2x3, penalties",
        lambda: conv_model(
            conv(True, bias=-3), ReLU(), MaxPool2D((2, 3)), penalties=True
        ),
        "ConvPool",
    ),
    fused(
        "conv-pool-relu, inference",
        lambda: conv_model(conv(bias=-2), MaxPool2D(2), ReLU()),
        "ConvPool",
        training=False,
    ),
    fused("norm-pool", lambda: conv_model(norm(3), MaxPool2D(2)), "NormPool"),
    fused(
        "norm-pool-relu", lambda: conv_model(norm(3), MaxPool2D(2), ReLU()), "NormPool"
    ),
    fused(
        "norm-relu-pool, inference",
        lambda: conv_model(norm(3), ReLU(), MaxPool2D(2)),
        "NormPool",
        training=False,
    ),
    fused(
        "norm-pool, frozen",
        lambda: conv_model(norm(3, trainable=False), MaxPool2D(2)),
        "NormPool",
    ),
]


def step_output(model, x, step, training: bool) -> np.ndarray:
    """What the network's `step` gives for x (a copy)."""
    for s in model._execution_order():
        x = s.forward(x, training=training)
        if s is step:
            return x.copy()
    raise AssertionError(f"the network does not run {step}")


@pytest.mark.parametrize("chunks", [None, 1], ids=["whole batch", "chunks of 1"])
@pytest.mark.parametrize("layers, step, training", MODEL_CASES)
def test_fused_step_gradients(layers, step, training, chunks, monkeypatch):
    """The network runs the step fused (float64 too, not the layers one by one), and
    the gradient of its loss, penalties included, checks out; convs work through the
    batch whole or one image at a time."""
    if chunks is not None:
        monkeypatch.setattr(im2col, "CHUNK_BYTES", chunks)
    rng = np.random.default_rng(5)
    first = layers()
    input_shape = (2, 7, 7) if isinstance(first[0], Conv2D) else (4,)
    model = Sequential(first, input_shape=input_shape, loss="cross_entropy")
    biases_away_from_zero(model.layers, rng)
    x = inputs((3, *input_shape), "normal", rng)
    fused = next(s for s in model._execution_order() if type(s).__name__ == step)
    if any(type(layer) is ReLU for layer in fused.layers):  # ReLU's mask is not all 1
        y = step_output(model, x, fused, training)
        assert 0 < np.count_nonzero(y) < y.size
    check_model_grads(model, x, np.array([0, 2, 1]), training=training)
    assert getattr(fused, "_fused", True)  # fused, not run layer by layer


@pytest.mark.parametrize(
    "loss",
    [MeanSquaredError(), MeanAbsoluteError(), BinaryCrossEntropy(label_smoothing=0.1)],
    ids=repr,
)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shape", [(4,), (4, 2, 3, 3)])
def test_loss_gradients_for_outputs_of_other_shapes(loss, weighted, shape):
    """One output per example (N,), or a map per example (N, C, H, W): the mean over
    an example's outputs, then over the batch. Targets in [0, 1] (binary
    cross-entropy's); MAE's kink at y = t is out of the differences' reach."""
    rng = np.random.default_rng(6)
    outputs, targets = rng.standard_normal(shape), rng.random(shape)
    sample_weight = rng.uniform(0, 2, 4) if weighted else None

    def f():
        return loss.forward(outputs, targets, sample_weight=sample_weight)

    f()
    analytic = loss.backward().copy()
    assert_allclose(analytic, numerical_grad(f, outputs), rtol=RTOL, atol=ATOL)
