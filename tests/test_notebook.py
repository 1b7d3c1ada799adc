"""The tutorial notebook: committed without outputs, its exercises' checks catch wrong
answers, and it runs top to bottom on the real data in a kernel started from this very
interpreter (the project's venv), after which it is exported as test-artifacts/docs/
tutorial.html, beside the API reference that tests/test_docs.py builds there."""

import contextlib
import gzip
import io
import re
import shutil
import sys

import matplotlib.pyplot as plt
import nbformat
import numpy as np
import pytest
from docs_build import build

import nnscratch
from nnscratch.data.catalog import FILE_NAMES, find_dataset

NOTEBOOK = build.NOTEBOOK
# Printed by the notebook's checks: "largest difference: 1.3e-10", "relative error:
# 4.5e-09", "relative error hand vs library 8.3e-16,  hand vs numerical 5.4e-09"
NUMBER = r"([-+]?\d[\d.]*(?:e[-+]?\d+)?)"
DIFFERENCE = re.compile(
    rf"(?:difference|vs library|vs numerical|relative error):? {NUMBER}"
)
# A plausible mistake for each exercise (by the name of the function it asks for)
WRONG_ANSWERS = {
    "stable_softmax": lambda z: np.exp(z) / np.exp(z).sum(axis=1, keepdims=True),
    "tanh_backward": lambda dy, y: dy * (1 - y),
    "momentum_step": lambda theta, velocity, grad, lr, momentum: (
        theta - lr * grad,
        velocity,
    ),
    "conv_output_size": lambda size, kernel_size, stride, padding: (
        (size - kernel_size) // stride + 1
    ),
    "weight_decay_for_l2": lambda l2: l2,
}


def code_cells(nb):
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def test_committed_notebook_is_valid_and_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == "python3"
    assert len(code_cells(nb)) > 20
    for cell in code_cells(nb):
        assert cell.outputs == [], f"{NOTEBOOK.name} cell {cell.id}: strip the outputs"
        assert cell.execution_count is None, f"cell {cell.id}: reset execution_count"


def test_notebook_code_cells_are_short():
    """The issue asks for short cells: a learner reads each one against an equation."""
    for cell in code_cells(nbformat.read(NOTEBOOK, as_version=4)):
        lines = [line for line in cell.source.splitlines() if line.strip()]
        assert len(lines) <= 15, f"cell {cell.id} has {len(lines)} lines of code"
        assert max(map(len, lines)) <= 100, f"cell {cell.id} has a line over 100"


def test_every_name_in_the_notebook_exists():
    """The `nnscratch.…` names the lesson points at, checked as how-it-works.md's are."""
    text = "\n".join(
        cell.source for cell in nbformat.read(NOTEBOOK, as_version=4).cells
    )
    assert len(set(build.NAME.findall(text))) >= 8
    assert build.check_names(text, NOTEBOOK.name) == []


def exercises(nb) -> list[tuple]:
    """(answer cell, check cell, name of the function asked for) of each exercise: a
    cell tagged "check" right after one tagged "exercise"."""
    found = []
    for before, cell in zip(nb.cells, nb.cells[1:]):
        if "check" in cell.metadata.get("tags", []):
            assert "exercise" in before.metadata.get("tags", []), f"cell {cell.id}"
            name = re.search(r"^def (\w+)\(", before.source, re.MULTILINE).group(1)
            found.append((before, cell, name))
    return found


def run_cell(source: str, namespace: dict) -> None:
    """A cell of our own notebook, as plain Python (the exercise cells have no magics)."""
    exec(source, namespace)  # noqa: S102 - the repository's own notebook cells


def test_exercise_checks_pass_the_reference_answers_and_fail_wrong_ones():
    """The checks run without a kernel (they need only np and nn): the reference
    answer passes, a wrong answer raises AssertionError, so in the executed notebook
    it would stop the cell, and the notebook test would fail."""
    found = exercises(nbformat.read(NOTEBOOK, as_version=4))
    assert sorted(name for *_, name in found) == sorted(WRONG_ANSWERS)
    for answer, check, name in found:
        assert answer.source.startswith("# \u270d Exercise"), f"cell {answer.id}"
        assert answer.metadata.jupyter.source_hidden, "the answer starts collapsed"
        namespace = {"np": np, "nn": nnscratch}
        run_cell(answer.source, namespace)
        run_cell(check.source, namespace)
        namespace[name] = WRONG_ANSWERS[name]
        with np.errstate(all="ignore"), pytest.raises(AssertionError):
            run_cell(check.source, namespace)


def run_cells(nb, cell_ids: list[str], namespace: dict) -> str:
    """Run the notebook's code cells `cell_ids` in order, as plain Python (IPython
    magics dropped), in `namespace`; returns what they printed."""
    cells = {cell.id: cell for cell in nb.cells}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for cell_id in cell_ids:
            lines = cells[cell_id].source.splitlines()
            run_cell(
                "\n".join(line for line in lines if not line.startswith("%")), namespace
            )
    plt.close("all")
    return printed.getvalue()


