"""The text table `Sequential.summary` prints: layers, output shapes, parameter counts."""

from __future__ import annotations

import numpy as np

from .activations import model_running
from .parameters import walk


def summary_table(model) -> str:
    """A table of layers, output shapes ("?" until the model is built) and parameter
    counts (inner layers' included; "(frozen)" marks frozen layers); like Keras, the
    totals count batch-norm statistics as non-trainable parameters."""
    rows = [("Layer", "Output shape", "Params"), *layer_rows(model)]
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    line = "-" * (sum(widths) + 4)
    lines = [line]
    for j, row in enumerate(rows):
        lines.append(
            f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}"
        )
        if j == 0:
            lines.append(line)
    total = trainable = 0
    for layer in model.layers:
        for _, inner, is_trained in walk(layer):
            params = sum(p.size for p in inner.params.values())
            total += params + sum(s.size for s in inner.state.values())
            trainable += params if is_trained else 0
    lines += [
        line,
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
    ]
    return "\n".join(lines)


def layer_rows(model) -> list[tuple[str, str, str]]:
    """(index and name, output shape, parameter count) of each layer, as text; the
    shapes from a forward pass of one example of zeros."""
    rows = []
    x = None
    if model.built:
        x = np.zeros((1, *model.input_shape), dtype=np.float32)
    for i, layer in enumerate(model.layers):
        shape = "?"
        if x is not None:
            with model_running(model.layers):
                x = layer.forward(x, training=False)
            shape = str((None, *x.shape[1:]))
        count = sum(
            a.size
            for _, inner, _ in walk(layer)
            for a in (*inner.params.values(), *inner.state.values())
        )
        frozen = "" if layer.trainable else " (frozen)"
        rows.append((f"{i} {type(layer).__name__}{frozen}", shape, f"{count:,}"))
    return rows
