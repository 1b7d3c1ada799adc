"""Build the HTML documentation into OUTDIR: the API reference, "How it works" and the
tutorial notebook with its outputs.

    python docs/build.py OUTDIR [--tutorial]

The API reference is pdoc's rendering of every docstring in the `nnscratch` package
(OUTDIR/index.html opens it). docs/how-it-works.md becomes OUTDIR/how-it-works.html,
with every `nnscratch.…` name in it linked to its entry in the reference. Any warning
fails the build with exit code 1 and the warnings on stderr: a module that does not
import, an annotation or docstring pdoc cannot handle, or a name in how-it-works.md that
no longer exists.

With --tutorial, notebooks/tutorial.ipynb is executed (in a kernel of this Python, in
a temporary directory; it needs the MNIST files, see `nnscratch.load_dataset`) and
exported with its printed numbers and figures as OUTDIR/tutorial.html; a cell that
fails fails the build. Without it, a tutorial.html already in OUTDIR is kept (the test
suite writes one after executing the notebook), and a note on how to build it takes
its place otherwise.
"""

from __future__ import annotations

import html
import importlib
import json
import os
import re
import sys
import tempfile
import warnings
from pathlib import Path

import nbformat
import pdoc
import pdoc.render
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from nbconvert import HTMLExporter
from pdoc.render_helpers import to_html  # Markdown with pdoc's own settings

HOW_IT_WORKS = Path(__file__).resolve().parent / "how-it-works.md"
NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "tutorial.ipynb"
TUTORIAL_PAGE = "tutorial.html"
KERNEL_NAME = "nnscratch-docs"
CELL_TIMEOUT = 300  # seconds per cell; the whole notebook takes ~30 s on 2 cores
# The package as a path: pdoc documents this checkout's source even when another copy
# of nnscratch is installed (a module name would pick the installed one, with a warning).
PACKAGE = Path(__file__).resolve().parents[1] / "nnscratch"
NAME = re.compile(r"`(nnscratch(?:\.\w+)+)`")  # what how-it-works.md points at
CODE_NAME = re.compile(r"<code>(nnscratch(?:\.\w+)+)</code>")
# $$display$$ and $inline$ math; kept away from Markdown, which would eat `_` and `\`
MATH = re.compile(r"\$\$.+?\$\$|(?<![\\$])\$[^$\n]+?\$", re.DOTALL)
STASH = "MATHxSTASHx{}x"
STASHED = re.compile(r"MATHxSTASHx(\d+)x")
# a $ that MATH left: inline math broken across lines, which pairs its $ with the next
# formula's and renders the text between them as math
UNPAIRED_DOLLAR = re.compile(r"(?<!\\)\$")
# a Markdown table row that rendered as a paragraph: a blank line or prose split its table
STRAY_ROW = re.compile(r"^(?:<p>)?(\|.*\|)(?:</p>)?$", re.MULTILINE)

# Every API page gets a link to the "How it works" page in its navigation.
MODULE_TEMPLATE = """{% extends "default/module.html.jinja2" %}
{% block nav_footer %}
<p><a href="{{ "../" * module.modulename.count(".") }}how-it-works.html">How it works:
the math, mapped to the code</a></p>
<p><a href="{{ "../" * module.modulename.count(".") }}tutorial.html">The tutorial
notebook, with its outputs</a></p>
{{ super() }}
{% endblock %}
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>How it works - nnscratch</title>
<style>
body {{ font: 16px/1.55 system-ui, sans-serif; margin: 0 auto; max-width: 72rem;
       padding: 1rem 2rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border: 1px solid #ccc; padding: 0.35rem 0.6rem; vertical-align: top; }}
th {{ background: #f3f3f3; text-align: left; }}
code {{ font-size: 0.92em; background: #f5f5f5; padding: 0 0.2em; }}
a code {{ color: #0550ae; }}
nav {{ border-bottom: 1px solid #ddd; padding-bottom: 0.5rem; }}
</style>
<script>window.MathJax = {{ tex: {{ inlineMath: [["$", "$"]] }} }};</script>
<script id="MathJax-script" async
        src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-mml-chtml.js"></script>
</head>
<body>
<nav><a href="{api}">API reference</a> |
<a href="tutorial.html">Tutorial notebook, with its outputs</a></nav>
<main>
{body}
</main>
</body>
</html>
"""


