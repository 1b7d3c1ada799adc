"""The benchmark scripts run: a quick pass of bench_training.py on a few real images.

Not a measurement (that needs the full data and a quiet machine): it checks that the
script builds both models, trains them interleaved with the floor, and prints its table.
"""

import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPT = BENCHMARKS / "bench_training.py"


def run_script(*args: str, script: Path = SCRIPT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        check=False,
    )


def test_bench_training_quick_pass_prints_every_figure(data_dir):
    # the conv net is in by default
    done = run_script(
        "--data-dir", str(data_dir), "--limit", "600", "--epochs", "3",
        "--batch-sizes", "32,128", "--conv-epochs", "1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    for row in [
        "| floor: matrix products       | 32 ",
        "| nnscratch MLP epoch          | 128 ",
        "| nnscratch predict 10k",
        "| floor: conv as im2col GEMMs",
        "| nnscratch lenet-like epoch",
        "| nnscratch, conv-ReLU-pool",  # the conv net as PyTorch users write it
        "| MLP epoch        | 128 ",  # the kernels' NumPy twins against numba's
        "| lenet-like epoch | 128 ",
    ]:
        assert row in out, f"missing row {row!r} in:\n{out}"
    assert "on 600 images" in out
    assert "`fast` preset on 600 MNIST training images" in out
    assert "test accuracy after each epoch" in out
    assert "`cnn` preset on 540 MNIST images" in out
    assert "PASS  peak memory training the MLP" in out
    # one floor run before each epoch: three per batch size, one for each conv net
    runs = [
        line.split("floor runs (s): ")[1].split("(")[0].split()
        for line in out.splitlines()
        if "floor runs (s): " in line
    ]
    assert [len(r) for r in runs] == [3, 3, 1, 1], out


def test_bench_training_rejects_a_bad_limit():
    done = run_script("--limit", "0")
    assert done.returncode == 2
    assert "--limit: expected a positive number of images, got 0" in done.stderr


def test_bench_training_no_conv_no_presets_leave_them_out(data_dir):
    done = run_script(
        "--data-dir", str(data_dir), "--limit", "300", "--epochs", "1",
        "--batch-sizes", "128", "--no-conv", "--no-presets",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| nnscratch MLP epoch          | 128 " in done.stdout
    assert "| MLP epoch | 128 " in done.stdout  # NumPy twins against compiled
    assert "| nnscratch lenet-like epoch" not in done.stdout
    assert "| lenet-like epoch" not in done.stdout
    assert "conv floor runs" not in done.stdout
    assert "preset on" not in done.stdout


def test_compare_torch_help_describes_it_and_unknown_options_are_refused():
    # it took no arguments and ignored them: --help (or a --data-dir meant for the
    # other scripts) ran the whole comparison; without PyTorch it said only that
    script = BENCHMARKS / "compare_torch.py"
    done = run_script("--help", script=script)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.startswith("usage: compare_torch.py")
    assert "same numbers as PyTorch" in done.stdout
    done = run_script("--data-dir", "somewhere", script=script)
    assert done.returncode == 2
    assert "unrecognized arguments: --data-dir somewhere" in done.stderr
