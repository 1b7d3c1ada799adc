"""Sweeps on real Dask clusters and tiny data: a LocalCluster of two processes end to
end (trials.csv, best/, report.html in Chromium, a rerun asking only the missing
trials), pruning, `dask scheduler` + two `dask worker` with one killed mid-trial,
and the sweep itself killed and run again: no trial lost, none trained twice."""

import contextlib
import csv
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from readable import text_too_small

import nnscratch
from nnscratch.cli import main
from nnscratch.runs.presets import preset_settings
from nnscratch.runs.sweeps.space import trial_settings
from nnscratch.runs.sweeps.study import (
    default_storage,
    open_storage,
    open_study,
    trial_handle,
)
from nnscratch.runs.sweeps.trial import read_log, run_trial, trial_dir

TINY = {"preset": "seed-deep", "epochs": 2, "limit": 300}
TINY_ARGS = ["--preset", "seed-deep", "--epochs", "2", "--limit", "300", "--quiet"]


def rows(out: Path) -> list[dict]:
    with open(out / "trials.csv", newline="") as f:
        return list(csv.DictReader(f))


def epochs_logged(out: Path) -> dict[int, list[str]]:
    """Per trial, the epochs its log says were trained ('1/2', '2/2', ...)."""
    found = {}
    for folder in sorted((out / "trials").iterdir()):
        number = int(folder.name.split("-")[1])
        found[number] = [line.split()[1] for line in read_log(folder)]
    return found


def trainers(folder: Path) -> set[str]:
    """The pids that logged a trial's epochs (not counting the epochs a resumed run
    logged as restored: their process was stopped before it could)."""
    return {line.split()[3] for line in read_log(folder) if "restored" not in line}


def assert_no_epoch_twice(out: Path, epochs: int) -> None:
    for number, logged in epochs_logged(out).items():
        assert len(logged) == len(set(logged)), f"trial {number} trained {logged}"
        history = (trial_dir(out, number) / "history.csv").read_text().splitlines()
        assert len(history) - 1 == len(logged) <= epochs, number


def test_local_cluster_end_to_end(tmp_path, data_dir, browser, capsys):
    out = tmp_path / "sweep"
    params = {"lr": "loguniform:1e-3:1e-2", "hidden": "int:8:32"}
    result = nnscratch.sweep(out, 4, params, workers=2, quiet=True, **TINY)
    found = rows(out)
    assert [r["number"] for r in found] == ["0", "1", "2", "3"]
    assert {r["state"] for r in found} == {"complete"}
    assert list(found[0]) == ["number", "state", "lr", "hidden", "val_accuracy",
                              "epochs", "seconds", "run_dir", "error"]  # fmt: skip
    best = max(found, key=lambda r: float(r["val_accuracy"]))
    assert result.best_number == int(best["number"])
    assert result.val_accuracy == pytest.approx(float(best["val_accuracy"]))
    assert result.best_params["hidden"] == int(best["hidden"])
    assert_no_epoch_twice(out, 2)

    # best/ is an ordinary run: the model loads, evaluate scores it on the test set
    model = nnscratch.load_model(out / "best" / "model.npz")
    widths = [p.shape[1] for name, p in model.named_params().items() if "W" in name]
    assert widths[:4] == [int(best["hidden"])] * 4  # seed-deep's four hidden layers
    metrics = json.loads((out / "best" / "metrics.json").read_text())
    assert result.test_accuracy == metrics["test_accuracy"]
    # the test set is scored for the best trial only: the trials hold out validation
    for number in range(4):
        scored = json.loads((trial_dir(out, number) / "metrics.json").read_text())
        assert "test_accuracy" not in scored and 0 < scored["val_accuracy"] <= 1
    capsys.readouterr()
    assert main(["evaluate", str(out / "best" / "model.npz")]) == 0
    assert f"accuracy {metrics['test_accuracy']:.4f}" in capsys.readouterr().out

    # the report, in the browser: every picture drawn, every trial in the table
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto((out / "report.html").resolve().as_uri())
    widths = page.eval_on_selector_all("img", "i => i.map(x => x.naturalWidth)")
    assert len(widths) == 4 and all(w > 0 for w in widths)
    assert page.locator("table").last.locator("tbody tr").count() == 4
    assert "Best settings" in page.inner_text("body") and errors == []
    page.close()

    # the same command with --trials 5 runs one more trial, no other
    argv = ["sweep", "--out", str(out), "--trials", "5", "--workers", "2",
            "--param", "lr=loguniform:1e-3:1e-2", "--param", "hidden=int:8:32",
            *TINY_ARGS]  # fmt: skip
    assert main(argv) == 0
    assert len(rows(out)) == 5 and rows(out)[:4] == found
    assert_no_epoch_twice(out, 2)
    # another search space in the same folder is refused
    argv[argv.index("hidden=int:8:32")] = "hidden=int:8:64"
    capsys.readouterr()
    assert main(argv) == 2  # a usage error
    assert "was made with another space" in capsys.readouterr().err


def new_study(tmp_path: Path):
    """(sweep folder, storage URL, storage, study "s") for trials run by hand."""
    out = tmp_path / "sweep"
    out.mkdir()
    storage_url = default_storage(out)
    storage = open_storage(storage_url)
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    return out, storage_url, storage, study


def test_a_trial_below_the_median_is_pruned(tmp_path, data_dir):
    # four finished trials at 0.99 after each epoch: a trial at lr 1e-6 is far below
    out, storage_url, storage, study = new_study(tmp_path)
    distributions = {"lr": optuna.distributions.FloatDistribution(1e-7, 1e-1)}
    for _ in range(4):
        study.add_trial(optuna.trial.create_trial(
            params={"lr": 1e-3}, distributions=distributions, value=0.99,
            intermediate_values={1: 0.99, 2: 0.99, 3: 0.99},
        ))  # fmt: skip
    trial = study.ask(distributions)
    base = {"preset": "seed-deep", "epochs": 4}
    job = {
        "number": trial.number, "params": {"lr": 1e-6},
        "settings": trial_settings(base, {"lr": 1e-6}).to_dict(),
        "data_dir": str(data_dir), "limit": 300, "checkpoint_every": None,
        "run_dir": str(trial_dir(out, trial.number)), "study_name": "s",
        "storage": storage_url, "pruner": "median",
    }  # fmt: skip
    outcome = run_trial(job)
    assert outcome["state"] == "pruned" and outcome["epochs"] == 2, outcome
    recorded = json.loads((trial_dir(out, trial.number) / "trial.json").read_text())
    assert recorded["state"] == "pruned"
    assert trial_handle(study, storage, trial.number).number == trial.number
    # a pruned trial is still a finished run directory
    assert nnscratch.load_model(trial_dir(out, trial.number) / "model.npz")


