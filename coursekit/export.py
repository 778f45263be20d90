"""Gradebook CSVs that Canvas and Moodle import: ``python -m coursekit.export REPORT/scores.json --format canvas``.

One grade column per lecture (``Exercises 02``: the student's points over that lecture's exercises), one row per
student. The layouts, taken from the two systems' documentation (see coursekit/README.md for the links):

* **Canvas** (Grades ▸ Import): the columns ``Student, ID, SIS User ID, SIS Login ID, Section``, then one column per
  assignment, headed ``Name (assignment id)`` for an existing assignment or a new name (Canvas then offers to
  create it); a second row ``Points Possible`` gives each assignment's maximum. Canvas finds the student by ID,
  SIS User ID or SIS Login ID.
* **Moodle** (Grades ▸ Import ▸ CSV file): any header; at import the teacher maps one column to a user field
  (``Map from`` a column, ``Map to`` username, email address, ID number or user id) and each grade column to a grade
  item, and a feedback column to "Feedback for" that item. A row whose user Moodle cannot find stops the whole
  import, so no such row may be in the file.

With a roster (``--roster``: a CSV from the LMS, one row per student, with a column ``--roster-key`` whose values are
the names the submissions were handed in under), the identity columns come from the roster. A graded student who is
not in the roster, and a roster student with no graded submission, are left out of the file and listed by name, on
screen and in ``<format>-report.txt`` beside it: nobody is dropped silently. A student with no score for one of the
lectures gets an empty cell there (Canvas and Moodle leave such a grade as it is), also listed.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path

from . import catalog
from .params import normalise

__all__ = ["FORMATS", "Export", "scores_by_lecture", "read_roster", "export", "main"]

FORMATS = ("canvas", "moodle")
CANVAS_IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_IDENTITY = ["First name", "Last name", "ID number", "Username", "Email address"]
DEFAULT_KEY = {"canvas": "SIS Login ID", "moodle": "Username"}
UNCOUNTED = ("duplicate", "note")


@dataclass
class Export:
    """What an export wrote and what it left out (every name left out is listed in ``report()``)."""

    path: Path
    format: str
    students: int = 0
    columns: list[str] = field(default_factory=list)
    not_in_roster: list[str] = field(default_factory=list)  # graded, but the roster has no such key
    no_submission: list[str] = field(default_factory=list)  # in the roster, but nothing graded
    empty: list[tuple[str, str]] = field(default_factory=list)  # (student, lecture) without a score: cell left empty

    def report(self) -> str:
        lines = [f"wrote {self.path}: {self.students} student(s), grade column(s): {', '.join(self.columns) or 'none'}"]
        if self.not_in_roster:
            lines.append(f"left out, not in the roster (add them to it or rename the submission): "
                         f"{', '.join(self.not_in_roster)}")
        if self.no_submission:
            lines.append(f"left out, in the roster but with no graded submission: {', '.join(self.no_submission)}")
        if self.empty:
            lines.append("cells left empty, no notebook of that lecture: " +
                         ", ".join(f"{s} (lecture {lec})" for s, lec in self.empty))
        return "\n".join(lines)


def scores_by_lecture(rows) -> tuple[dict[str, dict[str, int]], dict[str, int], list[str]]:
    """(points per student and lecture, maximum per lecture, every student in order). A student has a score for a
    lecture when at least one counted row of theirs belongs to it."""
    scores: dict[str, dict[str, int]] = {}
    students: list[str] = []
    for r in rows:
        if r.student not in scores:
            scores[r.student] = {}
            students.append(r.student)
        if r.status in UNCOUNTED or r.lecture is None:
            continue
        scores[r.student][r.lecture] = scores[r.student].get(r.lecture, 0) + r.points
    lectures = sorted({lec for s in scores.values() for lec in s})
    maxima = {lec: sum(catalog.EXERCISES[i].points for i in catalog.LECTURES[lec]) for lec in lectures}
    return scores, maxima, students


def read_roster(path: Path, key: str) -> dict[str, dict[str, str]]:
    """The roster's rows by their normalised ``key`` (rows without a key, and Canvas's "Points Possible" row, are
    skipped). A ValueError names a missing key column or keys that appear twice."""
    with open(path, newline="", encoding="utf-8-sig") as fh:  # utf-8-sig: Excel writes a byte-order mark
        reader = csv.DictReader(fh)
        if key not in (reader.fieldnames or []):
            columns = ", ".join(reader.fieldnames or [])
            raise ValueError(f"the roster {path} has no column {key!r} (its columns: {columns}); choose one with "
                             "--roster-key")
        out, spelled = {}, {}
        first = reader.fieldnames[0]
        for row in reader:
            k = normalise(row.get(key))
            if k is None or str(row.get(first) or "").strip().casefold() == "points possible":
                continue
            spelled.setdefault(k, []).append(row[key].strip())
            out[k] = {c: (v or "").strip() for c, v in row.items() if c is not None}
    twice = [", ".join(v) for v in spelled.values() if len(v) > 1]
    if twice:
        raise ValueError(f"the roster {path} has {key!r} values more than once (compared stripped and case-folded): "
                         + "; ".join(twice))
    return out


def _display(entry: dict[str, str], key: str) -> str:
    name = entry.get("Student") or " ".join(x for x in (entry.get("First name"), entry.get("Last name")) if x)
    return f"{name} ({entry[key]})" if name and name != entry[key] else entry[key]


def export(rows, fmt: str, folder: Path, roster: Path | None = None, key: str | None = None,
           columns: dict[str, str] | None = None) -> Export:
    """Write ``<folder>/<fmt>.csv`` (and ``<fmt>-report.txt``) from grade rows; what was written and left out."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    key = key or DEFAULT_KEY[fmt]
    scores, maxima, students = scores_by_lecture(rows)
    lectures = sorted(maxima)
    names = {lec: (columns or {}).get(lec, f"Exercises {lec}") for lec in lectures}
    people = read_roster(roster, key) if roster else None
    res = Export(folder / f"{fmt}.csv", fmt, columns=[names[lec] for lec in lectures])
    chosen = []  # (student, identity row)
    for s in students:
        if people is None:
            chosen.append((s, {"Student": s, "SIS Login ID": s, key: s}))
        elif normalise(s) in people:
            chosen.append((s, people[normalise(s)]))
        else:
            res.not_in_roster.append(s)
    if people is not None:
        graded = {normalise(s) for s in students}
        res.no_submission = [_display(e, key) for k, e in people.items() if k not in graded]
    if fmt == "canvas":
        identity = CANVAS_IDENTITY
    else:  # the user fields the roster has (Moodle's own export has these names), and the key
        present = [c for c in MOODLE_IDENTITY if people and any(c in e for e in people.values())]
        identity = present + ([key] if key not in present else [])
    header = identity + [names[lec] for lec in lectures]
    if fmt == "moodle":
        header += [f"Feedback: {names[lec]}" for lec in lectures]
    body = []
    for s, who in chosen:
        cells = []
        for lec in lectures:
            if lec in scores[s]:
                cells.append(str(scores[s][lec]))
            else:
                cells.append("")
                res.empty.append((s, lec))
        if fmt == "moodle":
            cells += [_summary(rows, s, lec) if lec in scores[s] else "" for lec in lectures]
        body.append([who.get(c, "") for c in identity] + cells)
    folder.mkdir(parents=True, exist_ok=True)
    with open(res.path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        if fmt == "canvas":
            w.writerow(["Points Possible"] + [""] * (len(identity) - 1) + [str(maxima[lec]) for lec in lectures])
        w.writerows(body)
    res.students = len(body)
    (folder / f"{fmt}-report.txt").write_text(res.report() + "\n", encoding="utf-8")
    return res


def _summary(rows, student: str, lecture: str) -> str:
    """A short feedback text for Moodle: the points and each exercise's status (no message, no value)."""
    mine = [r for r in rows if r.student == student and r.lecture == lecture and r.exercise != "-"
            and r.status not in UNCOUNTED]
    pts = sum(r.points for r in mine)
    most = sum(catalog.EXERCISES[i].points for i in catalog.LECTURES[lecture])
    return f"{pts}/{most}: " + ", ".join(f"{r.exercise} {r.status}" for r in mine)


def load_rows(path: Path):
    """Grade rows back from a ``scores.json`` that ``coursekit.grade`` wrote."""
    from .grade import Row

    known = {f.name for f in fields(Row)}
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    return [Row(**{k: v for k, v in r.items() if k in known}) for r in data["rows"]]


def parse_columns(items) -> dict[str, str]:
    """``["02=Exercise sheet 2 (4512)"]`` -> {"02": "Exercise sheet 2 (4512)"}; ValueError for a malformed item."""
    out = {}
    for item in items or []:
        lec, sep, name = item.partition("=")
        if not sep or lec.strip() not in catalog.LECTURES or not name.strip():
            raise ValueError(f"--column wants LECTURE=HEADER with a lecture among {', '.join(catalog.LECTURES)}, "
                             f"got {item!r}")
        out[lec.strip()] = name.strip()
    return out


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The export options, shared with ``python -m coursekit.grade``."""
    ap.add_argument("--format", action="append", choices=FORMATS, default=[],
                    help="write a gradebook CSV for this system (may be given twice)")
    ap.add_argument("--roster", type=Path, help="CSV from the LMS, one row per student, to join on")
    ap.add_argument("--roster-key", help="the roster column holding the submission names (default: SIS Login ID "
                                         "for canvas, Username for moodle)")
    ap.add_argument("--column", action="append", default=[], metavar="LECTURE=HEADER",
                    help='header of a lecture\'s grade column, e.g. "02=Exercises 2 (4512)" for Canvas assignment 4512')


def run_exports(rows, args, folder: Path) -> list[Export]:
    return [export(rows, fmt, folder, args.roster, args.roster_key, parse_columns(args.column)) for fmt in args.format]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m coursekit.export", description=__doc__.split("\n")[0])
    ap.add_argument("scores", type=Path, help="scores.json written by python -m coursekit.grade")
    ap.add_argument("--out", type=Path, help="folder for the CSVs (default: the folder of scores.json)")
    add_arguments(ap)
    args = ap.parse_args(argv)
    if not args.format:
        ap.error("give --format canvas and/or --format moodle")
    try:
        for res in run_exports(load_rows(args.scores), args, args.out or args.scores.parent):
            print(res.report())
    except (OSError, ValueError, KeyError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
