"""Gradebook exports for Canvas and Moodle: the layouts their import pages read, the join on a roster, and nobody
left out without being named (rows made here; test_grader.py runs the same export after real grading)."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from coursekit import export, grade
from coursekit.grade import Row

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"


def _rows(student, lecture, statuses, notebook="nb.ipynb"):
    ids = [f"{int(lecture)}.{k}" for k in range(1, len(statuses) + 1)]
    return [Row(student, notebook, i, f"f{i}", int(st == "pass"), 1, st, "teacher's words", lecture, feedback="ok")
            for i, st in zip(ids, statuses)]


@pytest.fixture
def rows():
    """alice: lectures 02 (3/4) and 03 (4/4); bob: 02 (2/4, with a duplicate copy and a note); carol (not in the
    rosters): 02 (1/4); dan: only a notebook whose lecture could not be told."""
    out = _rows("alice", "02", ["pass", "pass", "pass", "fail"]) + _rows("alice", "03", ["pass"] * 4, "03.ipynb")
    out += _rows("bob", "02", ["pass", "fail", "pass", "not implemented"])
    out += [Row("bob", "copy.ipynb", "2.1", "f", 0, 0, "duplicate", "not counted", "02"),
            Row("bob", "nb.ipynb", "-", "-", 0, 0, "note", "cut short", "02", feedback="cut short")]
    out += _rows("carol", "02", ["pass", "fail", "fail", "fail"])
    out += [Row("dan", "x.ipynb", "-", "-", 0, None, "error", "could not tell which lecture", None)]
    return out


def _read(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def test_canvas_without_a_roster(rows, tmp_path):
    res = export.export(rows, "canvas", tmp_path)
    table = _read(tmp_path / "canvas.csv")
    assert table[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Exercises 02", "Exercises 03"]
    assert table[1] == ["Points Possible", "", "", "", "", "4", "4"]
    body = {r[3]: r for r in table[2:]}
    assert body["alice"] == ["alice", "", "", "alice", "", "3", "4"]
    assert body["bob"][5:] == ["2", ""] and body["carol"][5:] == ["1", ""] and body["dan"][5:] == ["", ""]
    assert res.empty == [("bob", "03"), ("carol", "03"), ("dan", "02"), ("dan", "03")]
    assert "cells left empty" in res.report() and "dan (lecture 02)" in res.report()
    assert (tmp_path / "canvas-report.txt").read_text("utf-8").strip() == res.report()


def test_canvas_with_a_roster_leaves_out_and_names_the_unmatched(rows, tmp_path):
    res = export.export(rows, "canvas", tmp_path, FIXTURES / "roster_canvas.csv",
                        columns={"02": "Exercise sheet 2 (4512)"})
    table = _read(tmp_path / "canvas.csv")
    assert table[0][5:] == ["Exercise sheet 2 (4512)", "Exercises 03"]
    assert table[1][0] == "Points Possible"
    assert table[2:] == [["Example, Alice", "1001", "S1001", "alice", "Section A", "3", "4"],
                         ["Example, Bob", "1002", "S1002", "bob", "Section A", "2", ""]]
    assert res.not_in_roster == ["carol", "dan"] and res.no_submission == ["Example, Erin (erin)"]
    text = res.report()
    assert "not in the roster" in text and "carol, dan" in text and "Example, Erin (erin)" in text
    everyone = {r.student for r in rows}
    assert everyone == {r[3] for r in table[2:]} | set(res.not_in_roster)  # nobody is dropped without a name


def test_moodle_with_a_roster(rows, tmp_path):
    res = export.export(rows, "moodle", tmp_path, FIXTURES / "roster_moodle.csv")
    table = _read(tmp_path / "moodle.csv")
    assert table[0] == ["First name", "Last name", "ID number", "Username", "Email address", "Exercises 02",
                        "Exercises 03", "Feedback: Exercises 02", "Feedback: Exercises 03"]
    alice, bob = table[1:]
    assert alice[:7] == ["Alice", "Example", "S1001", "alice", "alice@example.edu", "3", "4"]
    assert alice[7] == "3/4: 2.1 pass, 2.2 pass, 2.3 pass, 2.4 fail"
    assert bob[5:7] == ["2", ""] and bob[7] == "2/4: 2.1 pass, 2.2 fail, 2.3 pass, 2.4 not implemented"
    assert res.not_in_roster == ["carol", "dan"] and res.no_submission == ["Erin Example (erin)"]
    by_mail = export.export(rows, "moodle", tmp_path / "m", FIXTURES / "roster_moodle.csv", key="Email address")
    assert by_mail.not_in_roster == ["alice", "bob", "carol", "dan"]  # submissions are not named by email


def test_moodle_without_a_roster(rows, tmp_path):
    export.export(rows, "moodle", tmp_path)
    table = _read(tmp_path / "moodle.csv")
    assert table[0][:3] == ["Username", "Exercises 02", "Exercises 03"]
    assert [r[0] for r in table[1:]] == ["alice", "bob", "carol", "dan"]


def test_bad_rosters_are_refused_with_a_reason(rows, tmp_path):
    twice = tmp_path / "twice.csv"
    twice.write_text("Student,SIS Login ID\nA,alice\nA again,Alice\n", encoding="utf-8")
    with pytest.raises(ValueError, match="more than once .*: alice, Alice"):
        export.export(rows, "canvas", tmp_path, twice)
    with pytest.raises(ValueError, match="no column 'Username'"):
        export.export(rows, "moodle", tmp_path, FIXTURES / "roster_canvas.csv")
    bom = tmp_path / "bom.csv"  # Excel's UTF-8 has a byte-order mark before the first header
    bom.write_bytes("\ufeffSIS Login ID,Student\nalice,Alice\n".encode("utf-8"))
    assert export.read_roster(bom, "SIS Login ID") == {"alice": {"SIS Login ID": "alice", "Student": "Alice"}}
    with pytest.raises(ValueError, match="LECTURE=HEADER"):
        export.parse_columns(["2=Sheet"])


def test_command_line_from_scores_json(rows, tmp_path):
    grade.write_reports(rows, tmp_path)
    res = subprocess.run([sys.executable, "-m", "coursekit.export", str(tmp_path / "scores.json"), "--format", "canvas",
                          "--format", "moodle", "--roster", str(FIXTURES / "roster_canvas.csv"), "--roster-key",
                          "SIS Login ID", "--column", "03=Sheet 3"], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert f"wrote {tmp_path / 'canvas.csv'}: 2 student(s)" in res.stdout and "carol, dan" in res.stdout
    # a Canvas roster has none of Moodle's user fields: the key column identifies the user
    assert _read(tmp_path / "moodle.csv")[0] == ["SIS Login ID", "Exercises 02", "Sheet 3", "Feedback: Exercises 02",
                                                 "Feedback: Sheet 3"]
    bad = subprocess.run([sys.executable, "-m", "coursekit.export", str(tmp_path / "scores.json")],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "--format" in bad.stderr