def _start(argv: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    with open(log, "ab") as f:
        return subprocess.Popen(
            argv, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )


def _stop(process: subprocess.Popen) -> None:
    """End a process this test started and every process of its session."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # its orphaned workers too
    except ProcessLookupError:
        pass
    process.wait(10)


def _wait_for(condition, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def _mid_trial(out: Path):
    """(trial folder, pid training it) once a trial has logged an epoch and not
    finished; its lock names the process."""
    for folder in sorted((out / "trials").glob("trial-*")):
        lock = (folder / ".lock").read_text() if (folder / ".lock").exists() else ""
        if read_log(folder) and not (folder / "trial.json").exists() and "pid" in lock:
            return folder, int(lock.split()[1].rstrip(","))
    return None


SWEEP = [sys.executable, "-m", "nnscratch", "sweep", "--trials", "3",
         "--param", "lr=loguniform:1e-3:1e-2", "--param", "hidden=int:8:32",
         "--preset", "seed-deep", "--epochs", "6", "--limit", "2000", "--quiet"]  # fmt: skip


def test_dask_scheduler_and_workers_with_a_worker_killed(tmp_path, data_dir):
    out, log = tmp_path / "sweep", tmp_path / "processes.log"
    address_file = tmp_path / "scheduler.json"
    dask = str(Path(sys.executable).parent / "dask")  # Dask's own command
    processes = [_start([dask, "scheduler", "--host",
                         "127.0.0.1", "--port", "0", "--no-dashboard",
                         "--scheduler-file", str(address_file)], log)]  # fmt: skip
    try:
        _wait_for(address_file.exists, 60, "the scheduler")
        address = json.loads(address_file.read_text())["address"]
        for _ in range(2):
            processes.append(_start([dask, "worker", address, "--nthreads", "1", "--no-dashboard"],
                                    log))  # fmt: skip
        sweep = _start([*SWEEP, "--out", str(out), "--scheduler", address], log)
        processes.append(sweep)
        folder, pid = _wait_for(lambda: _mid_trial(out), 120, "a trial mid-way")
        os.kill(pid, signal.SIGKILL)  # the worker process training it
        assert sweep.wait(180) == 0, log.read_text()[-3000:]
    finally:
        for process in reversed(processes):
            _stop(process)
    found = rows(out)
    assert len(found) == 3 and {r["state"] for r in found} == {"complete"}
    assert_no_epoch_twice(out, 6)
    pids = trainers(folder)
    assert len(read_log(folder)) == 6 and str(pid) in pids and len(pids) == 2


def test_killed_sweep_runs_only_what_is_missing(tmp_path, data_dir):
    out, log = tmp_path / "sweep", tmp_path / "processes.log"
    argv = [*SWEEP, "--out", str(out), "--workers", "2"]
    sweep = _start(argv, log)
    try:
        folder, _ = _wait_for(lambda: _mid_trial(out), 120, "a trial mid-way")
        os.kill(sweep.pid, signal.SIGKILL)  # the sweep's process
        sweep.wait(10)
    finally:
        _stop(sweep)  # and the workers it leaves behind
    again = _start(argv, log)
    try:
        assert again.wait(180) == 0, log.read_text()[-3000:]
    finally:
        _stop(again)
    found = rows(out)
    assert [r["number"] for r in found] == ["0", "1", "2"]  # no trial asked anew
    assert {r["state"] for r in found} == {"complete"}
    assert_no_epoch_twice(out, 6)
    assert all(len(logged) == 6 for logged in epochs_logged(out).values())
    # the trial the sweep was waiting for went on from its checkpoint
    assert len(trainers(folder)) == 2


TRIAL_STARTED, SCHEDULER_LOST = threading.Event(), threading.Event()


def _trial_until_the_scheduler_is_lost(job: dict) -> dict:
    TRIAL_STARTED.set()
    SCHEDULER_LOST.wait(60)
    return {"number": job["number"], "state": "fail", "error": "not reached"}


def test_a_lost_scheduler_leaves_the_trials_running_for_the_rerun(
    tmp_path, monkeypatch, caplog
):
    """The scheduler lost mid-trial: Dask cancels the tasks, and the sweep told the
    study their trials had failed ('FutureCancelledError ... scheduler-connection-
    lost'), so the rerun asked new trials instead of resuming those; it then ended
    on 'Timed out trying to connect', saying nothing of going on, under the
    tracebacks Dask's client logged as it gave up reconnecting."""
    from distributed import LocalCluster

    from nnscratch.runs.sweeps import driver

    monkeypatch.setattr(driver, "run_trial", _trial_until_the_scheduler_is_lost)
    TRIAL_STARTED.clear()
    SCHEDULER_LOST.clear()
    out, errors = tmp_path / "sweep", []

    def run(address: str) -> None:
        try:
            nnscratch.sweep(out, 2, {"lr": "uniform:0.1:0.2"}, scheduler=address,
                            quiet=True, **TINY)  # fmt: skip
        except nnscratch.NnscratchError as e:
            errors.append(str(e))

    cluster = LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                           dashboard_address=":0", protocol="tcp://")  # fmt: skip
    thread = threading.Thread(target=run, args=(cluster.scheduler_address,))
    try:
        thread.start()
        assert TRIAL_STARTED.wait(60)
        cluster.sync(cluster.scheduler.close)  # its machine goes down
        thread.join(60)
    finally:
        SCHEDULER_LOST.set()
        with contextlib.suppress(Exception):  # a time-out: its scheduler is gone
            cluster.close(timeout=2)
    [error] = errors
    assert error.startswith("sweep stopped: the Dask scheduler was lost (")
    assert "trials 0/2 done \u00b7 1 running" in error
    # Dask's workers stop with their scheduler: both must be started again
    assert error.endswith("; start the scheduler and its workers again (they stop "
                          "with it), then run the same command again to continue "
                          "(running trials resume from their checkpoints)")  # fmt: skip
    study = optuna.load_study(study_name="sweep", storage=default_storage(out))
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.RUNNING]
    logged = [r for r in caplog.records if r.name == "distributed.client"]
    assert [r.getMessage() for r in logged if r.levelno >= logging.ERROR] == []


FIRST_STARTED, WORKER_JOINED = threading.Event(), threading.Event()
SIDE_BY_SIDE = threading.Barrier(2)


def _trial_on_a_growing_cluster(job: dict) -> dict:
    """Trial 0 lasts until a second worker joined; the next ones must run side by
    side (each waits 30 s for the other). Nothing is trained."""
    if job["number"] == 0:
        FIRST_STARTED.set()
        WORKER_JOINED.wait(60)
    else:
        SIDE_BY_SIDE.wait(timeout=30)
    return {"number": job["number"], "state": "fail", "error": "not trained"}


def test_workers_joining_the_cluster_get_trials(tmp_path, monkeypatch):
    """A cluster that grows while the sweep runs (dask-jobqueue's workers start as
    Slurm runs their jobs; the sweep starts with the first): the sweep asked one
    trial per trial finished, so it never ran more at once than at its start."""
    from distributed import LocalCluster

    from nnscratch.runs.sweeps import driver

    monkeypatch.setattr(driver, "run_trial", _trial_on_a_growing_cluster)
    FIRST_STARTED.clear()
    WORKER_JOINED.clear()
    SIDE_BY_SIDE.reset()
    out = tmp_path / "sweep"
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=":0", protocol="tcp://") as cluster:  # fmt: skip
        thread = threading.Thread(
            target=nnscratch.sweep, args=(out, 3, {"lr": "uniform:0.1:0.2"}),
            kwargs={"scheduler": cluster.scheduler_address, "quiet": True, **TINY},
        )  # fmt: skip
        thread.start()
        try:
            assert FIRST_STARTED.wait(60)
            cluster.scale(2)
            cluster.wait_for_workers(2, timeout=60)
        finally:
            WORKER_JOINED.set()
            thread.join(60)
    assert [r["error"] for r in rows(out)] == ["not trained"] * 3


