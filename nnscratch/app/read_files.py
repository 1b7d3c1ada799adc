"""`nnscratch predict`: read every picture given, as a digit or (`number`) as a
whole number, and say what each holds; the command in cli.py only parses options."""

from __future__ import annotations

from pathlib import Path

from ..errors import NnscratchError
from ..nn.loading import load_model
from . import number as numbers
from .predict import (
    as_classifier,
    class_names,
    format_result,
    predict_file,
    results_json,
    save_comparison,
)


def predict_files(
    model_path: Path, image_paths, *, as_json: bool, show: Path | None,
    max_pixels: int, number: bool, say, warn,
) -> int:  # fmt: skip
    """Read each image with the model at `model_path`; `say(text)` gets the answers
    (one line each, or one JSON list), `warn(text)` errors and warnings. A file that
    cannot be read does not stop the others. Returns how many files failed.
    `show`: a PNG of every input beside what the network saw."""
    if show is not None and not show.parent.is_dir():  # said before any answer
        raise NnscratchError(f"--show {show}: folder {show.parent} does not exist")
    model = as_classifier(load_model(model_path), model_path)
    if number:  # said before any file is read
        refusal = numbers.number_refusal(class_names(model, model.output_shape[-1]))
        if refusal:
            raise NnscratchError(f"--number with {model_path}: {refusal}")
    read = numbers.predict_number_file if number else predict_file
    results, shown = [], []
    for path in image_paths:
        result, gray = read(model, path, max_pixels)
        results.append(result)
        if gray is not None:
            shown.append((result, gray))
        if "error" in result:
            warn(result["error"])  # names the file already
            continue
        for warning in result.pop("warnings", []):
            warn(f"warning: {warning}")
        if not as_json:
            say(numbers.format_number(result) if number else format_result(result))
    if as_json:
        say(numbers.numbers_json(results) if number else results_json(results))
    if show is not None:
        _show(shown, show, number, say if not as_json else None, warn)
    failed = sum("error" in r for r in results)
    if failed:
        warn(f"{failed} of {len(results)} images failed")
    return failed


def _show(shown: list, path: Path, number: bool, say, warn) -> None:
    """Save the picture of `shown` (result, gray image) pairs to `path`."""
    if not shown:
        warn(f"--show: no image could be read, {path} not written")
        return
    try:
        (numbers.save_numbers if number else save_comparison)(shown, path)
    except (NnscratchError, OSError) as e:
        raise NnscratchError(f"--show: {e}") from None
    if say is not None:
        say(f"saved {path}")