def build_api(modules: list, out_dir: Path) -> None:
    """pdoc's HTML for `modules` (names or paths) and their submodules, into out_dir."""
    # docstrings write products as C*kh*kw and r*sh: a * inside a word is a times
    # sign, which Markdown would otherwise take for emphasis (C<em>kh</em>kw)
    extensions = pdoc.render_helpers.markdown_extensions
    pdoc.render_helpers.markdown_extensions = {**extensions, "middle-word-em": False}
    with tempfile.TemporaryDirectory() as templates:
        (Path(templates) / "module.html.jinja2").write_text(MODULE_TEMPLATE)
        pdoc.render.configure(
            docformat="markdown",  # docstrings use `code` spans, like Markdown
            search=True,
            show_source=True,
            template_directory=Path(templates),
        )
        pdoc.pdoc(*modules, output_directory=out_dir)


def resolve(name: str) -> tuple[str, list[str]] | None:
    """'nnscratch.nn.dense.Dense.forward' -> ('nnscratch.nn.dense', ['Dense', 'forward']),
    or None if no module holds such an attribute."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        module_name = ".".join(parts[:i])
        try:
            obj = importlib.import_module(module_name)
        except ImportError:
            continue
        for attr in parts[i:]:
            if not hasattr(obj, attr):
                return None
            obj = getattr(obj, attr)
        return module_name, parts[i:]
    return None


def check_names(text: str, where: str = HOW_IT_WORKS.name) -> list[str]:
    """One problem per backticked `nnscratch.…` name in `text` (from file `where`)
    that does not exist."""
    return [
        f"{where}: `{name}` does not exist (renamed or removed?)"
        for name in dict.fromkeys(NAME.findall(text))
        if resolve(name) is None
    ]


def api_href(name: str, out_dir: Path) -> str | None:
    """Relative link to the reference entry for `name`, or to its nearest documented
    parent (pdoc leaves out private members such as `Conv2D._pieces`)."""
    found = resolve(name)
    if found is None:
        return None
    module_name, qualname = found
    page = Path(*module_name.split(".")).with_suffix(".html")
    if not (out_dir / page).is_file():
        return None
    text = (out_dir / page).read_text(encoding="utf-8")
    while qualname and f'id="{".".join(qualname)}"' not in text:
        qualname = qualname[:-1]
    anchor = f"#{'.'.join(qualname)}" if qualname else ""
    return page.as_posix() + anchor


def render_how_it_works(out_dir: Path, api_page: str) -> list[str]:
    """Write out_dir/how-it-works.html from the Markdown page; returns its problems."""
    from nnscratch.files import write_text

    text = HOW_IT_WORKS.read_text(encoding="utf-8")
    problems = check_names(text)
    maths: list[str] = []

    def stash(match: re.Match) -> str:
        maths.append(match.group(0))
        return STASH.format(len(maths) - 1)

    stashed = MATH.sub(stash, text)
    problems += [
        f"{HOW_IT_WORKS.name}: a formula not closed on its line: "
        + STASHED.sub(lambda m: maths[int(m.group(1))], line)[:70]
        for line in stashed.splitlines()
        if UNPAIRED_DOLLAR.search(line)
    ]
    body = str(to_html(stashed))
    problems += [
        f"{HOW_IT_WORKS.name}: a table row outside its table: {row[:70]}"
        for row in STRAY_ROW.findall(body)
    ]

    def link(match: re.Match) -> str:
        href = api_href(match.group(1), out_dir)
        return f'<a href="{href}">{match.group(0)}</a>' if href else match.group(0)

    body = CODE_NAME.sub(link, body)
    for i, math in enumerate(maths):
        if STASH.format(i) not in body:
            problems.append(
                f"{HOW_IT_WORKS.name}: formula {math} was lost in rendering"
            )
        body = body.replace(STASH.format(i), html.escape(math, quote=False))
    page = out_dir / "how-it-works.html"
    write_text(page, PAGE.format(api=api_page, body=body))
    os.chmod(page, 0o644)  # a web page is meant to be read by others
    return problems


PLACEHOLDER = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tutorial - nnscratch</title></head>
<body><p>The executed tutorial was not built here. Run
<code>python docs/build.py OUTDIR --tutorial</code>, or open
<code>notebooks/tutorial.ipynb</code> in Jupyter and run it.</p></body></html>
"""


