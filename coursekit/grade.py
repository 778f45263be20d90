"""Grade a folder of submitted notebooks: ``python -m coursekit.grade SUBMISSIONS_DIR [--out DIR] [--timeout 60]``.

A submission is a notebook ``SUBMISSIONS_DIR/<student>.ipynb`` (``.IPYNB`` too) or a folder ``SUBMISSIONS_DIR/<student>/``
with notebooks anywhere inside it (hidden folders such as ``.ipynb_checkpoints`` are left out). Every other entry gets
a row that says it was skipped; hidden entries (``.DS_Store``) are only listed on stderr. Each notebook runs in its
own fresh Python process (``coursekit._child``) with a time limit, a cap on its output and its own empty working
directory; the child only reports what the learner's functions return on the checks' inputs, and this process
compares those outputs with its own references. What the notebook prints or how it redefines ``check`` does not
matter. When a student answers an exercise in several notebooks (``06_fisher_rao-Copy1.ipynb``), the best result
counts and the others are marked ``duplicate``. Writes ``scores.csv``, ``scores.json`` and ``feedback/<student>.md``
and ``.html`` (``coursekit.feedback``) to ``--out``, with ``--format canvas|moodle`` gradebook CSVs
(``coursekit.export``), and prints a table. ``--jobs`` notebooks are graded at once (default: one per core).

Each student is graded on their own numbers (per-student questions, ``coursekit.params``): the id is the name of the
submission (``<student>.ipynb`` or ``<student>/``), never what the notebook declares with ``student(...)``; a ``note``
row says when the two differ.

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
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from . import catalog, export, feedback
from .params import normalise

__all__ = ["Row", "grade", "grade_notebook", "submissions", "hidden_entries", "totals", "main"]

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
    max_points: int | None  # None: unknown (no notebook, or its lecture could not be told)
    status: str  # pass, fail, error, not implemented, missing, duplicate (not counted), skipped, note (0/0, a remark)
    message: str  # for the teacher: may show expected values and the hidden inputs
    lecture: str | None = None  # "02"; None when it could not be told
    hidden: str = ""  # the hidden checks: "" (none), pass, fail, error, "not run" (a public check failed first)
    feedback: str = ""  # the message as the learner may read it: no reference value, no hidden input
    hidden_feedback: str = ""  # the same for the hidden checks


UNCOUNTED = ("duplicate", "note")  # rows that never enter a total


def _is_notebook(path: Path) -> bool:
    return path.suffix.lower() == ".ipynb"


def _notebooks_in(folder: Path) -> list[Path]:
    """Every notebook under ``folder``, at any depth, leaving out hidden files and folders (``.ipynb_checkpoints``)."""
    found = []
    for parent, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [Path(parent) / f for f in files if not f.startswith(".") and _is_notebook(Path(f))]
    return sorted(p for p in found if p.is_file())


def submissions(folder: Path) -> list[tuple[str, list[Path], str]]:
    """(student, notebooks, why there are none) for every entry of ``folder`` not hidden, sorted by name:
    ``<student>.ipynb`` (any case), ``<student>/`` (notebooks at any depth), and anything else as skipped."""
    out = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_file() and _is_notebook(entry):
            out.append((entry.stem, [entry], ""))
        elif entry.is_dir():
            found = _notebooks_in(entry)
            out.append((entry.name, found, "" if found else "no notebook (.ipynb) in this folder"))
        else:
            out.append((entry.name, [], f"skipped: {entry.name!r} is not a notebook (.ipynb) nor a folder; "
                                        "rename it (e.g. to <student>.ipynb) to grade it"))
    return out


def hidden_entries(folder: Path) -> list[str]:
    """The names in ``folder`` that ``submissions`` leaves out because they start with a dot."""
    return sorted(e.name for e in folder.iterdir() if e.name.startswith("."))


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


_REFERENCES: dict[tuple, tuple[list[catalog.Case], list[torch.Tensor]]] = {}
_REF_LOCK = threading.Lock()


def _references(ex: catalog.Exercise, student: str | None = None) -> tuple[list[catalog.Case], list[torch.Tensor]]:
    """The cases and the reference answers of an exercise for a student's numbers, computed once per process and
    version (notebooks are graded in threads; an exercise without per-student numbers has one version)."""
    key = (ex.id, tuple(ex.values(student).items()))
    with _REF_LOCK:
        if key not in _REFERENCES:
            cases = ex.cases_for(student)
            _REFERENCES[key] = cases, [ex.reference(c).detach() for c in cases]
        return _REFERENCES[key]


def preload_references(table: dict[str, list[torch.Tensor]]) -> None:
    """Use these reference answers (exercise id -> one tensor per case of the example version) instead of computing
    them: the Gradescope autograder ships the ones its teacher's machine computed. A ValueError when they do not fit
    the catalog's cases (an autograder built from another version of the course)."""
    for ex_id, refs in table.items():
        ex = catalog.exercise(ex_id)
        cases = ex.cases_for(None)
        if ex.params or len(refs) != len(cases) or not all(isinstance(r, torch.Tensor) for r in refs):
            raise ValueError(f"the shipped references of exercise {ex_id} do not fit its {len(cases)} cases")
        with _REF_LOCK:
            _REFERENCES[(ex.id, ())] = cases, [r.detach() for r in refs]


