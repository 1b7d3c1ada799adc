"""A model whose finite but huge weights overflow float32 is an error a user can read
(from predict, evaluate and layer_outputs), without NumPy's RuntimeWarnings."""

import numpy as np
import pytest

from nnscratch import Dense, ReLU, Sequential
from nnscratch.errors import NonFiniteOutputError


def model(weight: float | None = None) -> Sequential:
    """A small MLP; `weight`: every weight of its first layer."""
    rng = np.random.default_rng(0)
    net = Sequential(
        [Dense(5, 4, rng=rng), ReLU(), Dense(4, 3, rng=rng)], input_shape=(5,)
    )
    if weight is not None:
        net.layers[0].params["W"][:] = weight
    return net


X = np.random.default_rng(1).random((4, 5)).astype(np.float32)
Y = np.array([0, 1, 2, 0])


@pytest.mark.filterwarnings("error")  # no RuntimeWarning either
def test_huge_weights_are_an_error_not_nan():
    huge = model(weight=3e38)  # finite, but float32 overflows
    with pytest.raises(NonFiniteOutputError, match="NaN or infinite"):
        huge.predict(X)
    with pytest.raises(NonFiniteOutputError, match="NaN or infinite"):
        huge.evaluate(X, Y)
    with pytest.raises(NonFiniteOutputError, match="NaN or infinite"):
        huge.layer_outputs(X)


@pytest.mark.filterwarnings("error")
def test_finite_outputs_pass():
    net = model()
    assert np.isfinite(net.predict(X)).all()
    assert np.isfinite(list(net.evaluate(X, Y).values())).all()


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_weights_set_to_nan_are_named_not_called_too_large(bad):
    net = model()
    weights = net.get_weights()
    weights["2.b"][1] = bad  # as set_weights or a hand edit can put it
    net.set_weights(weights)
    expected = "its weight 2.b holds NaN or infinite values"
    for call in (net.predict, net.layer_outputs, lambda x: net.evaluate(x, Y)):
        with pytest.raises(NonFiniteOutputError, match=expected):
            call(X)
    net.layers[0].params["W"][:] = 3e38  # huge: named so when no weight is NaN
    weights["2.b"][1] = 0
    net.set_weights({**weights, "0.W": net.get_weights()["0.W"]})
    with pytest.raises(NonFiniteOutputError, match="so large that float32"):
        net.predict(X)
