"""The fast paths against the plain ones, on small random networks at edge shapes.

Each seed draws a network from the presets' building blocks (Conv2D of any kernel,
stride and padding; max or average pooling of any window and stride; BatchNorm;
ReLU or LeakyReLU before or after the pooling; Dropout; Flatten or global pooling;
Dense, with ReLU) and a batch: 1, 2, 3 or an odd number of images of 1 to 3
channels, whose maps may shrink to 1x1, float32, float64 or uint8, in C order,
Fortran order, channel-major or with negative strides; and im2col chunks and
weight-gradient blocks that do not divide the batch. Then:

- the network's steps (ReLU and max pooling swapped, layers fused: `nn.commute`,
  `nn.fusion`) give the listed layers' outputs and gradients, training and not;
- the compiled kernels give their NumPy twins' numbers;
- predicting one image, or in batches that leave one image last, or after other
  batch sizes (workspace buffers reused across shapes), or with a copy of the model,
  gives what a fresh model gives the whole batch.

A failure names its seed; `draw(seed)` rebuilds the case. Workspace arrays start as
NaN (`garbage_scratch`), so scratch read before it is written shows.
"""

import copy

import numpy as np
import pytest
from numpy.testing import assert_allclose

import nnscratch as nn
from nnscratch.nn import conv, im2col
from nnscratch.nn.batches import prepare_inputs
from nnscratch.nn.kernels import using

pytestmark = pytest.mark.usefixtures("garbage_scratch")

SEEDS = range(100)
LAYOUTS = {
    "C order": np.ascontiguousarray,
    "Fortran order": np.asfortranarray,
    "channel-major": lambda a: np.ascontiguousarray(a.swapaxes(0, 1)).swapaxes(0, 1),
    "negative strides": lambda a: np.ascontiguousarray(a[::-1, :, ::-1])[::-1, :, ::-1],
}


def layer(kind, *args, **kwargs) -> tuple:
    """A layer to make: (class, args, kwargs)."""
    return kind, args, kwargs


def draw_layers(rng, n: int, c: int, h: int, w: int) -> list[tuple]:
    """Layers (see `layer`) for images (n, c, h, w): perhaps some on the raw images,
    then conv blocks while the maps allow, then the dense head."""
    layers = []
    start = rng.integers(6)
    if start == 0:
        layers += [layer(nn.BatchNorm)]
    elif start == 1:
        layers += [layer(nn.BatchNorm), layer(nn.MaxPool2D, 2), layer(nn.ReLU)]
        h, w = h // 2, w // 2
    for _ in range(rng.integers(1, 3)):
        (kh, kw), stride, pad = (
            rng.integers(1, 4, 2),
            rng.integers(1, 4),
            rng.integers(2),
        )
        ho, wo = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
        if min(ho, wo) < 1:
            break
        h, w, out = ho, wo, int(rng.integers(1, 4))
        seed = int(rng.integers(100))
        layers.append(
            layer(nn.Conv2D, out, (int(kh), int(kw)), stride=int(stride), padding=int(pad), rng=seed)
        )  # fmt: skip
        if n * h * w >= 2 and rng.random() < 0.4:  # batch norm needs 2 values
            layers.append(layer(nn.BatchNorm))
        tail = [[layer(nn.ReLU)], [layer(nn.LeakyReLU, 0.1)], []][rng.integers(3)]
        size = int(rng.integers(1, 4))
        if size <= min(h, w) and rng.random() < 0.8:
            pool = nn.MaxPool2D if rng.random() < 0.7 else nn.AvgPool2D
            stride = int(rng.choice([size, 1, 2]))
            tail.insert(int(rng.integers(2)), layer(pool, size, stride=stride))
            h, w = (h - size) // stride + 1, (w - size) // stride + 1
        layers += tail
        if rng.random() < 0.3:
            layers.append(layer(nn.Dropout, 0.3, rng=int(rng.integers(100))))
    layers.append(layer(nn.GlobalAvgPool2D if rng.random() < 0.15 else nn.Flatten))
    if rng.random() < 0.5:
        layers += [layer(nn.Dense, 5, rng=1)]
        if n >= 2 and rng.random() < 0.3:
            layers += [layer(nn.BatchNorm)]
        layers += [layer(nn.ReLU)]
        if rng.random() < 0.3:
            layers.append(layer(nn.Dropout, 0.3, rng=int(rng.integers(100))))
    return [*layers, layer(nn.Dense, 3, rng=2)]


def draw(seed: int) -> dict:
    """The case of a seed: `make()` builds its network afresh (the same weights each
    time, none zero: a zero bias before batch norm puts values on nn.ReLU's kink, where
    rounding decides the mask), x and y its batch, and the chunk and block sizes."""
    rng = np.random.default_rng(seed)
    n = int(rng.choice([1, 1, 2, 3, 5, 7, 13]))
    c, h, w = (
        int(rng.integers(1, 4)),
        int(rng.integers(3, 11)),
        int(rng.integers(3, 11)),
    )
    specs = draw_layers(rng, n, c, h, w)
    frozen = [i for i in range(len(specs)) if rng.random() < 0.1]

    def make() -> nn.Sequential:
        layers = [kind(*args, **kwargs) for kind, args, kwargs in specs]
        model = nn.Sequential(layers, input_shape=(c, h, w), loss="cross_entropy")
        offsets = np.random.default_rng(7)
        for i, layer in enumerate(layers):
            layer.trainable = i not in frozen
            for p in layer.params.values():
                p += (0.3 * offsets.standard_normal(p.shape)).astype(p.dtype)
        return model

    kind = rng.choice(["float32", "float64", "uint8"])

    def images(count: int) -> np.ndarray:
        if kind == "uint8":
            return rng.integers(0, 256, (count, c, h, w)).astype(np.uint8)
        return rng.standard_normal((count, c, h, w)).astype(kind)

    x, others = images(n), images(9)
    layout = str(rng.choice(list(LAYOUTS)))
    return {
        "make": make,
        "x": LAYOUTS[layout](x),
        "y": rng.integers(0, 3, n),
        "others": others,
        "chunk_bytes": int(rng.choice([im2col.CHUNK_BYTES, 200, 1000, 3000])),
        "pixel_block": int(rng.choice([conv.PIXEL_BLOCK, 7])),
        "thin_product": int(rng.choice([conv.THIN_PRODUCT, 0, 10**9])),
        "backend": str(rng.choice(["numba", "numpy"])),
    }


