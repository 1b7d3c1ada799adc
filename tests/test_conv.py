"""Conv2D: gradients against central differences, the fast path against the reference
(the formula, one output pixel at a time)."""

import copy
import pickle

import numpy as np
import pytest
from gradcheck import ATOL, RTOL, check_layer_grads, numerical_grad
from numpy.testing import assert_allclose

from nnscratch.errors import NnscratchError
from nnscratch.nn import conv, im2col
from nnscratch.nn.conv import (
    Conv2D,
    conv2d_reference_backward,
    conv2d_reference_forward,
)
from nnscratch.nn.layout import is_channel_major, same_layout
from nnscratch.nn.registry import LAYERS


def reference_forward(layer, x):
    W, b = layer.params["W"], layer.params["b"]
    return conv2d_reference_forward(x, W, b, layer.stride, layer.padding)


CONV_CASES = [
    # (in, out, kernel, stride, padding, input H x W)
    (1, 2, 3, 1, 0, (5, 5)),
    (2, 3, 3, 1, 1, (5, 6)),
    (3, 2, (3, 2), 1, 2, (7, 5)),
    (2, 3, 3, 2, 0, (7, 5)),
    (2, 2, (2, 3), (2, 1), (1, 0), (6, 7)),
    # stride 1 and "same" width: kernel offsets are shifts of the flattened image
    (2, 3, 3, 1, (0, 1), (5, 4)),
    (2, 2, (2, 5), 1, (1, 2), (4, 6)),
    (3, 2, (1, 5), 1, (0, 2), (3, 2)),
    (1, 2, (1, 7), 1, (0, 3), (2, 2)),
    # ... and "same" height too: col2im adds each offset as one shift of the whole
    # chunk, after zeroing what the padding read (here more rows than the image has)
    (2, 2, (5, 3), 1, (2, 1), (2, 3)),
    # C*kh*kw < O, like a first layer on 1-channel images
    (3, 4, 1, 2, 1, (4, 5)),
    (1, 12, 3, 1, 1, (5, 6)),
    (2, 20, (3, 2), 2, (2, 1), (7, 5)),
]


@pytest.fixture(params=[None, 1, 2], ids=["whole batch", "chunks of 1", "chunks of 2"])
def chunking(request, monkeypatch):
    """Make Conv2D work through the batch in chunks of 1 or 2 images (the last one
    smaller when it does not divide), as it does with real sizes, or all at once."""

    def apply(layer, x):
        if request.param is not None:
            ho, wo = layer._out_hw(*x.shape[2:])
            rows = max(layer.params["W"][0].size + 1, layer.out_channels)
            per_image = rows * ho * wo * x.itemsize  # see Columns.lay_out
            monkeypatch.setattr(im2col, "CHUNK_BYTES", request.param * per_image)

    return apply


@pytest.fixture(params=["one product", "in blocks"])
def weight_sums(request, monkeypatch):
    """Sum the weight gradient over a chunk's pixels in one product, or in blocks of
    7 pixels, which split images and leave a smaller last block (what Conv2D does,
    with larger blocks, when the result is small: conv.THIN_PRODUCT)."""
    in_blocks = request.param == "in blocks"
    monkeypatch.setattr(conv, "THIN_PRODUCT", 10**9 if in_blocks else 0)
    monkeypatch.setattr(conv, "PIXEL_BLOCK", 7)


def channel_major_copy(a: np.ndarray) -> np.ndarray:
    """a (N, C, H, W) copied into channel-major memory (see nnscratch.nn.layout)."""
    return np.ascontiguousarray(a.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)


@pytest.fixture(params=["C order", "channel-major"])
def laid_out(request):
    """Give the layer its images (and gradients) in C order, as a user's arrays come,
    or channel-major, as one conv layer's output reaches the next (where im2col and
    col2im shift each channel of the whole chunk at once)."""
    return channel_major_copy if request.param == "channel-major" else np.asarray


@pytest.mark.parametrize("c_in, c_out, kernel, stride, padding, hw", CONV_CASES)
def test_conv2d_gradients(
    c_in, c_out, kernel, stride, padding, hw, chunking, weight_sums
):
    rng = np.random.default_rng(0)
    layer = Conv2D(c_in, c_out, kernel, stride, padding, rng=rng, dtype=np.float64)
    layer.params["b"][:] = rng.standard_normal(c_out)
    x = rng.standard_normal((3, c_in, *hw))
    chunking(layer, x)
    check_layer_grads(layer, x)


