import csv
import json
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
         "--no-report", "--quiet"]
    )  # fmt: skip
    assert code == 0
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["hidden"] == [32] and config["optimizer"] == "sgd"
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
    assert cli.main(["evaluate", model, "--dataset", "mnist"]) == 0
    assert "trained on fashion-mnist, not mnist" in capsys.readouterr().err


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


def test_help_and_version(capsys):
    assert cli.main(["--help"]) == 0
    assert "train" in capsys.readouterr().out
    assert cli.main(["--version"]) == 0
