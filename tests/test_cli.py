import csv
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from nnscratch import Dense, Flatten, ReLU, Sequential, cli, load_model


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, data_dir):
    """A short real training run (seed-deep, 2 epochs) shared by the CLI tests."""
    out = tmp_path_factory.mktemp("run")
    code = cli.main(
        ["train", "--data-dir", str(data_dir), "--preset", "seed-deep", "--epochs", "2",
         "--out", str(out), "--no-report", "--quiet"]
    )  # fmt: skip
    assert code == 0
    return out


def test_train_writes_the_run_directory(trained_run, capsys):
    for name in (
        "config.json",
        "history.csv",
        "batch_losses.csv",
        "metrics.json",
        "model.npz",
    ):
        assert (trained_run / name).is_file(), name
    config = json.loads((trained_run / "config.json").read_text())
    assert config["hidden"] == [256, 128, 64, 32] and config["epochs"] == 2
    with open(trained_run / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["epoch"] for r in rows] == ["1", "2"]
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.94  # a loose floor on the real MNIST test set
    assert np.array(metrics["confusion_matrix"]).sum() == 10_000
    model = load_model(trained_run / "model.npz")
    assert model.class_names == [str(d) for d in range(10)]


def test_evaluate_and_info(trained_run, data_dir, capsys):
    capsys.readouterr()
    assert (
        cli.main(
            ["evaluate", str(trained_run / "model.npz"), "--data-dir", str(data_dir)]
        )
        == 0
    )
    out = capsys.readouterr().out
    metrics = json.loads((trained_run / "metrics.json").read_text())
    assert f"accuracy {metrics['test_accuracy']:.4f}" in out
    assert "precision" in out and "recall" in out
    assert cli.main(["info", str(trained_run / "model.npz")]) == 0
    out = capsys.readouterr().out
    assert "Total params: 244,522" in out and '"batch_size": 32' in out


def test_train_options_override_the_preset(tmp_path, data_dir, capsys):
    code = cli.main(
        ["train", "--data-dir", str(data_dir), "--hidden", "32", "--activation", "tanh",
         "--optimizer", "sgd", "--lr", "0.1", "--momentum", "0.9", "--schedule", "step",
         "--epochs", "1", "--batch-size", "64", "--limit", "2000", "--validation-split", "0.2",
         "--seed", "3", "--l2", "0.0001", "--dropout", "0.1", "--out", str(tmp_path),
         "--init", "xavier", "--no-report", "--quiet"]
    )  # fmt: skip
    assert code == 0
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["hidden"] == [32] and config["optimizer"] == "sgd"
    assert config["init"] == "xavier"  # a sweep could search it; now train sets it
    assert config["augment"] == "default"  # the preset's "auto", for MNIST
    assert config["train_examples"] == 1600
    assert "test accuracy" in capsys.readouterr().out


def test_batch_size_full_trains_on_the_whole_set_in_one_step(tmp_path, data_dir):
    code = cli.main(
        ["train", "--data-dir", str(data_dir), "--hidden", "16", "--epochs", "2",
         "--batch-size", "full", "--limit", "500", "--out", str(tmp_path),
         "--no-report", "--quiet"]
    )  # fmt: skip
    assert code == 0
    assert json.loads((tmp_path / "config.json").read_text())["batch_size"] is None
    losses = (tmp_path / "batch_losses.csv").read_text().strip().splitlines()
    assert len(losses) == 1 + 2  # header and one step per epoch


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--hidden", "12,x"], "--hidden"),
        (["train", "--batch-size", "0"], "--batch-size"),
        (["train", "--lr", "-1"], "--lr"),
        (["train", "--preset", "huge"], "preset"),
        (["train", "--preset", "cnn", "--hidden", "64"], "--hidden does not apply"),
        (["train", "--preset", "lenet-like", "--dropout", "0.5"], "--dropout"),
        (["train", "--data-dir", "/nonexistent/dir"], "/nonexistent/dir"),
        (["evaluate", "/nonexistent/model.npz"], "no such model file"),
        (
            ["info", str(Path(__file__).parents[1] / "pyproject.toml")],
            "not a valid .npz",
        ),
        (["frobnicate"], "No such command"),
        (["train", "--hidden", "12,,3"], "--hidden"),
        (["train", "--seed", "-1"], "--seed"),
        (["train", "--lr", "nan"], "expected a finite number, got 'nan'"),
        (["train", "--l2", "inf"], "expected a finite number, got 'inf'"),
        (["train", "--augment", ""], "--augment: expected"),
        (["train", "--preset", "seed-deep", "--warmup", "9"], "at least the warm-up"),
        (["train", "--hidden", "100000000000"], "not enough memory"),
        (
            ["train", "--limit", "4"],
            "--validation-split 0.1 of 4 training images (--limit 4) leaves none",
        ),
    ],
)
def test_bad_arguments_give_one_line_and_nonzero_exit(
    args, message, capsys, tmp_path, monkeypatch, data_dir
):
    monkeypatch.chdir(tmp_path)  # where a default run directory would appear
    if args[0] == "train" and "--data-dir" not in args:
        args = [*args, "--data-dir", str(data_dir)]  # the data is there: args decide
    assert cli.main(args) != 0
    err = capsys.readouterr().err.strip()
    assert message in err.splitlines()[-1]  # one line (after click's usage lines)
    assert "Traceback" not in err
    assert not (tmp_path / "runs").exists()  # refused before making a run directory


