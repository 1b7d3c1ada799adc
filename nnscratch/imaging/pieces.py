"""The connected pieces of ink in a picture: each labelled, with its box.
`segment` reads a number from them; `underlines` finds underlines among them."""

from __future__ import annotations

import numpy as np


def label_components(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Label the 8-connected pieces of a bool mask (H, W).

    Returns (labels (H, W) int32, 0 = background and 1..n the pieces, and boxes
    (n, 4) int64 as left, top, right, bottom, right and bottom exclusive). Works on
    runs of pixels along rows, joined by union-find with the runs of the row above.
    """
    h, w = mask.shape
    edges = np.diff(np.pad(mask, ((0, 0), (1, 1))).astype(np.int8), axis=1)
    rows, starts = np.nonzero(edges == 1)
    stops = np.nonzero(edges == -1)[1]  # row-major order: the same runs
    parent = list(range(len(starts)))

    def root(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]  # path halving
            i = parent[i]
        return i

    first = np.searchsorted(rows, np.arange(h + 1))
    for r in range(1, h):
        i, i_end, j, j_end = first[r - 1], first[r], first[r], first[r + 1]
        while i < i_end and j < j_end:
            # 8-connected: runs touch if they overlap or meet at a corner
            if starts[j] <= stops[i] and starts[i] <= stops[j]:
                a, b = root(i), root(j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            if stops[i] < stops[j]:
                i += 1
            else:
                j += 1
    roots = np.array([root(i) for i in range(len(starts))], dtype=np.int64)
    _, ids = np.unique(roots, return_inverse=True)
    ids = ids.reshape(-1) + 1
    labels = np.zeros((h, w), dtype=np.int32)
    for r, s, e, k in zip(rows.tolist(), starts.tolist(), stops.tolist(), ids):
        labels[r, s:e] = k
    n = int(ids.max(initial=0))
    boxes = np.zeros((n, 4), dtype=np.int64)
    boxes[:, :2] = [w, h]
    np.minimum.at(boxes[:, 0], ids - 1, starts)
    np.minimum.at(boxes[:, 1], ids - 1, rows)
    np.maximum.at(boxes[:, 2], ids - 1, stops)
    np.maximum.at(boxes[:, 3], ids - 1, rows + 1)
    return labels, boxes
