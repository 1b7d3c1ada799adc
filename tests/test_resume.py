"""`nnscratch train` killed and resumed: SIGKILL at random moments (during a checkpoint
write too), SIGINT and SIGTERM, then --resume, ends with the very files of the run
never interrupted. Runs are subprocesses on a tiny synthetic dataset, a second or two
each; the moments are seeded (the checkpoint after which the signal comes)."""

import csv
import errno
import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from nnscratch import Callback, cli, load_model
from nnscratch.data.idx import write_idx
from nnscratch.nn.checkpoints import read_checkpoint, write_checkpoint
from nnscratch.nn.saving import write_npz
from nnscratch.runs.lock import RunLock
from nnscratch.runs.presets import preset_settings
from nnscratch.runs.rundir import recover
from nnscratch.runs.signals import SignalInterrupt, StopSignals
from nnscratch.runs.training import run_training

ENV = {**os.environ, "MPLBACKEND": "Agg"}
TIMEOUT = 60  # seconds a subprocess may take
# dropout, augmentation, a cosine schedule with warm-up, AdamW, a validation split;
# a checkpoint every 5 steps (34 steps an epoch) and at every epoch's end
SETTINGS = ["--hidden", "64", "--dropout", "0.2", "--augment", "default",
            "--optimizer", "adamw", "--schedule", "cosine", "--warmup", "1",
            "--epochs", "16", "--batch-size", "16", "--checkpoint-every", "5"]  # fmt: skip


@pytest.fixture(scope="module")
def data_folder(tmp_path_factory) -> Path:
    """600 training and 200 test images: a noisy blob per class, learnable."""
    folder = tmp_path_factory.mktemp("data") / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    prototypes = rng.random((10, 28, 28)) ** 4 * 255
    for part, n in (("train", 600), ("t10k", 200)):
        labels = rng.integers(0, 10, n).astype(np.uint8)
        noise = rng.normal(0, 60, (n, 28, 28))
        images = np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8)
        write_idx(folder / f"{part}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{part}-labels-idx1-ubyte.gz", labels)
    return folder


def train_args(data_folder, out, *extra) -> list[str]:
    return ["train", "--data-dir", str(data_folder), *SETTINGS, "--out", str(out),
            "-q", *extra]  # fmt: skip


def command(args) -> list[str]:
    return [sys.executable, "-m", "nnscratch", *args]


def run(args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(args), capture_output=True, text=True, env=ENV, timeout=TIMEOUT,
        check=False, **kwargs,
    )  # fmt: skip


def resume(out) -> subprocess.CompletedProcess:
    return run(["train", "--resume", str(out), "-q"])


@pytest.fixture(scope="module")
def reference(data_folder, tmp_path_factory) -> Path:
    """The run never interrupted."""
    out = tmp_path_factory.mktemp("reference")
    done = run(train_args(data_folder, out, "--no-report"))
    assert done.returncode == 0, done.stderr
    return out


def rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return [
            {k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(f)
        ]


def assert_same_run(expected: Path, got: Path) -> None:
    """Bit for bit: model.npz, batch_losses.csv, history.csv but for its seconds,
    metrics.json but for the training time; and no checkpoint or temporary left."""
    assert (got / "model.npz").read_bytes() == (expected / "model.npz").read_bytes()
    a, b = load_model(expected / "model.npz"), load_model(got / "model.npz")
    assert a.get_weights().keys() == b.get_weights().keys()
    assert rows(got / "history.csv") == rows(expected / "history.csv")
    assert (got / "batch_losses.csv").read_text() == (
        expected / "batch_losses.csv"
    ).read_text()
    metrics = [json.loads((d / "metrics.json").read_text()) for d in (expected, got)]
    for m in metrics:
        m.pop("train_seconds")
    assert metrics[0] == metrics[1]
    assert not (got / "checkpoints").exists() and not (got / ".incoming").exists()
    assert not list(got.rglob("*.tmp"))


def numbers(out: Path) -> list[int]:
    """The numbers of the checkpoints in out/checkpoints now."""
    try:
        names = os.listdir(out / "checkpoints")
    except FileNotFoundError:
        return []
    return [int(n[11:17]) for n in names if n.startswith("checkpoint-")]


def checkpoints_past(out: Path, more: int):
    """A condition: `more` checkpoints have been written since now."""
    target = max(numbers(out), default=0) + more
    return lambda: max(numbers(out), default=0) >= target


def temporary(out: Path) -> set[str]:
    """The temporary files of checkpoints being written (or left by a kill)."""
    try:
        return {n for n in os.listdir(out / "checkpoints") if n.endswith(".tmp")}
    except FileNotFoundError:
        return set()


def writing(out: Path):
    """A condition: a checkpoint is being written (a new temporary file is there)."""
    before = temporary(out)
    return lambda: bool(temporary(out) - before)


def wait_until(condition, proc) -> bool:
    """Poll `condition` until it holds (True) or `proc` has ended (False)."""
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the run neither got there nor ended"
        time.sleep(0.001)
    return True


def start(args) -> subprocess.Popen:
    return subprocess.Popen(
        command(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=ENV,
    )  # fmt: skip


def test_sigkill_at_random_moments_then_resume_ends_as_never_killed(
    data_folder, reference, tmp_path
):
    rng = random.Random(18)
    out = tmp_path / "run"
    args = train_args(data_folder, out, "--no-report")
    kills = 0
    for attempt in range(6):
        proc = start(args)
        if attempt == 2:  # as soon as a checkpoint is being written
            reached = wait_until(writing(out), proc)
        else:  # after a few more checkpoints, and up to 10 ms more
            reached = wait_until(checkpoints_past(out, rng.randint(1, 10)), proc)
            time.sleep(rng.uniform(0, 0.01))
        proc.kill()
        proc.communicate(timeout=TIMEOUT)
        kills += reached and proc.returncode == -signal.SIGKILL
        args = ["train", "--resume", str(out), "-q"]
    assert kills >= 4  # most of them landed in training
    done = resume(out)
    assert done.returncode == 0, done.stderr
    assert_same_run(reference, out)


def test_sigint_and_sigterm_stop_with_a_checkpoint_and_say_how_to_go_on(
    data_folder, reference, tmp_path
):
    out = tmp_path / "run"
    args = train_args(data_folder, out, "--no-report")
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        proc = start(args)
        assert wait_until(checkpoints_past(out, 8), proc)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == code, err
        line = err.strip().splitlines()[-1]
        assert line.startswith("interrupted at epoch ") and "/16, step " in line
        assert line.endswith(f"; continue with: nnscratch train --resume {out}")
        args = ["train", "--resume", str(out), "-q"]
    newest = out / "checkpoints" / f"checkpoint-{max(numbers(out)):06d}.npz"
    raw = bytearray(newest.read_bytes())  # a bad sector in its middle
    raw[len(raw) // 2 : len(raw) // 2 + 16] = bytes(16)
    newest.write_bytes(bytes(raw))
    done = resume(out)
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(f"{newest}: damaged checkpoint (")
    assert "continuing from checkpoint-" in done.stderr  # the one before it
    assert_same_run(reference, out)
    done = resume(out)
    assert done.returncode == 0
    assert "this run has finished: test accuracy" in done.stdout


def test_sigterm_while_the_report_is_drawn_says_so_and_resume_finishes_it(
    data_folder, tmp_path
):
    out = tmp_path / "run"
    args = ["train", "--data-dir", str(data_folder), "--hidden", "16", "--epochs", "2",
            "--out", str(out), "-q"]  # fmt: skip
    proc = start(args)  # with its report
    assert wait_until(lambda: (out / ".incoming" / "metrics.json").exists(), proc)
    proc.send_signal(signal.SIGTERM)  # stops after the picture being drawn
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == (
        f"interrupted while writing the run's files; continue with: nnscratch train "
        f"--resume {out}"
    )
    assert not (out / "model.npz").exists()  # nothing under a real name yet
    done = resume(out)
    assert done.returncode == 0, done.stderr
    assert (out / "report.html").is_file() and (
        out / "figures" / "training.gif"
    ).is_file()
    assert not (out / ".incoming").exists() and not (out / "checkpoints").exists()


def full_disk_on_call(n: int):
    """A writer that fails like a full disk from its n-th call on."""
    calls = [0]

    def write(f, arrays):
        calls[0] += 1
        if calls[0] >= n:
            f.write(b"half a file")
            raise OSError(errno.ENOSPC, "No space left on device")
        write_npz(f, arrays)

    return write


@pytest.mark.parametrize(
    "writer, failing_call, message",
    [
        ("nnscratch.nn.checkpoints.write_npz", 9,  # the 9th checkpoint
         ("{out}/checkpoints/checkpoint-000009.npz: No space left on device; "
          "checkpoint-000008.npz before it is whole: make room, then continue with: "
          "nnscratch train --resume {out}")),
        ("nnscratch.nn.saving.write_npz", 1,  # the run's model.npz
         ("{out}/.incoming/model.npz: No space left on device; the run's checkpoints "
          "are kept: continue with: nnscratch train --resume {out}")),
    ],
)  # fmt: skip
def test_a_full_disk_keeps_the_last_checkpoint_and_resume_goes_on(
    writer, failing_call, message, data_folder, reference, tmp_path, monkeypatch,
    capsys,
):  # fmt: skip
    out = tmp_path / "run"
    monkeypatch.setattr(writer, full_disk_on_call(failing_call))
    assert cli.main(train_args(data_folder, out, "--no-report")) == 1
    err = capsys.readouterr().err.strip()
    assert err == "error: cannot write " + message.format(out=out)
    assert not (out / "model.npz").exists() and not (out / ".incoming").exists()
    assert not list(out.rglob("*.tmp")) and len(numbers(out)) == 2
    monkeypatch.undo()  # room again
    assert cli.main(["train", "--resume", str(out), "-q"]) == 0
    assert_same_run(reference, out)


def limit_file_size():
    """In the child: no file may grow past 100 kB (writes fail with EFBIG)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))


def test_a_real_write_error_on_the_first_checkpoint_is_one_line(data_folder, tmp_path):
    out = tmp_path / "run"
    failed = run(
        train_args(data_folder, out, "--no-report"), preexec_fn=limit_file_size
    )
    assert failed.returncode == 1
    assert failed.stderr.strip() == (
        f"error: cannot write {out}/checkpoints/checkpoint-000001.npz: File too "
        "large; make room, then start the run again"
    )
    assert not numbers(out) and not list(out.rglob("*.tmp"))


def test_two_runs_on_one_folder_at_once_one_is_refused(data_folder, tmp_path):
    out = tmp_path / "run"
    args = train_args(data_folder, out, "--no-report")
    procs = [start(args), start(args)]
    results = [(p.wait(timeout=TIMEOUT), p.communicate()[1]) for p in procs]
    assert sorted(code for code, _ in results) == [0, 1]
    refused = next(err for code, err in results if code == 1).strip()
    # the holder's pid, or "starting" when the refused run looked between the other's
    # flock and its writing its pid into the lock file (a window of microseconds)
    in_use = re.search(r"is in use by another run \((pid \d+|starting)", refused)
    assert in_use or "already holds a run" in refused, refused
    config = json.loads((out / "config.json").read_text())
    assert load_model(out / "model.npz").metadata["training"] == config


def test_a_locked_run_directory_is_refused_in_one_line(data_folder, tmp_path, capsys):
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "config.json").write_text("{}")
    with RunLock(tmp_path, "nnscratch train --out elsewhere"):
        assert cli.main(train_args(data_folder, tmp_path)) == 1
        assert cli.main(["train", "--resume", str(tmp_path)]) == 1
        assert cli.main(["report", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3
    for line in err:
        assert line.startswith(f"error: {tmp_path} is in use by another run (pid ")
        assert "nnscratch train --out elsewhere, since" in line


def test_overwrite_keeps_the_old_run_until_the_new_one_has_finished(
    data_folder, reference, tmp_path, capsys
):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    (out / ".model.npz.x1y2.tmp").write_bytes(b"left by a killed writer")
    args = [*train_args(data_folder, out), "--epochs", "3", "--overwrite"]
    proc = start(args)
    assert wait_until(lambda: len(numbers(out)) > 0, proc)
    proc.kill()
    proc.wait(timeout=TIMEOUT)
    assert (out / "model.npz").read_bytes() == (reference / "model.npz").read_bytes()
    assert cli.main(train_args(data_folder, out)) == 1
    assert "holds an interrupted run: continue it with" in capsys.readouterr().err
    done = resume(out)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "config.json").read_text())["epochs"] == 3
    assert (out / "report.html").is_file() and not list(out.rglob("*.tmp"))


def test_a_diverged_run_leaves_nothing_to_resume(data_folder, tmp_path, capsys):
    """Resuming would diverge again, bit for bit: the run is over, and a retry with a
    lower learning rate in the same folder is not refused as an interrupted run."""
    out = tmp_path / "run"

    def args(lr):
        return ["train", "--data-dir", str(data_folder), "--hidden", "8", "--optimizer",
                "sgd", "--lr", lr, "--epochs", "2", "--out", str(out), "-q",
                "--no-report"]  # fmt: skip

    assert cli.main(args("1e30")) == 1
    assert "error: training diverged: the loss became" in capsys.readouterr().err
    assert not (out / "checkpoints").exists()
    assert cli.main(args("0.01")) == 0


def test_resume_of_a_run_whose_data_moved_says_where_to_put_it_back(
    data_folder, tmp_path, capsys
):
    from nnscratch.nn.callbacks import Callback
    from nnscratch.runs.settings import RunSettings
    from nnscratch.runs.signals import RunInterrupted
    from nnscratch.runs.training import run_training

    class CtrlC(Callback):
        def on_epoch_end(self, epoch, logs):
            os.kill(os.getpid(), signal.SIGINT)  # stops after this step

    data, out = tmp_path / "mnist", tmp_path / "run"
    shutil.copytree(data_folder, data)
    settings = RunSettings(hidden=(8,), epochs=2)
    with pytest.raises(RunInterrupted):
        run_training(settings, data, out, report=False, verbose=0, callbacks=[CtrlC()])
    data.rename(tmp_path / "moved")
    capsys.readouterr()
    assert cli.main(["train", "--resume", str(out)]) == 1
    assert capsys.readouterr().err == (
        f"error: {out}: the mnist files it trained on are no longer in {data}: put"
        " them back there to resume\n"
    )
    (tmp_path / "moved").rename(data)
    assert cli.main(["train", "--resume", str(out), "-q"]) == 0


def test_resume_refuses_what_it_cannot_continue_in_one_line(
    data_folder, tmp_path, capsys
):
    assert cli.main(["train", "--resume", str(tmp_path)]) == 1
    assert cli.main(["train", "--resume", str(tmp_path), "--epochs", "3"]) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path}: not a run directory, or its run never started" in err
    assert "--resume takes the run's settings: drop --epochs" in err
    assert not (tmp_path / ".lock").exists()  # nothing made in a folder of no run
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "checkpoint-000001.npz").write_bytes(b"garbage")
    assert cli.main(["train", "--resume", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err
    assert "checkpoint-000001.npz: damaged checkpoint (not a zip archive)" in err


class Crash(Exception):
    pass


class CrashAtStep3(Callback):
    def on_batch_end(self, batch, logs):
        if batch == 2:
            raise Crash  # as a process killed there: its checkpoints are left


def crashed_run(data_folder, out) -> Path:
    """A run stopped at its third step as a killed one would be; its checkpoint."""
    settings = replace(preset_settings("default"), hidden=(8,), epochs=2)
    with pytest.raises(Crash):
        run_training(
            settings, data_folder, out=out, verbose=0, callbacks=[CrashAtStep3()]
        )
    return out / "checkpoints" / "checkpoint-000001.npz"


@pytest.mark.parametrize(
    "damage",
    [
        lambda position: {**position, "epoch": "x"},
        lambda position: {**position, "epoch": None},
        lambda position: {k: v for k, v in position.items() if k != "epoch"},
        lambda position: None,
    ],
    ids=["epoch-text", "epoch-null", "no-epoch", "no-position"],
)
def test_resume_from_a_checkpoint_whose_position_is_damaged_is_one_line(
    data_folder, tmp_path, capsys, damage
):
    # resume printed where it continues from before the checkpoint was checked: a
    # TypeError or KeyError instead of the checkpoint's one-line error
    path = crashed_run(data_folder, tmp_path / "run")
    state = read_checkpoint(path)
    state["position"] = damage(state["position"])
    write_checkpoint(path, state)
    assert cli.main(["train", "--resume", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {path}: ") and "\n" not in err


def without_data_dir(run: dict) -> None:
    del run["config"]["data_dir"]


@pytest.mark.parametrize(
    "edit",
    [
        without_data_dir,
        lambda run: run["config"].update(data_dir=5),
        lambda run: run["config"].update(data_dir=["data"]),
        lambda run: run.update(checkpoint_every=0),
        lambda run: run.update(limit=True),
    ],
    ids=["no-data-dir", "data-dir-int", "data-dir-list", "checkpoint-every-0",
         "limit-true"],
)  # fmt: skip
def test_resume_from_a_checkpoint_with_a_damaged_run_record_is_one_line(
    data_folder, tmp_path, capsys, edit
):
    # the run's record in the checkpoint: no data_dir text gave a KeyError or a
    # TypeError from Path(); checkpoint_every 0 "BackupAndRestore save_every:
    # expected an int >= 1", naming neither the file nor the problem
    path = crashed_run(data_folder, tmp_path / "run")
    state = read_checkpoint(path)
    edit(state["extra"]["run"])
    write_checkpoint(path, state)
    assert cli.main(["train", "--resume", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip()
    assert err == f"error: {path}: not a checkpoint of an nnscratch train run"


@pytest.mark.parametrize("accuracy", ["x", [0.9], None])
def test_resume_of_a_finished_run_with_a_hand_edited_accuracy_says_it_finished(
    tmp_path, capsys, accuracy
):
    # "test accuracy {:.4f}" of a text gave a ValueError traceback
    (tmp_path / "model.npz").write_bytes(
        b""
    )  # finished: a model, metrics, no checkpoint
    (tmp_path / "metrics.json").write_text(json.dumps({"test_accuracy": accuracy}))
    assert cli.main(["train", "--resume", str(tmp_path)]) == 0
    assert (
        capsys.readouterr().out
        == f"{tmp_path}: this run has finished; nothing to resume\n"
    )


def test_a_second_signal_stops_at_once():
    with StopSignals() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.requested() and stop.exit_code == 143  # the first only asks
        with pytest.raises(SignalInterrupt) as stopped:
            os.kill(os.getpid(), signal.SIGINT)
            for _ in range(1000):  # the handler runs between two bytecodes
                pass
    assert stopped.value.exit_code == 130
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_sigterm_stops_the_report_command_with_a_word(reference, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    proc = start(["report", str(out)])
    assert wait_until(lambda: (out / "figures").is_dir(), proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 143 and err.strip() == "aborted"
    assert not list(out.rglob("*.tmp"))


def test_a_replacement_killed_half_way_is_finished_by_the_next_command(
    reference, tmp_path
):
    out = tmp_path / "run"
    shutil.copytree(reference, out)
    (out / "report.html").write_text("the old run's page")
    incoming = out / ".incoming"
    incoming.mkdir()
    (incoming / "model.npz").write_bytes(b"the new model")
    (out / "metrics.json").write_text("{}")  # moved already, with config.json
    (out / "config.json").write_text("{}")
    names = ["config.json", "metrics.json", "model.npz"]
    (incoming / "committed.json").write_text(json.dumps(names))
    (out / "checkpoints").mkdir()
    (out / "figures").mkdir()
    (out / "figures" / ".per_class.png.k3j4.tmp").write_bytes(b"half")
    recover(out)
    assert (out / "model.npz").read_bytes() == b"the new model"
    left = sorted(p.name for p in out.iterdir() if p.name != ".lock")
    assert left == names  # the old run's other files go, and the checkpoints
    incoming.mkdir()  # written, but not committed: dropped
    (incoming / "model.npz").write_bytes(b"a newer model")
    recover(out)
    assert (out / "model.npz").read_bytes() == b"the new model"
    assert not incoming.exists()


FIT_SCRIPT = """
import json, sys
import numpy as np
import nnscratch as nn

out = sys.argv[1]
rng = np.random.default_rng(0)
x = (rng.random((400, 8, 8)) * 255).astype(np.uint8)
y = (x[:, :4].mean(axis=(1, 2)) > x[:, 4:].mean(axis=(1, 2))).astype(np.int64)
model = nn.Sequential(
    [nn.Flatten(), nn.Dense(32), nn.BatchNorm(), nn.ReLU(), nn.Dropout(0.3),
     nn.Dense(2)], input_shape=(8, 8), seed=1)
callbacks = [nn.EarlyStopping(patience=4)]
if len(sys.argv) > 2:
    callbacks.append(nn.BackupAndRestore(sys.argv[2], save_every=3))
history = model.fit(
    x, y, epochs=40, batch_size=16, validation_split=0.2, seed=3,
    optimizer=nn.AdamW(0.01), lr_schedule=nn.CosineDecay(0.01, 40, warmup_epochs=2),
    augment=nn.Augment(shift=1, rotation=5), callbacks=callbacks, verbose=0)
model.save(out + "/model.npz")
del history.history["seconds"]
with open(out + "/history.json", "w") as f:
    json.dump([history.history, history.batch_losses, history.epoch], f)
"""


def test_the_api_fit_killed_at_random_moments_ends_as_never_killed(tmp_path):
    """Batch norm, dropout, augmentation, early stopping, a cosine schedule with
    warm-up: BackupAndRestore under SIGKILL."""
    script = tmp_path / "fit.py"
    script.write_text(FIT_SCRIPT)
    expected, out = tmp_path / "expected", tmp_path / "run"
    expected.mkdir(), out.mkdir()
    done = subprocess.run(
        [sys.executable, str(script), str(expected)], env=ENV, timeout=TIMEOUT,
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rng = random.Random(7)
    args = [sys.executable, str(script), str(out), str(out / "checkpoints")]
    kills = 0
    for attempt in range(4):
        proc = subprocess.Popen(args, env=ENV)
        if attempt == 1:
            reached = wait_until(writing(out), proc)
        else:
            reached = wait_until(checkpoints_past(out, rng.randint(2, 40)), proc)
        proc.kill()
        kills += reached and proc.wait(timeout=TIMEOUT) == -signal.SIGKILL
    assert kills >= 3
    assert subprocess.run(args, env=ENV, timeout=TIMEOUT, check=False).returncode == 0
    history = json.loads((expected / "history.json").read_text())
    assert len(history[2]) < 40  # early stopping ended it
    assert json.loads((out / "history.json").read_text()) == history
    assert (out / "model.npz").read_bytes() == (expected / "model.npz").read_bytes()
    assert not (out / "checkpoints").exists()
