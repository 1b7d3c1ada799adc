"""A sweep's search space: --param specs, space files, a trial's settings, and the
errors of `nnscratch sweep` that need no cluster (usage errors, exit code 2; one
line, exit code 1, for what fails as it starts)."""

import re
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

import nnscratch
from nnscratch.cli import main
from nnscratch.errors import ArgumentError, NnscratchError
from nnscratch.runs.sweeps.space import (
    SearchSpace,
    parse_spec,
    trial_settings,
    used_params,
)


def test_specs_of_each_kind():
    assert parse_spec("lr", "loguniform:1e-4:1e-2") == parse_spec(
        "--lr", "loguniform:0.0001:0.01"
    )
    spec = parse_spec("batch-size", "int:32:512")
    assert (spec.name, spec.kind, spec.low, spec.high) == ("batch_size", "int", 32, 512)
    assert parse_spec("optimizer", "choice:adam,sgd").choices == ("adam", "sgd")
    assert parse_spec("dropout", "choice:0,0.25").choices == (0.0, 0.25)
    assert parse_spec("hidden", "choice:128,256-128").choices == ("128", "256-128")
    augment = parse_spec("augment", "choice:none|shift=2,rotation=10")
    assert augment.choices == ("none", "shift=2,rotation=10")
    distribution = parse_spec("lr", "loguniform:1e-4:1e-2").distribution()
    assert (distribution.low, distribution.high, distribution.log) == (1e-4, 1e-2, True)


@given(st.floats(1e-8, 1e3), st.floats(1.001, 1e3))
def test_any_finite_range_parses_back(low, factor):
    spec = parse_spec("lr", f"loguniform:{low!r}:{low * factor!r}")
    assert (spec.low, spec.high) == (low, low * factor)


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("lr", "loguniform:1e-2", "expected loguniform:LOW:HIGH"),
        ("lr", "loguniform:1e-2:1e-4", "LOW < HIGH"),
        ("lr", "loguniform:0:1", "log scale needs LOW > 0"),
        ("lr", "uniform:nan:1", "both finite"),
        ("lr", "int:1:4", "'int' does not suit it"),
        ("epochs", "int:1:2.5", "two integers"),
        ("optimizer", "uniform:0:1", "expected choice"),
        ("width", "int:1:4", "unknown parameter 'width'"),
        ("hidden", "choice:128,a-b", "layer sizes such as 256-128"),
        ("dropout", "choice:0,x", "expected numbers"),
        ("optimizer", "choice:adam,,sgd", "no empty value"),
        ("lr", "1e-3", "expected KIND:ARGS"),
    ],
)
def test_malformed_specs(name, text, message):
    with pytest.raises(NnscratchError, match=message):
        parse_spec(name, text)


def test_trial_settings_lay_params_over_options_over_preset():
    base = {"preset": "seed-deep", "epochs": 2, "lr": 0.5}
    settings = trial_settings(base, {"lr": 0.01, "hidden": 64})
    assert settings.lr == 0.01 and settings.epochs == 2
    assert settings.hidden == (64,) * 4  # seed-deep's depth, every layer that wide
    assert trial_settings(base, {"hidden": "32-16"}).hidden == (32, 16)
    assert trial_settings(base, {"preset": "default"}).hidden == (800, 800)


def test_a_trial_leaves_out_what_its_optimizer_does_not_take():
    # optimizer=choice:adam,sgd with momentum varied: momentum is sgd's alone, so an
    # adam trial's config.json does not record the momentum Optuna drew for it
    base = {"preset": "default"}
    space = SearchSpace({"optimizer": "choice:adam,sgd", "momentum": "uniform:0.5:0.9"})
    space.check(base)
    adam = trial_settings(base, {"optimizer": "adam", "momentum": 0.7})
    assert "momentum" not in adam.to_dict() and adam.weight_decay == 0.01
    sgd = trial_settings(base, {"optimizer": "sgd", "momentum": 0.7})
    assert sgd.to_dict()["momentum"] == 0.7
    # what trial.json, trials.csv and the best line show: what the run used
    assert used_params(base, {"optimizer": "adam", "momentum": 0.7}) == {
        "optimizer": "adam"
    }
    assert used_params(base, {"optimizer": "sgd", "momentum": 0.7}) == {
        "optimizer": "sgd",
        "momentum": 0.7,
    }


