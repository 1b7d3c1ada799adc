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
