"""Where the values of an (N, C, H, W) batch of images lie in memory.

Every layer takes and gives arrays of the logical shape (N, C, H, W). In memory they
come in one of two layouts:

- batch-major, NumPy's C order: each image's channels one after another;
- channel-major: each channel's values for the whole batch one after another, the
  memory of a C-contiguous (C, N, H, W) array, seen as (N, C, H, W) through
  `transpose(1, 0, 2, 3)` (a view: strides, no copy).

A convolution's matrix products give channel-major results, y_mat = W_mat @ cols of
shape (O, N*Ho*Wo), and its backward wants dy_mat in that layout too. Passing them on
as they are, the conv layers, pooling, batch norm and the activations between them
never copy a batch into the other layout (the transposes took ~6 ms of a 41 ms
`lenet-like` training step); Flatten makes its one copy into C order for Dense, and
hands its gradient back channel-major. Rule for a layer: its result and its input
gradient are laid out like its input (`Workspace.like` does that).
"""

from __future__ import annotations

import numpy as np


def is_channel_major(a: np.ndarray) -> bool:
    """a (N, C, H, W) whose memory is a C-contiguous (C, N, H, W) array (and which is
    not also C-contiguous, as when N or C is 1)."""
    return (
        a.ndim == 4
        and not a.flags.c_contiguous
        and a.transpose(1, 0, 2, 3).flags.c_contiguous
    )


def channel_major(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """a (N, C, H, W) as a C-contiguous (C, N, H, W) array: a view when a is
    channel-major (or N or C is 1), else a copy, into `out` if given."""
    view = a.transpose(1, 0, 2, 3)
    if view.flags.c_contiguous:
        return view
    if out is None:
        return np.ascontiguousarray(view)
    np.copyto(out, view)
    return out


def memory_order(a: np.ndarray) -> np.ndarray:
    """A C-contiguous array with a's values in the order they lie in memory: a
    itself if C-contiguous, a 1-D view if channel-major, else a copy in C order. For
    element-wise kernels, where what happens to a value does not depend on where it
    is."""
    if a.flags.c_contiguous:
        return a
    if is_channel_major(a):
        return a.transpose(1, 0, 2, 3).reshape(-1)
    return np.ascontiguousarray(a)


def same_layout(a: np.ndarray, b: np.ndarray) -> bool:
    """Do a and b, of one shape, hold their values in the same order in memory?"""
    return a.shape == b.shape and (
        (a.flags.c_contiguous and b.flags.c_contiguous)
        or (is_channel_major(a) and is_channel_major(b))
    )