def test_an_out_folder_holding_a_run_needs_overwrite(tmp_path, data_dir, capsys):
    args = ["train", "--data-dir", str(data_dir), "--hidden", "8", "--epochs", "1",
            "--limit", "300", "--out", str(tmp_path), "--quiet"]  # fmt: skip
    assert cli.main(args) == 0  # with its report: figures/training.gif and others
    assert (tmp_path / "figures" / "training.gif").is_file()
    capsys.readouterr()
    assert cli.main(args) == 1
    assert "already holds a run (config.json" in capsys.readouterr().err
    assert cli.main([*args, "--no-report", "--overwrite"]) == 0
    # nothing of the first run's report is left beside the second run
    assert not (tmp_path / "report.html").exists()
    assert not (tmp_path / "figures" / "training.gif").exists()


def test_an_out_that_cannot_be_made_is_one_line_naming_it(tmp_path, data_dir, capsys):
    (tmp_path / "a-file").write_text("")
    out = tmp_path / "a-file" / "run"
    args = ["train", "--data-dir", str(data_dir), "--hidden", "8", "--epochs", "1",
            "--limit", "300", "--out", str(out), "--quiet"]  # fmt: skip
    assert cli.main(args) == 1
    assert capsys.readouterr().err == (
        f"error: --out {out}: cannot make the run directory (Not a directory)\n"
    )


def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path, monkeypatch):
    from nnscratch.runs.rundir import make_run_dir

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("time.strftime", lambda fmt: "20261126-101010")
    first = make_run_dir(None, "default")
    second = make_run_dir(None, "default")
    assert first.name == "20261126-101010-default"
    assert second.name == "20261126-101010-default-2"


