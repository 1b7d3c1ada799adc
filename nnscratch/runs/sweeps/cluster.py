"""Where a sweep's trials run: a Dask cluster, local or the user's.

`--workers K` starts a LocalCluster of K worker processes on this machine, one
thread each; `--scheduler tcp://HOST:PORT` connects to a running cluster
(`dask scheduler` and `dask worker`, dask-jobqueue on Slurm or PBS,
dask-kubernetes...). A worker runs one trial per thread, and each trial uses one
BLAS thread (`trial.run_trial`), so a cluster should have about one worker thread
per core: `dask worker --nworkers K --nthreads 1`.

A worker process that dies mid-trial loses nothing: the scheduler gives the task
to another worker (up to distributed.scheduler.allowed-failures times, 3 by
default), which resumes the trial from its last checkpoint.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from ...errors import NnscratchError, check_int

# set in each local worker process before it starts: every library that could start
# a thread per core (BLAS, OpenMP, numba) keeps to one, as K workers share K cores
ONE_THREAD = {
    name: "1"
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                 "NUMBA_NUM_THREADS")
}  # fmt: skip
CONNECT_SECONDS = 5
WAIT_FOR_WORKERS_SECONDS = 60


@contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None):
    """A `distributed.Client` of a new LocalCluster of `workers` processes (default:
    one per core) or of the cluster at `scheduler`; both closed on leaving (a
    cluster of the user's is left running)."""
    # the optional sweep extra: imported only when sweeping, so that `import
    # nnscratch` and the other commands never load Dask
    from distributed import Client, LocalCluster

    if workers is not None and scheduler is not None:
        raise NnscratchError("--workers and --scheduler: give one or the other")
    if scheduler is not None:
        with _connect(Client, scheduler) as client:
            yield client
        return
    workers = check_int(
        "--workers", workers if workers is not None else os.cpu_count() or 1
    )
    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, env=ONE_THREAD,
        dashboard_address=None, silence_logs=40,
    )  # fmt: skip
    try:
        with Client(cluster) as client:
            yield client
    finally:
        cluster.close()


@contextmanager
def _connect(Client, scheduler: str):
    try:
        client = Client(scheduler, timeout=CONNECT_SECONDS)
    except (OSError, TimeoutError, ValueError) as e:
        raise NnscratchError(
            f"--scheduler {scheduler}: cannot reach a Dask scheduler there "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''})"
        ) from None
    try:
        try:
            client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_SECONDS)
        except (OSError, TimeoutError) as e:
            raise NnscratchError(
                f"--scheduler {scheduler}: no worker joined in "
                f"{WAIT_FOR_WORKERS_SECONDS} s ({e})"
            ) from None
        yield client
    finally:
        client.close()


def slots(client) -> int:
    """How many trials run at once: the cluster's worker threads."""
    return max(1, sum(client.nthreads().values()))
