import math
import sys

import numpy as np
import pytest

import nnscratch as nn
from nnscratch import Callback, History, NnscratchError
from nnscratch.nn.callbacks import CallbackList
from nnscratch.nn.progress import ProgressBar, epoch_line


class Trace(Callback):
    """Appends (name, hook, argument, logs) to a shared list on every hook."""

    def __init__(self, name, calls):
        self.name, self.calls = name, calls

    def on_train_begin(self, logs=None):
        self.calls.append((self.name, "train_begin", None, logs))

    def on_epoch_begin(self, epoch, logs):
        self.calls.append((self.name, "epoch_begin", epoch, logs))

    def on_batch_begin(self, batch, logs):
        self.calls.append((self.name, "batch_begin", batch, logs))

    def on_batch_end(self, batch, logs):
        self.calls.append((self.name, "batch_end", batch, logs))

    def on_epoch_end(self, epoch, logs):
        self.calls.append((self.name, "epoch_end", epoch, logs))

    def on_train_end(self, logs=None):
        self.calls.append((self.name, "train_end", None, logs))


def test_callback_list_sets_the_model_and_forwards_every_hook_in_order():
    calls = []
    model = object()
    first, second = Trace("a", calls), Trace("b", calls)
    callbacks = CallbackList([first, second], model=model)
    assert callbacks.model is model and first.model is model and second.model is model

    callbacks.on_train_begin()
    callbacks.on_epoch_begin(0)
    callbacks.on_batch_begin(0)
    callbacks.on_batch_end(0, {"loss": 0.5})
    callbacks.on_epoch_end(0, {"loss": 0.4})
    callbacks.on_train_end()
    hooks = [
        ("train_begin", None, {}),
        ("epoch_begin", 0, {}),
        ("batch_begin", 0, {}),
        ("batch_end", 0, {"loss": 0.5}),
        ("epoch_end", 0, {"loss": 0.4}),
        ("train_end", None, {}),
    ]
    assert calls == [
        (name, *hook) for hook in hooks for name in ("a", "b")
    ]  # each hook reaches both callbacks before the next one starts


def test_callback_list_takes_only_callbacks():
    assert CallbackList().callbacks == [] and CallbackList(None).callbacks == []
    with pytest.raises(NnscratchError, match="expected a list of Callback objects"):
        CallbackList([Trace("a", []), "not a callback"])
    with pytest.raises(NnscratchError, match="expected a list of Callback objects"):
        CallbackList(Trace("a", []))


def test_history_records_epochs_and_batch_losses_as_a_callback():
    history = History()
    assert isinstance(history, Callback)
    for epoch, losses in enumerate([[0.9, 0.7], [0.6, 0.5]]):
        history.on_epoch_begin(epoch, {})
        for batch, loss in enumerate(losses):
            history.on_batch_end(batch, {"loss": loss, "accuracy": 0.5, "size": 8})
        history.on_epoch_end(epoch, {"loss": sum(losses) / 2, "lr": 0.1})
    assert history.epoch == [0, 1]
    assert history.batch_losses == [0.9, 0.7, 0.6, 0.5]
    assert history.history == {"loss": [0.8, 0.55], "lr": [0.1, 0.1]}


def test_epoch_line_formats_the_logs():
    logs = {"loss": 0.48213, "accuracy": 0.86123, "lr": 1e-3, "seconds": 3.94}
    line = "epoch 1/5 - loss 0.4821 - accuracy 0.8612 - lr 1.00e-03 - 3.9s"
    assert epoch_line(0, 5, logs) == line
    logs.update(val_loss=0.5, val_accuracy=0.75)
    assert epoch_line(4, 5, logs) == (
        "epoch 5/5 - loss 0.4821 - accuracy 0.8612 - val_loss 0.5000 - "
        "val_accuracy 0.7500 - lr 1.00e-03 - 3.9s"
    )


def run_epoch(progress, sizes):
    progress.on_epoch_begin(0, {})
    for batch, size in enumerate(sizes):
        progress.on_batch_begin(batch, {})
        progress.on_batch_end(batch, {"loss": 1.0, "accuracy": 0.5, "size": size})
    progress.on_epoch_end(0, {"loss": 1.0, "accuracy": 0.5, "lr": 0.01, "seconds": 1})


def test_progress_bar_prints_one_line_per_epoch_and_no_bar_off_a_terminal(capsys):
    run_epoch(ProgressBar(epochs=3, examples=10), [4, 4, 2])
    out, err = capsys.readouterr()
    assert out == "epoch 1/3 - loss 1.0000 - accuracy 0.5000 - lr 1.00e-02 - 1.0s\n"
    assert err == ""  # capsys' stderr is not a terminal


