"""nn.checked: a model whose finite but huge weights overflow float32 is an error a
user can read, without NumPy's RuntimeWarnings."""

import numpy as np
import pytest

from nnscratch import Dense, ReLU, Sequential
from nnscratch.errors import NonFiniteOutputError
from nnscratch.nn import checked


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
        checked.predict(huge, X)
    with pytest.raises(NonFiniteOutputError, match="NaN or infinite"):
        checked.evaluate(huge, X, Y)
    with pytest.raises(NonFiniteOutputError, match="NaN or infinite"):
        checked.layer_outputs(huge, X)


def test_finite_outputs_are_the_models_own():
    net = model()
    np.testing.assert_array_equal(checked.predict(net, X), net.predict(X))
    assert checked.evaluate(net, X, Y) == net.evaluate(X, Y)
    for a, b in zip(checked.layer_outputs(net, X), net.layer_outputs(X)):
        np.testing.assert_array_equal(a, b)
