"""Hyperparameter sweeps: `nnscratch sweep` and `nnscratch.sweep`, on Optuna (TPE,
pruning, a study in a database) and Dask (a local cluster, or the user's).

    space.py    the search space: --param specs, space files, a trial's settings
    study.py    the Optuna study: storage, sampler, pruner, what a rerun finds
    cluster.py  the Dask cluster the trials run on
    trial.py    one trial, as a worker runs it: an ordinary run directory
    driver.py   the sweep itself: asking, running and telling trials
    results.py  trials.csv, best/ and the result object
    report.py   the sweep's report.html

Optuna and Dask are the optional `sweep` extra, imported only when a sweep runs:
`import nnscratch` and the other commands do without them.
"""

from .driver import sweep
from .results import SweepResult

__all__ = ["SweepResult", "sweep"]
