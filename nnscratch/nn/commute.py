"""ReLU and max pooling commute: a model's ReLU followed by MaxPool2D runs as MaxPool2D
followed by ReLU, on a quarter of the values (2x2 pools).

Forward, relu(max(S)) = max(relu(S)) for every window S, because ReLU never changes
which value of a window is largest. Backward, both orders send a window's gradient to
its first largest value, times 1 if that value is > 0: where the largest is <= 0,
ReLU first makes the window all zeros, and the zero that max pooling picks has
ReLU's gradient 0 (NaN: both pick the window's first NaN, whose ReLU gradient is 0).
So the numbers are the same (up to the sign of a zero), and PyTorch users' order,
conv - ReLU - pool, costs what the presets' conv - pool - ReLU costs: the ReLU passes
over the full-size maps were ~4 of a `lenet-like` step's 44 ms. Only these two exact
classes are swapped: a leaky ReLU or a sigmoid changes which float32 values tie, and
average pooling does not commute with ReLU at all.
"""

from __future__ import annotations

from .activations import ReLU
from .pooling import MaxPool2D


def commute(layers: list) -> list:
    """The layers in the order a network runs them: as listed, but each ReLU
    directly followed by a MaxPool2D after it instead."""
    order = list(layers)
    i = 0
    while i < len(order) - 1:
        if type(order[i]) is ReLU and type(order[i + 1]) is MaxPool2D:
            order[i], order[i + 1] = order[i + 1], order[i]
            i += 2
        else:
            i += 1
    return order