def test_an_epoch_checkpointed_but_not_logged_is_logged_when_resumed(tmp_path):
    """A process killed between an epoch's checkpoint and its log line: the resumed
    run logs that epoch as restored before its own, so the log still has every
    epoch of the history once (the flake a killed sweep showed)."""
    from types import SimpleNamespace

    from nnscratch.runs.sweeps.trial import TRIAL_LOG, EpochLog

    (tmp_path / TRIAL_LOG).write_text("epoch 1/4 pid 1 host h val_accuracy 0.5\n")
    log = EpochLog(tmp_path / TRIAL_LOG)
    log.trainer = SimpleNamespace(epochs=4)
    log.on_epoch_end(2, {"val_accuracy": 0.75})  # epoch 2 was checkpointed, unlogged
    log.on_epoch_end(3, {"val_accuracy": 0.8})
    lines = read_log(tmp_path)
    assert [line.split()[1] for line in lines] == ["1/4", "2/4", "3/4", "4/4"]
    assert "restored" in lines[1] and lines[2].endswith("val_accuracy 0.750000")
    assert lines[1].split()[2:6] == ["pid", "-", "host", "-"]  # columns kept


def test_a_trial_killed_before_its_first_checkpoint_starts_afresh(tmp_path, data_dir):
    """A sweep killed after a trial made its checkpoints folder but before the first
    checkpoint was renamed into it: resumed, the trial trains from the start instead
    of failing as 'not a run directory' (the flake a killed sweep showed)."""
    out, storage_url, _, study = new_study(tmp_path)
    distributions = {"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1)}
    trial = study.ask(distributions)
    run_dir = trial_dir(out, trial.number)
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "checkpoints" / "checkpoint-000000.npz.tmp").write_bytes(b"half")
    job = {
        "number": trial.number, "params": {"lr": 1e-2},
        "settings": trial_settings({"preset": "seed-deep", "epochs": 2},
                                   {"lr": 1e-2}).to_dict(),
        "data_dir": str(data_dir), "limit": 300, "checkpoint_every": None,
        "run_dir": str(run_dir), "study_name": "s", "storage": storage_url,
        "pruner": "none",
    }  # fmt: skip
    outcome = run_trial(job)
    assert outcome["state"] == "complete" and outcome["epochs"] == 2, outcome
    assert len(read_log(run_dir)) == 2


def test_a_rerun_asks_new_settings_not_the_first_run_s_again(tmp_path):
    """Each run of a sweep seeds its sampler: with the base seed alone, a rerun (to
    add trials, or after Ctrl-C) asked exactly the settings of the first trials."""
    space = {"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)}
    storage = open_storage(default_storage(tmp_path))
    first = open_study(storage, "s", "none", 0, {})
    asked = [first.ask(space).params["lr"] for _ in range(3)]
    again = open_study(storage, "s", "none", 0, {})
    assert not {again.ask(space).params["lr"] for _ in range(3)} & set(asked)
    # a new study with the same seed still asks the same settings: reproducible
    (tmp_path / "b").mkdir()
    storage = open_storage(default_storage(tmp_path / "b"))
    other = open_study(storage, "s", "none", 0, {})
    assert [other.ask(space).params["lr"] for _ in range(3)] == asked


def test_another_setup_is_refused_once_a_trial_ran(tmp_path):
    """A study that holds no trial yet (the sweep stopped before any, e.g. at an
    unreachable --scheduler) takes the new settings; one with trials refuses them."""
    storage = open_storage(default_storage(tmp_path))
    open_study(storage, "s", "none", 0, {"space": 1})
    study = open_study(storage, "s", "none", 0, {"space": 2})
    assert study.user_attrs["setup"] == {"space": 2}
    study.ask({"lr": optuna.distributions.FloatDistribution(0.1, 1.0)})
    with pytest.raises(nnscratch.NnscratchError, match="was made with another space"):
        open_study(storage, "s", "none", 0, {"space": 3})


HTTP_400 = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@pytest.mark.parametrize(
    "answer, reason",
    [(b"", "it did not answer as one in 1 s"),
     (b"HTTP/1.0 400 Bad request\r\n\r\n", "its reply is not in Dask's protocol"),
     (HTTP_400, "its reply is not in Dask's protocol")],
)  # fmt: skip
def test_a_scheduler_address_where_no_scheduler_answers_is_one_line(
    tmp_path, monkeypatch, answer, reason
):
    """Something listening that is not a Dask scheduler (silent, or an HTTP
    server's reply): one error line within the connect timeout; the Client waited
    forever, or until the other end hung up. The reason was Dask's reading of the
    reply as its own ("MemoryError: Unable to allocate 3.07 EiB" for an HTTP
    server's 400): it says what happened."""
    import socket
    import threading

    from nnscratch.runs.sweeps import cluster

    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 1)
    server = socket.create_server(("127.0.0.1", 0))
    held = []

    def serve():  # answers each connection with `answer`, hangs up after 15 s
        server.settimeout(15)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.sendall(answer)
            held.append(conn)
        for conn in held:
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    started = time.monotonic()
    try:
        with (
            pytest.raises(nnscratch.NnscratchError) as error,
            cluster.dask_client(scheduler=address),
        ):
            pass
    finally:
        server.close()
    assert time.monotonic() - started < 8
    assert str(error.value).startswith(f"--scheduler {address}: cannot reach")
    assert "\n" not in str(error.value)
    # it connected: the port is right, what listens there is not a scheduler
    assert str(error.value).endswith(
        f": something listens, but not a Dask scheduler ({reason}); is the port right?"
    )


def test_a_scheduler_address_where_nothing_listens_says_connection_refused(
    monkeypatch,
):
    """Nothing listening at --scheduler (no scheduler started, a wrong port) was
    reported as "TimeoutError: no answer in 5 s", Dask retrying a refused
    connection until its timeout: it is said plainly, at once."""
    from nnscratch.runs.sweeps import cluster

    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 30)
    address = _closed_port_address()
    started = time.monotonic()
    with (
        pytest.raises(nnscratch.NnscratchError) as error,
        cluster.dask_client(scheduler=address),
    ):
        pass
    assert time.monotonic() - started < 10  # refused: not waiting the 30 s
    assert str(error.value) == (
        f"--scheduler {address}: cannot reach a Dask scheduler there: nothing "
        "listens at that address (connection refused); is the scheduler running, "
        "and is the address right?"
    )


def test_a_scheduler_with_no_worker_says_how_to_start_one(monkeypatch):
    """A scheduler no worker joined ended in Dask's "Only 0/1 workers arrived after
    60": the line says how to start one."""
    from distributed import LocalCluster

    from nnscratch.runs.sweeps import cluster

    monkeypatch.setattr(cluster, "WAIT_FOR_WORKERS_SECONDS", 1)
    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0",
                      protocol="tcp://") as empty:  # fmt: skip
        address = empty.scheduler_address
        with (
            pytest.raises(nnscratch.NnscratchError) as error,
            cluster.dask_client(scheduler=address),
        ):
            pass
    assert str(error.value) == (
        f"--scheduler {address}: no worker joined in 1 s; start some: "
        f"dask worker {address} --nthreads 1"
    )


