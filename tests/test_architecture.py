"""The package layout: imports run one way, no cycles, click only in the cli package,
small modules.

Every import is counted, including those inside functions: an import hidden in a
function is still a dependency.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # the test extra installs tomli (through the sweep extra) on Python 3.10
    import tomli as tomllib

PACKAGE = Path(__file__).resolve().parents[1] / "nnscratch"
# each package may import only from those before it (and from SHARED)
ORDER = ["nn", "data", "imaging", "reporting", "runs", "app", "cli"]
SHARED = {"errors", "files"}
# top-level modules that only give part of a package a public path: they rank with it
# (nnscratch.sklearn re-exports app's scikit-learn estimators)
FACADES = {"sklearn": "app"}
MAX_LINES = 400


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> set[str]:
    """Every nnscratch module `path` imports, as dotted names (relative ones resolved)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("nnscratch")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("nnscratch"):
                continue
            for alias in node.names:  # `from . import x` may name a module
                candidate = f"{target}.{alias.name}"
                is_module = (PACKAGE.parent / Path(*candidate.split("."))).with_suffix(
                    ".py"
                ).is_file() or (PACKAGE.parent / Path(*candidate.split("."))).is_dir()
                found.add(candidate if is_module else target)
    return found


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
IMPORTS = {name: imported_modules(path) for name, path in MODULES.items()}


def layer_of(module: str) -> str | None:
    """'nnscratch.nn.conv' -> 'nn'; 'nnscratch.cli' -> 'cli'; None for shared ones."""
    parts = module.split(".")
    if len(parts) < 2 or parts[1] in SHARED or parts[1] == "__main__":
        return None
    return FACADES.get(parts[1], parts[1])


@pytest.mark.parametrize("module", [m for m in MODULES if layer_of(m) is not None])
def test_imports_follow_the_dependency_rule(module):
    mine = ORDER.index(layer_of(module))
    for target in IMPORTS[module]:
        theirs = layer_of(target)
        if theirs is None:
            continue
        assert ORDER.index(theirs) <= mine, (
            f"{module} imports {target}: {layer_of(module)} may only import from "
            f"{', '.join(ORDER[: mine + 1])}"
        )


def test_shared_modules_import_no_package():
    for name in ("errors", "files"):
        deps = IMPORTS[f"nnscratch.{name}"]
        assert deps <= {"nnscratch.errors"}, f"nnscratch.{name} imports {deps}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A list of modules forming a cycle, or None (depth-first search)."""
    state: dict[str, str] = {}
    stack: list[str] = []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in graph:
                continue
            if state.get(nxt) == "open":
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_no_import_cycles():
    # a package's __init__ re-exporting its modules is not a cycle with them
    graph = {
        m: {t for t in deps if t != m and not m.startswith(t + ".")}
        for m, deps in IMPORTS.items()
        if m != "nnscratch"
    }
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_find_cycle_finds_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_only_the_cli_package_imports_click():
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text())
        roots = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            (node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and not node.level
        }
        if name != "nnscratch.cli" and not name.startswith("nnscratch.cli."):
            assert "click" not in roots, f"{name} imports click"


@pytest.mark.parametrize("module", list(MODULES))
def test_modules_stay_small(module):
    lines = len(MODULES[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (split it by concept)"


def test_the_rule_sees_relative_and_in_function_imports(tmp_path, monkeypatch):
    # the walker resolves `from ..runs import x` inside a function of a data module
    pkg = tmp_path / "nnscratch"
    (pkg / "data").mkdir(parents=True)
    (pkg / "runs").mkdir()
    (pkg / "runs" / "x.py").write_text("")
    module = pkg / "data" / "y.py"
    module.write_text("def f():\n    from ..runs import x\n    from . import z\n")
    monkeypatch.setitem(globals(), "PACKAGE", pkg)
    assert imported_modules(module) == {"nnscratch.runs.x", "nnscratch.data"}


PUBLIC_NAMES = [
    "Accuracy", "Activation", "Adam", "AdamW", "Augment", "AvgPool2D",
    "BackupAndRestore", "BatchNorm", "BinaryCrossEntropy", "CLASS_NAMES", "Callback",
    "CallbackList", "CheckpointError", "Constant", "Conv2D", "CosineDecay",
    "DataError", "Dense", "Dropout", "EarlyStopping", "ExponentialDecay", "Flatten",
    "GlobalAvgPool2D", "History", "Layer", "LeakyReLU", "Loss", "MaxPool2D",
    "MeanAbsoluteError", "MeanSquaredError", "Metric", "ModelCheckpoint",
    "ModelFileError", "NnscratchError", "RMSprop", "ReLU", "ReduceLROnPlateau", "Reshape", "CSVLogger", "LearningRateScheduler", "SGD",
    "Sequential", "Sigmoid", "Softmax", "SoftmaxCrossEntropy", "StepDecay", "SweepResult", "Tanh",
    "TopKAccuracy", "TrainingDivergedError", "TrainingInterrupted", "__version__",
    "export_onnx",
    "load_dataset", "load_model", "register", "set_seed", "sweep",
]  # fmt: skip


def test_the_public_names_are_pinned():
    import nnscratch

    # removing or renaming one breaks users' code: change this list on purpose only
    assert sorted(nnscratch.__all__) == sorted(PUBLIC_NAMES)
    for name in PUBLIC_NAMES:
        assert getattr(nnscratch, name) is not None


# libraries that take a visible fraction of a second to import: only what uses them does
# (the web server's ~80 ms and tqdm's ~30 ms were paid by every command, --help too)
HEAVY = ("matplotlib", "optuna", "distributed", "dask", "onnx", "onnxruntime",
         "starlette", "hypercorn", "tqdm")  # fmt: skip


@pytest.mark.parametrize(
    "code",
    [
        "import nnscratch",
        "from nnscratch.cli import main; main(['--help'])",
        "from nnscratch.cli import main; main(['sweep', '--help'])",
        "from nnscratch.cli import main; main(['serve', '--help'])",
    ],
)
def test_importing_and_help_load_no_heavy_library(code):
    # matplotlib alone took 0.3 s of `import nnscratch` (through sweep -> run directory
    # -> animation): every --help, every command that draws nothing, every user paid it
    check = (
        f"{code}\nimport sys\nprint(sorted({{m.split('.')[0] for m in sys.modules}}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(ast.literal_eval(out.splitlines()[-1]))
    assert loaded.isdisjoint(HEAVY), f"{code!r} imports {sorted(loaded & set(HEAVY))}"


def test_the_package_data_lists_every_file_that_is_not_python():
    # `pip install .` (not -e) and a wheel carry only the files package-data names:
    # a file left out (the drawing page's static/) is missing from every such install
    config = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    globs = config["tool"]["setuptools"]["package-data"]["nnscratch"]
    listed = {path for pattern in globs for path in PACKAGE.glob(pattern)}
    needed = {
        path
        for path in PACKAGE.rglob("*")
        if path.is_file() and path.suffix != ".py" and "__pycache__" not in path.parts
    }
    assert needed, "no file to check: the drawing page's static/ has moved?"
    assert sorted(needed - listed) == []