def test_progress_bar_on_a_terminal_is_cleared_before_the_line(capsys, monkeypatch):
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    progress = ProgressBar(epochs=3, examples=10)
    run_epoch(progress, [4, 4, 2])
    out, err = capsys.readouterr()
    assert out.startswith("epoch 1/3 - loss 1.0000")
    assert "epoch 1/3:" in err and "loss=1.0000" in err
    assert "accuracy=0.5000" in err  # every metric under its own name (metrics=["acc"])
    assert err.endswith("\r") and progress.bar is None  # closed with leave=False


def test_fit_verbose_2_prints_the_epoch_lines_without_a_bar(capsys, monkeypatch):
    """Keras' verbose levels: 0 silent, 1 a bar (on a terminal) and a line per epoch,
    2 the lines only (for logs); anything else is refused by name."""
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    x = np.random.default_rng(0).random((20, 4)).astype(np.float32)
    y = np.arange(20) % 2
    for verbose, lines, bar in [(0, 0, False), (1, 2, True), (2, 2, False)]:
        model = nn.Sequential([nn.Dense(2)], input_shape=(4,), seed=0)
        model.fit(x, y, epochs=2, batch_size=8, verbose=verbose)
        out, err = capsys.readouterr()
        assert out.count("\n") == lines and out.count("epoch ") == lines
        assert ("epoch 1/2:" in err) == bar
    with pytest.raises(NnscratchError, match="verbose: expected 0 .* got 3"):
        model.fit(x, y, verbose=3)


def stop_at(step):
    """A BackupAndRestore `interrupt` that stops training at its `step`-th call
    (it is asked once as training starts, then after each step and at each epoch's
    end: 6 times an epoch of 5 steps)."""
    calls = [0]

    def interrupt():
        calls[0] += 1
        return calls[0] == step

    return interrupt


def small_data():
    x = np.random.default_rng(0).random((40, 4)).astype(np.float32)
    return x, np.arange(40) % 2


def test_fit_with_initial_epoch_numbers_its_epochs_and_continues_the_schedule(capsys):
    """Keras' `initial_epoch`: fit(epochs=4, initial_epoch=2) trains epochs 3 and 4
    (0-based 2 and 3), and the learning-rate schedule goes on from epoch 2."""
    x, y = small_data()
    schedule = nn.CosineDecay(0.01, 4)
    whole = nn.Sequential([nn.Dense(2)], input_shape=(4,), seed=0)
    whole_history = whole.fit(
        x, y, epochs=4, batch_size=8, lr_schedule=schedule, verbose=0
    )
    model = nn.Sequential([nn.Dense(2)], input_shape=(4,), seed=0)
    model.fit(x, y, epochs=2, batch_size=8, lr_schedule=schedule, verbose=0)
    calls = []
    history = model.fit(
        x, y, epochs=4, batch_size=8, lr_schedule=schedule, initial_epoch=2,
        callbacks=[Trace("t", calls)], verbose=2,
    )  # fmt: skip
    assert history.epoch == [2, 3]
    assert history.history["lr"] == whole_history.history["lr"][2:]
    assert [c[2] for c in calls if c[1] == "epoch_begin"] == [2, 3]
    out = capsys.readouterr().out
    assert out.startswith("epoch 3/4 - ") and "\nepoch 4/4 - " in out


@pytest.mark.parametrize("epochs, initial_epoch", [(0, 0), (3, 3), (2, 5)])
def test_fit_with_no_epochs_to_train_returns_an_empty_history(epochs, initial_epoch):
    """As in Keras: nothing trains, the callbacks still begin and end."""
    x, y = small_data()
    model = nn.Sequential([nn.Dense(2)], input_shape=(4,), seed=0)
    before = model.get_weights()
    calls = []
    history = model.fit(
        x, y, epochs=epochs, initial_epoch=initial_epoch, verbose=0,
        callbacks=[Trace("t", calls), nn.EarlyStopping(restore_best_weights=True)],
    )  # fmt: skip
    assert history.epoch == [] and history.history == {}
    assert [c[1] for c in calls] == ["train_begin", "train_end"]
    for a, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "arguments, match",
    [
        ({"epochs": -1}, r"epochs: expected an int >= 0, got -1"),
        ({"initial_epoch": -1}, r"initial_epoch: expected an int >= 0, got -1"),
        ({"initial_epoch": 1.5}, r"initial_epoch: expected an int >= 0, got 1.5"),
    ],
)
def test_fit_refuses_epoch_counts_that_are_no_counts(arguments, match):
    x, y = small_data()
    model = nn.Sequential([nn.Dense(2)], input_shape=(4,), seed=0)
    with pytest.raises(NnscratchError, match=match):
        model.fit(x, y, verbose=0, **arguments)


