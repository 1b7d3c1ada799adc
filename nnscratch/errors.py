"""Errors a user can cause and fix: the CLI prints them as one line, never a traceback.

Also the checks of arguments that raise them (`check_int`, `check_float`,
`check_same_length`), and of a model's outputs (`check_finite`).
"""

import math

import numpy as np


class NnscratchError(Exception):
    """Base class for errors caused by bad input (files, arguments, data)."""


class ArgumentError(NnscratchError, ValueError):
    """An argument of a command is invalid, found before any work starts: the CLI
    reports it as a usage error (exit code 2), as click reports its own checks."""


class DataError(NnscratchError, ValueError):
    """A data file or array is missing, malformed or inconsistent."""


class ModelFileError(NnscratchError, ValueError):
    """A file is not a valid nnscratch model."""


class TrainingDivergedError(NnscratchError, FloatingPointError):
    """The training loss became NaN or infinite."""


class NonFiniteOutputError(NnscratchError, FloatingPointError):
    """A model's outputs hold NaN or infinity (its weights overflow float32)."""


class CheckpointError(NnscratchError):
    """A checkpoint file is damaged (unreadable, or not what it says it is), or could
    not be written."""


def is_whole_number(value) -> bool:
    """An int or NumPy integer, but not a bool (True is an int to Python)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def is_real_number(value) -> bool:
    """An int or float (Python's or NumPy's), but not a bool; NaN and infinity too."""
    real = (int, float, np.integer, np.floating)
    return isinstance(value, real) and not isinstance(value, bool)


def check_int(name: str, value, minimum: int = 1) -> int:
    """`value` as an int if it is a whole number (not a bool) >= `minimum`.

    Otherwise a one-line NnscratchError naming the argument, instead of a TypeError or
    a NumPy error later and deeper down.
    """
    if not is_whole_number(value) or value < minimum:
        raise NnscratchError(f"{name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def check_float(
    name: str,
    value,
    low: float = -math.inf,
    high: float = math.inf,
    *,
    open_low: bool = False,
    open_high: bool = False,
) -> float:
    """`value` as a float if it is a finite real number in the interval from `low` to
    `high` (each end included unless `open_low` / `open_high`); else NnscratchError."""
    number = float(value) if is_real_number(value) else math.nan
    inside = (low < number if open_low else low <= number) and (
        number < high if open_high else number <= high
    )
    if not (math.isfinite(number) and inside):
        raise NnscratchError(
            f"{name}: expected {_interval(low, high, open_low, open_high)}, "
            f"got {value!r}"
        )
    return number


def _interval(low: float, high: float, open_low: bool, open_high: bool) -> str:
    """'a number > 0', 'a number in [0, 1)', ...: the words of `check_float`."""
    if math.isinf(low) and math.isinf(high):
        return "a finite number"
    if math.isinf(high):
        return f"a number {'>' if open_low else '>='} {low:g}"
    if math.isinf(low):
        return f"a number {'<' if open_high else '<='} {high:g}"
    left, right = "(" if open_low else "[", ")" if open_high else "]"
    return f"a number in {left}{low:g}, {high:g}{right}"


def check_same_length(**arrays) -> None:
    """DataError unless every array has a batch axis and all have the same length.

    `check_same_length(x=x, y=y)` says "x and y must have the same length, got 10 and 9".
    """
    names = _and(list(arrays))
    shapes = [np.shape(a) for a in arrays.values()]
    if any(len(shape) == 0 for shape in shapes):
        raise DataError(
            f"{names}: expected arrays with a batch axis, got shapes {_and(shapes)}"
        )
    lengths = [shape[0] for shape in shapes]
    if len(set(lengths)) > 1:
        raise DataError(f"{names} must have the same length, got {_and(lengths)}")


def _and(items: list) -> str:
    """[a, b, c] -> "a, b and c"."""
    words = [str(item) for item in items]
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


NOT_FINITE = (
    "the model's outputs are NaN or infinite: its weights are so large that float32"
    " arithmetic overflows"
)


def check_finite(*arrays, model=None) -> None:
    """NonFiniteOutputError unless every value of every array is finite: outputs of
    finite but huge weights (3e38, say) would otherwise become 'nan%' and NaN in JSON.
    Weights of `model` (a Network) that are NaN or infinite themselves are named."""
    if all(np.isfinite(a).all() for a in arrays):
        return
    for name, array in ({} if model is None else model.get_weights()).items():
        if not np.isfinite(array).all():
            raise NonFiniteOutputError(
                f"the model's outputs are NaN or infinite: its weight {name} holds"
                " NaN or infinite values"
            )
    raise NonFiniteOutputError(NOT_FINITE)
