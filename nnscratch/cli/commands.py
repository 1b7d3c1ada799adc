"""The `nnscratch` commands: download, train, evaluate, info, export, report, predict,
serve (`sweep` is in its own module)."""

from __future__ import annotations

from pathlib import Path

import click

from ..app.limits import MAX_BYTES, MAX_PIXELS
from ..errors import NnscratchError
from ..imaging import decode
from .options import (
    DATASET_CHOICE,
    checked_settings,
    data_dir_option,
    dataset_option,
    host_name,
    run_options,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nnscratch")
def cli() -> None:
    """A neural network written from scratch in NumPy, for MNIST-style digits."""


@cli.command()
@dataset_option
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to save (into a <dataset>/ folder there). Default: "
    "$NNSCRATCH_CACHE_DIR, else the user cache (~/.cache/nnscratch on Linux).",
)
@click.option(
    "--mirror",
    "mirrors",
    metavar="URL",
    multiple=True,
    help="Base URL to download from instead of the known mirrors (repeatable).",
)
def download(dataset: str, cache_dir: Path | None, mirrors: tuple[str, ...]) -> None:
    """Download a dataset into the cache (checksums verified)."""
    from ..data.download import download_dataset

    folder = download_dataset(dataset, cache_dir=cache_dir, mirrors=mirrors or None)
    click.echo(f"{dataset}: files in {folder}")


@cli.command(short_help="Train a network and write a run directory.")
@dataset_option
@data_dir_option
@run_options
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run directory (default runs/<date>-<time>-<preset>).",
)
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace the run already in --out (otherwise an error).",
)
@click.option("--no-report", is_flag=True, help="Skip the figures and report.html.")
@click.option(
    "--checkpoint-every",
    type=click.IntRange(1),
    help="Also write a checkpoint every N steps (one is written every epoch).",
)
@click.option(
    "--resume",
    "resume_dir",
    metavar="RUN_DIR",
    type=click.Path(file_okay=False, path_type=Path),
    help="Continue the interrupted run in RUN_DIR, with its recorded settings.",
)
@click.option(
    "--quiet",
    "-q",
    is_flag=True,
    help="Print only the result line (no summary, no per-epoch lines).",
)
def train(
    dataset, data_dir, preset, limit, out, overwrite, no_report, checkpoint_every,
    resume_dir, quiet, **options,
):  # fmt: skip
    """Train a network and write a run directory (model, history, metrics, report).

    Ctrl-C or SIGTERM stops it after the current step with a checkpoint; --resume
    continues it exactly."""
    from ..runs.training import resume_training, run_training

    if resume_dir is not None:
        source = click.get_current_context().get_parameter_source
        given = [f"--{k.replace('_', '-')}" for k in ("dataset", "data_dir", "preset",
                 "limit", "out", "overwrite", "no_report", "checkpoint_every", *options)
                 if source(k) == click.core.ParameterSource.COMMANDLINE]  # fmt: skip
        if given:
            raise click.UsageError(
                f"--resume takes the run's settings: drop {given[0]}"
            )
        return resume_training(resume_dir, verbose=0 if quiet else 1)
    settings = checked_settings(preset, dataset, options)
    run_training(
        settings,
        data_dir=data_dir,
        out=out,
        limit=limit,
        report=not no_report,
        verbose=0 if quiet else 1,
        overwrite=overwrite,
        checkpoint_every=checkpoint_every,
    )


@cli.command(short_help="A saved model's accuracy, per-class report, confusion matrix.")
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.option(
    "--dataset",
    type=DATASET_CHOICE,
    help="Test set to use. Default: the one the model was trained on (else mnist).",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder with the IDX files (or with a <dataset>/ folder). Default: the one "
    "the model was trained from, else $NNSCRATCH_DATA_DIR, the cache, "
    "/usr/share/datasets.",
)
def evaluate(model_path: Path, dataset: str | None, data_dir: Path | None) -> None:
    """Accuracy, per-class report and confusion matrix of a saved model on a test set."""
    from ..app.evaluation import evaluation_report

    warn = lambda text: click.echo(text, err=True)
    click.echo(evaluation_report(model_path, dataset, data_dir, warn))


@cli.command(short_help="A saved model's layers, parameters and training settings.")
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
def info(model_path: Path) -> None:
    """Architecture, parameter count and training settings of a saved model."""
    import json

    from ..nn.loading import load_model

    model = load_model(model_path)
    click.echo(model.summary())
    if model.class_names:
        click.echo(f"Classes: {', '.join(model.class_names)}")
    if model.metadata:
        click.echo("Settings: " + json.dumps(model.metadata, indent=2, sort_keys=True))


