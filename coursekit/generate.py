"""Write the exercise notebooks from the solution notebooks: ``python -m coursekit.generate [--check]``.

The solution notebooks in ``solutions/`` are the one source of truth. In a code cell, the lines between

    ### BEGIN SOLUTION 3.2
    ...
    ### END SOLUTION

are replaced by ``raise NotImplementedError("Exercise 3.2")`` at the indentation of the BEGIN line. Cells tagged
``solution`` (cell metadata ``tags``) are dropped, e.g. the explanation of a conceptual answer. Outputs and
execution counts are cleared. ``--check`` writes nothing and exits with status 1 when ``exercises/`` is out of date.

``fill_in`` goes the other way, for tests and benchmarks of the grader: an exercise notebook as a student hands it
in, with an id in ``student("...")`` and the solutions' code (or other code) in place of each exercise.
"""
from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

import nbformat

from .catalog import EXERCISES

__all__ = ["strip_solutions", "render", "generate", "solution_code", "fill_in", "ROOT"]

ROOT = Path(__file__).resolve().parent.parent
BEGIN = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION(?:[ \t]+(?P<id>\S+))?[ \t]*$")
END = re.compile(r"^[ \t]*### END SOLUTION[ \t]*$")


def _strip_source(src: str, where: str) -> str:
    out, inside, start = [], None, 0
    for n, line in enumerate(src.split("\n"), 1):
        m = BEGIN.match(line)
        if m:
            if inside is not None:
                raise ValueError(f"{where}, line {n}: BEGIN SOLUTION inside the solution region opened on line {start}")
            ex_id = m.group("id")
            if ex_id is None or ex_id not in EXERCISES:
                raise ValueError(f"{where}, line {n}: write the exercise id after BEGIN SOLUTION "
                                 f"(one of {', '.join(EXERCISES)}), got {ex_id!r}")
            inside, start = ex_id, n
            out.append(f'{m.group("indent")}raise NotImplementedError("Exercise {ex_id}")')
        elif END.match(line):
            if inside is None:
                raise ValueError(f"{where}, line {n}: END SOLUTION without a BEGIN SOLUTION")
            inside = None
        elif inside is None:
            out.append(line)
    if inside is not None:
        raise ValueError(f"{where}: the solution region opened on line {start} is never closed (### END SOLUTION)")
    return "\n".join(out)


def strip_solutions(nb: nbformat.NotebookNode, name: str = "notebook") -> nbformat.NotebookNode:
    """The exercise version of a solution notebook (a new notebook; ``nb`` is not changed)."""
    nb = copy.deepcopy(nb)
    cells = []
    for i, cell in enumerate(nb.cells):
        if "solution" in cell.get("metadata", {}).get("tags", []):
            continue
        if cell.cell_type == "code":
            cell.source = _strip_source(cell.source, f"{name}, cell {i}")
            cell.outputs = []
            cell.execution_count = None
        cells.append(cell)
    nb.cells = cells
    nb.metadata.setdefault("coursekit", {})["kind"] = "exercises"
    return nb


def render(solution: Path) -> str:
    """The text of the exercise notebook for the solution notebook at ``solution``."""
    nb = nbformat.read(solution, as_version=4)
    return nbformat.writes(strip_solutions(nb, solution.name)) + "\n"


def generate(solutions: Path, exercises: Path, check: bool = False) -> list[str]:
    """Write (or, with ``check``, compare) every exercise notebook; returns the names that were out of date."""
    stale = []
    wanted = {p.name: p for p in sorted(solutions.glob("*.ipynb"))}
    for name, path in wanted.items():
        text, target = render(path), exercises / name
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            stale.append(name)
            if not check:
                exercises.mkdir(parents=True, exist_ok=True)
                target.write_text(text, encoding="utf-8")
    extra = sorted(p.name for p in exercises.glob("*.ipynb") if p.name not in wanted)
    stale += [f"{n} (no solution notebook)" for n in extra]
    return stale


def solution_code(solution: Path) -> dict[str, str]:
    """Exercise id -> the lines between ``### BEGIN SOLUTION <id>`` and ``### END SOLUTION`` in a solution notebook."""
    nb = nbformat.read(solution, as_version=4)
    out = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            lines, inside = cell.source.split("\n"), None
            for line in lines:
                m = BEGIN.match(line)
                if m:
                    inside = m.group("id")
                    out[inside] = []
                elif END.match(line):
                    inside = None
                elif inside is not None:
                    out[inside].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def fill_in(name: str, student_id: str = "", code: dict[str, str] | None = None,
            root: Path = ROOT) -> nbformat.NotebookNode:
    """``exercises/<name>`` as a student hands it in: ``student("<student_id>")`` in place of ``student("")`` and, for
    every exercise, ``code[id]`` (lines indented as in the solutions) or else the solution's code, in place of its
    ``raise NotImplementedError``. A ValueError when an exercise is left unfilled."""
    bodies = {**solution_code(root / "solutions" / name), **(code or {})}
    nb = nbformat.read(root / "exercises" / name, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = cell.source.replace('me = student("")', f"me = student({json.dumps(student_id)})")
            for ex_id, body in bodies.items():
                cell.source = re.sub(rf'^[ \t]*raise NotImplementedError\("Exercise {re.escape(ex_id)}"\)$',
                                     lambda _: body, cell.source, flags=re.M)
    left = [c.source for c in nb.cells if c.cell_type == "code" and "raise NotImplementedError(" in c.source]
    if left:
        raise ValueError(f"{name}: no code for {left[0]!r:.80}")
    return nb


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m coursekit.generate", description=__doc__.split("\n")[0])
    ap.add_argument("--solutions", type=Path, default=ROOT / "solutions")
    ap.add_argument("--exercises", type=Path, default=ROOT / "exercises")
    ap.add_argument("--check", action="store_true", help="only report whether exercises/ is up to date")
    args = ap.parse_args(argv)
    stale = generate(args.solutions, args.exercises, check=args.check)
    if args.check:
        print("exercises are up to date" if not stale else "out of date: " + ", ".join(stale))
        return 1 if stale else 0
    print(f"wrote {len([s for s in stale if s.endswith('.ipynb')])} notebook(s) to {args.exercises}"
          + (f"; remove by hand: {', '.join(s for s in stale if not s.endswith('.ipynb'))}" if
             any(not s.endswith(".ipynb") for s in stale) else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
