"""The `nnscratch` command: download, train, evaluate, info (and export, report,
predict, serve).

Every user error (bad argument, path or file) ends as one line on stderr and a non-zero
exit code, never a traceback.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import click

from .app import serve as web_app
from .data.catalog import DATASETS
from .errors import NnscratchError
from .imaging import images
from .nn.registry import ACTIVATIONS, OPTIMIZERS, SCHEDULES
from .runs.presets import PRESETS
from .runs.signals import RunInterrupted, SignalInterrupt, sigterm_interrupts


def _sizes(value: str | None, option: str) -> list[int] | None:
    """'256,128' -> [256, 128] (the values are checked with the other settings)."""
    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",")]  # an empty item is a typo: refused
    except ValueError:
        raise click.BadParameter(
            f"expected sizes like 256,128, got {value!r}", param_hint=option
        )


def _batch_size(value: str) -> int | None:
    """'full' means the whole training set in one batch (None)."""
    if value == "full":
        return None
    try:
        return int(value)
    except ValueError:
        raise click.BadParameter(
            f"expected a positive integer or 'full', got {value!r}",
            param_hint="--batch-size",
        )


class FiniteFloat(click.ParamType):
    """A float, but not NaN or infinity (its range is checked with the settings)."""

    name = "float"

    def convert(self, value, param, ctx):
        number = click.FLOAT.convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"expected a finite number, got {value!r}", param, ctx)
        return number


FINITE_FLOAT = FiniteFloat()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="nnscratch")
def cli() -> None:
    """A neural network written from scratch in NumPy, for MNIST-style digits."""


data_dir_option = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder with the IDX files (or with a <dataset>/ folder). "
    "Default: $NNSCRATCH_DATA_DIR, the cache, /usr/share/datasets.",
)
DATASET_CHOICE = click.Choice(sorted(DATASETS))
dataset_option = click.option(
    "--dataset", type=DATASET_CHOICE, default="mnist", show_default=True
)


@cli.command()
@dataset_option
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where to save.",
)
@click.option(
    "--mirror",
    "mirrors",
    multiple=True,
    help="Base URL to download from instead of the known mirrors (repeatable).",
)
def download(dataset: str, cache_dir: Path | None, mirrors: tuple[str, ...]) -> None:
    """Download a dataset into the cache (checksums verified)."""
    from .data.download import download_dataset

    folder = download_dataset(dataset, cache_dir=cache_dir, mirrors=mirrors or None)
    click.echo(f"{dataset}: files in {folder}")


@cli.command()
@dataset_option
@data_dir_option
@click.option(
    "--preset",
    type=click.Choice(list(PRESETS)),
    default="default",
    show_default=True,
    help="A complete set of settings (the README's table).",
)
@click.option("--hidden", help="Hidden layer sizes, e.g. 256,128.")
@click.option("--activation", type=click.Choice(list(ACTIVATIONS.short_names)))
@click.option("--dropout", type=FINITE_FLOAT)
@click.option("--optimizer", type=click.Choice(list(OPTIMIZERS.short_names)))
@click.option("--lr", type=FINITE_FLOAT, help="Learning rate.")
@click.option("--momentum", type=FINITE_FLOAT, help="For sgd.")
@click.option("--weight-decay", type=FINITE_FLOAT, help="For sgd, adam, adamw.")
@click.option("--schedule", type=click.Choice(list(SCHEDULES.short_names)))
@click.option("--warmup", type=FINITE_FLOAT, help="Warm-up epochs.")
@click.option("--epochs", type=int)
@click.option("--batch-size", help="Examples per step, or 'full'.")
@click.option("--l2", type=FINITE_FLOAT, help="L2 penalty on the weights.")
@click.option("--seed", type=int)
@click.option("--validation-split", type=FINITE_FLOAT)
@click.option(
    "--augment",
    help=(
        "Augment training batches: 'auto' (suited to the dataset), 'default', 'none' "
        "or e.g. 'shift=2,rotation=10,scale=0.1'."
    ),
)
@click.option(
    "--limit", type=click.IntRange(1), help="Use only the first N training images."
)
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
@click.option("--quiet", "-q", is_flag=True, help="No per-epoch lines.")
def train(
    dataset, data_dir, preset, limit, out, overwrite, no_report, checkpoint_every,
    resume_dir, quiet, **options,
):  # fmt: skip
    """Train a network and write a run directory (model, history, metrics, report).

    Ctrl-C or SIGTERM stops it after the current step with a checkpoint; --resume
    continues it exactly."""
    from .runs.presets import preset_settings
    from .runs.training import resume_training, run_training

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
    options["hidden"] = _sizes(options["hidden"], "--hidden")
    given = {k: v for k, v in options.items() if v is not None}
    if "batch_size" in given:  # None ('full') is a value there, not "not given"
        given["batch_size"] = _batch_size(given["batch_size"])
    settings = preset_settings(preset, dataset=dataset, **given)
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


@cli.command()
@click.argument("model_path", type=click.Path(path_type=Path))
@click.option(
    "--dataset",
    type=DATASET_CHOICE,
    help="Test set to use. Default: the one the model was trained on (else mnist).",
)
@data_dir_option
def evaluate(model_path: Path, dataset: str | None, data_dir: Path | None) -> None:
    """Accuracy, per-class report and confusion matrix of a saved model on a test set."""
    from .app.evaluation import evaluation_report

    warn = lambda text: click.echo(text, err=True)
    click.echo(evaluation_report(model_path, dataset, data_dir, warn))


@cli.command()
@click.argument("model_path", type=click.Path(path_type=Path))
def info(model_path: Path) -> None:
    """Architecture, parameter count and training settings of a saved model."""
    import json

    from .nn.loading import load_model

    model = load_model(model_path)
    click.echo(model.summary())
    if model.class_names:
        click.echo(f"Classes: {', '.join(model.class_names)}")
    if model.metadata:
        click.echo("Settings: " + json.dumps(model.metadata, indent=2, sort_keys=True))


@cli.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.argument("out_path", metavar="OUT", type=click.Path(path_type=Path))
def export(model_path: Path, out_path: Path) -> None:
    """Write MODEL as an ONNX file OUT, for onnxruntime (needs nnscratch[onnx])."""
    from .app.export import export_onnx
    from .nn.loading import load_model

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
    from .runs.rundir import rebuild_report

    click.echo(str(rebuild_report(run_dir, data_dir)))


@cli.command()
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
    from .app.read_files import predict_files

    failed = predict_files(
        model_path, image_paths, as_json=as_json, show=show, max_pixels=max_pixels,
        number=number, say=click.echo, warn=lambda text: click.echo(text, err=True),
    )  # fmt: skip
    if failed:
        click.get_current_context().exit(1)


@cli.command()
@click.argument("model_path", metavar="MODEL", type=click.Path(path_type=Path))
@click.option(
    "--host", default="127.0.0.1", show_default=True, help="Address to listen on."
)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--max-bytes",
    default=web_app.MAX_BYTES,
    show_default=True,
    type=click.IntRange(min=1),
    help="Largest request body accepted (an uploaded photo).",
)
@click.option(
    "--max-pixels",
    default=web_app.MAX_PIXELS,
    show_default=True,
    type=click.IntRange(min=1),
    help="Largest image accepted, in pixels (checked before decoding).",
)
def serve(model_path: Path, host: str, port: int, max_bytes: int, max_pixels: int):
    """Serve a page to draw digits and see MODEL's prediction live."""
    from .nn.loading import load_model

    web_app.run_server(
        load_model(model_path),
        host,
        port,
        max_bytes=max_bytes,
        max_pixels=max_pixels,
        on_ready=lambda url: click.echo(f"Drawing page at {url} (Ctrl+C to stop)"),
    )


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 on success)."""
    try:
        with sigterm_interrupts():  # SIGTERM stops a command as Ctrl-C does
            result = cli.main(args=argv, prog_name="nnscratch", standalone_mode=False)
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.Abort as e:
        click.echo("aborted", err=True)
        signal = e.__cause__
        return signal.exit_code if isinstance(signal, SignalInterrupt) else 130
    except RunInterrupted as e:
        click.echo(str(e), err=True)
        return e.exit_code
    except NnscratchError as e:
        click.echo(f"error: {e}", err=True)
        return 1
    except OSError as e:
        click.echo(f"error: {e.filename or ''}: {e.strerror or e}", err=True)
        return 1
    except MemoryError as e:  # e.g. --hidden 100000000: NumPy says how much it wanted
        click.echo(f"error: not enough memory ({e or 'MemoryError'})", err=True)
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
