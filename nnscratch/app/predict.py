"""`nnscratch predict MODEL IMAGE...`: classify a user's own pictures of digits.

Also the helpers the web app shares: fitting a 28x28 digit to a model's input shape
and describing its probabilities (best class and runners-up).
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import click
import numpy as np

from ..errors import NnscratchError
from ..imaging import images
from ..nn.loading import load_model
from ..reporting.plots import plain_text

NO_DIGIT = "no digit found (the image is blank, the ink too faint, or only a dot)"


def model_input(model, digit: np.ndarray) -> np.ndarray:
    """A (28, 28) digit -> a batch of one shaped for `model`: (1, *model.input_shape)."""
    shape = tuple(model.input_shape) if model.input_shape is not None else (28, 28)
    if int(np.prod(shape)) != digit.size:
        raise NnscratchError(
            f"the model expects inputs of shape {shape}, not a 28x28 image"
        )
    return digit.astype(np.float32).reshape((1, *shape))


def class_names(model, n_classes: int) -> list[str]:
    names = model.class_names
    if names is None or len(names) != n_classes:
        return [str(i) for i in range(n_classes)]
    return list(names)


def describe(probs: np.ndarray, names: list[str], top: int = 3) -> dict:
    """(C,) probabilities -> {"digit", "label", "probability", "top", "probabilities"}.

    "digit" is the class index (the digit itself for MNIST); "top" lists the `top`
    most likely classes, best first, as {"digit", "label", "probability"}.
    """
    order = np.argsort(-probs, kind="stable")[:top]
    best = int(order[0])
    return {
        "digit": best,
        "label": names[best],
        "probability": float(probs[best]),
        "top": [
            {"digit": int(i), "label": names[i], "probability": float(probs[i])}
            for i in order
        ],
        "probabilities": [float(p) for p in probs],
    }


def model_dataset(model) -> str | None:
    """The dataset the model was trained on, from its saved settings (None if unknown)."""
    training = model.metadata.get("training")
    dataset = training.get("dataset") if isinstance(training, dict) else None
    return dataset if isinstance(dataset, str) else None


def predict_file(model, path: Path, max_pixels: int) -> tuple[dict, np.ndarray | None]:
    """Predict one image file: (result, its grayscale picture or None if unreadable).

    The result is `describe(...)` plus "file" and "input" (the 28x28 digit), or
    {"file", "digit": None, "error"} when the file could not be used (the error
    message starts with the file name).
    """
    try:
        gray = images.load_image(path, max_pixels=max_pixels)
    except NnscratchError as e:
        return {"file": str(path), "digit": None, "error": str(e)}, None
    digit = images.to_mnist(gray, **images.layout_for(model_dataset(model)))
    if digit is None:
        return {"file": str(path), "digit": None, "error": f"{path}: {NO_DIGIT}"}, gray
    probs = model.predict(model_input(model, digit))[0]
    result = {"file": str(path), **describe(probs, class_names(model, probs.size))}
    result["input"] = digit
    return result, gray


def format_result(result: dict) -> str:
    """One line: 'digit.png: 7 (97.3%), then 1 (1.5%), 9 (0.6%)'."""
    best, *rest = result["top"]
    line = f"{result['file']}: {best['label']} ({best['probability']:.1%})"
    if rest:
        others = ", ".join(f"{r['label']} ({r['probability']:.1%})" for r in rest)
        line += f", then {others}"
    return line


def save_comparison(rows: list[tuple[dict, np.ndarray]], out: Path) -> None:
    """Save a PNG: each input picture beside the 28x28 image the network saw."""
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, thread-safe

    fig = Figure(figsize=(5.0, 2.4 * len(rows)), layout="constrained")
    axes = fig.subplots(len(rows), 2, squeeze=False)
    for (result, gray), (ax_in, ax_net) in zip(rows, axes):
        ax_in.imshow(gray, cmap="gray", vmin=0, vmax=1)
        ax_in.set_title(plain_text([Path(result["file"]).name])[0], fontsize=9)
        if result.get("input") is not None:
            ax_net.imshow(result["input"], cmap="gray", vmin=0, vmax=1)
            label = plain_text([result["label"]])[0]
            title = f"seen: {label} ({result['probability']:.0%})"
        else:
            ax_net.imshow(np.zeros((28, 28)), cmap="gray", vmin=0, vmax=1)
            title = "seen: no digit"
        ax_net.set_title(title, fontsize=9)
        for ax in (ax_in, ax_net):
            ax.set_xticks([])
            ax.set_yticks([])
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    write_atomic(out, buf.getvalue())


def write_atomic(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise NnscratchError(f"{path}: folder {folder} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@click.command("predict")
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.argument(
    "image_paths",
    metavar="IMAGE...",
    nargs=-1,
    required=True,
    type=click.Path(path_type=Path),
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON list of results.")
@click.option(
    "--show",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save a PNG of each input beside the 28x28 image the network saw.",
)
@click.option(
    "--max-pixels",
    type=click.IntRange(min=1),
    default=images.MAX_PIXELS,
    show_default=True,
    help="Refuse images with more pixels than this (decompression bombs).",
)
def predict_command(model_path, image_paths, as_json, show, max_pixels):
    """Predict the digit in each IMAGE (PNG, JPEG, GIF, BMP, WebP...) with MODEL.

    Prints the best class with its probability and the next two. A file that cannot
    be read gets a one-line error on stderr and the others are still predicted; the
    exit code is 1 if any file failed.
    """
    model = load_model(model_path)  # errors: one "error: ..." line, from cli.main
    results, shown = [], []
    for path in image_paths:
        result, gray = predict_file(model, path, max_pixels)
        results.append(result)
        if gray is not None:
            shown.append((result, gray))
        if "error" in result:
            click.echo(result["error"], err=True)  # names the file already
        elif not as_json:
            click.echo(format_result(result))
    if as_json:
        for result in results:
            if "input" in result:
                result["input"] = np.round(result["input"], 4).tolist()
        click.echo(json.dumps(results, indent=2))
    if show is not None:
        if shown:
            try:
                save_comparison(shown, show)
            except (NnscratchError, OSError) as e:
                raise NnscratchError(f"--show: {e}") from None
            if not as_json:
                click.echo(f"saved {show}")
        else:
            click.echo(f"--show: no image could be read, {show} not written", err=True)
    failed = sum("error" in r for r in results)
    if failed:
        click.echo(f"{failed} of {len(results)} images failed", err=True)
        click.get_current_context().exit(1)
