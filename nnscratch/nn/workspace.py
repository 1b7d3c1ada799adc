"""Workspace: scratch arrays kept from call to call, by name.

A fresh large temporary per batch costs page faults, often more than the arithmetic
done in it. The layers, the optimisers and the augmentation keep theirs in a
`Workspace` instead, and write into them with `out=`.
"""

from __future__ import annotations

import math
from collections.abc import Hashable

import numpy as np

from .layout import is_channel_major, same_layout


class Workspace:
    """Arrays by key, reallocated only when a call asks for another shape or dtype.

    `array` gives exactly the shape asked for; `front` gives the front of a flat array
    kept as long as the longest asked for, so that sizes that alternate (a smaller last
    chunk or batch) reuse one allocation. With `fill`, an array is filled with that
    value when it is (re)allocated, and never again: what is written stays.
    """

    def __init__(self):
        self._arrays: dict[Hashable, np.ndarray] = {}

    def array(self, key: Hashable, shape: tuple, dtype, fill=None) -> np.ndarray:
        """The array under `key`, of exactly `shape` and `dtype`."""
        a = self._arrays.get(key)
        if a is not None and a.shape == shape and a.dtype == dtype:
            return a  # the usual case, checked first: ~1 us a call adds up per step
        shape, dtype = tuple(shape), np.dtype(dtype)
        if a is None or a.shape != shape or a.dtype != dtype:
            a = self._arrays[key] = _allocate(shape, dtype, fill)
        return a

    def like(self, key: Hashable, a: np.ndarray, dtype=None, shape=None):
        """Room for a result like `a`: its shape (or `shape`), its dtype (or `dtype`)
        and its layout (a channel-major batch of images gets a channel-major array;
        see `layout`), so that passes over both walk them in one order."""
        dtype = a.dtype if dtype is None else dtype
        shape = a.shape if shape is None else tuple(shape)
        if is_channel_major(a):
            n, c, h, w = shape
            return self.array(key, (c, n, h, w), dtype).transpose(1, 0, 2, 3)
        return self.array(key, shape, dtype)

    def in_layout_of(self, key: Hashable, a: np.ndarray, ref: np.ndarray):
        """a itself if it is laid out like `ref`, else a copy of it in an array
        `like(key, ref)` (for passes that walk both in one order)."""
        if same_layout(a, ref):
            return a
        copy = self.like(key, ref, a.dtype)
        np.copyto(copy, a)
        return copy

    def front(self, key: Hashable, shape: tuple, dtype, fill=None) -> np.ndarray:
        """The first prod(shape) elements of a flat array under `key`, as `shape`;
        the flat array grows to the largest size asked for, and never shrinks."""
        size, dtype = math.prod(shape), np.dtype(dtype)
        a = self._arrays.get(key)
        if a is None or a.size < size or a.dtype != dtype:
            a = self._arrays[key] = _allocate((size,), dtype, fill)
        return a[:size].reshape(shape)

    def clear(self) -> None:
        """Forget every array (a trained model sheds its training scratch)."""
        self._arrays.clear()

    def discard(self, key: Hashable) -> None:
        """Forget the array under `key` (the next call allocates it again)."""
        self._arrays.pop(key, None)

    def __getstate__(self) -> dict:
        # scratch only: a copy (pickle, deepcopy) starts empty and refills as it runs
        return {"_arrays": {}}

    def __len__(self) -> int:
        return len(self._arrays)

    def __repr__(self) -> str:
        arrays = ", ".join(
            f"{k}: {a.dtype}{list(a.shape)}" for k, a in self._arrays.items()
        )
        return f"Workspace({arrays})"


def _allocate(shape: tuple, dtype: np.dtype, fill) -> np.ndarray:
    a = aligned_empty(shape, dtype)
    if fill is not None:  # filled before anyone can see it (`kernels`' constants)
        a.fill(fill)
    return a


ALIGNMENT = 64  # bytes: a cache line, and one AVX-512 vector


def aligned_empty(shape: tuple, dtype, zeros: bool = False) -> np.ndarray:
    """np.empty (or np.zeros) whose data starts on a 64-byte boundary; NumPy's own
    start 16 bytes past one. OpenBLAS's small products run faster on aligned rows:
    (32, 784) @ (784, 256) in 71 against 76 us, at batch 128 201 against 210 us."""
    dtype = np.dtype(dtype)
    size = math.prod(shape) * dtype.itemsize
    # np.zeros asks the OS for zeroed pages: no memory is used until they are written
    raw = (np.zeros if zeros else np.empty)(size + ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start : start + size].view(dtype).reshape(shape)
