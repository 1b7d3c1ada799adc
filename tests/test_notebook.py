"""The tutorial notebook: committed without outputs, and runs top to bottom on the real
data in a kernel started from this very interpreter (the project's venv)."""

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "tutorial.ipynb"
KERNEL_NAME = "nnscratch-tutorial-test"
CELL_TIMEOUT = 300  # seconds per cell; the whole notebook takes ~10 s on 2 cores
# Printed by the notebook's checks: "largest difference: 1.3e-10", "hand vs numerical ..."
DIFFERENCE = re.compile(r"(?:difference|vs library|vs numerical):? (\S+?),?(?:\s|$)")


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


def venv_kernel(tmp_path: Path) -> KernelManager:
    """A kernel manager that starts sys.executable, whatever kernelspecs the user has.

    (A "python3" kernelspec in ~/.local/share/jupyter would otherwise win over the
    venv's.) IPC sockets, at an absolute path since the kernel runs in another
    directory, need no TCP port and spare the log ipykernel's warning about plain TCP.
    """
    spec_dir = tmp_path / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "nnscratch tests",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(tmp_path / "kernels")])
    return KernelManager(
        kernel_name=KERNEL_NAME,
        kernel_spec_manager=specs,
        transport="ipc",
        ip=str(tmp_path / "kernel-ipc"),
    )


def stdout_of(cell) -> str:
    return "".join(
        o.text for o in cell.outputs if o.output_type == "stream" and o.name == "stdout"
    )


def draws_a_figure(cell) -> bool:
    last = cell.source.strip().splitlines()[-1]
    drawn_by_nnscratch = last.startswith(("curves.", "confusion.", "image_grids."))
    return "plt.show()" in cell.source or drawn_by_nnscratch or last == "fig"


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(data_dir, tmp_path, monkeypatch):
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
    nb.cells.append(probe)
    client = NotebookClient(
        nb,
        km=venv_kernel(tmp_path),
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(workdir)}},
    )
    # raises CellExecutionError, naming the cell, if any cell fails; cleanup_kc shuts
    # the kernel down and closes its sockets (by default only a client-made km is)
    client.execute(cleanup_kc=True)

    assert stdout_of(probe).strip() == sys.prefix, "the kernel ran another Python"
    cells = code_cells(nb)[:-1]
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
    assert sum(len(DIFFERENCE.findall(stdout_of(c))) for c in cells) >= 7
    assert sum(draws_a_figure(c) for c in cells) >= 8