@pytest.mark.parametrize("c_in, c_out, kernel, stride, padding, hw", CONV_CASES)
def test_conv2d_forward_matches_loops(
    c_in, c_out, kernel, stride, padding, hw, chunking, laid_out
):
    rng = np.random.default_rng(1)
    layer = Conv2D(c_in, c_out, kernel, stride, padding, rng=rng, dtype=np.float64)
    layer.params["b"][:] = rng.standard_normal(c_out)
    x = laid_out(rng.standard_normal((3, c_in, *hw)))
    chunking(layer, x)
    expected = reference_forward(layer, x)
    assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)
    # later batches reuse the buffers (same shape) or remake them (another batch
    # size): either way the padding must read as zeros
    for batch in (3, 2, 3):
        x2 = laid_out(rng.standard_normal((batch, *x.shape[1:])))
        expected = reference_forward(layer, x2)
        assert_allclose(layer.forward(x2), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("training", [True, False], ids=["training", "evaluation"])
@pytest.mark.parametrize("c_in, c_out, kernel, stride, padding, hw", CONV_CASES)
def test_conv2d_backward_matches_the_reference(
    c_in, c_out, kernel, stride, padding, hw, chunking, laid_out, training, weight_sums
):
    # after an evaluation forward, which keeps no columns, backward makes them again
    rng = np.random.default_rng(5)
    layer = Conv2D(c_in, c_out, kernel, stride, padding, rng=rng, dtype=np.float64)
    x = rng.standard_normal((3, c_in, *hw))
    chunking(layer, x)
    for batch in (3, 2, 3):  # other batch sizes: other layouts, the same answers
        layer.forward(x[:1], training=not training)  # another layout in between
        xb = laid_out(x[:batch])
        y = layer.forward(xb, training=training)
        assert is_channel_major(y) or 1 in y.shape[:2]  # W_mat @ cols, not copied
        dy = laid_out(rng.standard_normal(y.shape))
        dx = layer.backward(dy)
        assert same_layout(dx, xb)  # laid out like the input, as the layer before it
        want_dx, want_dW, want_db = conv2d_reference_backward(
            xb, layer.params["W"], dy, layer.stride, layer.padding
        )
        assert_allclose(dx, want_dx, rtol=1e-12, atol=1e-12)
        assert_allclose(layer.grads["W"], want_dW, rtol=1e-12, atol=1e-12)
        assert_allclose(layer.grads["b"], want_db, rtol=1e-12, atol=1e-12)


def test_the_reference_backward_matches_central_differences():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 2, 5, 4))
    W, b = rng.standard_normal((3, 2, 3, 2)), rng.standard_normal(3)
    stride, padding = (2, 1), (1, 2)
    dy = rng.standard_normal(conv2d_reference_forward(x, W, b, stride, padding).shape)

    def f():
        return np.sum(conv2d_reference_forward(x, W, b, stride, padding) * dy)

    dx, dW, db = conv2d_reference_backward(x, W, dy, stride, padding)
    for analytic, a in ((dx, x), (dW, W), (db, b)):
        assert_allclose(analytic, numerical_grad(f, a), rtol=RTOL, atol=ATOL)


