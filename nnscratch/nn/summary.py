"""The text table `Sequential.summary` prints: layers, output shapes, parameter counts."""

from __future__ import annotations

import numpy as np


def summary_table(model) -> str:
    """A table of layers, output shapes ("?" while input_shape is unknown) and
    parameter counts; like Keras, the totals count batch-norm statistics as
    non-trainable parameters."""
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
    trainable = model.count_params()
    fixed = sum(s.size for layer in model.layers for s in layer.state.values())
    lines += [
        line,
        f"Total params: {trainable + fixed:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {fixed:,}",
    ]
    return "\n".join(lines)


def layer_rows(model) -> list[tuple[str, str, str]]:
    """(index and name, output shape, parameter count) of each layer, as text; the
    shapes from a forward pass of one example of zeros."""
    rows = []
    x = None
    if model.input_shape is not None:
        x = np.zeros((1, *model.input_shape), dtype=np.float32)
    for i, layer in enumerate(model.layers):
        shape = "?"
        if x is not None:
            x = layer.forward(x, training=False)
            shape = str((None, *x.shape[1:]))
        count = sum(a.size for a in (*layer.params.values(), *layer.state.values()))
        rows.append((f"{i} {type(layer).__name__}", shape, f"{count:,}"))
    return rows