def test_section_1_reads_the_files_unpacked_too(data_dir, tmp_path, monkeypatch):
    """load_dataset takes the four files gzipped or unpacked (the same names without
    .gz); the lesson's own look at the IDX header must too, or a learner whose copy is
    unpacked stops at the first cell with a FileNotFoundError."""
    folder = tmp_path / "mnist"
    folder.mkdir()
    for name in FILE_NAMES:
        packed_path = find_dataset("mnist", data_dir) / name
        unpacked_path = folder / name.removesuffix(".gz")
        with gzip.open(packed_path) as packed, open(unpacked_path, "wb") as unpacked:
            shutil.copyfileobj(packed, unpacked)
    monkeypatch.setenv("NNSCRATCH_DATA_DIR", str(tmp_path))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    out = run_cells(nb, ["cell-01", "cell-03", "cell-05", "cell-07"], {})
    assert "00 00 08 03" in out and "dimensions: 3" in out, out
    assert "same array as load_dataset gave: True" in out, out


@pytest.mark.slow
def test_the_optimiser_comparison_gives_the_same_numbers_when_run_again(data_dir):
    """Optimisers keep state (velocity, moments, step count) from one fit to the next:
    re-running the comparison cell, as a learner does after changing a rate, must
    start every optimiser afresh, or it continues the last run's momentum."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    namespace = {}
    run_cells(nb, ["cell-01", "cell-03", "mnist-optimizers-setup"], namespace)
    first = run_cells(nb, ["mnist-optimizers"], namespace)
    again = run_cells(nb, ["mnist-optimizers"], namespace)
    assert "test accuracy after one epoch" in first
    assert again == first


def stdout_of(cell) -> str:
    return "".join(
        o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout"
    )


def draws_a_figure(cell) -> bool:
    last = cell.source.strip().splitlines()[-1]
    drawn_by_nnscratch = last.startswith(("curves.", "confusion.", "image_grids."))
    return "plt.show()" in cell.source or drawn_by_nnscratch or last == "fig"


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(data_dir, tmp_path, monkeypatch, artifacts_dir):
    monkeypatch.setenv("NNSCRATCH_DATA_DIR", str(data_dir))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))  # no user startup files
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the notebook chooses inline
    # One BLAS thread: with other jobs on the 2 cores, BLAS threads spinning against
    # each other make training 20x slower; the results do not change.
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    workdir = tmp_path / "work"
    workdir.mkdir()

    nb = nbformat.read(NOTEBOOK, as_version=4)
    probe = nbformat.v4.new_code_cell("import sys\nprint(sys.prefix)")
    # the epoch whose weights early stopping kept, by its history
    best_probe = nbformat.v4.new_code_cell(
        'h = runs["early stopping"][1]\nbest = int(np.argmin(h["val_loss"]))\n'
        "print(f\"{h['accuracy'][best]:9.1%} {h['val_loss'][best]:8.3f}\")"
    )
    nb.cells += [best_probe, probe]
    # raises CellExecutionError, naming the cell, if any cell fails (an exercise's
    # check included)
    build.execute_notebook(nb, workdir)

    assert stdout_of(probe).strip() == sys.prefix, "the kernel ran another Python"
    # the lesson leaves no file where it runs (its saved model goes to a temporary
    # folder): all that is there is the kernel's spec that execute_notebook wrote
    left = {
        p.relative_to(workdir).as_posix() for p in workdir.rglob("*") if p.is_file()
    }
    assert left == {f"kernels/{build.KERNEL_NAME}/kernel.json"}, left
    cells = code_cells(nb)[:-2]
    # its row in the table of cures gives that epoch's training accuracy beside the
    # kept weights' validation loss, not the last epoch's accuracy
    (table,) = [stdout_of(c) for c in cells if c.id == "cures-table"]
    (row,) = [line for line in table.splitlines() if line.startswith("early stop")]
    assert stdout_of(best_probe).rstrip() in row, (row, stdout_of(best_probe))
    for cell in cells:
        stderr = [o.text for o in cell.outputs if getattr(o, "name", "") == "stderr"]
        assert not stderr, f"cell {cell.id} wrote to stderr: {stderr}"
        out = stdout_of(cell)
        # the lesson's comparisons print True; a False would be a wrong lesson
        assert "False" not in out, f"cell {cell.id}: a check printed False:\n{out}"
        for value in DIFFERENCE.findall(out):
            assert float(value) < 1e-6, f"cell {cell.id}: difference {value}:\n{out}"
        if draws_a_figure(cell):
            kinds = [k for o in cell.outputs for k in o.get("data", {})]
            assert "image/png" in kinds, f"cell {cell.id} drew no inline figure"
    assert sum(len(DIFFERENCE.findall(stdout_of(c))) for c in cells) >= 12
    assert sum(draws_a_figure(c) for c in cells) >= 15
    for _, check, _ in exercises(nb):
        assert "passed" in stdout_of(check), f"cell {check.id}: {stdout_of(check)}"

    nb.cells.remove(probe)
    nb.cells.remove(best_probe)
    page = artifacts_dir / "docs" / build.TUTORIAL_PAGE
    build.export_tutorial(nb, page)
    html = page.read_text(encoding="utf-8")
    figures = html.count('src="data:image/png;base64,')
    assert figures >= sum(draws_a_figure(c) for c in cells), figures
    assert "hand-written loop vs fit" in html and "exercise 5: passed" in html
    assert "relative error" in html and "Overfitting, and its cures" in html