def test_check_builds_every_bound_and_choice():
    SearchSpace({"lr": "loguniform:1e-4:1e-2", "optimizer": "choice:adam,sgd"}).check(
        {"preset": "default"}
    )
    # checked with an optimiser that takes it (adam does not)
    with pytest.raises(NnscratchError, match=r"--param momentum=1.5: --momentum"):
        SearchSpace(
            {"optimizer": "choice:adam,sgd", "momentum": "uniform:0.5:1.5"}
        ).check({"preset": "default"})
    # taken by no trial: it would vary nothing (AdamW has no momentum)
    with pytest.raises(
        NnscratchError,
        match=r"^--param momentum=0.5: --momentum does not apply to --optimizer adamw",
    ):
        SearchSpace({"momentum": "uniform:0.5:0.9"}).check({"preset": "default"})
    with pytest.raises(NnscratchError, match="does not apply to --preset cnn"):
        SearchSpace({"preset": "choice:default,cnn", "hidden": "int:8:16"}).check({})
    # the error names the parameter at fault, not the first one varied (was lr=1.0)
    with pytest.raises(NnscratchError, match=r"^--param hidden=8: --hidden does not"):
        SearchSpace({"lr": "uniform:1:2", "hidden": "int:8:16"}).check(
            {"preset": "fast"}
        )
    with pytest.raises(NnscratchError, match="holds none out: add --validation-split"):
        SearchSpace({"lr": "uniform:0.1:0.2"}).check({"preset": "seed-2layer"})
    # given by the user, not the preset's: blaming the preset misled
    with pytest.raises(
        NnscratchError, match=r"but --validation-split 0 holds none out: give one"
    ):
        SearchSpace({"lr": "uniform:0.1:0.2"}).check(
            {"preset": "default", "validation_split": 0.0}
        )


def test_space_file_and_params_merge(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text(
        '[params]\nlr = "loguniform:1e-4:1e-2"\noptimizer = ["adam", "sgd"]\n'
        'batch-size = "choice:32,64"\n'
    )
    space = SearchSpace.from_options(["lr=uniform:0.001:0.002"], path)
    assert list(space.specs) == ["lr", "optimizer", "batch_size"]
    assert space.specs["lr"].kind == "uniform"  # the command line wins
    assert space.specs["optimizer"].choices == ("adam", "sgd")
    assert space.specs["batch_size"].choices == (32, 64)
    path.write_text("lr = [")
    with pytest.raises(NnscratchError, match=r"--space .*space.toml: not a TOML file"):
        SearchSpace.from_options([], path)
    # a bad entry is named with the file it is in, not as a --param
    for entry, message in [
        ("lr = 0.1", "lr: expected KIND:ARGS"),
        ('lr = "loguniform:0:1"', "lr: a log scale needs LOW > 0"),
        ('lrr = "uniform:0:1"', "unknown parameter 'lrr'"),
    ]:
        path.write_text(entry + "\n")
        with pytest.raises(NnscratchError) as error:
            SearchSpace.from_options([], path)
        assert str(error.value).startswith(f"--space {path}: {message}")
    path.write_text("[params.lr]\nlow = 1\n")
    with pytest.raises(NnscratchError, match='expected name = "spec" lines'):
        SearchSpace.from_options([], path)
    with pytest.raises(NnscratchError, match="--space .*nowhere.toml"):
        SearchSpace.from_options([], tmp_path / "nowhere.toml")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--param", "lr"], "expected NAME=SPEC"),
        (["--param", "lr=loguniform:1e-2:1e-4"], "--param lr: expected LOW < HIGH"),
        (["--param", "dropout=uniform:0:1.5"], "--param dropout=1.5: --dropout"),
        (["--param", "lr=uniform:0.1:0.2", "--preset", "fast"], "holds none out"),
        ([], "--param: a sweep needs at least one"),
        (["--param", "lr=uniform:0.1:0.2", "--workers", "1", "--scheduler", "x"],
         "give one or the other"),
        (["--param", "lr=uniform:0.1:0.2", "--storage", "sqlite:///:memory:"],
         "--storage sqlite:///:memory:: an in-memory database, which the workers"),
        (["--param", "lr=uniform:0.1:0.2", "--storage", "sqlite://"],
         "--storage sqlite://: an in-memory database"),
        (["--param", "lr=uniform:0.1:0.2", "--param", "lr=uniform:0.2:0.3"],
         "--param lr: given twice"),
        (["--param", "batch-size=int:8:16", "--param", "batch_size=int:8:32"],
         "--param batch_size: given twice"),
        (["--space", "{space}"], 'expected name = "spec" lines'),
        (["--space", "{nowhere}"], "nowhere.toml: No such file"),
        # checked before the data is looked for
        (["--param", "lr", "--data-dir", "{nowhere}"], "expected NAME=SPEC"),
    ],
)  # fmt: skip
def test_errors_in_the_arguments_are_usage_errors(tmp_path, capsys, args, message):
    """Exit code 2 and click's usage lines, as `train --lr -1` gives: they were
    exit code 1, as a failed sweep, checked among the failures of the work."""
    (tmp_path / "space.toml").write_text("[params.lr]\nlow = 1\n")
    paths = {"space": tmp_path / "space.toml", "nowhere": tmp_path / "nowhere.toml"}
    args = [a.format(**paths) for a in args]
    argv = ["sweep", "--out", str(tmp_path / "s"), "--trials", "2", *args]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Usage: nnscratch sweep ") and message in err.splitlines()[-1]
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--storage", "nosuchdb://x"], "--storage nosuchdb://x: Optuna cannot open it"),
        # an error line, a log, does not show the database's password
        (["--storage", "postgresql://me:s3cret@127.0.0.1:1/db"],
         "--storage postgresql://me:***@127.0.0.1:1/db: Optuna cannot open it"),
        (["--scheduler", "tcp://127.0.0.1:9"],
         "--scheduler tcp://127.0.0.1:9: cannot reach a Dask scheduler"),
    ],
)  # fmt: skip
def test_failures_to_start_are_one_line(tmp_path, capsys, data_dir, args, message):
    argv = ["sweep", "--out", str(tmp_path / "s"), "--trials", "2",
            "--param", "lr=uniform:0.1:0.2", *args]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert "s3cret" not in err