def _run_child(cells: list[str], ids: list[str], timeout: float, memory_mb: int,
               student: str | None = None) -> tuple[dict | None, str]:
    """Run the cells in a fresh interpreter; (what it reported, a note on how it ended).

    The child's working directory is ``<box>/work`` in a folder of its own; its job, results and output log lie in
    another folder, so a notebook that deletes its folder, or the folder above, leaves the results alone."""
    with tempfile.TemporaryDirectory(prefix="coursekit-grade-", ignore_cleanup_errors=True) as own, \
            tempfile.TemporaryDirectory(prefix="coursekit-box-", ignore_cleanup_errors=True) as box:
        own, work = Path(own), Path(box) / "work"
        work.mkdir()
        job, results, log = own / "job.json", own / "results.pt", own / "output.log"
        start = time.time()
        # the child stops its own checks a little before the hard limit, so that it can write what it found
        deadline = start + timeout - min(1.0, timeout / 20)
        job.write_text(json.dumps({"cells": cells, "exercises": ids, "student": student, "results": str(results),
                                   "deadline": deadline,
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
                rc = proc.wait(timeout=max(0.1, start + timeout - time.time()))
                note = "" if rc == 0 else f"the notebook ended the grading process (exit status {rc})"
            except subprocess.TimeoutExpired:
                note = f"the notebook ran out of time ({timeout:g} s)"
            finally:
                _kill(proc, posix)
        report = None
        try:
            if not results.exists():
                tail = _log_tail(log)
                lost = "the grading process left no results (did the notebook delete the grader's files?)"
                return None, "; ".join(x for x in (note, lost + (f": {tail}" if tail else "")) if x)
            if results.stat().st_size <= MAX_RESULTS_BYTES:
                report = torch.load(results, weights_only=True)  # plain data and tensors only: safe to load
        except Exception as err:
            note = note or f"its results could not be read ({type(err).__name__})"
        if not isinstance(report, dict):
            report = None
        if report is None and not note:
            tail = _log_tail(log)
            note = "the grading process reported nothing" + (f": {tail}" if tail else "")
        return report, note


def _log_tail(log: Path) -> str:
    """The last 300 bytes the child printed (its last words, e.g. a crash), stripped; "" when there is no log."""
    return log.read_bytes()[-300:].decode("utf-8", "replace").strip() if log.exists() else ""


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


def _cell_notes(report: dict) -> list[tuple[int, str, str]]:
    """(cell number, kind, note) from the child's report, whatever it contains."""
    notes = []
    for c in report.get("cells", []) if isinstance(report.get("cells"), list) else []:
        if isinstance(c, dict) and isinstance(c.get("cell"), int) and isinstance(c.get("note"), str):
            notes.append((c["cell"], str(c.get("kind", "")), _clean(c["note"], 300)))
    return notes


def _why_missing(name: str, cells: list[str], notes: list[tuple[int, str, str]]) -> str:
    """Why ``name`` is not defined: the note of the cell that defines it (its syntax error, its crash), if any."""
    pattern = re.compile(rf"^[ \t]*(async[ \t]+)?def[ \t]+{re.escape(name)}\b", flags=re.M)
    defining = [i for i, src in enumerate(cells, 1) if pattern.search(src)]
    if not defining:
        return f"{name} is not defined (no code cell has `def {name}(...)`)"
    about = [text for i, _, text in notes if i in defining]
    if about:
        return f"{name} is not defined: {about[-1]}"
    return f"{name} is not defined (code cell {defining[-1]}, counting code cells only, defines it but ran without " \
           "an error; was it deleted later?)"


def _verdict(ex: catalog.Exercise, entry, cells: list[str], notes: list[tuple[int, str, str]],
             note: str, student: str | None = None) -> catalog.Result:
    def res(status, msg):
        return catalog.Result(ex.id, ex.name, 0, ex.points, status, msg, msg)

    if not isinstance(entry, dict):
        return res("error", "not checked: " + (note or "no result"))
    if entry.get("missing"):
        return res("missing", _clean(_why_missing(ex.name, cells, notes), 400))
    outcomes = entry.get("outcomes")
    if not isinstance(outcomes, list):
        return res("error", "not checked: malformed result")
    clean = []
    for o in outcomes:
        ok = isinstance(o, (list, tuple)) and len(o) == 2 and o[0] in ("ok", "not implemented", "error", "fail")
        if not ok:
            return res("error", "not checked: malformed result")
        clean.append((o[0], o[1] if o[0] == "ok" else _clean(o[1])))
    cases, expected = _references(ex, student)
    r = catalog.judge(ex, cases, clean[: len(cases)], expected)
    msg, feedback, hidden_feedback = r.message, r.feedback, r.hidden_feedback
    if note and "could be checked" in msg:  # cut short: say how the run ended
        msg += f"; {note}"
        if "could be checked" in hidden_feedback:
            hidden_feedback += f"; {note}"
        else:
            feedback += f"; {note}"
    return replace(r, message=_clean(msg, 400), feedback=_clean(feedback, 400),
                   hidden_feedback=_clean(hidden_feedback, 400))


def _identity_note(student: str, lec: str, cells: list[str], declared) -> tuple[str, str]:
    """(for the teacher, for the learner) about the id the notebook declares with ``student(...)``, where it matters:
    the notebook defines the function of a per-student exercise and did not declare the id it was handed in under.
    The learner's version never repeats the id the notebook wrote (it may be a neighbour's)."""
    code = "\n".join(cells)
    if normalise(student) is None or not any(ex.params and re.search(rf"^[ \t]*def[ \t]+{ex.name}\b", code, flags=re.M)
               for ex in map(catalog.exercise, catalog.LECTURES[lec])):
        return "", ""  # no id to compare with, or no per-student exercise answered: whose numbers does not matter
    declared = [d for d in declared if isinstance(d, str)] if isinstance(declared, list) else []
    ran = f"its code ran with {student}'s numbers, which it is graded on"
    if not declared:
        if not re.search(r"\bstudent\s*\(", code):
            return (f"the notebook never calls student(...): it showed the example numbers; {ran}",
                    "the notebook never calls student(...), so it showed the example numbers; it was graded on "
                    "your own numbers")
        return (f"student(...) did not run (its cell failed or was cut short); {ran}",
                "student(...) did not run (its cell failed or was cut short); the notebook was graded on your own "
                "numbers")
    mine = normalise(student)
    others = sorted({d for d in declared if normalise(d) != mine})
    if not others:
        return "", ""
    said = ", ".join(repr(d) if normalise(d) else "no id" for d in others)
    safe = ("the notebook gives no id in student(...), so it showed the example numbers" if not any(
        map(normalise, others)) else "the notebook declares another id in student(...) than the one it was handed in "
        "under") + "; it was graded on the numbers of the id it was handed in under"
    return f"the notebook declares {said} in student(...), not {student!r}, the name it was handed in under; {ran}", \
        safe


def grade_notebook(student: str, path: Path, timeout: float = 60, lecture: str | None = None,
                   memory_mb: int = MEMORY_MB, label: str | None = None) -> list[Row]:
    """Rows for every exercise of the notebook's lecture (one row with 0 points when it cannot be graded), and a
    ``note`` row (0/0) when cells were stopped or cut short for time. ``label``: the notebook column (its name)."""
    label = label or path.name
    cells, meta, error = _read_code_cells(path)
    lec = _lecture(path, cells, meta, lecture)
    if lec is None:
        why = error or "could not tell which lecture this notebook answers (no coursekit metadata, no NN_ file " \
                       "name, no known function names)"
        return [Row(student, label, "-", "-", 0, None, "error", why, feedback=why)]
    ids = catalog.LECTURES[lec]
    if cells is None:
        return [Row(student, label, i, catalog.EXERCISES[i].name, 0, catalog.EXERCISES[i].points, "error",
                    error, lec, feedback=error) for i in ids]
    report, note = _run_child(cells, ids, timeout, memory_mb, student)
    report = report or {}
    notes = _cell_notes(report)
    entries = report.get("exercises") if isinstance(report.get("exercises"), dict) else {}
    rows = []
    for i in ids:
        ex = catalog.EXERCISES[i]
        r = _verdict(ex, entries.get(i), cells, notes, note, student)
        rows.append(Row(student, label, i, ex.name, r.points, ex.points, r.status, r.message, lec, r.hidden,
                        r.feedback, r.hidden_feedback))
    remarks = [text for _, kind, text in notes if kind == "time"]
    who, who_safe = _identity_note(student, lec, cells, report.get("declared")) if report else ("", "")
    if remarks or who:
        rows.append(Row(student, label, "-", "-", 0, 0, "note", _clean("; ".join(remarks + [who] * bool(who)), 600),
                        lec, feedback=_clean("; ".join(remarks + [who_safe] * bool(who)), 600)))
    return rows


_RANK = {"pass": 4, "fail": 3, "error": 2, "not implemented": 1, "missing": 0}


def _mark_duplicates(rows: list[Row]) -> list[Row]:
    """Where a student answers an exercise in several notebooks, the best row counts (most points, then the better
    status, then the shorter file name: the original rather than its -Copy1); the others become ``duplicate`` rows
    worth 0/0 that say what they scored."""
    best: dict[tuple[str, str], tuple[tuple, int]] = {}
    for k, r in enumerate(rows):
        if r.exercise == "-" or r.status in UNCOUNTED:
            continue
        score = (r.points, _RANK.get(r.status, 0), -len(r.notebook), -k)
        key = (r.student, r.exercise)
        if key not in best or score > best[key][0]:
            best[key] = (score, k)
    out = []
    for k, r in enumerate(rows):
        b = best.get((r.student, r.exercise))
        if b is not None and b[1] != k and r.status not in UNCOUNTED:
            kept = rows[b[1]]
            head = f"not counted: {r.exercise} is also answered in {kept.notebook}, which counts " \
                   f"({kept.points}/{kept.max_points}); this copy: {r.points}/{r.max_points}, {r.status}, "
            r = replace(r, points=0, max_points=0, status="duplicate", message=_clean(head + r.message, 400),
                        feedback=_clean(head + r.feedback, 400))
        out.append(r)
    return out


def cores() -> int:
    """The CPU cores this process may run on (its affinity where the platform says, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def grade(folder: Path, timeout: float = 60, jobs: int | None = None, lecture: str | None = None,
          memory_mb: int = MEMORY_MB, progress=None) -> list[Row]:
    """Grade every submission in ``folder``, ``jobs`` notebooks at a time (default: one per core); rows in the order
    of students, notebooks and exercises. Each student is graded on their own numbers (the id is the name of the
    submission: ``<student>.ipynb`` or ``<student>/``)."""
    jobs = cores() if jobs is None else jobs
    tasks = []
    for student, notebooks, why in submissions(folder):
        if not notebooks:
            tasks.append((student, None, why))
        tasks += [(student, nb, "") for nb in notebooks]
    unknown = sum(catalog.EXERCISES[i].points for i in catalog.LECTURES[lecture]) if lecture else None

    def one(task):
        student, nb, why = task
        if nb is None:
            return [Row(student, "-", "-", "-", 0, unknown, "skipped" if why.startswith("skipped") else "error", why,
                        lecture, feedback=why)]
        t0 = time.perf_counter()
        label = nb.name if nb.parent == folder else nb.relative_to(folder / student).as_posix()
        rows = grade_notebook(student, nb, timeout, lecture, memory_mb, label)
        if progress:
            progress(f"graded {student}/{label} in {time.perf_counter() - t0:.1f} s")
        return rows

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return _mark_duplicates([row for rows in pool.map(one, tasks) for row in rows])


def totals(rows: list[Row]) -> dict[str, dict[str, int | None]]:
    """Per student: points and max_points over the counted rows; max_points None when a part is unknown."""
    out: dict[str, dict[str, int | None]] = {}
    for r in rows:
        t = out.setdefault(r.student, {"points": 0, "max_points": 0})
        if r.status in UNCOUNTED:
            continue
        t["points"] += r.points
        t["max_points"] = None if t["max_points"] is None or r.max_points is None else t["max_points"] + r.max_points
    return out


def _score(points: int, max_points: int | None) -> str:
    return f"{points}/{'?' if max_points is None else max_points}"


def write_reports(rows: list[Row], out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    fields = list(Row.__dataclass_fields__)
    with open(out / "scores.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        w.writerows(asdict(r) for r in rows)
    (out / "scores.json").write_text(json.dumps({"rows": [asdict(r) for r in rows], "totals": totals(rows)},
                                                indent=1, ensure_ascii=False), encoding="utf-8")
    return out / "scores.csv", out / "scores.json"


def table(rows: list[Row], width: int = 70) -> str:
    """The rows as a text table (names in full; messages cut at ``width``), then each student's total."""
    ws = max([len("student")] + [len(r.student) for r in rows])
    wn = max([len("notebook")] + [len(r.notebook) for r in rows])
    head = f"{'student':<{ws}}  {'notebook':<{wn}}  {'exercise':<8} {'points':>6}  message"
    rule = "-" * (len(head) - len("message") + width)
    lines = [head, rule]
    for r in rows:
        msg = r.message if len(r.message) <= width else r.message[: width - 1] + "…"
        pts = {"duplicate": "dup", "note": ""}.get(r.status, _score(r.points, r.max_points))
        lines.append(f"{r.student:<{ws}}  {r.notebook:<{wn}}  {r.exercise:<8} {pts:>6}  {msg}")
    lines.append(rule)
    lines += [f"{s:<{ws}}  {'':<{wn}}  {'total':<8} {_score(t['points'], t['max_points']):>6}"
              for s, t in totals(rows).items()]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m coursekit.grade", description=__doc__.split("\n")[0])
    ap.add_argument("submissions", type=Path, help="folder of <student>.ipynb files or <student>/ folders")
    ap.add_argument("--out", type=Path, default=Path("grading-report"), help="where scores.csv/json go")
    ap.add_argument("--timeout", type=float, default=60, help="seconds per notebook (default 60)")
    ap.add_argument("--jobs", type=int, default=cores(),
                    help=f"notebooks graded at once (default: the number of cores, here {cores()})")
    ap.add_argument("--memory-mb", type=int, default=MEMORY_MB,
                    help=f"address-space limit per notebook in MiB, 0 for none (default {MEMORY_MB})")
    ap.add_argument("--lecture", choices=sorted(catalog.LECTURES), help="grade every notebook as this lecture")
    export.add_arguments(ap)
    args = ap.parse_args(argv)
    if not args.submissions.is_dir():
        ap.error(f"{args.submissions} is not a folder")
    if args.timeout <= 0 or args.jobs < 1 or args.memory_mb < 0:
        ap.error("--timeout must be positive, --jobs at least 1 and --memory-mb not negative")
    try:
        export.parse_columns(args.column)
        if args.roster and not args.format:
            raise ValueError("--roster is for an export: give --format canvas or --format moodle too")
        for fmt in args.format if args.roster else ():
            export.read_roster(args.roster, args.roster_key or export.DEFAULT_KEY[fmt])
    except (OSError, ValueError) as err:  # before grading, not after: a bad roster must not cost a whole run
        ap.error(str(err))
    hidden = hidden_entries(args.submissions)
    if hidden:
        print(f"ignored hidden entries in {args.submissions}: {', '.join(hidden)}", file=sys.stderr)
    rows = grade(args.submissions, args.timeout, args.jobs, args.lecture, args.memory_mb,
                 progress=lambda s: print(s, file=sys.stderr, flush=True))
    print(table(rows))
    csv_path, json_path = write_reports(rows, args.out)
    written = feedback.write_feedback(rows, args.out / "feedback")
    print(f"\nwrote {csv_path}, {json_path} and {len(written) // 2} feedback file(s) in {args.out / 'feedback'} "
          "(.md and .html)")
    for res in export.run_exports(rows, args, args.out):
        print(res.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
