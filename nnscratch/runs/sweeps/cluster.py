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

import logging
import os
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from ...errors import NnscratchError, check_int
from ..signals import SIGNALS

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

    workers = check_cluster(workers, scheduler)
    if scheduler is not None:
        with _connect(Client, scheduler) as client:
            yield client
        return
    # no dashboard; the scheduler's HTTP server (health checks) still starts, on
    # 8787 unless told: on a free local port, it does not warn that 8787 is taken
    held = _hold_signals()
    try:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, env=ONE_THREAD,
            dashboard_address=None, silence_logs=40,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            preload=[__name__],  # dask_setup below, in each worker process
        )  # fmt: skip
        try:
            _release_signals(held)  # a Ctrl-C pressed meanwhile is raised here
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
    finally:
        _release_signals(held)


def _hold_signals():
    """Hold Ctrl-C and SIGTERM while a LocalCluster starts (`_release_signals` lets
    them in); returns the signal mask before. Interrupted there, the cluster was
    left half-made (Dask's exit handler failed on it with a traceback), and the
    worker processes, importing before `dask_setup` ran, printed one traceback each
    for a Ctrl-C in a terminal (sent to the whole process group): the threads and
    processes started meanwhile inherit the mask, so they never see one. None
    where signals cannot be held (Windows) or handled (not the main thread)."""
    if not hasattr(signal, "pthread_sigmask"):
        return None
    if threading.current_thread() is not threading.main_thread():
        return None
    from multiprocessing import resource_tracker

    # started by the cluster, it unblocked both signals in the thread starting it
    resource_tracker.ensure_running()
    return signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)