@pytest.fixture(params=SEEDS)
def case(request, monkeypatch) -> dict:
    case = draw(request.param)
    monkeypatch.setattr(im2col, "CHUNK_BYTES", case["chunk_bytes"])
    monkeypatch.setattr(conv, "PIXEL_BLOCK", case["pixel_block"])
    monkeypatch.setattr(conv, "THIN_PRODUCT", case["thin_product"])
    return case


def by_steps(model, x, y, training: bool) -> tuple:
    """(outputs, gradients of the trainable parameters) by the network's steps."""
    outputs = model.forward(x, training=training).copy()
    model.loss.forward(outputs, y)
    model.backward(model.loss.backward())
    return outputs, gradients(model, training)


def by_layers(model, x, y, training: bool) -> tuple:
    """The same, through the listed layers one after the other: no reordering, no
    fused step."""
    for layer in model.layers:
        x = layer.forward(x, training=training)
    outputs = x.copy()
    model.loss.forward(outputs, y)
    gradient = model.loss.backward()
    model._bind()  # which layers need their input's gradient
    for layer in model.layers[::-1]:
        gradient = layer.backward(gradient)
        if gradient is None:
            break
    return outputs, gradients(model, training)


def gradients(model, training: bool) -> dict:
    """The trainable parameters' gradients (copies), but for the bias of a layer that
    a training batch norm follows: 0 by the math (batch norm takes the mean away), as
    a sum of terms that grow as the batch's spread shrinks: rounding, only."""
    layers = model.layers
    noise = {
        f"{i}.b"
        for i, after in enumerate(layers[1:])
        if training and isinstance(after, nn.BatchNorm) and after.trainable
    }
    grads = model.named_grads(trainable_only=True)
    return {name: g.copy() for name, g in grads.items() if name not in noise}


def assert_same(a: tuple, b: tuple, tolerance: float) -> None:
    """Outputs and gradients alike, to `tolerance` (of the largest gradient, for
    those near 0)."""
    (outputs_a, grads_a), (outputs_b, grads_b) = a, b
    assert_allclose(outputs_a, outputs_b, rtol=tolerance, atol=tolerance)
    assert grads_a.keys() == grads_b.keys()
    scale = max([1.0, *(float(np.abs(g).max()) for g in grads_b.values())])
    for name, grad in grads_b.items():
        assert_allclose(
            grads_a[name], grad, rtol=tolerance, atol=tolerance * scale, err_msg=name
        )


def tolerance(x) -> float:
    return 1e-9 if x.dtype == np.float64 else 1e-4


def test_the_steps_give_the_layers_numbers(case):
    x, y = prepare_inputs(case["x"]), case["y"]
    with using(case["backend"]):
        for training in (True, False):
            fused = by_steps(case["make"](), x, y, training)
            layers = by_layers(case["make"](), x, y, training)
            assert_same(fused, layers, tolerance(x))


def test_the_compiled_kernels_give_the_numpy_twins_numbers(case):
    x, y = prepare_inputs(case["x"]), case["y"]
    results = []
    for backend in ("numba", "numpy"):
        with using(backend):
            results.append(by_steps(case["make"](), x, y, training=True))
    assert_same(*results, max(tolerance(x), 1e-3 if x.dtype == np.float32 else 0))


def test_predictions_do_not_depend_on_the_batches_or_what_ran_before(case):
    x, others = case["x"], case["others"]
    with using(case["backend"]):
        model = case["make"]()
        want = model.predict(x)
        assert_allclose(model.predict(x[:1]), want[:1], rtol=1e-5, atol=1e-6)
        if len(x) > 2:  # the last batch has one image
            assert_allclose(model.predict(x, batch_size=len(x) - 1), want, rtol=1e-5, atol=1e-6)  # fmt: skip
        for batch in (others, x[:1], others[:2], x):  # buffers of other shapes first
            fresh = case["make"]().predict(batch)
            assert_allclose(model.predict(batch), fresh, rtol=1e-5, atol=1e-6)
        again = copy.deepcopy(model)  # a copy's workspace starts empty
        assert_allclose(again.predict(x), want, rtol=1e-5, atol=1e-6)


def test_training_steps_do_not_depend_on_the_batch_sizes_before(case):
    x, y = prepare_inputs(case["x"]), case["y"]
    others = prepare_inputs(case["others"])
    others_y = np.arange(len(others)) % 3
    with using(case["backend"]):
        model = case["make"]()
        for batch, labels in ((others, others_y), (x, y), (others[:2], others_y[:2]), (x, y)):  # fmt: skip
            fresh = case["make"]()
            for m in (model, fresh):  # the same dropout masks for both
                for layer in m.layers:
                    if isinstance(layer, nn.Dropout):
                        layer.set_rng(np.random.default_rng(0))
            assert_same(
                by_steps(model, batch, labels, True),
                by_steps(fresh, batch, labels, True),
                1e-6,
            )
