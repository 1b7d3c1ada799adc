"""The documentation: docs/build.py renders the API reference and the "How it works"
page without a single warning, and every name the page points at exists."""

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from docs_build import DOCS, build

PUBLIC_NAMES = ["Sequential", "Dense", "Conv2D", "Adam", "load_model", "load_dataset"]


@pytest.fixture(scope="module")
def site(artifacts_dir) -> Path:
    """The docs built once by the script, as CI and a user run it (a fresh process, so
    import-time warnings are seen too), into test-artifacts/docs, emptied first but for
    the executed tutorial.html that tests/test_notebook.py writes there."""
    out = artifacts_dir / "docs"
    tutorial = out / build.TUTORIAL_PAGE
    kept = tutorial.read_bytes() if tutorial.exists() else None
    shutil.rmtree(out, ignore_errors=True)
    if kept is not None:
        out.mkdir(parents=True)
        tutorial.write_bytes(kept)
    result = subprocess.run(
        [sys.executable, str(DOCS / "build.py"), str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == "", f"the build printed warnings:\n{result.stderr}"
    return out


def test_api_reference_documents_the_public_names(site):
    assert (site / "index.html").is_file()
    pages = {
        p.relative_to(site).as_posix(): p.read_text() for p in site.rglob("*.html")
    }
    for name in PUBLIC_NAMES:
        anchor = f'id="{name}"'
        where = [page for page, text in pages.items() if anchor in text]
        assert where, f"{name} has no entry in the API reference"
    # docstrings are rendered, not only signatures
    assert "Fully connected layer" in pages["nnscratch/nn/dense.html"]
    assert "how-it-works.html" in pages["nnscratch/nn/dense.html"]
    assert "../../tutorial.html" in pages["nnscratch/nn/dense.html"]


def test_products_in_docstrings_keep_their_times_signs(site):
    """Markdown would read the two *s of C*kh*kw as emphasis: C<em>kh</em>kw."""
    page = (site / "nnscratch" / "nn" / "conv.html").read_text()
    assert "x_padded[n, :, r*sh : r*sh+kh, s*sw : s*sw+kw]" in page
    assert "(C*kh*kw, N*Ho*Wo)" in page
    assert "<em>kh</em>" not in page and "<em>Ho</em>" not in page


def test_tutorial_page_is_linked(site):
    assert 'href="tutorial.html"' in (site / "how-it-works.html").read_text()
    assert (site / "tutorial.html").is_file()


def test_how_it_works_links_resolve_to_reference_entries(site):
    page = (site / "how-it-works.html").read_text()
    links = re.findall(r'<a href="([^"#]+)(?:#([^"]+))?"><code>nnscratch', page)
    assert len(links) >= 80
    for target, anchor in set(links):
        text = (site / target).read_text()
        assert not anchor or f'id="{anchor}"' in text, f"{target}#{anchor} is missing"
    assert "MATHxSTASHx" not in page
    assert r"$\partial L / \partial Z = (P - T) / N$" in page  # formulas left intact


def test_every_name_in_how_it_works_exists():
    text = (DOCS / "how-it-works.md").read_text()
    assert len(set(build.NAME.findall(text))) >= 80
    assert build.check_names(text) == []


def test_a_name_that_does_not_exist_is_reported():
    problems = build.check_names(
        "`nnscratch.nn.dense.Dense.forward` and `nnscratch.nn.layer.NoSuchLayer.forward`"
    )
    assert len(problems) == 1
    assert "`nnscratch.nn.layer.NoSuchLayer.forward` does not exist" in problems[0]


def test_resolve_splits_module_and_attribute_path():
    assert build.resolve("nnscratch.nn.dense.Dense.forward") == (
        "nnscratch.nn.dense",
        ["Dense", "forward"],
    )
    assert build.resolve("nnscratch.nn.model") == ("nnscratch.nn.model", [])
    assert build.resolve("nnscratch.no_such_module.thing") is None


def build_package(tmp_path, monkeypatch, name: str, files: dict[str, str]) -> int:
    """Run the build script's main on a throw-away package instead of nnscratch."""
    package = tmp_path / "src" / name
    package.mkdir(parents=True)
    for file_name, text in files.items():
        (package / file_name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    monkeypatch.setattr(build, "PACKAGE", package)
    return build.main([str(tmp_path / "html")])


def test_without_the_tutorial_a_note_takes_its_place(tmp_path, monkeypatch, capsys):
    source = '"""A package."""\n\n\ndef f(x: int) -> None:\n    """Doc."""\n'
    assert build_package(tmp_path, monkeypatch, "okpkg", {"__init__.py": source}) == 0
    note = (tmp_path / "html" / "tutorial.html").read_text()
    assert "docs/build.py OUTDIR --tutorial" in note
    (tmp_path / "html" / "tutorial.html").write_text("executed")  # kept by a rebuild
    assert build.main([str(tmp_path / "html")]) == 0
    assert (tmp_path / "html" / "tutorial.html").read_text() == "executed"


def test_a_pdoc_warning_fails_the_build(tmp_path, monkeypatch, capsys):
    source = '"""Docs."""\n\n\ndef f(x: "NoSuchType") -> None:\n    """Doc."""\n'
    assert build_package(tmp_path, monkeypatch, "warnpkg", {"__init__.py": source}) == 1
    err = capsys.readouterr().err
    assert "UserWarning: Error parsing type annotation NoSuchType" in err
    assert "1 warning(s): build failed" in err


def test_a_module_that_fails_to_import_fails_the_build(tmp_path, monkeypatch, capsys):
    files = {
        "__init__.py": '"""A package with one broken module."""\n',
        "broken.py": 'raise RuntimeError("cannot import me")\n',
    }
    assert build_package(tmp_path, monkeypatch, "brokenpkg", files) == 1
    err = capsys.readouterr().err
    assert "Error importing brokenpkg.broken (RuntimeError: cannot import me)" in err
    assert "build failed" in err


def test_usage_error_without_an_output_directory(capsys):
    assert build.main([]) == 2
    assert "usage: python docs/build.py OUTDIR [--tutorial]" in capsys.readouterr().err


def test_a_table_row_cut_off_from_its_table_is_reported(tmp_path, monkeypatch):
    """A paragraph inside a table ends it: the rows after it render as text."""
    page = tmp_path / "how-it-works.md"
    page.write_text(
        "| what | where |\n| --- | --- |\n| a | `nnscratch.nn.dense.Dense` |\n\n"
        "A paragraph.\n| b | `nnscratch.nn.conv.Conv2D` |\n"
    )
    monkeypatch.setattr(build, "HOW_IT_WORKS", page)
    problems = build.render_how_it_works(tmp_path, "nnscratch.html")
    row = "| b | <code>nnscratch.nn.conv.Conv2D</code> |"
    assert problems == [f"how-it-works.md: a table row outside its table: {row}"]


def test_a_failing_tutorial_cell_is_one_line_naming_the_cell(tmp_path, monkeypatch):
    """--tutorial reports the cell and its error, not nbclient's traceback."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("1 / 0")]
    nb.cells[1].id = "divide"
    nbformat.write(nb, tmp_path / "tutorial.ipynb")
    monkeypatch.setattr(build, "NOTEBOOK", tmp_path / "tutorial.ipynb")
    problems = build.build_tutorial(tmp_path / "html")
    assert problems == [
        "tutorial.ipynb: cell divide failed: ZeroDivisionError: division by zero"
    ]
    assert not (tmp_path / "html" / build.TUTORIAL_PAGE).exists()


def test_a_formula_broken_across_lines_is_reported(tmp_path, monkeypatch):
    """Inline math must open and close on one line: a $ left unpaired there pairs with
    the next formula's, and the text between is rendered as math, the math as text."""
    page = tmp_path / "how-it-works.md"
    page.write_text("Then $x_i +\ny_i$ for every $i$.\n")
    monkeypatch.setattr(build, "HOW_IT_WORKS", page)
    problems = build.render_how_it_works(tmp_path, "nnscratch.html")
    assert problems == [
        "how-it-works.md: a formula not closed on its line: Then $x_i +",
        "how-it-works.md: a formula not closed on its line: y_i$ for every $i$.",
    ]