def test_sweeps_opening_a_new_storage_at_once_all_open_it(tmp_path):
    """Two sweeps started together on a new --storage database: each made its
    tables, and all but the first failed with "Optuna cannot open it
    (OperationalError: table studies already exists)" or "(IntegrityError: UNIQUE
    constraint failed: alembic_version.version_num)"."""
    from concurrent.futures import ThreadPoolExecutor

    for attempt in range(3):
        url = f"sqlite:///{tmp_path}/new-{attempt}.db"
        at_once = threading.Barrier(4)

        def open_it(url=url, at_once=at_once):
            at_once.wait()
            return open_storage(url)

        with ThreadPoolExecutor(4) as threads:
            opened = [threads.submit(open_it) for _ in range(4)]
            storages = [future.result() for future in opened]
        assert optuna.create_study(study_name="s", storage=storages[0])
        assert all(s.get_all_studies()[0].study_name == "s" for s in storages)


def test_a_refused_rerun_names_the_options_it_changed(tmp_path):
    storage = open_storage(default_storage(tmp_path))
    base = {"epochs": 5, "lr": 0.1, "batch_size": 32}
    study = open_study(storage, "s", "none", 0, {"space": {}, "base": base})
    study.ask({"lr": optuna.distributions.FloatDistribution(0.1, 1.0)})
    changed = {"space": {}, "base": {**base, "epochs": 2, "batch_size": 64}}
    with pytest.raises(nnscratch.NnscratchError) as error:
        open_study(storage, "s", "none", 0, changed)
    assert "another --batch-size (32, now 64), --epochs (5, now 2): give" in str(
        error.value
    )


def test_a_study_recorded_with_the_unused_momentum_of_adamw_continues(tmp_path):
    # its base settings were recorded with momentum, which AdamW does not take and
    # config.json now leaves out: the rerun of the same command is the same sweep
    storage = open_storage(default_storage(tmp_path))
    base = preset_settings("default").to_dict()
    old = {"space": {}, "base": {**base, "momentum": 0.9}}
    study = open_study(storage, "s", "none", 0, old)
    study.ask({"lr": optuna.distributions.FloatDistribution(0.1, 1.0)})
    open_study(storage, "s", "none", 0, {"space": {}, "base": base})
    with pytest.raises(nnscratch.NnscratchError, match="another --epochs"):
        open_study(
            storage, "s", "none", 0, {"space": {}, "base": {**base, "epochs": 1}}
        )


def test_a_folder_holding_another_study_s_trials_is_refused(tmp_path, capsys):
    """Another --study-name in the same --out found trials/trial-0000 finished (the
    other study's) and took that run, made with other settings, as its own."""
    out = tmp_path / "sweep"
    (out / "trials" / "trial-0000").mkdir(parents=True)
    argv = ["sweep", "--out", str(out), "--trials", "1", "--study-name", "other",
            "--param", "lr=uniform:0.1:0.2", "--workers", "1", *TINY_ARGS]  # fmt: skip
    assert main(argv) == 2  # a usage error: another --out or --study-name is needed
    err = capsys.readouterr().err
    assert "trial-0000: a trial study 'other' never ran" in err
    assert "Traceback" not in err and not (out / "trials.csv").exists()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _no_training(job: dict) -> dict:
    return {"number": job["number"], "state": "fail", "error": "not trained"}


def _ctrl_c(future, number: int):
    raise KeyboardInterrupt  # pressed while the sweep waits for its trials


def test_on_a_terminal_the_progress_line_ends_before_an_interruption(
    tmp_path, monkeypatch, threads_cluster
):
    """On a terminal the line is redrawn in place: Ctrl-C left it open, so the
    'sweep interrupted' line was written at its end (and tqdm drew the stale line
    again under it at exit). It also said '0 running' until a trial finished."""
    from nnscratch.runs.sweeps import driver

    monkeypatch.setattr(driver, "run_trial", _no_training)
    monkeypatch.setattr(driver, "_result", _ctrl_c)
    monkeypatch.setattr(sys, "stderr", Terminal())
    argv = ["sweep", "--out", str(tmp_path / "sweep"), "--trials", "3",
            "--scheduler", threads_cluster, "--param", "lr=uniform:0.1:0.2",
            *TINY_ARGS[:-1]]  # fmt: skip
    assert main(argv) == 130
    line, said = sys.stderr.getvalue().split("\n")[:2]
    assert line.split("\r")[-1].startswith("trials 0/3 done \u00b7 2 running")
    assert said.startswith("sweep interrupted: trials 0/3 done"), said


def test_ctrl_c_while_the_results_are_written(
    tmp_path, data_dir, monkeypatch, threads_cluster, capsys
):
    """Ctrl-C while best/ was made (the test set scored, the figures drawn): the
    sweep said only 'aborted' and left .best.incoming/ in DIR."""
    from nnscratch.runs.sweeps import results

    def interrupted(*args):
        raise KeyboardInterrupt

    out = tmp_path / "sweep"
    argv = ["sweep", "--out", str(out), "--trials", "1", "--scheduler",
            threads_cluster, "--param", "lr=loguniform:1e-3:1e-2", *TINY_ARGS]  # fmt: skip
    with monkeypatch.context() as patched:
        patched.setattr(results, "rebuild_report", interrupted)
        assert main(argv) == 130
    said = capsys.readouterr().err
    assert said.startswith("sweep interrupted: trials 1/1 done"), said
    assert "run the same command again" in said
    assert not list(out.glob(".best*")) and not (out / "best").exists()
    assert main(argv) == 0  # the rerun writes the results
    assert (out / "best" / "model.npz").is_file()


def test_a_sweep_whose_every_trial_failed_exits_non_zero(
    tmp_path, data_dir, threads_cluster, capsys
):
    """Every trial diverged: the sweep printed 'no trial completed' on stdout and
    exited 0, so `nnscratch sweep ... && nnscratch evaluate DIR/best/model.npz` went
    on (scikit-learn's search raises when every fit failed; Optuna's best_trial)."""
    out = tmp_path / "sweep"
    argv = ["sweep", "--out", str(out), "--trials", "1", "--scheduler",
            threads_cluster, "--param", "lr=uniform:50:100", "--optimizer", "sgd",
            *TINY_ARGS]  # fmt: skip
    assert main(argv) == 1
    assert capsys.readouterr().out.startswith("no trial completed; see ")
    [row] = rows(out)
    assert row["state"] == "fail" and "diverged" in row["error"]
    assert (out / "report.html").is_file() and not (out / "best").exists()


def test_a_study_whose_trials_ran_in_another_folder_is_refused(tmp_path, capsys):
    """The same --storage and --study-name with another --out: the sweep counted
    the other folder's trials as its own, ran the missing ones here and failed at
    the end on 'trials/trial-0001/trial.json: No such file or directory'."""
    url = default_storage(tmp_path)
    study = optuna.create_study(
        study_name="sweep", storage=open_storage(url), direction="maximize"
    )
    distributions = {"lr": optuna.distributions.FloatDistribution(0.1, 0.2)}
    study.add_trial(optuna.trial.create_trial(
        params={"lr": 0.15}, distributions=distributions, value=0.5,
    ))  # fmt: skip
    out = tmp_path / "elsewhere"
    argv = ["sweep", "--out", str(out), "--trials", "2", "--storage", url,
            "--param", "lr=uniform:0.1:0.2", "--workers", "1", *TINY_ARGS]  # fmt: skip
    assert main(argv) == 2  # a usage error: another --out or --study-name is needed
    err = capsys.readouterr().err
    assert "study 'sweep' holds trial 0, which ran in another folder (no " in err
    assert "Traceback" not in err and not out.exists()  # the folder it made, removed


