"""Geometry shared by the layers on images (N, C, H, W): conv and pooling."""

from __future__ import annotations

import numpy as np

from ..errors import NnscratchError, is_whole_number


def pair(value, name: str, layer: str, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints -> (rows, cols), checked against `minimum`."""
    values = [value, value] if np.isscalar(value) else list(value)
    if len(values) != 2 or not all(is_whole_number(v) and v >= minimum for v in values):
        raise NnscratchError(
            f"{layer}: {name} must be an int >= {minimum} or a pair of them, "
            f"got {value!r}"
        )
    return int(values[0]), int(values[1])


def conv_padding(padding, kernel_size: tuple, stride: tuple) -> tuple[int, int]:
    """A convolution's padding as (rows, cols): an int or a pair of ints >= 0, or
    "valid" (none) or "same" (an output the size of the input: (k - 1) / 2 zeros on
    each side, for an odd kernel at stride 1, where PyTorch allows it too)."""
    if not isinstance(padding, str):
        return pair(padding, "padding", "Conv2D", minimum=0)
    if padding == "valid":
        return 0, 0
    if padding != "same":
        raise NnscratchError(
            f"Conv2D: padding must be an int >= 0, a pair of them, 'same' or 'valid', "
            f"got {padding!r}"
        )
    if stride != (1, 1) or any(k % 2 == 0 for k in kernel_size):
        raise NnscratchError(
            f"Conv2D: padding='same' needs stride 1 and an odd kernel size, got kernel "
            f"{kernel_size} and stride {stride} (give the padding as numbers instead)"
        )
    return (kernel_size[0] - 1) // 2, (kernel_size[1] - 1) // 2


def pair_config(rows_cols: tuple[int, int]):
    """(3, 3) -> 3, (3, 2) -> [3, 2]: JSON the constructor accepts back."""
    rows, cols = rows_cols
    return rows if rows == cols else [rows, cols]


def out_size(size: int, kernel: int, stride: int, pad: int) -> int:
    # floor mode, like PyTorch: a last window that does not fit is dropped
    return (size + 2 * pad - kernel) // stride + 1


def check_images(layer, x: np.ndarray, channels: int | None = None) -> None:
    """x must be (N, C, H, W), with C = `channels` if given; the error names `layer`."""
    if x.ndim != 4 or (channels is not None and x.shape[1] != channels):
        with_c = "" if channels is None else f" with C={channels}"
        raise NnscratchError(
            f"{type(layer).__name__}: expected (N, C, H, W){with_c}, got {x.shape}"
        )