def plateau_run(values, **settings):
    """The optimiser's lr after each epoch whose val_loss is each of `values`."""
    callback = nn.ReduceLROnPlateau(**settings)
    optimizer = nn.SGD(1.0)
    callback.trainer = type(
        "Trainer", (), {"optimizer": optimizer, "lr_schedule": None}
    )
    callback.on_train_begin()
    rates = []
    for epoch, value in enumerate(values):
        callback.on_epoch_end(epoch, {"val_loss": value})
        rates.append(optimizer.lr)
    return rates


def test_reduce_lr_on_plateau_counts_patience_cooldown_and_min_lr_as_keras():
    # best 1.0, then 3 epochs without an improvement of more than 1e-4
    assert plateau_run([1.0, 1.0, 0.99995, 1.2, 0.5], factor=0.5, patience=3) == [
        1.0, 1.0, 1.0, 0.5, 0.5,
    ]  # fmt: skip
    # patience 1, cooldown 2, counted as Keras does: the epoch after a reduction is
    # not counted, the one that ends the cooldown is
    values = [1.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    assert plateau_run(values, factor=0.5, patience=1, cooldown=2) == [
        1.0, 0.5, 0.5, 0.25, 0.25, 0.125, 0.125,
    ]  # fmt: skip
    assert plateau_run([1.0] + [2.0] * 5, factor=0.1, patience=1, min_lr=0.005) == [
        1.0, 0.1, 0.010000000000000002, 0.005, 0.005, 0.005,
    ]  # fmt: skip
    # accuracy improves upwards ("auto" mode)
    callback = nn.ReduceLROnPlateau(monitor="val_accuracy")
    assert callback.mode == "max"


def test_reduce_lr_on_plateau_lowers_the_rate_of_the_next_epochs_of_a_fit(capsys):
    x, y = small_data()
    model = nn.Sequential([nn.Dense(2)], input_shape=(4,), seed=0)
    plateau = nn.ReduceLROnPlateau(
        monitor="loss", factor=0.5, patience=0, min_delta=10.0, verbose=True
    )  # a min_delta no epoch beats: every epoch after the first is a plateau
    history = model.fit(
        x, y, epochs=4, optimizer=nn.SGD(0.1), callbacks=[plateau], verbose=0
    )
    assert history.history["lr"] == [0.1, 0.1, 0.05, 0.025]
    assert model.optimizer.lr == 0.0125
    assert (
        "epoch 2: ReduceLROnPlateau: loss has not improved" in capsys.readouterr().out
    )
    with pytest.raises(NnscratchError, match="ReduceLROnPlateau: this fit has an lr_"):
        model.fit(x, y, callbacks=[plateau], lr_schedule=nn.CosineDecay(0.1, 2))


@pytest.mark.parametrize(
    "settings, match",
    [
        ({"factor": 1.0}, "ReduceLROnPlateau factor"),
        ({"factor": 0}, "ReduceLROnPlateau factor"),
        ({"patience": -1}, "ReduceLROnPlateau patience"),
        ({"cooldown": 0.5}, "ReduceLROnPlateau cooldown"),
        ({"min_lr": -1e-3}, "ReduceLROnPlateau min_lr"),
        ({"mode": "up"}, "ReduceLROnPlateau: mode must be min, max or auto"),
    ],
)
def test_reduce_lr_on_plateau_refuses_bad_settings(settings, match):
    with pytest.raises(NnscratchError, match=match):
        nn.ReduceLROnPlateau(**settings)


def fit_stopped_and_resumed(tmp_path, callback, epochs, lr, stop):
    """The histories of a fit never stopped and of the same fit stopped at its
    `stop`-th step and resumed from its checkpoint (their weights must be equal);
    `callback()` makes the callback under test for each."""
    x, y = small_data()

    def fit(callbacks):
        model = nn.Sequential([nn.Dense(2)], input_shape=(4,), seed=0)
        history = model.fit(
            x, y, epochs=epochs, batch_size=8, optimizer=nn.SGD(lr), seed=1,
            verbose=0, callbacks=[callback(), *callbacks],
        )  # fmt: skip
        return model, history

    reference, expected = fit([])
    with pytest.raises(nn.TrainingInterrupted):
        fit([nn.BackupAndRestore(tmp_path, interrupt=stop_at(stop))])
    model, resumed = fit([nn.BackupAndRestore(tmp_path)])
    for a, b in zip(model.get_weights().values(), reference.get_weights().values()):
        np.testing.assert_array_equal(a, b)
    return expected, resumed


def test_reduce_lr_on_plateau_continues_exactly_from_a_checkpoint(tmp_path):
    """Its count and the lowered rate are kept, so a resumed fit lowers the rate
    at the same epochs as one never stopped."""
    expected, resumed = fit_stopped_and_resumed(
        tmp_path,
        lambda: nn.ReduceLROnPlateau(monitor="loss", factor=0.5, patience=2, min_delta=0.01),
        epochs=8, lr=0.5, stop=28,  # at step 3 of epoch 5
    )  # fmt: skip
    # lowered after epoch 6, the second without improvement on epoch 4 (whose best
    # the checkpoint taken in epoch 5 must keep)
    assert expected.history["lr"][5:] == [0.5, 0.25, 0.25]
    assert resumed.history["lr"] == expected.history["lr"]


def test_learning_rate_scheduler_sets_each_epochs_rate_as_keras():
    x, y = small_data()
    model = nn.Sequential([nn.Dense(2)], input_shape=(4,), seed=0)
    halve_after_one = nn.LearningRateScheduler(
        lambda epoch, lr: lr if epoch < 1 else lr / 2
    )
    history = model.fit(
        x, y, epochs=4, optimizer=nn.SGD(0.1), callbacks=[halve_after_one], verbose=0
    )
    assert history.history["lr"] == [0.1, 0.05, 0.025, 0.0125]
    # a function of the epoch alone, such as the library's schedules, per epoch
    cosine = nn.CosineDecay(0.1, 4)
    history = model.fit(
        x, y, epochs=4, callbacks=[nn.LearningRateScheduler(cosine)], verbose=0
    )
    assert history.history["lr"] == [cosine(e) for e in range(4)]


def test_learning_rate_scheduler_takes_a_schedule_that_reaches_zero():
    """A rate of 0 is a rate (Keras takes it, and so does fit's lr_schedule): a
    cosine decay run past its end gives 0 from there on."""
    x, y = small_data()
    model = nn.Sequential([nn.Dense(2)], input_shape=(4,), seed=0)
    cosine = nn.CosineDecay(0.1, 2)
    history = model.fit(
        x, y, epochs=3, callbacks=[nn.LearningRateScheduler(cosine)], verbose=0
    )
    assert history.history["lr"] == [0.1, cosine(1), 0.0]
    history = model.fit(x, y, epochs=3, lr_schedule=cosine, verbose=0)
    assert history.history["lr"][-1] == 0.0


def test_learning_rate_scheduler_refuses_what_is_no_rate():
    x, y = small_data()
    model = nn.Sequential([nn.Dense(2)], input_shape=(4,), seed=0)
    with pytest.raises(NnscratchError, match="expected a function of the epoch"):
        nn.LearningRateScheduler(0.1)
    bad = nn.LearningRateScheduler(lambda epoch: -1.0)
    with pytest.raises(
        NnscratchError, match="the schedule's rate for epoch 1: expected"
    ):
        model.fit(x, y, callbacks=[bad], verbose=0)
    with pytest.raises(
        NnscratchError, match="LearningRateScheduler: this fit has an lr_"
    ):
        good = nn.LearningRateScheduler(lambda epoch: 0.1)
        model.fit(x, y, callbacks=[good], lr_schedule=nn.CosineDecay(0.1, 2), verbose=0)


def test_learning_rate_scheduler_is_not_applied_twice_to_a_resumed_epoch(tmp_path):
    expected, resumed = fit_stopped_and_resumed(
        tmp_path, lambda: nn.LearningRateScheduler(lambda epoch, lr: lr * 0.5),
        epochs=4, lr=0.2, stop=10,  # at step 3 of epoch 2
    )  # fmt: skip
    assert resumed.history["lr"] == expected.history["lr"] == [0.1, 0.05, 0.025, 0.0125]


def read_csv(path):
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_logger_writes_a_row_per_epoch_as_keras(tmp_path):
    x, y = small_data()
    model = nn.Sequential([nn.Dense(2)], input_shape=(4,), seed=0)
    path = tmp_path / "logs" / "training.csv"  # its folder is made
    history = model.fit(
        x, y, epochs=3, validation_split=0.25, callbacks=[nn.CSVLogger(path)], verbose=0
    )
    rows = read_csv(path)
    assert path.read_text().splitlines()[0] == (
        "epoch,accuracy,loss,lr,seconds,val_accuracy,val_loss"
    )
    assert [row["epoch"] for row in rows] == ["0", "1", "2"]
    assert [float(row["val_loss"]) for row in rows] == history.history["val_loss"]
    # append: a second fit adds its rows; without it the file starts again
    model.fit(x, y, epochs=2, callbacks=[nn.CSVLogger(path, append=True)], verbose=0)
    assert [row["epoch"] for row in read_csv(path)] == ["0", "1", "2", "0", "1"]
    assert read_csv(path)[-1]["val_loss"] == ""  # no validation in that fit
    model.fit(x, y, epochs=1, callbacks=[nn.CSVLogger(path, separator=";")], verbose=0)
    assert path.read_text().splitlines()[0] == "epoch;accuracy;loss;lr;seconds"
    assert list(tmp_path.rglob(".*.tmp")) == []


def test_csv_logger_continues_its_file_from_a_checkpoint(tmp_path):
    x, y = small_data()
    path = tmp_path / "training.csv"

    def fit(callbacks):
        model = nn.Sequential([nn.Dense(2)], input_shape=(4,), seed=0)
        model.fit(
            x, y, epochs=4, batch_size=8, seed=1, verbose=0,
            callbacks=[nn.CSVLogger(path), *callbacks],
        )  # fmt: skip
        return [
            {k: v for k, v in row.items() if k != "seconds"} for row in read_csv(path)
        ]

    expected = fit([])
    with pytest.raises(nn.TrainingInterrupted):  # at step 3 of epoch 3
        fit([nn.BackupAndRestore(tmp_path / "backup", interrupt=stop_at(16))])
    assert len(read_csv(path)) == 2  # the epochs done before the stop
    assert fit([nn.BackupAndRestore(tmp_path / "backup")]) == expected


@pytest.mark.parametrize(
    "content, message",
    [
        (b"epoch,loss\n0,0.5\n1,0.4,\n", "line 3 has 3 fields, the header 2"),
        (b"epoch,loss\n0,\xff\n", "not UTF-8 text"),
    ],
    ids=["trailing-comma", "latin-1"],
)
def test_csv_logger_refuses_a_file_it_cannot_append_to_and_leaves_it(
    tmp_path, content, message
):
    """append=True reads the user's file first: a row longer than its header (a
    TypeError in sorting the columns) or bytes that are not UTF-8 (a
    UnicodeDecodeError) are one NnscratchError line naming it, before training."""
    x, y = small_data()
    path = tmp_path / "training.csv"
    path.write_bytes(content)
    model = nn.Sequential([nn.Dense(2)], input_shape=(4,), seed=0)
    logger = nn.CSVLogger(path, append=True)
    with pytest.raises(NnscratchError, match=f"CSVLogger: {path}: .*{message}"):
        model.fit(x, y, epochs=1, callbacks=[logger], verbose=0)
    assert path.read_bytes() == content


def test_csv_logger_refuses_a_separator_of_more_than_one_character():
    with pytest.raises(NnscratchError, match="separator must be one character"):
        nn.CSVLogger("log.csv", separator=", ")


def test_the_history_has_keras_params_and_model():
    x, y = small_data()
    model = nn.Sequential([nn.Dense(2)], input_shape=(4,), seed=0)
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert history.params == {"verbose": 0, "epochs": 3, "steps": 3}
    assert history.model is model


@pytest.mark.parametrize(
    "schedule, message",
    [
        (0.01, "lr_schedule: expected a function of the epoch"),
        (
            lambda epoch: -0.01,
            r"lr_schedule: the rate at epoch 0: expected a number >= 0",
        ),
        (lambda epoch: math.nan, "lr_schedule: the rate at epoch 0: expected a number"),
        (lambda epoch: "0.1", "lr_schedule: the rate at epoch 0: expected a number"),
    ],
)
def test_fit_refuses_an_lr_schedule_that_is_no_function_or_gives_a_bad_rate(
    schedule, message
):
    # these failed deep in training with a TypeError or a misleading "diverged", or,
    # for a negative rate, trained without complaint up the loss
    x, y = small_data()
    model = nn.Sequential([nn.Dense(2)], input_shape=(4,), seed=0)
    before = model.get_weights()
    with pytest.raises(NnscratchError, match=message):
        model.fit(x, y, epochs=2, batch_size=8, lr_schedule=schedule, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