@cli.command(short_help="Write a model as an ONNX file (needs nnscratch[onnx]).")
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.argument("out_path", metavar="OUT", type=click.Path(path_type=Path))
def export(model_path: Path, out_path: Path) -> None:
    """Write MODEL as an ONNX file OUT, for onnxruntime (needs nnscratch[onnx])."""
    from ..app.export import export_onnx
    from ..nn.loading import load_model

    if out_path.exists() and model_path.exists() and out_path.samefile(model_path):
        raise NnscratchError(  # the rename would replace the model by its ONNX file
            f"export: OUT {out_path} is MODEL itself; give the ONNX file another path"
        )
    model = load_model(model_path)
    export_onnx(model, out_path)
    shape = ", ".join(map(str, model.input_shape))
    click.echo(
        f"{out_path}: input 'images' float32 (batch, {shape}) in [0, 1], output "
        f"'probs' (batch, {', '.join(map(str, model.output_shape))})"
    )


@cli.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder with the test set (default: the one the run was trained on).",
)
def report(run_dir: Path, data_dir: Path | None) -> None:
    """Rebuild the figures and report.html of a training run directory."""
    from ..runs.rebuild import rebuild_report

    click.echo(str(rebuild_report(run_dir, data_dir)))


@cli.command(short_help="Predict the digit, or the number, in image files.")
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
    default=decode.MAX_PIXELS,
    show_default=True,
    help="Refuse images with more pixels than this (decompression bombs).",
)
@click.option(
    "--number",
    is_flag=True,
    help="Read a whole number: every digit, left to right (the first line only).",
)
def predict(model_path, image_paths, as_json, show, max_pixels, number):
    """Predict the digit in each IMAGE (PNG, JPEG, GIF, BMP, WebP...) with MODEL.

    Prints the best class with its probability and the next two; with --number, the
    number and each digit's probability. A file that cannot be read gets a one-line
    error on stderr and the others are still predicted; the exit code is 1 if any
    file failed.
    """
    from ..app.read_files import predict_files

    failed = predict_files(
        model_path, image_paths, as_json=as_json, show=show, max_pixels=max_pixels,
        number=number, say=click.echo, warn=lambda text: click.echo(text, err=True),
    )  # fmt: skip
    if failed:
        click.get_current_context().exit(1)


@cli.command(short_help="Serve a page to draw digits and see a model's answer live.")
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.option(
    "--host",
    metavar="HOST",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on.",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on (0: any free one).",
)
@click.option(
    "--max-bytes",
    default=MAX_BYTES,
    show_default=True,
    type=click.IntRange(min=1),
    help="Largest request body accepted (an uploaded photo).",
)
@click.option(
    "--max-pixels",
    default=MAX_PIXELS,
    show_default=True,
    type=click.IntRange(min=1),
    help="Largest image accepted, in pixels (checked before decoding).",
)
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    metavar="NAME",
    help="Also answer to this Host name (repeatable): the public name of a reverse"
    " proxy in front of the server, passed on as the Host (nginx: proxy_set_header"
    " Host $host). With a --host other than 127.0.0.1, localhost or ::1, only"
    " these names.",
    callback=lambda _, __, names: [host_name(n, "--allowed-host") for n in names],
)
def serve(
    model_path: Path, host: str, port: int, max_bytes: int, max_pixels: int,
    allowed_hosts: list[str],
):  # fmt: skip
    """Serve a page to draw digits and see MODEL's prediction live."""
    from ..app.predict import as_classifier
    from ..app.security import LOOPBACK_HOSTS
    from ..app.serve import run_server  # Starlette and Hypercorn: only to serve
    from ..nn.loading import load_model

    def ready(url: str) -> None:
        if host not in LOOPBACK_HOSTS:  # the server is made for this machine
            click.echo(
                f"warning: listening on {host}, other machines can use the page (no "
                "HTTPS, no limit per client): to serve them, see --allowed-host",
                err=True,
            )
        click.echo(f"Drawing page at {url} (Ctrl+C to stop)")

    run_server(
        as_classifier(load_model(model_path), model_path),
        host,
        port,
        max_bytes=max_bytes,
        max_pixels=max_pixels,
        on_ready=ready,
        public_names=allowed_hosts,
    )