def _release_signals(held) -> None:
    if held is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def dask_setup(worker) -> None:
    """Run by Dask in each local worker process as it starts. Ctrl-C in a terminal
    signals the whole process group, the workers too: they ignore it, as the sweep
    stops them itself, instead of each printing KeyboardInterrupt tracebacks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def check_cluster(workers: int | None, scheduler: str | None) -> int | None:
    """The number of local workers (default: one per core; None with a
    `scheduler`); a one-line NnscratchError for both given or a bad count."""
    if scheduler is not None:
        if workers is not None:
            raise NnscratchError("--workers and --scheduler: give one or the other")
        return None
    return check_int(
        "--workers", workers if workers is not None else os.cpu_count() or 1
    )


@contextmanager
def _connect(Client, scheduler: str):
    client = _open_client(Client, scheduler)
    try:
        try:
            client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_SECONDS)
        except OSError as e:  # TimeoutError, or the scheduler lost meanwhile
            how = (
                f"; start some: dask worker {scheduler} --nthreads 1"
                if isinstance(e, TimeoutError)
                else f" ({e})"
            )
            raise NnscratchError(
                f"--scheduler {scheduler}: no worker joined in "
                f"{WAIT_FOR_WORKERS_SECONDS} s{how}"
            ) from None
        yield client
    finally:
        # with the scheduler lost, closing cancels the client's attempts to
        # reconnect, which Dask logs as errors with tracebacks: the sweep says it
        quiet = logging.getLogger("distributed.client")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)
        try:
            client.close()
        finally:
            quiet.setLevel(level)


def _open_client(Client, scheduler: str):
    """A Client of the scheduler at `scheduler`, or a one-line NnscratchError saying
    why none answers there: nothing listening (refused at once, where Dask retried
    until its timeout and said only that), an unknown host, or something listening
    that is not a Dask scheduler."""
    cannot = f"--scheduler {scheduler}: cannot reach a Dask scheduler there"
    try:
        connected = _listens(scheduler)
    except OSError as e:  # refused, unknown host, timed out, no route
        raise NnscratchError(f"{cannot}: {_no_connection(e)}") from None
    try:
        _ask_identity(scheduler)
    except Exception as e:  # noqa: BLE001 - timed out, bad address, garbage
        if not connected:  # an address `_listens` does not try: Dask's reason
            raise NnscratchError(f"{cannot} ({_reason(e)})") from None
        said = str(e) if isinstance(e, _NotAScheduler) else _not_dask(e)
        raise NnscratchError(
            f"{cannot}: something listens, but not a Dask scheduler ({said}); is "
            "the port right?"
        ) from None
    try:  # a scheduler answered: what fails now is Dask's to say
        return Client(scheduler, timeout=CONNECT_SECONDS)
    except Exception as e:  # noqa: BLE001 - Dask's many errors, one line
        raise NnscratchError(f"{cannot} ({_reason(e)})") from None


def _reason(error: Exception) -> str:
    """Dask's error in one line, "TypeName: its first line", for a scheduler that
    cannot be reached or that answered and then failed."""
    said = (
        str(error).splitlines()[0]
        if str(error)
        else f"no answer in {CONNECT_SECONDS} s"
    )
    return f"{type(error).__name__}: {said}"


def _not_dask(error: Exception) -> str:
    """Why what listens is no Dask server, in words, from the error Dask raised
    talking to it. Its reply read as Dask's failed with whatever the bytes made
    of it ("MemoryError: Unable to allocate 3.07 EiB" for an HTTP server's, the
    first 8 read as a frame's length), which only misled."""
    from distributed.comm import CommClosedError

    if isinstance(error, TimeoutError):
        return f"it did not answer as one in {CONNECT_SECONDS} s"
    if isinstance(error, CommClosedError):
        return "it closed the connection without answering"
    return "its reply is not in Dask's protocol"


def _no_connection(error: OSError) -> str:
    """Why no TCP connection opened, in words."""
    if isinstance(error, ConnectionRefusedError):
        return (
            "nothing listens at that address (connection refused); is the scheduler "
            "running, and is the address right?"
        )
    if isinstance(error, socket.gaierror):
        reason = f"its host is unknown ({error.strerror})"
    elif isinstance(error, TimeoutError):
        reason = f"no answer in {CONNECT_SECONDS} s (a host down, or a firewall)"
    else:
        reason = error.strerror or str(error)  # no route to host...
    return f"{reason}; is the address right?"


def _listens(scheduler: str) -> bool:
    """Whether a TCP connection to `scheduler` opens; False for an address that is
    not TCP's (or that Dask cannot parse: it says why). Raises OSError where none
    opens (ConnectionRefusedError, socket.gaierror, TimeoutError...)."""
    from distributed.comm.addressing import parse_address, parse_host_port

    try:
        scheme, location = parse_address(scheduler)
        host, port = parse_host_port(location)
    except ValueError:
        return False
    if scheme not in ("tcp", "tls"):
        return False
    with socket.create_connection((host, port), timeout=CONNECT_SECONDS):
        return True


class _NotAScheduler(Exception):
    """A Dask server that is not a scheduler (a worker, a nanny) answered."""


def _ask_identity(scheduler: str) -> None:
    """Raise unless a Dask scheduler answers at `scheduler` in CONNECT_SECONDS.
    Client's timeout bounds the connection only: a server that accepts it and
    never answers (or any other program on that port) made it wait forever."""
    import asyncio

    from distributed.core import rpc

    async def identity() -> dict:
        remote = rpc(scheduler, timeout=CONNECT_SECONDS)
        try:
            return await remote.identity()
        finally:
            await remote.close_rpc()

    asked = asyncio.wait_for(identity(), CONNECT_SECONDS)
    with ThreadPoolExecutor(1) as thread:  # its own event loop, even under Jupyter's
        reply = thread.submit(asyncio.run, asked).result()
    kind = reply.get("type") if isinstance(reply, dict) else None
    if kind != "Scheduler":
        raise _NotAScheduler(f"a Dask {kind}" if kind else "no Dask identity")


def slots(client) -> int:
    """How many trials run at once: the cluster's worker threads."""
    return max(1, sum(client.nthreads().values()))