def test_conv2d_float32_matches_the_reference():
    rng = np.random.default_rng(7)
    layer = Conv2D(3, 5, (3, 2), stride=(2, 1), padding=(1, 0), rng=rng)
    x = rng.standard_normal((4, 3, 9, 6)).astype(np.float32)
    y = layer.forward(x, training=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    dx = layer.backward(dy)
    want_dx, want_dW, want_db = conv2d_reference_backward(
        x, layer.params["W"], dy, layer.stride, layer.padding
    )
    assert y.dtype == dx.dtype == want_dx.dtype == np.float32
    assert_allclose(y, reference_forward(layer, x), rtol=1e-4, atol=1e-5)
    assert_allclose(dx, want_dx, rtol=1e-4, atol=1e-5)
    assert_allclose(layer.grads["W"], want_dW, rtol=1e-4, atol=1e-4)
    assert_allclose(layer.grads["b"], want_db, rtol=1e-4, atol=1e-4)


def test_conv2d_pads_with_zeros_after_another_image_size_of_the_same_cost():
    # (1, 1, 8, 16) and (2, 1, 8, 8) images need column buffers of the same length,
    # with the padding in other places: the second must not read the first's pixels
    rng = np.random.default_rng(2)
    layer = Conv2D(1, 2, 3, stride=2, padding=1, rng=rng, dtype=np.float64)
    layer.forward(rng.standard_normal((1, 1, 8, 16)) + 5)
    x = rng.standard_normal((2, 1, 8, 8))
    expected = reference_forward(layer, x)
    assert_allclose(layer.forward(x), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize(
    "copy_of",
    [copy.deepcopy, lambda a: pickle.loads(pickle.dumps(a))],
    ids=["deepcopy", "pickle"],
)
def test_a_copy_of_a_layer_that_ran_lays_its_columns_out_again(training, copy_of):
    """A copy (deepcopy, pickle: joblib.dump of a fitted estimator) starts with an
    empty workspace: its columns buffer is new memory, whose padding zeros and row
    of ones (the bias) must be written, though the copy ran on this shape before."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 2, 6, 5)).astype(np.float32)
    for padding in (1, 2):  # "same" (the im2col kernel) and another padding
        layer = Conv2D(2, 3, 3, padding=padding, rng=rng)
        layer.params["b"][:] = [0.5, -1.0, 2.0]
        want = layer.forward(x, training=training).copy()
        again = copy_of(layer)
        assert_allclose(again.forward(x, training=training), want, rtol=1e-6)


def test_conv2d_without_input_grad_fills_grads_only():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 2, 6, 5))
    full = Conv2D(2, 3, 3, padding=1, rng=3, dtype=np.float64)
    first = Conv2D(2, 3, 3, padding=1, rng=3, dtype=np.float64)
    first.needs_input_grad = False
    dy = rng.standard_normal((2, 3, 6, 5))
    full.forward(x, training=True)
    assert full.backward(dy) is not None
    first.forward(x, training=True)
    grads = {name: g for name, g in first.grads.items()}
    assert first.backward(dy) is None
    for name in ("W", "b"):
        assert first.grads[name] is grads[name]  # written in place, not rebound
        assert_allclose(first.grads[name], full.grads[name], rtol=1e-12)
    assert np.abs(first.grads["W"]).sum() > 0


def test_conv2d_penalty_gradients():
    rng = np.random.default_rng(4)
    layer = Conv2D(2, 2, 3, padding=1, l1=0.01, l2=0.02, rng=rng, dtype=np.float64)
    x = rng.standard_normal((2, 2, 4, 4))
    dy = rng.standard_normal((2, 2, 4, 4))
    layer.forward(x, training=True)
    layer.backward(dy)
    W = layer.params["W"]
    plain = Conv2D(2, 2, 3, padding=1, dtype=np.float64)
    plain.params["W"][...] = W
    plain.forward(x, training=True)
    plain.backward(dy)
    expected = plain.grads["W"] + 2 * 0.02 * W + 0.01 * np.sign(W)
    assert_allclose(layer.grads["W"], expected, rtol=1e-12)
    assert layer.penalty() == pytest.approx(
        0.01 * np.abs(W).sum() + 0.02 * (W**2).sum()
    )


def test_conv2d_float32_stays_float32_and_config_round_trips():
    layer = Conv2D(1, 4, (3, 2), stride=(1, 2), padding=1, rng=0)
    x = np.random.default_rng(0).random((2, 1, 8, 8), dtype=np.float32)
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32 and y.shape == (2, 4, 8, 5)
    assert layer.backward(np.ones_like(y)).dtype == np.float32
    assert layer.grads["W"].dtype == np.float32
    config = layer.get_config()
    assert config["kernel_size"] == [3, 2] and config["padding"] == 1
    rebuilt = LAYERS["Conv2D"](**config)
    assert rebuilt.get_config() == config
    assert layer.params["W"].std() == pytest.approx(np.sqrt(2 / 6), rel=0.35)


def test_padding_same_keeps_the_image_size_and_valid_pads_nothing():
    """Keras' and PyTorch's padding words: "same" for odd kernels at stride 1 (where
    PyTorch allows it), "valid"; anything else is refused by name."""
    x = np.random.default_rng(0).random((2, 3, 9, 8), dtype=np.float32)
    same = Conv2D(3, 4, (5, 3), padding="same", rng=0)
    assert same.padding == (2, 1) and same.forward(x).shape == (2, 4, 9, 8)
    assert Conv2D(4, (3, 3), padding="valid").padding == (0, 0)
    assert LAYERS["Conv2D"](**same.get_config()).padding == (2, 1)
    for kernel, stride in [(2, 1), ((3, 4), 1), (3, 2)]:
        with pytest.raises(NnscratchError, match="'same' needs stride 1 and an odd"):
            Conv2D(1, 1, kernel, stride, "same")
    with pytest.raises(NnscratchError, match="'same' or 'valid', got 'full'"):
        Conv2D(1, 1, 3, padding="full")


def test_conv2d_rejects_bad_input():
    layer = Conv2D(3, 2, 3)
    with pytest.raises(NnscratchError, match=r"expected \(N, C, H, W\) with C=3, got"):
        layer.forward(np.zeros((2, 1, 5, 5)))
    with pytest.raises(NnscratchError, match=r"got \(2, 5, 5\)"):
        layer.forward(np.zeros((2, 5, 5)))
    with pytest.raises(NnscratchError, match="smaller than the 3x3 kernel"):
        layer.forward(np.zeros((1, 3, 2, 5)))
    with pytest.raises(NnscratchError, match="kernel_size"):
        Conv2D(1, 1, 0)
    with pytest.raises(NnscratchError, match="padding"):
        Conv2D(1, 1, 3, padding=-1)
    with pytest.raises(NnscratchError, match="stride must be an int >= 1 or a pair"):
        Conv2D(1, 1, 3, stride="2")
    with pytest.raises(
        NnscratchError, match="Conv2D in_channels: expected an int >= 1, got 0"
    ):
        Conv2D(0, 1, 3)


def test_conv2d_refuses_an_absurd_workspace_before_allocating_it():
    # a full-batch-sized input as a zero-stride view: no memory behind it
    x = np.broadcast_to(np.float32(0), (60_000, 32, 14, 14))
    layer = Conv2D(32, 64, 3, padding=1)
    with pytest.raises(NnscratchError, match=r"60,000 images .* GB of workspace"):
        layer.forward(x, training=True)
    with pytest.raises(NnscratchError, match="use a smaller batch size"):
        layer.forward(x)  # evaluation needs half as much, still far too much
    assert len(layer.workspace) == 0
    y = layer.forward(np.zeros((128, 32, 14, 14), dtype=np.float32), training=True)
    assert y.shape == (128, 64, 14, 14)


def test_a_gradient_of_another_dtype_reads_the_columns_forward_laid_out(monkeypatch):
    # float32 images make chunks of twice as many images as float64 ones would:
    # backward must use forward's chunks, whatever the dtype of dy
    rng = np.random.default_rng(4)
    layer = Conv2D(3, 4, 3, padding=1, rng=rng)  # float32, the GEMM path (27 > 4)
    x = rng.standard_normal((8, 3, 6, 6)).astype(np.float32)
    per_image = (3 * 9 + 1) * 36 * 4  # one float32 image's columns and ones, bytes
    monkeypatch.setattr(im2col, "CHUNK_BYTES", 2 * per_image)  # chunks of 2
    dy = rng.standard_normal((8, 4, 6, 6))
    layer.forward(x, training=True)
    layer.backward(dy)  # float64
    from_float64 = layer.grads["W"].copy()
    layer.forward(x, training=True)
    layer.backward(dy.astype(np.float32))
    assert_allclose(from_float64, layer.grads["W"], rtol=1e-4, atol=1e-4)


def test_a_first_layers_weight_gradient_in_blocks_of_the_default_size():
    # 1 -> 8 channels on 28x28 images: a (10, 8) result, summed in blocks of
    # PIXEL_BLOCK columns; 3 images' 2,352 pixels make two whole blocks and a part
    rng = np.random.default_rng(8)
    layer = Conv2D(1, 8, 3, padding=1, rng=rng, dtype=np.float64)
    assert (9 + 1) * 8 <= conv.THIN_PRODUCT < (32 * 9 + 1) * 64
    x = rng.standard_normal((3, 1, 28, 28))
    dy = rng.standard_normal(layer.forward(x, training=True).shape)
    layer.backward(dy)
    _, want_dW, want_db = conv2d_reference_backward(
        x, layer.params["W"], dy, layer.stride, layer.padding
    )
    assert_allclose(layer.grads["W"], want_dW, rtol=1e-12, atol=1e-12)
    assert_allclose(layer.grads["b"], want_db, rtol=1e-12, atol=1e-12)
