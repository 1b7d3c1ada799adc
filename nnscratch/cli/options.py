"""The options several commands share: data, and the settings of a training run
(`run_options`: `train` and `sweep`)."""

from __future__ import annotations

import math
from pathlib import Path

import click

from ..data.catalog import DATASETS
from ..nn.registry import ACTIVATIONS, OPTIMIZERS, SCHEDULES
from ..runs.presets import PRESETS


def sizes(value: str | None, option: str) -> list[int] | None:
    """'256,128' -> [256, 128] (the values are checked with the other settings)."""
    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",")]  # an empty item is a typo: refused
    except ValueError:
        raise click.BadParameter(
            f"expected sizes like 256,128, got {value!r}", param_hint=option
        )


def batch_size(value: str) -> int | None:
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


# every setting of a run, in `nnscratch train --help`'s order
RUN_OPTIONS = [
    click.option(
        "--preset",
        type=click.Choice(list(PRESETS)),
        default="default",
        show_default=True,
        help="A complete set of settings (the README's table).",
    ),
    click.option("--hidden", help="Hidden layer sizes, e.g. 256,128."),
    click.option("--activation", type=click.Choice(list(ACTIVATIONS.short_names))),
    click.option("--dropout", type=FINITE_FLOAT),
    click.option("--optimizer", type=click.Choice(list(OPTIMIZERS.short_names))),
    click.option("--lr", type=FINITE_FLOAT, help="Learning rate."),
    click.option("--momentum", type=FINITE_FLOAT, help="For sgd."),
    click.option("--weight-decay", type=FINITE_FLOAT, help="For sgd, adam, adamw."),
    click.option("--schedule", type=click.Choice(list(SCHEDULES.short_names))),
    click.option("--warmup", type=FINITE_FLOAT, help="Warm-up epochs."),
    click.option("--epochs", type=int),
    click.option("--batch-size", help="Examples per step, or 'full'."),
    click.option("--l2", type=FINITE_FLOAT, help="L2 penalty on the weights."),
    click.option("--seed", type=int),
    click.option("--validation-split", type=FINITE_FLOAT),
    click.option(
        "--augment",
        help=(
            "Augment training batches: 'auto' (suited to the dataset), 'default', 'none' "
            "or e.g. 'shift=2,rotation=10,scale=0.1'."
        ),
    ),
    click.option(
        "--limit", type=click.IntRange(1), help="Use only the first N training images."
    ),
]


def run_options(command):
    """Decorate `command` with RUN_OPTIONS (shown in that order)."""
    for option in reversed(RUN_OPTIONS):
        command = option(command)
    return command


def given_settings(options: dict) -> dict:
    """The RunSettings values of the RUN_OPTIONS given on the command line (not the
    unset ones), converted: --hidden 256,128 -> [256, 128], --batch-size full -> None."""
    options = dict(options)
    options["hidden"] = sizes(options.get("hidden"), "--hidden")
    given = {k: v for k, v in options.items() if v is not None}
    if "batch_size" in given:  # None ('full') is a value there, not "not given"
        given["batch_size"] = batch_size(given["batch_size"])
    return given
