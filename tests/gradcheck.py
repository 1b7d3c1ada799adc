"""Central-difference gradients, the reference every backward pass is checked against.

The checks run on the kernels' NumPy twins, the formulas as written
(`kernels.using("numpy")`); test_kernels.py checks the compiled twins against them.
Everything is float64, and the tolerance (rtol 1e-7) is far below what a wrong factor
or term gives: central differences with eps = 1e-6 agree with the exact gradient to
~1e-9 here.
"""

import functools

import numpy as np
from numpy.testing import assert_allclose

from nnscratch.nn.kernels import using
from nnscratch.nn.parameters import walk

RTOL, ATOL = 1e-7, 1e-9


def on_numpy_twins(check):
    """Run `check` with every kernel on its NumPy twin."""

    @functools.wraps(check)
    def wrapped(*args, **kwargs):
        with using("numpy"):
            return check(*args, **kwargs)

    return wrapped


def numerical_grad(f, a, eps=1e-6, dy=None):
    """d f() / d a by central differences; a is changed in place, then restored.

    With `dy`, f() returns an array y and the gradient is that of sum(y * dy), the
    difference taken element by element before the sum: the two sums would share
    most of their digits, and their difference keep few."""
    grad = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + eps
        f_plus = np.array(f(), copy=True)  # f may return a workspace array
        a[i] = old - eps
        difference = f_plus - f()
        grad[i] = (difference if dy is None else np.vdot(difference, dy)) / (2 * eps)
        a[i] = old
    return grad


@on_numpy_twins
def check_layer_grads(layer, x, training=True, seed=0, rtol=RTOL, atol=ATOL):
    """Compare a layer's backward (dx and every param grad) with central differences.

    The scalar checked is sum(forward(x) * dy) for a fixed random dy, whose gradient at
    the output is exactly dy, plus the layer's penalty (L1/L2), whose gradient
    backward adds to its weights'. The params of the layers inside it are checked
    too, by their names inside it ("dense.W"). Forward and backward run twice first:
    backward must overwrite the gradients, not add to them. Everything must be float64.
    """
    rng = np.random.default_rng(seed)
    dy = rng.standard_normal(layer.forward(x, training=training).shape)
    layers = [inner for _, inner, _ in walk(layer)]

    def f():
        return layer.forward(x, training=training)

    def penalty():
        return sum(inner.penalty() for inner in layers)

    for _ in range(2):
        layer.forward(x, training=training)
        dx = layer.backward(dy)
    dx = None if dx is None else dx.copy()
    params, analytic = {}, {}
    for prefix, inner, _ in walk(layer):
        for key, p in inner.params.items():
            params[prefix + key], analytic[prefix + key] = p, inner.grads[key].copy()
    assert_allclose(dx, numerical_grad(f, x, dy=dy), rtol=rtol, atol=atol, err_msg="dx")
    for name, p in params.items():
        numerical = numerical_grad(f, p, dy=dy) + numerical_grad(penalty, p)
        assert_allclose(analytic[name], numerical, rtol=rtol, atol=atol, err_msg=name)


@on_numpy_twins
def check_model_grads(model, x, y, training, rtol=RTOL, atol=ATOL):
    """Compare a model's backward (every parameter, through its flat gradient buffer)
    with central differences of what training minimises on (x, y): its loss plus
    its layers' penalties. Forward and backward run twice first, as in two steps of
    training. Everything must be float64."""

    if model.loss is None:
        model.compile(loss="cross_entropy")
    if not model.built:
        model.build(x.shape[1:])

    def f():
        return model.loss.forward(model.forward(x, training=training), y) + (
            model._penalty()
        )

    for _ in range(2):
        f()
        model.backward(model.loss.backward())
    analytic = model.flat_grads.copy()
    assert_allclose(
        analytic, numerical_grad(f, model.flat_params), rtol=rtol, atol=atol
    )