def test_quiet_hides_the_progress_line_not_the_result(tmp_path, data_dir, capsys):
    # --quiet ("No progress line", as train's "No per-epoch lines") also hid the
    # result: a quiet sweep printed nothing, not even the best trial's test accuracy
    out = tmp_path / "sweep"
    argv = ["sweep", "--out", str(out), "--trials", "1", "--workers", "1",
            "--param", "lr=loguniform:1e-3:1e-2", *TINY_ARGS]  # fmt: skip
    assert main(argv) == 0
    printed = capsys.readouterr()
    test_accuracy = json.loads((out / "best" / "metrics.json").read_text())
    assert printed.out.startswith("best: trial 0 (lr=")
    assert f"test accuracy {test_accuracy['test_accuracy']:.4f}" in printed.out
    assert "trials 1/1 done" not in printed.err


def test_searching_epochs_keeps_both_epochs_columns(tmp_path):
    # the trained epochs' column was also named "epochs": trials.csv had two, both
    # holding the epochs trained, so a pruned trial's searched value was lost
    from nnscratch.runs.sweeps.results import trial_rows, write_trials_csv
    from nnscratch.runs.sweeps.trial import TRIAL_FILE

    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({"epochs": 5})
    trial = study.ask({"epochs": optuna.distributions.IntDistribution(1, 6)})
    trial.report(0.5, 1)
    trial.report(0.6, 2)
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    trial_dir(tmp_path, 0).mkdir(parents=True)
    (trial_dir(tmp_path, 0) / TRIAL_FILE).write_text(json.dumps({"epochs": 2}))
    found = trial_rows(study, ["epochs"], tmp_path)
    write_trials_csv(tmp_path / "trials.csv", found, list(found[0]))
    [row] = rows(tmp_path)
    assert list(row) == ["number", "state", "epochs", "val_accuracy",
                         "epochs_trained", "seconds", "run_dir", "error"]  # fmt: skip
    assert (row["state"], row["epochs"], row["epochs_trained"]) == ("pruned", "5", "2")
    assert row["val_accuracy"] == "0.6"


def _four_trials_and_a_pruned_one():
    """A study of 4 complete trials of (lr, optimizer) and trial 4, pruned."""
    study = optuna.create_study(direction="maximize")
    space = {
        "lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True),
        "optimizer": optuna.distributions.CategoricalDistribution(["adam", "sgd"]),
    }
    for lr, optimizer, value in [
        (0.002, "adam", 0.91),
        (0.05, "sgd", 0.95),
        (0.01, "adam", 0.97),
        (0.08, "sgd", 0.82),
    ]:
        study.add_trial(
            optuna.trial.create_trial(
                params={"lr": lr, "optimizer": optimizer},
                distributions=space,
                value=value,
            )
        )
    study.enqueue_trial({"lr": 0.02, "optimizer": "sgd"})
    trial = study.ask(space)  # trial 4, pruned at its second epoch
    trial.report(0.5, 1)
    trial.report(0.6, 2)
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    return study


def test_each_picture_of_the_report_has_a_text_alternative_with_its_numbers(tmp_path):
    # the alt text was the caption printed under the picture: a screen reader read
    # the same sentence twice and none of what the picture shows
    from nnscratch.runs.sweeps.report import write_sweep_report
    from nnscratch.runs.sweeps.results import trial_rows

    study = _four_trials_and_a_pruned_one()
    names = ["lr", "optimizer"]
    path = tmp_path / "report.html"
    write_sweep_report(path, study, trial_rows(study, names, tmp_path), names, 0.96)
    page = path.read_text(encoding="utf-8")
    figures = re.findall(r'alt="([^"]*)"><figcaption>([^<]*)</figcaption>', page)
    assert len(figures) == 4
    assert all(alt and alt != caption for alt, caption in figures)
    history, slices, importances, parallel = (alt for alt, _ in figures)
    assert ": 5 trials, from 0.6000 (trial 4) to 0.9700 (trial 2)" in history
    assert "best so far 0.9700 from trial 2 on" in history
    assert "lr from 0.002 to 0.08, optimizer adam or sgd" in slices
    assert "the highest, trial 2 at 0.9700, at lr 0.01, optimizer adam" in slices
    assert re.search(
        r": (lr|optimizer) [01]\.\d\d, (optimizer|lr) [01]\.\d\d$", importances
    )
    assert (
        "the highest line, trial 2 at 0.9700, through lr 0.01, optimizer adam"
        in parallel
    )
    assert "the lowest, trial 4 at 0.6000, through lr 0.02, optimizer sgd" in parallel


def test_the_history_s_legend_lists_only_the_states_that_occurred(tmp_path):
    """The legend (and the picture's text alternative) listed "pruned" and "fail"
    beside dots of neither colour when no trial was pruned or failed."""
    from nnscratch.runs.sweeps import report
    from nnscratch.runs.sweeps.results import trial_rows

    scored = trial_rows(_four_trials_and_a_pruned_one(), ["lr", "optimizer"], tmp_path)

    def legend(rows: list[dict]) -> list[str]:
        fig = report._history(rows)
        return [text.get_text() for text in fig.axes[0].get_legend().get_texts()]

    complete = [r for r in scored if r["state"] == "complete"]
    assert legend(complete) == ["complete", "best so far"]
    assert legend(scored) == ["complete", "pruned", "best so far"]
    # and its text alternative names the colours drawn, not the others
    alt = report._alt_texts(complete, ["lr", "optimizer"], "", None)[0]
    assert "number, blue if complete, under a black step line" in alt
    alt = report._alt_texts(scored, ["lr", "optimizer"], "", None)[0]
    assert "blue if complete, orange if pruned (its last epoch's), under" in alt


def test_the_history_s_axis_marks_whole_trial_numbers(tmp_path):
    """Trials are numbered 0, 1, 2...: the axis of four marked 0.5, 1.5... too."""
    from nnscratch.runs.sweeps import report
    from nnscratch.runs.sweeps.results import trial_rows

    scored = trial_rows(_four_trials_and_a_pruned_one(), ["lr", "optimizer"], tmp_path)
    ticks = report._history(scored).axes[0].get_xticks()
    assert len(ticks) and all(tick == int(tick) for tick in ticks), ticks


