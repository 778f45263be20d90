"""Structure of the lecture notebooks (executing them is CI's job: ``pytest --nbval-lax lectures``).

Every ``lectures/*.ipynb`` must be a valid notebook stored without outputs, seed in its first code cell, import
geomlib as gl, contain LaTeX math, check itself with at least one ``assert``, and close with a summary heading.
The index ``00_index.ipynb`` must link every other lecture, in order.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

LECTURES = Path(__file__).resolve().parent.parent / "lectures"
NOTEBOOKS = sorted(LECTURES.glob("*.ipynb"))
INDEX = LECTURES / "00_index.ipynb"


def _read(path: Path):
    return nbformat.read(path, as_version=4)


def _sources(nb, kind: str) -> list[str]:
    return [cell.source for cell in nb.cells if cell.cell_type == kind]


def test_there_are_lectures_and_an_index():
    assert INDEX in NOTEBOOKS, f"no course index {INDEX.name} in {LECTURES}"
    assert len(NOTEBOOKS) >= 2, f"only {[p.name for p in NOTEBOOKS]} in {LECTURES}"
    for p in NOTEBOOKS:
        assert re.fullmatch(r"\d\d_[a-z0-9_]+\.ipynb", p.name), f"{p.name}: lecture files are named NN_snake_case.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_valid_and_stored_without_outputs(path):
    nb = _read(path)
    nbformat.validate(nb)
    dirty = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
             and (cell.get("outputs") or cell.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: code cells {dirty} have stored outputs or execution counts; clear them before saving"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_first_code_cell_seeds(path):
    code = _sources(_read(path), "code")
    assert code, f"{path.name} has no code cell"
    first = code[0]
    assert "torch.manual_seed(" in first, f"{path.name}: the first code cell must call torch.manual_seed"
    assert "np.random.seed(" in first or "numpy.random.seed(" in first, \
        f"{path.name}: the first code cell must seed numpy (np.random.seed)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_imports_geomlib_without_path_hacks(path):
    code = "\n".join(_sources(_read(path), "code"))
    assert re.search(r"^import geomlib as gl\b", code, re.M), f"{path.name} must `import geomlib as gl`"
    assert "sys.path" not in code, f"{path.name}: import the installed package, no sys.path hacks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_has_latex_math(path):
    text = "\n".join(_sources(_read(path), "markdown"))
    assert re.search(r"\$[^$\n]+\$", text), f"{path.name}: no LaTeX math ($...$) in its markdown"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_checks_itself_with_an_assert(path):
    code = "\n".join(_sources(_read(path), "code"))
    assert re.search(r"^\s*assert\b", code, re.M), f"{path.name}: no `assert` comparing code and mathematics"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_has_a_summary_heading(path):
    text = "\n".join(_sources(_read(path), "markdown"))
    assert re.search(r"^#{1,4}\s.*\bSummary\b", text, re.M | re.I), f"{path.name}: no markdown heading '## Summary'"


def test_index_links_every_lecture_in_order():
    text = "\n".join(_sources(_read(INDEX), "markdown"))
    links = re.findall(r"\]\((?:\./)?(\d\d_[A-Za-z0-9_]+\.ipynb)\)", text)
    lectures = [p.name for p in NOTEBOOKS if p != INDEX]
    missing = [name for name in lectures if name not in links]
    assert not missing, f"00_index.ipynb does not link {missing}"
    order = [name for name in dict.fromkeys(links) if name in lectures]
    assert order == sorted(order), f"00_index.ipynb lists the lectures out of order: {order}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_links_resolve_to_files(path):
    """Every relative link opens a file: JupyterLab answers a link to a folder with a "File Load Error"."""
    text = "\n".join(_sources(_read(path), "markdown"))
    targets = [t for t in re.findall(r"\]\(([^)\s#]+)[^)]*\)", text) if ":" not in t]  # relative links, any file
    assert any(t.endswith(".ipynb") for t in targets) or path.name != "00_index.ipynb"
    broken = [t for t in targets if not (path.parent / t).resolve().is_file()]
    assert not broken, f"{path.name} links what is not a file (missing, or a folder): {broken}"
