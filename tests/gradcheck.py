"""Central-difference gradients, the reference every backward pass is checked against.

The checks run on the kernels' NumPy twins, the formulas as written
(`kernels.using("numpy")`); test_kernels.py checks the compiled twins against them.
"""

import functools

import numpy as np
from numpy.testing import assert_allclose

from nnscratch.nn.kernels import using
from nnscratch.nn.parameters import walk


def on_numpy_twins(check):
    """Run `check` with every kernel on its NumPy twin."""

    @functools.wraps(check)
    def wrapped(*args, **kwargs):
        with using("numpy"):
            return check(*args, **kwargs)

    return wrapped


def numerical_grad(f, a, eps=1e-6):
    """d f() / d a by central differences; a is changed in place, then restored."""
    grad = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + eps
        f_plus = f()
        a[i] = old - eps
        grad[i] = (f_plus - f()) / (2 * eps)
        a[i] = old
    return grad


@on_numpy_twins
def check_layer_grads(layer, x, training=True, seed=0, rtol=1e-5, atol=1e-8):
    """Compare a layer's backward (dx and every param grad) with central differences.

    The scalar checked is sum(forward(x) * dy) for a fixed random dy, whose gradient at
    the output is exactly dy. The params of the layers inside it are checked too, by
    their names inside it ("dense.W"). Everything must be float64.
    """
    rng = np.random.default_rng(seed)
    dy = rng.standard_normal(layer.forward(x, training=training).shape)

    def f():
        return float(np.sum(layer.forward(x, training=training) * dy))

    layer.forward(x, training=training)
    dx = layer.backward(dy)
    dx = None if dx is None else dx.copy()
    params, analytic = {}, {}
    for prefix, inner, _ in walk(layer):
        for key, p in inner.params.items():
            params[prefix + key], analytic[prefix + key] = p, inner.grads[key].copy()
    assert_allclose(dx, numerical_grad(f, x), rtol=rtol, atol=atol, err_msg="dx")
    for name, p in params.items():
        assert_allclose(
            analytic[name], numerical_grad(f, p), rtol=rtol, atol=atol, err_msg=name
        )


@on_numpy_twins
def check_model_grads(model, x, y, training, rtol=1e-5, atol=1e-8):
    """Compare a model's backward (every parameter, through its flat gradient buffer)
    with central differences of its loss on (x, y). Everything must be float64."""

    if model.loss is None:
        model.compile(loss="cross_entropy")
    if not model.built:
        model.build(x.shape[1:])

    def f():
        return model.loss.forward(model.forward(x, training=training), y)

    f()
    model.backward(model.loss.backward())
    analytic = model.flat_grads.copy()
    assert_allclose(
        analytic, numerical_grad(f, model.flat_params), rtol=rtol, atol=atol
    )