def test_the_pictures_text_is_readable_where_the_page_shows_them(tmp_path, monkeypatch):
    """The page shows them two side by side, 620 CSS pixels wide each: the 12-inch
    slices (3 parameters) shrank to half, their 10-point text to 7 px, and the
    parallel coordinates' 8-point values were 8.6 px. Each is shown at the size it was
    drawn for (its PNG has 2 pixels a CSS pixel)."""
    from nnscratch.runs.sweeps import report
    from nnscratch.runs.sweeps.results import trial_rows

    drawn = []
    real_new_figure = report.new_figure
    monkeypatch.setattr(
        report,
        "new_figure",
        lambda size: drawn.append(real_new_figure(size)) or drawn[-1],
    )
    study = _four_trials_and_a_pruned_one()
    names = ["lr", "optimizer"]
    path = tmp_path / "report.html"
    report.write_sweep_report(
        path, study, trial_rows(study, names, tmp_path), names, 0.96
    )
    assert len(drawn) == 4
    for fig in drawn:
        assert not text_too_small(fig, 620)
    sizes = re.findall(
        r'<img src="data:image/png;base64,[^"]+" width="(\d+)"', path.read_text()
    )
    assert [int(w) for w in sizes] == [
        round(fig.get_size_inches()[0] * 96) for fig in drawn
    ]


@pytest.fixture(scope="module")
def threads_cluster():
    """A Dask cluster in this process (one worker, two threads) and its address: a
    test can stand in for the task run_trial with a function of this module."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                      dashboard_address=":0", protocol="tcp://") as cluster:  # fmt: skip
        yield cluster.scheduler_address


BOTH_RUNNING = threading.Barrier(2)


def _trial_beside_another(job: dict) -> dict:
    """run_trial, once the other sweep's trial runs too."""
    BOTH_RUNNING.wait(timeout=60)
    return run_trial(job)


def test_two_sweeps_on_one_cluster_run_their_own_trials(
    tmp_path, data_dir, monkeypatch, threads_cluster
):
    """Two sweeps at once on a shared cluster, each in its folder with the default
    study name: their tasks had the same Dask key ('nnscratch-trial-0000-0-sweep'),
    so Dask ran one and gave both sweeps its result (the other's trial-0000 was
    never trained; its best/ failed on the missing trial.json)."""
    from nnscratch.runs.sweeps import driver

    monkeypatch.setattr(driver, "run_trial", _trial_beside_another)
    BOTH_RUNNING.reset()
    params, results = {"lr": "loguniform:1e-3:1e-2"}, {}

    def run(name: str) -> None:
        results[name] = nnscratch.sweep(
            tmp_path / name, 1, params, scheduler=threads_cluster, quiet=True,
            seed=int(name[-1]), **TINY,
        )  # fmt: skip

    threads = [threading.Thread(target=run, args=(n,)) for n in ("a1", "b2")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for name in ("a1", "b2"):
        assert [r["state"] for r in rows(tmp_path / name)] == ["complete"], name
        folder = trial_dir(tmp_path / name, 0)
        recorded = json.loads((folder / "trial.json").read_text())
        assert recorded["run_dir"] == str(folder.absolute())
        assert results[name].best_params == recorded["params"]
    assert results["a1"].best_params != results["b2"].best_params


A_TRIAL_RUNS, OTHER_SWEEP_DONE = threading.Event(), threading.Event()


def _trial_until_the_other_sweep_is_done(job: dict) -> dict:
    A_TRIAL_RUNS.set()
    OTHER_SWEEP_DONE.wait(timeout=30)
    return run_trial(job)


def test_a_study_another_folder_s_sweep_runs_is_refused(
    tmp_path, data_dir, monkeypatch, threads_cluster, capsys
):
    """Two sweeps in two folders on one study of a --storage, the second started
    while the first's trial ran: it took that trial for one a dead sweep left
    running and trained it again in its folder, then failed writing best/ from a
    trial that ran in the other ("trial-0001/trial.json: No such file")."""
    from nnscratch.runs.sweeps import driver

    monkeypatch.setattr(driver, "run_trial", _trial_until_the_other_sweep_is_done)
    A_TRIAL_RUNS.clear()
    OTHER_SWEEP_DONE.clear()
    url = f"sqlite:///{tmp_path}/shared.db"
    argv = ["sweep", "--trials", "1", "--scheduler", threads_cluster, "--storage",
            url, "--param", "lr=loguniform:1e-3:1e-2", *TINY_ARGS]  # fmt: skip
    first = threading.Thread(target=main, args=([*argv, "--out", str(tmp_path / "a")],))
    first.start()
    try:
        assert A_TRIAL_RUNS.wait(60)
        assert main([*argv, "--out", str(tmp_path / "b")]) == 2
    finally:
        OTHER_SWEEP_DONE.set()
        first.join(120)
    err = capsys.readouterr().err
    assert f"study 'sweep' is the sweep in {(tmp_path / 'a').resolve()}: give" in err
    assert not (tmp_path / "b").exists()
    assert [r["state"] for r in rows(tmp_path / "a")] == ["complete"]


def _trial_in_another_folder(job: dict) -> dict:
    """run_trial as a `dask worker` started in another folder runs it."""
    here = os.getcwd()
    os.chdir(Path(job["run_dir"]).parents[2])
    try:
        return run_trial(job)
    finally:
        os.chdir(here)


def test_a_relative_sqlite_storage_is_the_file_of_the_sweep_s_folder(
    tmp_path, data_dir, monkeypatch, threads_cluster, capsys
):
    """--storage sqlite:///study.db is relative to where the sweep runs (as --out
    is): a worker started elsewhere opened its own study.db there and every trial
    failed with "KeyError: 'Record does not exist.'"."""
    from nnscratch.runs.sweeps import driver

    monkeypatch.setattr(driver, "run_trial", _trial_in_another_folder)
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    argv = ["sweep", "--out", "../sweep", "--trials", "1", "--scheduler",
            threads_cluster, "--storage", "sqlite:///study.db",
            "--param", "lr=loguniform:1e-3:1e-2", *TINY_ARGS]  # fmt: skip
    assert main(argv) == 0, capsys.readouterr().err
    [row] = rows(tmp_path / "sweep")
    assert row["state"] == "complete", row["error"]
    assert (tmp_path / "here" / "study.db").is_file()
    assert not (tmp_path / "study.db").exists()


def test_a_local_cluster_prints_nothing_of_its_own(recwarn):
    """Ctrl-C in a terminal signals the sweep's worker processes too: they ignore it
    (the sweep stops them), instead of each printing KeyboardInterrupt tracebacks.
    And their HTTP server (no dashboard: none is shown) takes a free port: a second
    sweep on the machine, or a notebook's cluster, on Dask's 8787 does not put a
    four-line 'Port 8787 is already in use' warning in the sweep's log."""
    import socket

    from nnscratch.runs.sweeps import cluster

    with socket.socket() as other:
        try:
            other.bind(("127.0.0.1", 8787))
            other.listen()
        except OSError:
            pass  # taken already: the same case
        with cluster.dask_client(workers=1) as client:
            handlers = client.run(lambda: repr(signal.getsignal(signal.SIGINT)))
    assert list(handlers.values()) == [repr(signal.SIG_IGN)]
    assert [str(w.message) for w in recwarn if "in use" in str(w.message)] == []


@pytest.mark.parametrize("failure", [KeyboardInterrupt, nnscratch.NnscratchError])
def test_a_best_run_not_copied_whole_leaves_no_staging_folder(
    tmp_path, monkeypatch, failure
):
    """Ctrl-C while best/ is made (its report is drawn), or its test set missing:
    DIR holds what it held before, no hidden half-made copy."""
    from nnscratch.runs.sweeps import results

    source = trial_dir(tmp_path, 3)
    source.mkdir(parents=True)
    for name in ("config.json", "model.npz", results.TRIAL_FILE):
        (source / name).write_text("{}")

    def failing_report(run_dir, data_dir):
        raise failure("stopped")

    monkeypatch.setattr(results, "rebuild_report", failing_report)
    with pytest.raises(failure):
        results.copy_best(tmp_path, 3, None)
    assert [p.name for p in tmp_path.iterdir()] == ["trials"]


CTRL_C_AS_A_WORKER_IMPORTS = """
import os, signal, sys


class CtrlC:  # in a worker process, once: as it imports Dask
    def find_spec(self, name, path=None, target=None):
        if name == "distributed":
            sys.meta_path.remove(self)
            os.killpg(0, signal.SIGINT)  # Ctrl-C in a terminal: the whole process group


if "--multiprocessing-fork" in sys.argv:  # spawned by the sweep's LocalCluster
    sys.meta_path.insert(0, CtrlC())
"""


def test_ctrl_c_while_the_local_cluster_starts(tmp_path, data_dir):
    """Ctrl-C while the LocalCluster started: the sweep's process left it half-made
    (Dask's exit handler failed on it with an AssertionError traceback) and each
    worker process, still importing, printed a KeyboardInterrupt traceback."""
    (tmp_path / "hook").mkdir()
    (tmp_path / "hook" / "sitecustomize.py").write_text(CTRL_C_AS_A_WORKER_IMPORTS)
    paths = [tmp_path / "hook", Path(__file__).resolve().parents[1]]
    paths += [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(map(str, paths))}
    argv = ["sweep", "--out", str(tmp_path / "sweep"), "--trials", "1",
            "--workers", "1", "--param", "lr=uniform:0.1:0.2", *TINY_ARGS]  # fmt: skip
    child = subprocess.Popen(
        [sys.executable, "-m", "nnscratch", *argv], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,  # its own process group, for the Ctrl-C
    )  # fmt: skip
    try:
        _, err = child.communicate(timeout=120)
    finally:
        _stop(child)
    assert child.returncode == 130, err
    assert err.startswith("sweep interrupted: trials 0/1 done") and err.count("\n") == 1
    assert not (tmp_path / "sweep").exists()  # no trial ran: nothing to continue


def _closed_port_address() -> str:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as server:  # closed: refused now
        return f"tcp://127.0.0.1:{server.getsockname()[1]}"


@pytest.mark.parametrize("failure", ["scheduler", "storage"])
def test_a_sweep_that_cannot_start_leaves_nothing_behind(
    tmp_path, data_dir, monkeypatch, capsys, failure
):
    """An unreachable --scheduler or --storage (exit 1) left the new, empty --out
    (with its study.db and lock file) behind; a folder that was there stays, as it
    was."""
    from nnscratch.runs.sweeps import cluster

    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 1)
    bad = {
        "scheduler": ["--scheduler", _closed_port_address()],
        "storage": ["--storage", f"sqlite:///{tmp_path}/no/such/dir/study.db"],
    }
    argv = ["sweep", "--trials", "1", "--param", "lr=uniform:0.1:0.2",
            *bad[failure], *TINY_ARGS]  # fmt: skip
    assert main([*argv, "--out", str(tmp_path / "new" / "sweep")]) == 1
    assert capsys.readouterr().err.startswith(f"error: --{failure} ")
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    assert main([*argv, "--out", str(tmp_path / "mine")]) == 1
    assert list((tmp_path / "mine").iterdir()) == []