@pytest.mark.parametrize(
    "options, message",
    [
        ({"limit": -3}, "--limit: expected an int >= 1, got -3"),
        ({"limit": 0}, "--limit: expected an int >= 1, got 0"),
        ({"checkpoint_every": 0}, "--checkpoint-every: expected an int >= 1"),
        ({"workers": 0}, "--workers: expected an int >= 1, got 0"),
        ({"workers": 1, "scheduler": "tcp://127.0.0.1:9"}, "give one or the other"),
        ({"pruner": "hyperband"}, "--pruner: expected one of median, none"),
    ],
)
def test_python_arguments_are_checked_before_anything_is_written(
    tmp_path, data_dir, options, message
):
    """nnscratch.sweep's arguments the command line's types do not check: a
    negative limit trained on all but a few images, checkpoint_every=0 failed every
    trial, and the others left DIR with a study in it. A ValueError, as
    scikit-learn raises for a bad argument."""
    with pytest.raises(ArgumentError, match=re.escape(message)):
        nnscratch.sweep(tmp_path / "s", 2, {"lr": "uniform:0.1:0.2"},
                        preset="seed-deep", epochs=1, quiet=True, **options)  # fmt: skip
    assert not (tmp_path / "s").exists()


def test_importing_nnscratch_loads_neither_optuna_nor_dask():
    code = (
        "import sys, nnscratch, nnscratch.cli\n"
        "from nnscratch.cli import main\n"
        "assert main(['--help']) == 0\n"
        "print(sorted(m for m in ('optuna', 'dask', 'distributed') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("[]")


def test_without_the_sweep_extra_the_error_says_what_to_install(
    tmp_path, capsys, monkeypatch
):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda n, *a: None if n == "optuna" else find_spec(n, *a),
    )
    argv = ["sweep", "--out", str(tmp_path / "s"), "--trials", "2",
            "--param", "lr=uniform:0.1:0.2"]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err == (
        "error: sweeps need optuna, which nnscratch's sweep extra installs: "
        "pip install 'nnscratch[sweep]'"
    )
    assert not (tmp_path / "s").exists()  # nothing made
