"""`nnscratch sweep`: a hyperparameter search over the settings of `train`."""

from __future__ import annotations

from pathlib import Path

import click

from ..errors import ArgumentError
from ..runs.sweeps import sweep as run_sweep
from .commands import cli
from .options import (
    checked_settings,
    data_dir_option,
    dataset_option,
    given_settings,
    run_options,
)


@cli.command(
    short_help="Search the settings of train for the best validation accuracy."
)
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The sweep's folder (on a file system every worker sees).",
)
@click.option(
    "--trials",
    required=True,
    type=click.IntRange(1),
    help="Finished trials the study should hold (a rerun runs only the missing).",
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=SPEC",
    help="A setting to search: lr=loguniform:1e-4:1e-2, dropout=uniform:0:0.5, "
    "hidden=int:32:512, optimizer=choice:adam,sgd (repeatable).",
)
@click.option(
    "--space",
    type=click.Path(dir_okay=False, path_type=Path),
    help='A TOML file of NAME = "SPEC" lines (--param adds to it).',
)
@click.option(
    "--workers",
    type=click.IntRange(1),
    help="Start a local Dask cluster of this many processes (default: one per core).",
)
@click.option(
    "--scheduler",
    metavar="tcp://HOST:PORT",
    help="Run the trials on this running Dask cluster instead.",
)
@click.option(
    "--storage",
    metavar="URL",
    help="Optuna storage URL (e.g. postgresql://...). Default: sqlite in --out.",
)
@click.option(
    "--study-name",
    metavar="NAME",
    default="sweep",
    show_default=True,
    help="The study's name there.",
)
@click.option(
    "--pruner",
    type=click.Choice(["median", "none"]),
    default="median",
    show_default=True,
    help="Stop trials below the median of the others at the same epoch.",
)
@dataset_option
@data_dir_option
@run_options
@click.option(
    "--checkpoint-every",
    type=click.IntRange(1),
    help="Also checkpoint each trial every N steps (one is written every epoch).",
)
@click.option(
    "--quiet", "-q", is_flag=True, help="Print only the result line (no progress)."
)
def sweep(
    out, trials, params, space, workers, scheduler, storage, study_name, pruner,
    dataset, data_dir, preset, limit, checkpoint_every, quiet, **options,
):  # fmt: skip
    """Search the settings of `train` for the best validation accuracy (Optuna's
    TPE, pruning), running trials in parallel on Dask.

    Writes OUT/trials/ (a run directory per trial), OUT/trials.csv, OUT/best/ (the
    best trial's run, with its test accuracy) and OUT/report.html. Rerun the same
    command after an interruption: it runs only what is missing. Exits 2 for a bad
    --param, --space or combination of options, or options that do not go with the
    study in --out (a rerun with other settings; nothing run), 1 when no trial
    completed (every one failed: their errors are in trials.csv), the scheduler or
    storage cannot be reached or no worker joins the scheduler, 130 for Ctrl-C."""
    checked_settings(preset, dataset, options)  # the trials' base, as train's
    try:
        result = run_sweep(
            out, trials, params, space=space, workers=workers, scheduler=scheduler,
            storage=storage, study_name=study_name, pruner=pruner, data_dir=data_dir,
            limit=limit, checkpoint_every=checkpoint_every, quiet=quiet, preset=preset,
            dataset=dataset, **given_settings(options),
        )  # fmt: skip
    except ArgumentError as e:  # raised before any trial runs: exit code 2
        raise click.UsageError(str(e)) from None
    return 0 if result.best_number is not None else 1