@pytest.mark.parametrize("failure", ["strangers", "scheduler"])
def test_a_refused_sweep_leaves_the_storage_s_database_as_it_was(
    tmp_path, data_dir, monkeypatch, capsys, failure
):
    """A sweep refused (an --out holding another study's trials) or stopped before
    any trial ran (an unreachable --scheduler) left its new, empty study behind in
    the database of --storage, where it listed among the user's studies."""
    from nnscratch.runs.sweeps import cluster

    monkeypatch.setattr(cluster, "CONNECT_SECONDS", 1)
    url = f"sqlite:///{tmp_path}/other.db"
    optuna.create_study(study_name="kept", storage=open_storage(url))
    out = tmp_path / "sweep"
    if failure == "strangers":
        (out / "trials" / "trial-0000").mkdir(parents=True)
    where = {"strangers": ["--workers", "1"],
             "scheduler": ["--scheduler", _closed_port_address()]}  # fmt: skip
    argv = ["sweep", "--out", str(out), "--trials", "1", "--storage", url,
            "--study-name", "new", "--param", "lr=uniform:0.1:0.2",
            *where[failure], *TINY_ARGS]  # fmt: skip
    assert main(argv) == {"strangers": 2, "scheduler": 1}[failure]
    assert "Traceback" not in capsys.readouterr().err
    assert optuna.get_all_study_names(open_storage(url)) == ["kept"]


def test_a_rerun_with_other_options_is_a_usage_error(tmp_path, data_dir, capsys):
    """Another --epochs (or space...) for a study with trials exited 1, as a failure
    of the work; it is a bad combination of options, exit 2 (nothing is run)."""
    out = tmp_path / "sweep"
    out.mkdir()
    study = open_study(open_storage(default_storage(out)), "sweep", "none", 0, {})
    study.ask({"lr": optuna.distributions.FloatDistribution(0.1, 0.2)})
    argv = ["sweep", "--out", str(out), "--trials", "1", "--workers", "1",
            "--param", "lr=uniform:0.1:0.2", *TINY_ARGS]  # fmt: skip
    assert main(argv) == 2
    assert "Error: study 'sweep' was made with another " in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["study.db"]  # as it was


def test_a_sweep_leaves_optuna_s_logging_as_it_was(
    tmp_path, data_dir, monkeypatch, threads_cluster
):
    """The sweep quiets Optuna's line per trial (its own line says it), but set
    Optuna's verbosity for the whole program: a user's INFO logging stayed off."""
    from nnscratch.runs.sweeps import driver

    monkeypatch.setattr(driver, "run_trial", _no_training)
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    try:
        result = nnscratch.sweep(tmp_path / "sweep", 1, ["lr=uniform:0.1:0.2"],
                                 scheduler=threads_cluster, quiet=True, **TINY)  # fmt: skip
        assert result.best_number is None  # the stand-in trial failed, as meant
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
    finally:
        optuna.logging.set_verbosity(before)


