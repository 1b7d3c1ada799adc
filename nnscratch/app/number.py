"""Reading a whole number: `nnscratch predict --number` and the page's number mode.

`read_number(model, gray)` finds the digits (`imaging.segment`), reads them in one
batch and answers {"number", "digits", "lines", "candidates", "size"}; the network
also decides how many digits a piece of touching ink holds (`segment.best_split`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..errors import NnscratchError, NonFiniteOutputError
from ..imaging import decode, images, segment
from ..reporting.figures import image_axes, new_figure, plain_text, save_figure
from .predict import NO_DIGIT, class_names, model_dataset, model_inputs, top_classes

DIGITS = [str(d) for d in range(10)]


def number_refusal(names: list[str]) -> str | None:
    """Why a model with these class names cannot read a number, or None if it can:
    a number's digits are read one by one, by a model of the digits 0 to 9 only (a
    clothes model read "111" as "SandalSandalSandal")."""
    if names == DIGITS:
        return None
    *others, last = names
    return (
        "a number is read by a model of the digits 0 to 9; this one tells apart "
        f"{', '.join(others)} and {last}"
    )


def read_number(model, gray: np.ndarray, layout: dict | None = None) -> dict:
    """A gray picture (H, W) -> {"number", "digits", "lines", "candidates", "size"}.

    "number" is the first line's classes as a string ("" if no digit was found);
    "digits" lists, left to right, `top_classes(...)` of each (without the ten
    probabilities) with its "box" [left, top, right, bottom] in the picture's
    pixels and its "input" (28, 28); "size" is the picture's [width, height].
    Raises NonFiniteOutputError if the model's outputs overflow.
    """
    layout = layout or images.layout_for(model_dataset(model))

    def confidence(inputs):
        return model.predict(model_inputs(model, inputs)).max(axis=1)

    reading = segment.find_digits(gray, confidence=confidence, **layout)
    digits = []
    if reading.digits:
        inputs = np.stack([d.input for d in reading.digits])
        probs = model.predict(model_inputs(model, inputs))
        names = class_names(model, probs.shape[1])
        for d, p in zip(reading.digits, probs):
            result = top_classes(p, names)
            del result["probabilities"]
            digits.append({**result, "box": list(d.box), "input": d.input})
    return {
        "number": "".join(d["label"] for d in digits),
        "digits": digits,
        "lines": reading.lines,
        "candidates": reading.candidates,
        "size": [int(gray.shape[1]), int(gray.shape[0])],
    }


def number_warnings(result: dict, name: str) -> list[str]:
    """Lines for stderr: many candidates (likely not a number), several lines."""
    out = []
    if result["candidates"] > segment.MAX_DIGITS:
        out.append(
            f"{name}: {result['candidates']} candidate digits, more than "
            f"{segment.MAX_DIGITS}: this is likely not a number"
        )
    if result["lines"] > 1:
        out.append(f"{name}: digits on {result['lines']} lines; read the first only")
    return out


def predict_number_file(model, path: Path, max_pixels: int) -> tuple[dict, object]:
    """Read the number in one image file: (result, its gray picture or None).

    The result is `read_number(...)` plus "file" and "warnings", or {"file",
    "number": None, "error"} when the file cannot be used or holds no digit.
    """
    try:
        gray = decode.load_image(path, max_pixels=max_pixels)
    except NnscratchError as e:
        return {"file": str(path), "number": None, "error": str(e)}, None
    try:
        result = {"file": str(path), **read_number(model, gray)}
    except NonFiniteOutputError as e:
        return {"file": str(path), "number": None, "error": f"{path}: {e}"}, gray
    if not result["digits"]:
        return {"file": str(path), "number": None, "error": f"{path}: {NO_DIGIT}"}, gray
    result["warnings"] = number_warnings(result, str(path))
    return result, gray


def format_number(result: dict) -> str:
    """One line: 'year.jpg: 2026 (digits 99.1%, 97.0%, 99.8%, 95.2%)'."""
    shares = ", ".join(f"{d['probability']:.1%}" for d in result["digits"])
    return f"{result['file']}: {result['number']} (digits {shares})"


def numbers_json(results: list[dict]) -> str:
    """`predict_number_file` results as one JSON list (inputs rounded to 4 places)."""
    rows = []
    for r in results:
        if "digits" in r:
            digits = [
                {**d, "input": np.round(d["input"], 4).tolist()} for d in r["digits"]
            ]
            r = {**r, "digits": digits}
        rows.append(r)
    return json.dumps(rows, indent=2, allow_nan=False)


def save_numbers(rows: list[tuple[dict, np.ndarray]], out: Path) -> None:
    """Save a PNG: each picture with its digits' boxes, each reading under its box."""
    from matplotlib.patches import Rectangle

    fig = new_figure((7.0, 2.8 * len(rows)))
    for (result, gray), ax in zip(rows, image_axes(fig, len(rows), len(rows), 1)):
        ax.imshow(gray, cmap="gray", vmin=0, vmax=1)
        name = plain_text([Path(result["file"]).name])[0]
        number = plain_text([result.get("number") or "no digit"])[0]
        ax.set_title(f"{name}: {number}", fontsize=10)
        for d in result.get("digits", []):
            left, top, right, bottom = d["box"]
            ax.add_patch(
                Rectangle(
                    (left - 0.5, top - 0.5),
                    right - left,
                    bottom - top,
                    fill=False,
                    edgecolor="#e8473c",
                    linewidth=1.5,
                )
            )
            label = plain_text([d["label"]])[0]
            ax.text(
                (left + right) / 2,
                bottom + 2,
                f"{label} {d['probability']:.0%}",
                color="#e8473c",
                fontsize=8,
                ha="center",
                va="top",
            )
    save_figure(fig, out, dpi=100)
