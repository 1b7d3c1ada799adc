"""The `nnscratch` command: download, train, evaluate, info (and report, predict, serve).

Every user error (bad argument, path or file) ends as one line on stderr and a non-zero
exit code, never a traceback.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import click

from .app.predict import predict_command
from .app.serve import serve_command
from .data.catalog import DATASETS
from .errors import NnscratchError
from .nn.registry import ACTIVATIONS, OPTIMIZERS, SCHEDULES
from .runs.presets import PRESETS


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
@click.option("--quiet", "-q", is_flag=True, help="No per-epoch lines.")
def train(
    dataset, data_dir, preset, limit, out, overwrite, no_report, quiet, **options
) -> None:
    """Train a network and write a run directory (model, history, metrics, report)."""
    from .runs.presets import preset_settings
    from .runs.training import run_training

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
    from .app.predict import model_dataset
    from .data.catalog import CLASS_NAMES
    from .data.loading import load_dataset
    from .nn.loading import load_model
    from .reporting.metrics import (
        classification_report,
        confusion_matrix,
        format_confusion_matrix,
    )

    model = load_model(model_path)
    trained_on = model_dataset(model)
    if dataset is None:
        dataset = trained_on or "mnist"
    elif trained_on is not None and dataset != trained_on:
        click.echo(
            f"warning: {model_path} was trained on {trained_on}, not {dataset}",
            err=True,
        )
    _, (x_test, y_test) = load_dataset(dataset, data_dir)
    result = model.evaluate(x_test, y_test)
    predicted = model.predict(x_test).argmax(axis=1)
    names = model.class_names or CLASS_NAMES[dataset]
    click.echo(
        f"{dataset} test set: accuracy {result['accuracy']:.4f}, loss {result['loss']:.4f}"
    )
    click.echo(classification_report(y_test, predicted, names))
    click.echo(
        format_confusion_matrix(confusion_matrix(y_test, predicted, len(names)), names)
    )


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


cli.add_command(predict_command, name="predict")
cli.add_command(serve_command, name="serve")


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 on success)."""
    try:
        result = cli.main(args=argv, prog_name="nnscratch", standalone_mode=False)
    except click.ClickException as e:
        e.show()
        return e.exit_code
    except click.Abort:
        click.echo("aborted", err=True)
        return 130
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