def test_two_sweeps_in_threads_leave_optuna_s_logging_as_it_was():
    """Two sweeps in threads of one process, the first ending first: the second
    took the first's WARNING for the level before and put it back last, leaving
    the program's INFO logging off for good."""
    from nnscratch.runs.sweeps.study import optuna_quiet

    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO)
    first_in, second_in, first_out = (threading.Event() for _ in range(3))

    def first():
        with optuna_quiet():
            first_in.set()
            assert second_in.wait(30)
        first_out.set()

    def second():
        assert first_in.wait(30)
        with optuna_quiet():
            second_in.set()
            assert first_out.wait(30)
            quiet.append(optuna.logging.get_verbosity())

    quiet = []
    try:
        threads = [threading.Thread(target=f) for f in (first, second)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert quiet == [optuna.logging.WARNING]  # still quiet while one runs
        assert optuna.logging.get_verbosity() == optuna.logging.INFO
    finally:
        optuna.logging.set_verbosity(before)


def test_trials_in_threads_of_one_worker_leave_stdout_as_it_was(
    tmp_path, monkeypatch, capsys
):
    """A trial hid its run's lines by swapping sys.stdout, the whole process's: two
    trials on the threads of one worker (an in-process cluster, a `dask worker` of
    several threads) put back each other's, so the first one's StringIO stayed the
    program's stdout: the sweep's result line, and a notebook's every print after
    it, went nowhere."""
    from nnscratch.runs.sweeps import trial

    first_in, second_in, first_out = (threading.Event() for _ in range(3))

    def training(run_dir, job):  # trial 0 starts first and ends first
        if job["number"] == 0:
            first_in.set()
            assert second_in.wait(30)
        else:
            second_in.set()
            assert first_out.wait(30)
        print(f"trial {job['number']}'s run line")
        raise nnscratch.NnscratchError("stand-in")

    def run(number: int) -> None:
        assert number == 0 or first_in.wait(30)
        run_trial({"number": number, "run_dir": str(trial_dir(tmp_path, number)),
                   "params": {}})  # fmt: skip
        if number == 0:
            first_out.set()

    monkeypatch.setattr(trial, "_train_when_free", training)
    stdout = sys.stdout
    threads = [threading.Thread(target=run, args=(n,)) for n in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    print("the program's line")
    assert sys.stdout is stdout
    assert capsys.readouterr().out == "the program's line\n"  # not the trials' lines


def test_an_out_below_a_file_is_one_line_naming_out(tmp_path, capsys):
    """--out FILE/sub said 'error: FILE/sub: Not a directory', naming no option."""
    (tmp_path / "afile").touch()
    out = tmp_path / "afile" / "sub"
    argv = ["sweep", "--out", str(out), "--trials", "1", "--workers", "1",
            "--param", "lr=uniform:0.1:0.2", *TINY_ARGS]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err == (
        f"error: --out {out}: cannot make the sweep's folder (Not a directory)\n"
    )


def test_fewer_trials_than_the_study_holds_runs_nothing_and_says_so(
    tmp_path, data_dir, threads_cluster, capsys
):
    """A rerun with --trials below the finished trials printed 'trials 2/1 done', and
    resumed the trials a dead sweep left running, though none was missing."""
    out = tmp_path / "sweep"
    argv = ["sweep", "--out", str(out), "--trials", "2", "--scheduler",
            threads_cluster, "--param", "lr=loguniform:1e-3:1e-2",
            *TINY_ARGS[:-1]]  # fmt: skip
    assert main(argv) == 0
    finished = rows(out)
    study = optuna.load_study(study_name="sweep", storage=default_storage(out))
    left = study.ask(
        {"lr": optuna.distributions.FloatDistribution(1e-3, 1e-2, log=True)}
    )
    left.report(0.5, 1)  # a dead sweep's trial, running at its first epoch
    capsys.readouterr()
    argv[argv.index("2")] = "1"
    assert main(argv) == 0
    said = capsys.readouterr()
    assert said.err == (
        "study 'sweep' already holds 2 finished trials, more than the 1 asked "
        "(--trials): none run\n"
    )
    assert said.out.startswith("best: trial ")
    assert rows(out)[:2] == finished and rows(out)[2]["state"] == "running"
    assert not trial_dir(out, 2).exists()  # not resumed: no trial was missing
    assert "running" in (out / "report.html").read_text(encoding="utf-8")


def test_the_report_draws_trials_of_every_optuna_state(tmp_path):
    """A running trial with an epoch's score (left by a dead sweep) made the report
    fail with KeyError: 'running' (its pictures had colours for complete, pruned and
    failed trials only); the history left it out."""
    from nnscratch.runs.sweeps import report
    from nnscratch.runs.sweeps.results import trial_rows

    study = _four_trials_and_a_pruned_one()
    names = ["lr", "optimizer"]
    running = study.ask({
        "lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True),
        "optimizer": optuna.distributions.CategoricalDistribution(["adam", "sgd"]),
    })  # fmt: skip
    running.report(0.7, 1)
    failed = study.ask()
    study.tell(failed, state=optuna.trial.TrialState.FAIL)
    study.enqueue_trial({"lr": 0.02, "optimizer": "adam"})  # waiting: no score
    found = trial_rows(study, names, tmp_path)
    states = {state.name.lower() for state in optuna.trial.TrialState}
    assert {r["state"] for r in found} == states
    path = tmp_path / "report.html"
    report.write_sweep_report(path, study, found, names, 0.96)
    page = path.read_text(encoding="utf-8")
    assert page.count("<img") == 4
    # the summary counts every state, in the progress line's words
    assert "8 trials: 4 complete, 1 pruned, 1 failed, 1 running, 1 waiting" in page, (
        page
    )
    scored = [r for r in found if r["val_accuracy"] != ""]
    fig = report._history(scored)
    legend = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert legend == ["complete", "pruned", "running", "best so far"]
    alt = report._alt_texts(scored, names, "", None)[0]
    assert "orange if pruned (its last epoch's), dark grey if running (its last" in alt
    # no such colour when no trial is in another state
    complete = [r for r in scored if r["state"] == "complete"]
    assert "grey" not in report._alt_texts(complete, names, "", None)[0]


def test_the_report_summary_names_only_the_states_that_occurred():
    """It read '1 trials: 1 complete, 0 pruned, 0 fail, 0 running'."""
    from nnscratch.runs.sweeps import report

    one = [{"state": "complete"}]
    assert report._summary(None, one) == '<p class="sub">1 trial: 1 complete</p>'
    two = [{"state": "fail"}, {"state": "complete"}]
    assert "2 trials: 1 complete, 1 failed<" in report._summary(None, two)


def test_an_adam_trial_shows_no_momentum_it_did_not_use(tmp_path, capsys):
    """optimizer=choice:adam,sgd with momentum varied: Optuna draws a momentum for
    every trial, but an adam trial's run takes none; trials.csv, the best trial's line
    and best_params showed it all the same ('optimizer=adam, momentum=0.3451')."""
    from nnscratch.runs.sweeps import results
    from nnscratch.runs.sweeps.results import trial_rows

    study = optuna.create_study(direction="maximize")
    study.set_user_attr("setup", {"base": {"preset": "default"}})
    space = {
        "optimizer": optuna.distributions.CategoricalDistribution(["adam", "sgd"]),
        "momentum": optuna.distributions.FloatDistribution(0.5, 0.9),
    }
    for optimizer, value in [("adam", 0.97), ("sgd", 0.95)]:
        study.add_trial(
            optuna.trial.create_trial(
                params={"optimizer": optimizer, "momentum": 0.7},
                distributions=space,
                value=value,
            )
        )
    adam, sgd = trial_rows(study, ["optimizer", "momentum"], tmp_path)
    assert (adam["momentum"], sgd["momentum"]) == ("", 0.7)
    assert results._used_params(study, study.best_trial.params) == {"optimizer": "adam"}
    (tmp_path / "best").mkdir()
    results._say_results(tmp_path, study, 0.96)
    assert capsys.readouterr().out.startswith(
        "best: trial 0 (optimizer=adam): validation accuracy 0.9700"
    )
