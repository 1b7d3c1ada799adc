"""A model's outputs, checked: weights so large that float32 overflows (finite ones,
3e38 say) give NaN or infinity, which becomes an error a user can read instead of
NumPy's RuntimeWarnings, 'nan%' and NaN in JSON.

The commands and the web app call these rather than the model's own methods.
"""

from __future__ import annotations

import numpy as np

from ..errors import NonFiniteOutputError

NOT_FINITE = (
    "the model's outputs are NaN or infinite: its weights are so large that float32"
    " arithmetic overflows"
)


def check_finite(*arrays) -> None:
    """NonFiniteOutputError unless every value of every array is finite."""
    if not all(np.isfinite(a).all() for a in arrays):
        raise NonFiniteOutputError(NOT_FINITE)


def predict(model, x: np.ndarray, **kwargs) -> np.ndarray:
    """`model.predict(x)`: (N, C) probabilities, all finite, or NonFiniteOutputError."""
    with np.errstate(all="ignore"):  # overflow is reported once, below
        probs = model.predict(x, **kwargs)
    check_finite(probs)
    return probs


def evaluate(model, x: np.ndarray, y: np.ndarray, **kwargs) -> dict:
    """`model.evaluate(x, y)`: {"loss", "accuracy"}, finite, or NonFiniteOutputError."""
    with np.errstate(all="ignore"):
        result = model.evaluate(x, y, **kwargs)
    check_finite(np.array(list(result.values()), dtype=np.float64))
    return result


def layer_outputs(model, x: np.ndarray) -> list[np.ndarray]:
    """`model.layer_outputs(x)`: every layer's output, all finite, or
    NonFiniteOutputError."""
    with np.errstate(all="ignore"):
        outputs = model.layer_outputs(x)
    check_finite(*outputs)
    return outputs
