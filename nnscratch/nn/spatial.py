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