def test_evaluate_uses_the_dataset_the_model_was_trained_on(tmp_path, data_dir, capsys):
    assert not cli.main(
        ["train", "--dataset", "fashion-mnist", "--data-dir", str(data_dir), "--hidden",
         "16", "--epochs", "1", "--limit", "500", "--out", str(tmp_path), "--no-report",
         "--quiet"]
    )  # fmt: skip
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["data_dir"].endswith("fashion-mnist")  # where the files were found
    capsys.readouterr()
    model = str(tmp_path / "model.npz")
    assert cli.main(["evaluate", model, "--data-dir", str(data_dir)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("fashion-mnist test set: accuracy")
    assert "Ankle boot" in captured.out
    assert cli.main(["evaluate", model, "--dataset", "mnist"]) == 0
    captured = capsys.readouterr()
    assert "trained on fashion-mnist, not mnist" in captured.err
    # the rows are the test set's classes: digits, not the model's clothes
    assert "\n           1       0." in captured.out
    assert "Trouser" not in captured.out and "Ankle boot" not in captured.out


@pytest.mark.filterwarnings("error")  # no RuntimeWarning: one error line
def test_evaluate_a_model_that_overflows_is_one_error_line(tmp_path, data_dir, capsys):
    model = Sequential(
        [Flatten(), Dense(784, 16, rng=0), ReLU(), Dense(16, 10, rng=1)],
        input_shape=(28, 28),
    )
    model.layers[1].params["W"][:] = 3e38  # finite, but float32 overflows
    model.save(tmp_path / "huge.npz")
    capsys.readouterr()
    code = cli.main(
        ["evaluate", str(tmp_path / "huge.npz"), "--data-dir", str(data_dir)]
    )
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert captured.err == (
        "error: the model's outputs are NaN or infinite: its weights are so large that"
        " float32 arithmetic overflows\n"
    )


def test_evaluate_a_regression_model_is_one_error_line(tmp_path, data_dir, capsys):
    # its evaluation has no accuracy: a KeyError traceback
    model = Sequential([Flatten(), Dense(784, 1, rng=0)], input_shape=(28, 28))
    model.compile(loss="mse")
    model.save(tmp_path / "regression.npz")
    capsys.readouterr()
    code = cli.main(
        ["evaluate", str(tmp_path / "regression.npz"), "--data-dir", str(data_dir)]
    )
    captured = capsys.readouterr()
    assert code == 1 and captured.err.count("\n") == 1
    assert "one output per image, not one per class" in captured.err


def test_help_and_version(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert cli.main(["--help"]) == 0
    commands = capsys.readouterr().out.partition("Commands:")[2]
    assert "train" in commands
    assert "..." not in commands  # no summary cut short in an 80-column terminal
    assert cli.main(["--version"]) == 0


@pytest.mark.parametrize(
    "input_shape, outputs, message",
    [
        (
            (8, 8),
            10,
            "takes inputs of shape (8, 8), but the mnist test set has 28x28 images",
        ),
        ((28, 28), 12, "has 12 outputs, but the mnist test set has 10 classes"),
        (
            (28, 28),
            1,
            "gives one output per image, not one per class (output shape (1,))",
        ),
    ],
    ids=["8x8-inputs", "12-outputs", "1-output"],
)
def test_evaluate_a_model_made_for_other_data_names_it(
    tmp_path, data_dir, capsys, input_shape, outputs, message
):
    path = tmp_path / "other.npz"
    Sequential([Flatten(), Dense(4), ReLU(), Dense(outputs)], input_shape).save(path)
    capsys.readouterr()
    assert cli.main(["evaluate", str(path), "--data-dir", str(data_dir)]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"error: {path} {message}")
    assert captured.err.count("\n") == 1


@pytest.mark.parametrize("input_shape", [(784,), (1, 28, 28)])
def test_evaluate_a_model_taking_the_same_pixels_in_another_shape(
    tmp_path, data_dir, capsys, input_shape
):
    """As `predict` does: a flat (784,) or channel-first (1, 28, 28) model is given
    the test images reshaped, not an error."""
    path = tmp_path / "flat.npz"
    model = Sequential([Flatten(), Dense(10, rng=0)], input_shape, seed=0)
    model.save(path)
    assert cli.main(["evaluate", str(path), "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out.startswith("mnist test set: accuracy")


def test_every_option_says_what_it_does_and_its_default():
    """`nnscratch COMMAND --help`: every option has a help text; one with a default
    value shows it, and a setting of the run shows that the preset gives it."""
    import dataclasses

    import click

    from nnscratch.runs.settings import RunSettings

    from_preset = {f.name for f in dataclasses.fields(RunSettings)} - {"dataset"}
    undocumented, no_default = [], []
    for name, command in cli.cli.commands.items():
        context = command.make_context(name, [], resilient_parsing=True)
        for option in command.params:
            if not isinstance(option, click.Option) or option.name == "help":
                continue
            where = f"{name} {option.opts[0]}"
            text = option.get_help_record(context)[1]
            if not option.help:
                undocumented.append(where)
            value = context.params[option.name]  # as if the option were left out
            has_default = value is not None and not (option.is_flag or option.multiple)
            wanted = has_default or option.name in from_preset
            if wanted and "default" not in text.lower():
                no_default.append(where)
    assert undocumented == [] and no_default == []


def test_evaluate_reads_the_test_set_where_the_model_was_trained(
    tmp_path, monkeypatch, capsys
):
    """As `report` does: the data folder the model's settings record, if it still
    holds the files, comes before the usual places (here none has them, and there
    is no mirror to download from)."""
    from dataclasses import replace

    from nnscratch.data import catalog
    from nnscratch.data.idx import write_idx

    folder = tmp_path / "my-digits"
    folder.mkdir()
    for name in catalog.FILE_NAMES:
        images = np.random.default_rng(0).integers(0, 256, (4, 28, 28), np.uint8)
        write_idx(folder / name, images if "images" in name else np.uint8([1, 2, 3, 4]))
    monkeypatch.delenv("NNSCRATCH_DATA_DIR", raising=False)
    monkeypatch.setenv("NNSCRATCH_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(catalog, "SYSTEM_DATA_ROOT", tmp_path / "no-datasets")
    offline = replace(catalog.DATASETS["mnist"], mirrors=())
    monkeypatch.setitem(catalog.DATASETS, "mnist", offline)
    model = Sequential([Flatten(), Dense(10, rng=0)], (28, 28))
    model.metadata = {"training": {"dataset": "mnist", "data_dir": str(folder)}}
    model.save(tmp_path / "model.npz")
    assert cli.main(["evaluate", str(tmp_path / "model.npz")]) == 0
    out = capsys.readouterr().out
    assert out.startswith("mnist test set: accuracy") and " 4\n" in out
    shutil.rmtree(folder)  # moved since: the usual places, which have nothing
    assert cli.main(["evaluate", str(tmp_path / "model.npz")]) == 1
    assert "no mirrors to download mnist from" in capsys.readouterr().err


def test_an_os_error_naming_no_file_is_one_clean_line(monkeypatch, capsys):
    import errno

    def failing_read(path):
        raise OSError(errno.EIO, "Input/output error")  # a disk failing, say

    monkeypatch.setattr("nnscratch.nn.loading.load_model", failing_read)
    assert cli.main(["info", "model.npz"]) == 1
    assert capsys.readouterr().err == "error: Input/output error\n"


def only_the_test_files(data_dir: Path, folder: Path) -> Path:
    """`folder` holding the two MNIST test files only (no training files)."""
    folder.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(data_dir / "mnist" / name, folder / name)
    return folder


def test_evaluate_needs_only_the_two_test_files(
    tmp_path, data_dir, capsys, monkeypatch
):
    """The test set is all evaluate reads: a folder without the training files
    serves, given by --data-dir, found where the data is looked for, or recorded
    as the one the model was trained from."""
    from dataclasses import replace

    from nnscratch.data import catalog

    folder = only_the_test_files(data_dir, tmp_path / "test-only")
    path = tmp_path / "model.npz"
    model = Sequential([Flatten(), Dense(10, rng=0)], (28, 28), seed=0)
    model.save(path)
    capsys.readouterr()
    assert cli.main(["evaluate", str(path), "--data-dir", str(folder)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("mnist test set: accuracy") and " 10000\n" in out
    monkeypatch.setenv("NNSCRATCH_DATA_DIR", str(folder))
    monkeypatch.setenv("NNSCRATCH_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(catalog, "SYSTEM_DATA_ROOT", tmp_path / "no-datasets")
    assert cli.main(["evaluate", str(path)]) == 0
    assert capsys.readouterr().out == out
    monkeypatch.delenv("NNSCRATCH_DATA_DIR")  # and no mirror to download from:
    offline = replace(catalog.DATASETS["mnist"], mirrors=())
    monkeypatch.setitem(catalog.DATASETS, "mnist", offline)
    model.metadata = {"training": {"dataset": "mnist", "data_dir": str(folder)}}
    model.save(path)
    assert cli.main(["evaluate", str(path)]) == 0
    assert capsys.readouterr().out == out
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    assert cli.main(["evaluate", str(path), "--data-dir", str(folder)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{folder} lacks t10k-labels-idx1-ubyte.gz, gzipped or not" in err
    assert "train-" not in err  # the training files are not asked for


def test_evaluate_prints_the_two_pass_figures_from_one_pass(
    tmp_path, data_dir, capsys, forward_rows
):
    """Loss, accuracy, per-class report and confusion matrix from one pass of the
    test set, the same figures as evaluate's and predict's passes gave."""
    from nnscratch.data.loading import load_test_set
    from nnscratch.reporting.metrics import (
        classification_report,
        confusion_matrix,
        format_confusion_matrix,
    )

    path = tmp_path / "model.npz"
    layers = [Flatten(), Dense(32, rng=0), ReLU(), Dense(10, rng=1)]
    Sequential(layers, (28, 28), loss="cross_entropy").save(path)
    x_test, y_test = load_test_set("mnist", data_dir)
    model = load_model(path)
    result = model.evaluate(x_test, y_test)
    predicted = model.predict(x_test).argmax(axis=1)
    names = [str(d) for d in range(10)]
    summary = f"accuracy {result['accuracy']:.4f}, loss {result['loss']:.4f}"
    expected = [
        f"mnist test set: {summary}",
        classification_report(y_test, predicted, names),
        format_confusion_matrix(confusion_matrix(y_test, predicted, 10), names),
    ]
    forward_rows.clear()
    capsys.readouterr()
    assert cli.main(["evaluate", str(path), "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().out == "\n".join(expected) + "\n"
    assert sum(forward_rows) == 10_000  # once through the network


def test_the_end_of_a_run_scores_the_test_set_in_one_pass(
    tmp_path, data_dir, forward_rows
):
    """metrics.json holds what evaluate and predict give the saved model, and the
    test set went through the network once for the scores and the figures."""
    from nnscratch.data.loading import load_test_set
    from nnscratch.reporting.metrics import confusion_matrix

    assert not cli.main(
        ["train", "--data-dir", str(data_dir), "--hidden", "16", "--epochs", "1",
         "--limit", "300", "--validation-split", "0", "--out", str(tmp_path / "run"),
         "--quiet"]
    )  # fmt: skip
    # evaluation-mode passes: the test set's, and the recorder's few images
    assert 10_000 <= sum(forward_rows) < 20_000
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    x_test, y_test = load_test_set("mnist", data_dir)
    model = load_model(tmp_path / "run" / "model.npz")
    result = model.evaluate(x_test, y_test)
    cm = confusion_matrix(y_test, model.predict(x_test).argmax(axis=1), 10)
    assert metrics["test_loss"] == result["loss"]
    assert metrics["test_accuracy"] == result["accuracy"]
    assert metrics["confusion_matrix"] == cm.tolist()


@pytest.mark.parametrize(
    "recorded, code, message",
    [
        ("MNIST", 0, "mnist test set: accuracy"),
        ("cifar", 1, "was trained on 'cifar', which nnscratch does not know: pass"),
    ],
)
def test_evaluate_a_model_whose_settings_spell_the_dataset_otherwise(
    tmp_path, data_dir, capsys, recorded, code, message
):
    path = tmp_path / "model.npz"
    model = Sequential([Flatten(), Dense(10, rng=0)], (28, 28))
    model.metadata = {"training": {"dataset": recorded}}
    model.save(path)
    capsys.readouterr()
    assert cli.main(["evaluate", str(path), "--data-dir", str(data_dir)]) == code
    captured = capsys.readouterr()
    assert message in (captured.out if code == 0 else captured.err)
    assert captured.err.count("\n") == code  # no traceback, no warning


def test_evaluate_warns_of_fashion_mnist_files_in_an_mnist_folder(
    tmp_path, data_dir, capsys
):
    """Both datasets' files have the same names and format: the class counts of the
    test labels tell them apart."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(data_dir / "fashion-mnist" / name, folder / name)
    path = tmp_path / "model.npz"
    Sequential([Flatten(), Dense(10, rng=0)], (28, 28)).save(path)
    capsys.readouterr()
    assert cli.main(["evaluate", str(path), "--data-dir", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("mnist test set: accuracy")
    assert (
        captured.err
        == f"warning: {folder} holds fashion-mnist's test set, not mnist's\n"
    )
    assert cli.main(["evaluate", str(path), "--data-dir", str(data_dir)]) == 0
    assert capsys.readouterr().err == ""  # the real MNIST files: no warning


def test_train_warns_of_fashion_mnist_files_in_an_mnist_folder(
    tmp_path, data_dir, capsys
):
    folder = tmp_path / "mnist"
    shutil.copytree(data_dir / "fashion-mnist", folder)
    assert not cli.main(
        ["train", "--data-dir", str(folder), "--hidden", "8", "--epochs", "1",
         "--limit", "200", "--out", str(tmp_path / "run"), "--no-report", "--quiet"]
    )  # fmt: skip
    warning = f"warning: {folder} holds fashion-mnist's test set, not mnist's\n"
    assert capsys.readouterr().err == warning


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--lr", "-1"], "--lr: expected a number > 0, got -1.0"),
        (["train", "--epochs", "0"], "--epochs: expected an int >= 1, got 0"),
        (["train", "--preset", "cnn", "--hidden", "64"], "--hidden does not apply"),
        (["sweep", "--out", "s", "--trials", "1", "--lr", "-1"], "--lr: expected"),
        # options the chosen optimiser would ignore (config.json recorded them as used)
        (
            ["train", "--optimizer", "rmsprop", "--weight-decay", "0.1"],
            "--weight-decay does not apply to --optimizer rmsprop (only sgd, adam, ",
        ),
        (["train", "--momentum", "0.5"], "--momentum does not apply to --optimizer ad"),
        (
            ["sweep", "--out", "s", "--trials", "1", "--momentum", "0.5"],
            "--momentum does not apply to --optimizer adamw (only sgd takes it)",
        ),
    ],
)
def test_a_bad_option_value_is_a_usage_error_as_click_s_own(
    args, message, tmp_path, monkeypatch, capsys
):
    """Exit code 2, as click gives `--lr abc` or `--limit 0`; 1 is for failures of
    the work itself (a missing file, a full disk)."""
    monkeypatch.chdir(tmp_path)
    assert cli.main(["train", "--lr", "abc"]) == 2  # click's own check
    capsys.readouterr()
    assert cli.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("Usage: nnscratch ") and message in err.splitlines()[-1]
    assert list(tmp_path.iterdir()) == []  # refused before writing anything


def test_a_character_the_output_cannot_encode_is_escaped(tmp_path, monkeypatch):
    """stdout redirected to a file on Windows (cp1252 there), or PYTHONIOENCODING set
    so: a name it cannot encode is printed as an escape, as Python prints it on
    stderr, not a UnicodeEncodeError traceback once the work is done."""
    import io

    names = ["null", "eins", "zwei", "drei", "vier", "fünf", "五"]
    model = Sequential([Flatten(), Dense(7)], (2, 2), class_names=names)
    model.save(tmp_path / "m.npz")
    stdout = io.TextIOWrapper(io.BytesIO(), encoding="cp1252")
    monkeypatch.setattr("sys.stdout", stdout)
    assert cli.main(["info", str(tmp_path / "m.npz")]) == 0
    stdout.flush()
    text = stdout.buffer.getvalue().decode("cp1252")
    assert "Classes: null, eins, zwei, drei, vier, fünf, \\u4e94\n" in text


def test_every_free_text_option_names_what_it_takes():
    """`--hidden SIZES`, `--mirror URL`, as pip writes `--index-url <url>`; not
    click's bare TEXT, which says nothing of the value to give."""
    import click

    vague = []
    for name, command in cli.cli.commands.items():
        context = command.make_context(name, [], resilient_parsing=True)
        for option in command.params:
            free_text = isinstance(option, click.Option) and not option.is_flag
            if free_text and option.make_metavar(context) == "TEXT":
                vague.append(f"{name} {option.opts[0]}")
    assert vague == []


def test_the_resume_command_suggested_can_be_pasted_with_a_space_in_the_path(
    tmp_path, data_dir, capsys
):
    """`--out "my run"` stopped: the suggested `nnscratch train --resume 'my run'`
    is quoted for the shell, not `--resume my run` (two arguments)."""
    out = tmp_path / "my run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "checkpoint-000001.npz").write_bytes(b"")
    args = ["train", "--data-dir", str(data_dir), "--hidden", "8", "--out", str(out)]
    assert cli.main(args) == 1
    err = capsys.readouterr().err
    assert f"nnscratch train --resume '{out}'," in err


BLOCKING_IMPORT = """
import signal, sys

class Block:  # the first import of BLOCKED waits here for a signal
    def find_spec(self, name, path=None, target=None):
        if name == BLOCKED:
            print("blocked", flush=True)
            signal.pause()

sys.meta_path.insert(0, Block())
"""
CONSOLE_SCRIPT = "import sys\nfrom nnscratch.cli import main\nsys.exit(main())\n"


@pytest.mark.parametrize("script", [False, True], ids=["python -m", "script"])
@pytest.mark.parametrize("module", ["numpy", "click"])  # import nnscratch, then cli
def test_ctrl_c_while_the_command_starts_is_no_traceback(tmp_path, script, module):
    """Ctrl-C in the first half second of any command, while its modules import,
    printed a traceback of the import under way; now 'aborted' and 130, as later."""
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(f"BLOCKED = {module!r}\n{BLOCKING_IMPORT}")
    (tmp_path / "nnscratch").write_text(CONSOLE_SCRIPT)  # as pip writes the script
    paths = [hook, Path(__file__).resolve().parents[1], os.environ.get("PYTHONPATH")]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(p) for p in paths if p)}
    start = [tmp_path / "nnscratch"] if script else ["-m", "nnscratch"]
    child = subprocess.Popen(
        [sys.executable, *start, "info", "model.npz"], env=env, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert child.stdout.readline() == "blocked\n"
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=60)
    finally:
        child.kill()
    assert (child.returncode, err) == (130, "\naborted\n")  # as click says it later
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # a program
