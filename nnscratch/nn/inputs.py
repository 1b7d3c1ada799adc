"""Checks of what users pass to a model: inputs, sample and class weights, validation
data. Each error names the argument and says what arrived."""

from __future__ import annotations

import os
import sys
import warnings

import numpy as np

from ..errors import NnscratchError, check_float, check_int
from .layer import Layer

SAMPLE_FOR_PIXEL_CHECK = 256  # examples looked at to tell unscaled pixels
PACKAGE_DIR = os.path.dirname(os.path.dirname(__file__)) + os.sep  # nnscratch/


def check_input_shape(input_shape) -> tuple[int, ...]:
    """An example's shape (no batch axis) as a tuple of positive ints; a leading
    None is Keras' batch axis (`model.build((None, 784))`), dropped."""
    try:
        sizes = list(input_shape)
        if len(sizes) > 1 and sizes[0] is None:
            sizes = sizes[1:]
        shape = tuple(int(d) for d in sizes)
    except (TypeError, ValueError):
        raise NnscratchError(
            f"input_shape: expected a tuple of sizes (an example's, or Keras' with "
            f"None for the batch axis), got {input_shape!r}"
        ) from None
    if not shape or min(shape) < 1:
        raise NnscratchError(f"input_shape: expected positive sizes, got {shape}")
    return shape


def check_batch_size(batch_size, default: int) -> int:
    """`batch_size` as an int >= 1; None, Keras' "unspecified", is `default`."""
    return check_int("batch_size", default if batch_size is None else batch_size)


def check_layer(value, where: str) -> None:
    """Refuse what is not a Layer. A model is told to give its layers: Keras nests
    one as a layer (transfer learning's Sequential([base, Dense(10)]))."""
    if isinstance(value, Layer):
        return
    if isinstance(getattr(value, "layers", None), list):  # a Sequential
        raise NnscratchError(
            f"{where} is a model, not a Layer: give its layers, as in "
            "Sequential([*model.layers, Dense(10)]) (they share their weights with it)"
        )
    raise NnscratchError(f"{where} is not a Layer: {value!r}")


def check_batch(x, name: str, input_shape: tuple | None) -> np.ndarray:
    """x as an array (N, *input_shape) of uint8 images or finite floats (float32 or
    float64: float16 becomes float32, other floats float64)."""
    x = np.asarray(x)
    if x.ndim < 2:
        raise NnscratchError(f"{name}: expected a batch (N, ...), got shape {x.shape}")
    if input_shape is not None and x.shape[1:] != tuple(input_shape):
        raise NnscratchError(
            f"{name}: expected (N, {', '.join(map(str, input_shape))}), got {x.shape}"
            + channels_last_hint(x.shape[1:], input_shape)
        )
    if x.dtype != np.uint8 and not np.issubdtype(x.dtype, np.floating):
        raise NnscratchError(
            f"{name}: expected uint8 images or a float array, got {x.dtype}"
        )
    if x.dtype not in (np.uint8, np.float32, np.float64):
        # float16, longdouble, big-endian floats: the compiled kernels have loops for
        # native float32 and float64 only (numba refuses the others)
        x = x.astype(np.float32 if x.dtype.itemsize <= 4 else np.float64)
    # min and max are NaN or infinite if any value is (and need no temporary array)
    finite = (
        x.dtype == np.uint8
        or not x.size
        or (np.isfinite(x.min()) and np.isfinite(x.max()))
    )
    if not finite:
        raise NnscratchError(f"{name}: contains NaN or infinite values")
    return x


def channels_last_hint(shape: tuple, expected: tuple | None = None) -> str:
    """A hint for images given channels-last (H, W, C), as Keras has them, where the
    layers take (C, H, W); "" unless `shape` (no batch axis) looks like that: the
    `expected` (C, H, W) turned round, or with none expected, a last axis of 1 or 3
    (grey or RGB) after a first that is not."""
    if len(shape) != 3:
        return ""
    if expected is not None:
        looks = tuple(expected) == (shape[2], shape[0], shape[1])
    else:
        looks = shape[2] in (1, 3) and shape[0] not in (1, 3)
    return (
        "; images here are channels-first (N, C, H, W): for Keras' channels-last "
        "(N, H, W, C) pass x.transpose(0, 3, 1, 2) (and input_shape=(C, H, W))"
        if looks
        else ""
    )


def looks_like_unscaled_pixels(x: np.ndarray) -> bool:
    """Float images with whole values from 0 up to more than 1 (at most 255): pixels
    that were converted to float but not divided by 255."""
    if x.dtype == np.uint8 or x.ndim < 3 or not x.size:
        return False
    sample = x[:SAMPLE_FOR_PIXEL_CHECK]
    low, high = float(sample.min()), float(sample.max())
    return low >= 0 and 1 < high <= 255 and bool(np.all(sample == np.round(sample)))


def warn_if_unscaled(x: np.ndarray, name: str) -> bool:
    """Warn (once per call) that float pixels in 0..255 should be scaled; True if so."""
    if not looks_like_unscaled_pixels(x):
        return False
    warnings.warn(
        f"{name}: float values from 0 to {float(x.max()):g} look like unscaled "
        "pixels; divide by 255, or pass the uint8 images (scaled for you)",
        UserWarning,
        stacklevel=user_stacklevel(),
    )
    return True


