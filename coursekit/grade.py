"""Grade a folder of submitted notebooks: ``python -m coursekit.grade SUBMISSIONS_DIR [--out DIR] [--timeout 60]``.

A submission is a notebook ``SUBMISSIONS_DIR/<student>.ipynb`` or a folder ``SUBMISSIONS_DIR/<student>/`` of
notebooks. Each notebook runs in its own fresh Python process (``coursekit._child``) with a time limit, a cap on
its output and its own empty working directory; the child only reports what the learner's functions return on the
checks' inputs, and this process compares those outputs with its own references. What the notebook prints or how it
redefines ``check`` does not matter. Writes ``scores.csv`` and ``scores.json`` to ``--out`` and prints a table.

Which exercises a notebook answers: ``--lecture`` if given, else the notebook's metadata (``coursekit.lecture``, set in
the shipped notebooks), else a ``NN_`` prefix of its file name, else the lecture whose function names it defines.

This guards against mistakes and naive cheating, not against an attacker: the child is an ordinary process of the
grading user. Grade untrusted submissions inside a container or a throw-away account.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from . import catalog

__all__ = ["Row", "grade", "grade_notebook", "submissions", "main"]

ROOT = Path(__file__).resolve().parent.parent  # the folder that holds the coursekit package
MAX_NOTEBOOK_BYTES = 20_000_000
MAX_LOG_BYTES = 5_000_000  # the child's own stdout/stderr file (writes beyond it fail)
MAX_RESULTS_BYTES = 20_000_000
MEMORY_MB = 8192  # address-space limit of a child (torch alone maps ~1 GB)


@dataclass(frozen=True)
class Row:
    student: str
    notebook: str
    exercise: str
    name: str
    points: int
    max_points: int
    status: str
    message: str


def submissions(folder: Path) -> list[tuple[str, list[Path]]]:
    """(student, notebooks) for every ``<student>.ipynb`` file and ``<student>/`` folder, sorted by name."""
    out = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and entry.suffix == ".ipynb":
            out.append((entry.stem, [entry]))
        elif entry.is_dir():
            out.append((entry.name, sorted(p for p in entry.glob("*.ipynb") if p.is_file())))
    return out


def _read_code_cells(path: Path) -> tuple[list[str] | None, dict, str]:
    """(code cell sources, notebook metadata, error message). Never raises for a bad file."""
    try:
        size = path.stat().st_size
        if size > MAX_NOTEBOOK_BYTES:
            return None, {}, f"the notebook file is too large ({size} bytes)"
        nb = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as err:
        return None, {}, f"not a valid notebook file ({type(err).__name__}: {str(err)[:120]})"
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return None, {}, "not a valid notebook file (no list of cells)"
    cells = []
    for cell in nb["cells"]:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        src = cell.get("source", "")
        if isinstance(src, list):
            src = "".join(s for s in src if isinstance(s, str))
        cells.append(src if isinstance(src, str) else "")
    meta = nb.get("metadata") if isinstance(nb.get("metadata"), dict) else {}
    return cells, meta, ""


def _lecture(path: Path, cells: list[str] | None, meta: dict, forced: str | None) -> str | None:
    if forced:
        return forced
    ck = meta.get("coursekit")
    if isinstance(ck, dict) and isinstance(ck.get("lecture"), str) and ck["lecture"] in catalog.LECTURES:
        return ck["lecture"]
    m = re.match(r"(\d\d)_", path.name)
    if m and m.group(1) in catalog.LECTURES:
        return m.group(1)
    if cells:
        names = set(re.findall(r"^\s*def\s+(\w+)", "\n".join(cells), flags=re.M))
        counts = {lec: sum(catalog.EXERCISES[i].name in names for i in ids) for lec, ids in catalog.LECTURES.items()}
        best = max(counts, key=counts.get)
        if counts[best]:
            return best
    return None


_REFERENCES: dict[str, tuple[list[catalog.Case], list[torch.Tensor]]] = {}
_REF_LOCK = threading.Lock()


def _references(ex: catalog.Exercise) -> tuple[list[catalog.Case], list[torch.Tensor]]:
    """The cases and the reference answers of an exercise, computed once per process (notebooks are graded in
    threads)."""
    with _REF_LOCK:
        if ex.id not in _REFERENCES:
            cases = ex.cases()
            _REFERENCES[ex.id] = cases, [ex.reference(c).detach() for c in cases]
        return _REFERENCES[ex.id]


def _run_child(cells: list[str], ids: list[str], timeout: float, memory_mb: int) -> tuple[dict | None, str]:
    """Run the cells in a fresh interpreter; (what it reported, a note on how it ended)."""
    with tempfile.TemporaryDirectory(prefix="coursekit-grade-") as tmp:
        tmp = Path(tmp)
        work = tmp / "work"
        work.mkdir()
        job, results, log = tmp / "job.json", tmp / "results.pt", tmp / "output.log"
        job.write_text(json.dumps({"cells": cells, "exercises": ids, "results": str(results),
                                   "cell_timeout": max(1.0, timeout / 5), "call_timeout": max(1.0, timeout / 10)}),
                       encoding="utf-8")
        boot = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); sys.argv = ['coursekit-child', {str(job)!r}]; "
                "from coursekit._child import limit_resources, main; "
                f"limit_resources({MAX_LOG_BYTES}, {memory_mb << 20}); main()")
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(work), "TMPDIR": str(work), "MPLBACKEND": "Agg",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "LANG": "C.UTF-8"}
        posix = os.name == "posix"
        with open(log, "wb") as logf:
            proc = subprocess.Popen([sys.executable, "-I", "-c", boot], cwd=work, env=env, stdin=subprocess.DEVNULL,
                                    stdout=logf, stderr=subprocess.STDOUT, start_new_session=posix)
            try:
                rc = proc.wait(timeout=timeout)
                note = "" if rc == 0 else f"the notebook ended the grading process (exit status {rc})"
            except subprocess.TimeoutExpired:
                note = f"the notebook ran out of time ({timeout:g} s)"
            finally:
                _kill(proc, posix)
        report = None
        try:
            if results.exists() and results.stat().st_size <= MAX_RESULTS_BYTES:
                report = torch.load(results, weights_only=True)  # plain data and tensors only: safe to load
        except Exception as err:
            note = note or f"its results could not be read ({type(err).__name__})"
        if not isinstance(report, dict):
            report = None
        if report is None and not note:
            tail = log.read_bytes()[-300:].decode("utf-8", "replace") if log.exists() else ""
            note = "the grading process reported nothing" + (f": {tail.strip()}" if tail.strip() else "")
        return report, note


def _kill(proc: subprocess.Popen, posix: bool) -> None:
    if proc.poll() is None or posix:
        try:
            if posix:
                os.killpg(proc.pid, 9)  # its whole session: the submission may have started processes
            else:
                proc.kill()
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()


def _clean(s, n: int = 300) -> str:
    s = "".join(ch if ch.isprintable() else " " for ch in str(s))
    return s if len(s) <= n else s[: n - 1] + "…"


def _verdict(ex: catalog.Exercise, entry, cell_notes: list[str], note: str) -> tuple[int, str, str]:
    if not isinstance(entry, dict):
        return 0, "error", "not checked: " + (note or "no result")
    if entry.get("missing"):
        why = f"{ex.name} is not defined"
        return 0, "missing", why + (f" ({cell_notes[0]})" if cell_notes else "")
    outcomes = entry.get("outcomes")
    if not isinstance(outcomes, list):
        return 0, "error", "not checked: malformed result"
    clean = []
    for o in outcomes:
        ok = isinstance(o, (list, tuple)) and len(o) == 2 and o[0] in ("ok", "not implemented", "error")
        if not ok:
            return 0, "error", "not checked: malformed result"
        clean.append((o[0], o[1] if o[0] == "ok" else _clean(o[1])))
    cases, expected = _references(ex)
    r = catalog.judge(ex, cases, clean[: len(cases)], expected)
    msg = r.message
    if r.status == "error" and note and "only" in msg:
        msg += f"; {note}"
    return r.points, r.status, _clean(msg, 400)


def grade_notebook(student: str, path: Path, timeout: float = 60, lecture: str | None = None,
                   memory_mb: int = MEMORY_MB) -> list[Row]:
    """Rows for every exercise of the notebook's lecture (one row with 0 points when it cannot be graded)."""
    cells, meta, error = _read_code_cells(path)
    lec = _lecture(path, cells, meta, lecture)
    if lec is None:
        return [Row(student, path.name, "-", "-", 0, 0, "error", error or "could not tell which lecture this "
                    "notebook answers (no coursekit metadata, no NN_ file name, no known function names)")]
    ids = catalog.LECTURES[lec]
    if cells is None:
        return [Row(student, path.name, i, catalog.EXERCISES[i].name, 0, catalog.EXERCISES[i].points, "error",
                    error) for i in ids]
    report, note = _run_child(cells, ids, timeout, memory_mb)
    report = report or {}
    cell_notes = [_clean(c, 200) for c in report.get("cells", []) if isinstance(c, str)] \
        if isinstance(report.get("cells"), list) else []
    entries = report.get("exercises") if isinstance(report.get("exercises"), dict) else {}
    rows = []
    for i in ids:
        ex = catalog.EXERCISES[i]
        pts, status, msg = _verdict(ex, entries.get(i), cell_notes, note)
        rows.append(Row(student, path.name, i, ex.name, pts, ex.points, status, msg))
    return rows


