"""The options several commands share: data, and the settings of a training run
(`run_options`: `train` and `sweep`)."""

from __future__ import annotations

import math
from pathlib import Path

import click

from ..data.catalog import DATASETS
from ..errors import NnscratchError
from ..nn.registry import ACTIVATIONS, OPTIMIZERS, SCHEDULES
from ..runs.presets import PRESETS, preset_settings
from ..runs.settings import INITS, RunSettings


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


def host_name(value: str, option: str) -> str:
    """A name the Host header gives ("digits.example.com", "*.example.com"), not a
    URL or a name with a port: the port is not compared, and a URL never matches."""
    if not value or any(c in value for c in "/:@ "):
        raise click.BadParameter(
            f"expected a host name like digits.example.com, got {value!r}",
            param_hint=option,
        )
    return value


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
    "--dataset",
    type=DATASET_CHOICE,
    default="mnist",
    show_default=True,
    help="The dataset.",
)


def setting(*decls, **kwargs):
    """An option that overrides one setting of the preset (unset: the preset's)."""
    return click.option(*decls, show_default="the preset's", **kwargs)


# every setting of a run, in `nnscratch train --help`'s order
RUN_OPTIONS = [
    click.option(
        "--preset",
        type=click.Choice(list(PRESETS)),
        default="default",
        show_default=True,
        help="A complete set of settings (the README's table).",
    ),
    setting(
        "--hidden", metavar="SIZES", help="Hidden layer sizes of the MLP, e.g. 256,128."
    ),
    setting(
        "--activation",
        type=click.Choice(list(ACTIVATIONS.short_names)),
        help="Activation of the MLP's hidden layers.",
    ),
    setting(
        "--init",
        type=click.Choice(list(INITS)),
        help="Initial weights: he (for ReLU), xavier (sigmoid, tanh) or normal.",
    ),
    setting("--dropout", type=FINITE_FLOAT, help="Dropout rate, in [0, 1)."),
    setting(
        "--optimizer",
        type=click.Choice(list(OPTIMIZERS.short_names)),
        help="The optimiser.",
    ),
    setting("--lr", type=FINITE_FLOAT, help="Learning rate."),
    setting("--momentum", type=FINITE_FLOAT, help="Momentum, for sgd."),
    setting("--weight-decay", type=FINITE_FLOAT, help="For sgd, adam, adamw."),
    setting(
        "--schedule",
        type=click.Choice(list(SCHEDULES.short_names)),
        help="How the learning rate changes over the epochs.",
    ),
    setting("--warmup", type=FINITE_FLOAT, help="Epochs of learning-rate warm-up."),
    setting("--epochs", type=int, help="Passes over the training images."),
    setting("--batch-size", metavar="N|full", help="Examples per step, or 'full'."),
    setting("--l2", type=FINITE_FLOAT, help="L2 penalty on the weights."),
    setting(
        "--seed",
        type=int,
        help="Seed of the weights, the validation split, shuffling, dropout and "
        "augmentation.",
    ),
    setting(
        "--validation-split",
        type=FINITE_FLOAT,
        help="Fraction of the training images held out for validation (0: none).",
    ),
    setting(
        "--augment",
        metavar="SPEC",
        help=(
            "Augment training batches: 'auto' (suited to the dataset), 'default', 'none' "
            "or e.g. 'shift=2,rotation=10,scale=0.1'."
        ),
    ),
    click.option(
        "--limit",
        type=click.IntRange(1),
        help="Use only the first N training images (default: all).",
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


def checked_settings(preset: str, dataset: str, options: dict) -> RunSettings:
    """The run's settings: `preset` with the RUN_OPTIONS given in `options`. A bad
    value (--lr -1, --epochs 0) is a usage error, exit code 2, as click makes --lr abc
    or --limit 0; 1 is left for failures of the work itself."""
    try:
        return preset_settings(preset, dataset=dataset, **given_settings(options))
    except NnscratchError as e:
        raise click.UsageError(str(e)) from None