def venv_kernel(work_dir: Path) -> KernelManager:
    """A kernel manager that starts sys.executable, whatever kernelspecs the user has.

    (A "python3" kernelspec in ~/.local/share/jupyter would otherwise win over the
    venv's.) IPC sockets, at an absolute path since the kernel runs in another
    directory, need no TCP port and spare the log ipykernel's warning about plain TCP.
    """
    spec_dir = work_dir / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "nnscratch",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(work_dir / "kernels")])
    return KernelManager(
        kernel_name=KERNEL_NAME,
        kernel_spec_manager=specs,
        transport="ipc",
        ip=str(work_dir / "kernel-ipc"),
    )


def execute_notebook(nb, work_dir: Path) -> None:
    """Run every cell of `nb` in place, in a kernel of this Python started in work_dir
    (an empty directory); CellExecutionError, naming the cell, if one fails."""
    client = NotebookClient(
        nb,
        km=venv_kernel(work_dir),
        timeout=CELL_TIMEOUT,
        resources={"metadata": {"path": str(work_dir)}},
    )
    # cleanup_kc shuts the kernel down and closes its sockets (by default only a
    # client-made kernel manager is)
    client.execute(cleanup_kc=True)


def export_tutorial(nb, path: Path) -> None:
    """An executed notebook as one self-contained HTML page (figures embedded)."""
    from nnscratch.files import write_text

    body, _ = HTMLExporter(embed_images=True).from_notebook_node(nb)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_text(path, body)
    os.chmod(path, 0o644)


def build_tutorial(out_dir: Path) -> list[str]:
    """Execute notebooks/tutorial.ipynb and write it as out_dir/tutorial.html; returns
    the problem (the cell that failed and its error, in one line) if one did."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    with tempfile.TemporaryDirectory() as work_dir:
        try:
            execute_notebook(nb, Path(work_dir))
        except CellExecutionError as err:
            return [
                f"{NOTEBOOK.name}: {failed_cell(nb)} failed: {err.ename}: {err.evalue}"
            ]
    export_tutorial(nb, out_dir / TUTORIAL_PAGE)
    return []


def failed_cell(nb) -> str:
    """'cell <id>' of the executed cell whose output is an error."""
    for cell in nb.cells:
        if any(out.get("output_type") == "error" for out in cell.get("outputs", [])):
            return f"cell {cell.get('id', '?')}"
    return "a cell"


def package_parts(package: Path) -> list[Path]:
    """The package and each of its subpackages and modules: pdoc walks no further than a
    package's `__all__`, which at the top lists the public names, not the modules."""
    children = sorted(
        p
        for p in package.iterdir()
        if (p.suffix == ".py" and not p.name.startswith("__"))
        or (p / "__init__.py").is_file()
    )
    return [package, *children]


def build(out_dir: Path, tutorial: bool = False) -> list[str]:
    """Build everything into out_dir; returns the warnings and problems (empty = good).
    `tutorial`: execute the notebook into out_dir/tutorial.html too (see the top)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    problems = build_tutorial(out_dir) if tutorial else []
    if not (out_dir / TUTORIAL_PAGE).exists():
        (out_dir / TUTORIAL_PAGE).write_text(PLACEHOLDER, encoding="utf-8")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            build_api(package_parts(PACKAGE), out_dir)
        except RuntimeError as err:  # pdoc: "Error importing <module>"
            cause = f" ({type(err.__cause__).__name__}: {err.__cause__})"
            problems.append(f"{err}{cause if err.__cause__ else ''}")
        problems += render_how_it_works(out_dir, f"{Path(PACKAGE).name}.html")
    return [f"{w.category.__name__}: {w.message}" for w in caught] + problems


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    tutorial = "--tutorial" in args
    args = [arg for arg in args if arg != "--tutorial"]
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python docs/build.py OUTDIR [--tutorial]", file=sys.stderr)
        return 2
    problems = build(Path(args[0]), tutorial)
    for problem in problems:
        print(f"docs: {problem}", file=sys.stderr)
    if problems:
        print(f"docs: {len(problems)} warning(s): build failed", file=sys.stderr)
        return 1
    extra = ", tutorial.html" if tutorial else ""
    print(f"docs: wrote {Path(args[0]) / 'index.html'}, how-it-works.html{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