def grade(folder: Path, timeout: float = 60, jobs: int = 1, lecture: str | None = None,
          memory_mb: int = MEMORY_MB, progress=None) -> list[Row]:
    """Grade every submission in ``folder``; rows in the order of students, notebooks and exercises."""
    tasks = []
    for student, notebooks in submissions(folder):
        if not notebooks:
            tasks.append((student, None))
        tasks += [(student, nb) for nb in notebooks]

    def one(task):
        student, nb = task
        if nb is None:
            return [Row(student, "-", "-", "-", 0, 0, "error", "no notebook (.ipynb) in this folder")]
        t0 = time.perf_counter()
        rows = grade_notebook(student, nb, timeout, lecture, memory_mb)
        if progress:
            progress(f"graded {student}/{nb.name} in {time.perf_counter() - t0:.1f} s")
        return rows

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return [row for rows in pool.map(one, tasks) for row in rows]


def write_reports(rows: list[Row], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    fields = list(Row.__dataclass_fields__)
    with open(out / "scores.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(asdict(r) for r in rows)
    totals: dict[str, dict[str, int]] = {}
    for r in rows:
        t = totals.setdefault(r.student, {"points": 0, "max_points": 0})
        t["points"] += r.points
        t["max_points"] += r.max_points
    (out / "scores.json").write_text(json.dumps({"rows": [asdict(r) for r in rows], "totals": totals},
                                                indent=1, ensure_ascii=False), encoding="utf-8")
    return out / "scores.csv", out / "scores.json"


def table(rows: list[Row], width: int = 70) -> str:
    lines = [f"{'student':<16} {'exercise':<8} {'points':>6}  message", "-" * (34 + width)]
    totals: dict[str, list[int]] = {}
    for r in rows:
        msg = r.message if len(r.message) <= width else r.message[: width - 1] + "…"
        lines.append(f"{r.student[:16]:<16} {r.exercise:<8} {f'{r.points}/{r.max_points}':>6}  {msg}")
        t = totals.setdefault(r.student, [0, 0])
        t[0], t[1] = t[0] + r.points, t[1] + r.max_points
    lines.append("-" * (34 + width))
    lines += [f"{s[:16]:<16} {'total':<8} {f'{p}/{m}':>6}" for s, (p, m) in totals.items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m coursekit.grade", description=__doc__.split("\n")[0])
    ap.add_argument("submissions", type=Path, help="folder of <student>.ipynb files or <student>/ folders")
    ap.add_argument("--out", type=Path, default=Path("grading-report"), help="where scores.csv/json go")
    ap.add_argument("--timeout", type=float, default=60, help="seconds per notebook (default 60)")
    ap.add_argument("--jobs", type=int, default=1, help="notebooks graded in parallel (default 1)")
    ap.add_argument("--memory-mb", type=int, default=MEMORY_MB,
                    help=f"address-space limit per notebook in MiB, 0 for none (default {MEMORY_MB})")
    ap.add_argument("--lecture", choices=sorted(catalog.LECTURES), help="grade every notebook as this lecture")
    args = ap.parse_args(argv)
    if not args.submissions.is_dir():
        ap.error(f"{args.submissions} is not a folder")
    if args.timeout <= 0 or args.jobs < 1 or args.memory_mb < 0:
        ap.error("--timeout must be positive, --jobs at least 1 and --memory-mb not negative")
    rows = grade(args.submissions, args.timeout, args.jobs, args.lecture, args.memory_mb,
                 progress=lambda s: print(s, file=sys.stderr, flush=True))
    print(table(rows))
    csv_path, json_path = write_reports(rows, args.out)
    print(f"\nwrote {csv_path} and {json_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