def user_stacklevel() -> int:
    """The `stacklevel` that makes a warning issued by the caller of this function
    point at the first line outside nnscratch: the user's call, however deep in the
    package (fit, evaluate, fit's validation data) the warning was raised."""
    level, frame = 1, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(PACKAGE_DIR):
        level, frame = level + 1, frame.f_back
    return level


def example_weights(
    sample_weight, class_weight, labels, n: int, dtype=np.float32
) -> np.ndarray | None:
    """The weight of each example (N,) as `dtype` (the model's float type: a float64
    model weighs its losses exactly, as PyTorch does): sample_weight times the
    class_weight of its class (Keras' semantics), or None if neither is given."""
    weights = None
    if sample_weight is not None:
        expected = f"sample_weight: expected {n} finite numbers (N,)"
        try:
            weights = np.asarray(sample_weight, dtype=np.float64)
        except (TypeError, ValueError):  # text among the numbers, ragged lists
            raise NnscratchError(
                f"{expected}, got values that are not numbers"
            ) from None
        if weights.shape != (n,):
            raise NnscratchError(f"{expected}, got shape {weights.shape}")
        if not np.all(np.isfinite(weights)):
            raise NnscratchError("sample_weight: contains NaN or infinite values")
        if (weights < 0).any():
            raise NnscratchError("sample_weight: weights must be >= 0")
    if class_weight is not None:
        per_class = class_weights(class_weight, labels)
        weights = per_class if weights is None else weights * per_class
    if weights is None:
        return None
    if class_weight is None or sample_weight is None:
        who = "class_weight" if sample_weight is None else "sample_weight"
    else:
        who = "sample_weight times class_weight"
    return _as_float(weights, who, np.dtype(dtype))


def _as_float(weights: np.ndarray, who: str, dtype: np.dtype) -> np.ndarray:
    """Example weights (N,) as `dtype`, refused if one is too large for it (it
    would become inf, and so would the loss)."""
    largest, most = weights.max(initial=0), float(np.finfo(dtype).max)
    if largest > most:
        raise NnscratchError(
            f"{who}: weights up to {largest:.3g} do not fit in {dtype} (at most "
            f"{most:.3g}); scale them down"
        )
    return weights.astype(dtype)


def class_weights(class_weight, labels) -> np.ndarray:
    """{class: weight} -> the weight of each example's class (classes not named: 1)."""
    if not isinstance(class_weight, dict):
        raise NnscratchError(
            f"class_weight: expected a dict {{class: weight}}, got {class_weight!r}"
        )
    labels = np.asarray(labels)
    if labels.ndim == 2:  # one-hot or soft targets: their largest entry is the class
        labels = labels.argmax(axis=1) if labels.shape[1] > 1 else labels[:, 0] >= 0.5
    if labels.dtype.kind not in "iub":
        raise NnscratchError("class_weight: needs class labels as targets")
    table = np.ones(int(labels.max(initial=0)) + 1, dtype=np.float64)
    for cls, weight in class_weight.items():
        weight = check_float(f"class_weight[{cls!r}]", weight, 0)
        if not isinstance(cls, (int, np.integer)) or cls < 0:
            raise NnscratchError(
                f"class_weight: classes must be ints >= 0, got {cls!r}"
            )
        if cls < len(table):
            table[cls] = weight
    return table[labels.astype(np.int64)]


def check_augment(augment, x: np.ndarray) -> None:
    """Refuse, before fit's first batch, an `augment` that is not a function
    augment(images, rng), or one whose `check_images(shape, dtype)` (Augment's)
    refuses training images like x (N, ...); None is no augmentation."""
    if augment is None:
        return
    if not callable(augment):
        raise NnscratchError(
            f"augment: expected a function augment(images, rng) such as "
            f"nn.Augment(shift=2), got {augment!r}"
        )
    check = getattr(augment, "check_images", None)
    if check is not None:
        check(x.shape, x.dtype)


def validation_parts(validation_data) -> tuple:
    """(x, y, sample_weight or None) from a pair (x, y) or a triple (x, y, weights)."""
    if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (
        2,
        3,
    ):
        raise NnscratchError(
            "validation_data: expected a pair (x, y) or a triple (x, y, sample_weight)"
        )
    x, y, *rest = validation_data
    return x, y, (rest[0] if rest else None)


def hold_out(x, y, weights, fraction: float, shuffle: bool, rng):
    """(x, y, weights, validation_data): a random `fraction` of the examples held out
    as validation data (x, y, weights); the rest keeps its order if not `shuffle`
    (else a random one, as training shuffles it anyway)."""
    check_float("validation_split", fraction, 0, 1, open_low=True, open_high=True)
    order = rng.permutation(len(x))
    n_val = max(1, round(len(x) * fraction))
    if n_val >= len(x):  # said here: fit would only see "no training examples"
        raise NnscratchError(
            f"validation_split={fraction:g} of {len(x)} examples leaves none to"
            " train on"
        )
    val, train = order[:n_val], order[n_val:]
    if not shuffle:
        val, train = np.sort(val), np.sort(train)
    w_train, w_val = (None, None) if weights is None else (weights[train], weights[val])
    return x[train], y[train], w_train, (x[val], y[val], w_val)
