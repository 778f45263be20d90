"""The grader: shipped solutions score full marks, shipped exercises zero, and broken or malicious submissions
(tests/fixtures/submissions) get an honest score without stopping the run."""
from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from coursekit import catalog, grade

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "submissions"
SOLVED, BLANK = ("02", "06"), ("03", "06")  # lectures whose solution / exercise notebooks are graded
TIMEOUT = 20  # per notebook; the endless loops in the fixtures are cut after TIMEOUT/5 (cells) and TIMEOUT/10 (calls)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Everything graded in one run, two notebooks at a time: two solution and two exercise notebooks, the fixtures.
    (Every solution passes its checks in-process in test_exercises.py; here the point is the sandboxed path.)"""
    folder = tmp_path_factory.mktemp("submissions")
    for kind, lectures in (("solution", SOLVED), ("exercise", BLANK)):
        for lec in lectures:
            shutil.copy(next((ROOT / f"{kind}s").glob(f"{lec}_*.ipynb")), folder / f"{kind}_{lec}.ipynb")
    for p in FIXTURES.rglob("*.ipynb.json"):  # stored as .json so that nbval never runs them (see README.md there)
        target = folder / p.relative_to(FIXTURES).with_suffix("")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, target)
    _more_submissions(folder)
    rows = grade.grade(folder, timeout=TIMEOUT, jobs=2)
    by = {}
    for r in rows:
        if r.status not in ("note", "duplicate"):
            by.setdefault(r.student, {})[r.exercise] = r
    return rows, by


SETUP = "import torch\ntorch.set_default_dtype(torch.float64)"
LENGTH = "def polygon_length(c):\n    return (c[..., 1:, :] - c[..., :-1, :]).norm(dim=-1).sum(-1)"
ENERGY = "def curve_energy(c):\n    return 0.5 * (c.shape[-2] - 1) * (c[..., 1:, :] - c[..., :-1, :]).pow(2).sum((-2, -1))"
LEC02 = {"coursekit": {"lecture": "02"}}
LONG_NAME = "frank_with_a_rather_long_name"


def _more_submissions(folder: Path) -> None:
    """Submissions written here rather than stored: odd file names and folders, copies, and notebooks that break
    things the fixtures do not."""
    _write(folder / f"{LONG_NAME}.IPYNB", SETUP,
           "print(my_scratch)",  # a scratch cell that fails before the one that matters
           LENGTH,
           "def curve_energy(c)\n    return c",  # a syntax error
           "def decoded_length(c, f):\n    c -= 0 * c  # in place: the caller's curve changes (here not in value)\n"
           "    c.unsqueeze_(0)\n    return polygon_length(f(c))[0]",
           metadata=LEC02)  # no answer_2_4 at all
    (folder / "grace.ipynb.txt").write_text("{}")  # not a notebook: skipped, and said so
    (folder / "carol").mkdir()  # no notebook inside
    ivan = folder / "ivan" / "submission"  # a notebook two levels down, and a checkpoint that must not count
    ivan.mkdir(parents=True)
    _write(ivan / "02_curves_and_lengths.ipynb", SETUP, LENGTH,
           "import os, shutil\nshutil.rmtree(os.path.dirname(os.getcwd()))")  # deletes the folder above its own
    (folder / "ivan" / ".ipynb_checkpoints").mkdir()
    _write(folder / "ivan" / ".ipynb_checkpoints" / "02_curves_and_lengths-checkpoint.ipynb", SETUP, LENGTH)
    bob = folder / "bob"  # the same lecture twice: each exercise counts once, from the better copy
    bob.mkdir()
    _write(bob / "02_curves_and_lengths.ipynb", SETUP, LENGTH, "def curve_energy(c):\n    return c.sum()")
    _write(bob / "02_curves_and_lengths-Copy1.ipynb", SETUP, "def polygon_length(c):\n    return 0 * c.sum()", ENERGY)
    _write(folder / "olga.ipynb", SETUP, LENGTH,  # finds the grader's own folder and deletes it
           "import sys, json, os, shutil\nshutil.rmtree(os.path.dirname(json.load(open(sys.argv[1]))['results']))",
           metadata=LEC02)


def _statuses(by, student):
    return {i: r.status for i, r in by[student].items()}


def _total(by, student):
    return sum(r.points for r in by[student].values())


def test_solutions_score_full_marks(graded):
    _, by = graded
    for lec in SOLVED:
        ids = catalog.LECTURES[lec]
        rows = by[f"solution_{lec}"]
        assert sorted(rows) == ids
        assert all(r.status == "pass" and r.points == r.max_points for r in rows.values()), \
            {i: r.message for i, r in rows.items() if r.status != "pass"}


def test_exercises_score_zero(graded):
    _, by = graded
    for lec in BLANK:
        rows = by[f"exercise_{lec}"]
        assert sorted(rows) == catalog.LECTURES[lec]
        assert all(r.points == 0 and r.status == "not implemented" for r in rows.values())


def test_partially_correct(graded):
    _, by = graded
    assert _statuses(by, "partial") == {"2.1": "pass", "2.2": "pass", "2.3": "fail", "2.4": "not implemented"}
    assert _total(by, "partial") == 2
    assert "polar decoder" in by["partial"]["2.3"].message and "expected" in by["partial"]["2.3"].message


def test_printing_pass_earns_nothing(graded):
    _, by = graded
    assert _total(by, "fake_pass") == 0
    assert by["fake_pass"]["2.1"].status == "fail"


def test_redefined_check_patched_judge_and_forged_results_earn_nothing(graded):
    _, by = graded
    assert _total(by, "tamper") == 0
    assert by["tamper"]["2.1"].status == "fail" and "expected 5, got 0" in by["tamper"]["2.1"].message


def test_endless_loops_are_cut_and_the_rest_still_counts(graded):
    rows, by = graded
    assert _statuses(by, "infinite_loop") == {"2.1": "pass", "2.2": "pass", "2.3": "error", "2.4": "not implemented"}
    assert "took longer than" in by["infinite_loop"]["2.3"].message
    notes = [r for r in rows if r.student == "infinite_loop" and r.status == "note"]
    assert len(notes) == 1 and "code cell 3 " in notes[0].message and "was stopped after 4 s" in notes[0].message


def test_syntax_error(graded):
    _, by = graded
    assert _statuses(by, "syntax_error")["2.1"] == "pass" and _total(by, "syntax_error") == 1
    assert by["syntax_error"]["2.2"].status == "missing" and "syntax error" in by["syntax_error"]["2.2"].message


def test_a_missing_function_is_blamed_on_the_cell_that_defines_it(graded):
    """Not on the first cell that failed (a scratch cell); cells are numbered counting code cells only."""
    _, by = graded
    frank = by[LONG_NAME]
    assert frank["2.1"].status == "pass"
    msg = frank["2.2"].message
    assert frank["2.2"].status == "missing" and "my_scratch" not in msg, msg
    assert "code cell 4 (counting code cells only; it starts `def curve_energy(c)`) has a syntax error" in msg, msg
    assert frank["2.4"].status == "missing" and "no code cell has `def answer_2_4(...)`" in frank["2.4"].message


def test_a_function_that_changes_its_input_in_place_fails(graded):
    _, by = graded
    r = by[LONG_NAME]["2.3"]
    assert r.status == "fail" and r.points == 0 and "changed its argument c in place" in r.message, r.message


def test_odd_names_nested_folders_and_skipped_entries_are_all_reported(graded):
    rows, by = graded
    assert sorted(by[LONG_NAME]) == catalog.LECTURES["02"]  # .IPYNB is a notebook too
    (grace,) = [r for r in rows if r.student == "grace.ipynb.txt"]
    assert grace.status == "skipped" and "not a notebook" in grace.message and grace.max_points is None
    ivan = [r for r in rows if r.student == "ivan"]
    assert {r.notebook for r in ivan} == {"submission/02_curves_and_lengths.ipynb"}  # the checkpoint is left out
    (carol,) = [r for r in rows if r.student == "carol"]
    assert "no notebook" in carol.message and carol.max_points is None
    totals = grade.totals(rows)
    assert totals["carol"] == {"points": 0, "max_points": None} and totals["grace.ipynb.txt"]["max_points"] is None
    assert all(t["max_points"] != 0 for t in totals.values())  # never 0/0
    text = grade.table(rows)
    assert "carol" in text and "0/?" in text and "0/0" not in text


def test_deleting_the_folder_above_its_own_does_not_touch_the_results(graded):
    _, by = graded
    assert by["ivan"]["2.1"].status == "pass", by["ivan"]["2.1"].message


def test_results_deleted_by_the_notebook_are_reported_as_such(graded):
    _, by = graded
    assert _total(by, "olga") == 0
    assert all("left no results" in r.message and "exit status" not in r.message for r in by["olga"].values()), \
        by["olga"]["2.1"].message


def test_duplicates_count_once_with_the_best_copy(graded):
    rows, by = graded
    bob = {(r.notebook, r.exercise): r for r in rows if r.student == "bob"}
    assert bob[("02_curves_and_lengths.ipynb", "2.1")].status == "pass"
    assert bob[("02_curves_and_lengths-Copy1.ipynb", "2.2")].status == "pass"
    dup = bob[("02_curves_and_lengths-Copy1.ipynb", "2.1")]
    assert dup.status == "duplicate" and dup.points == dup.max_points == 0 and "not counted" in dup.message
    assert bob[("02_curves_and_lengths.ipynb", "2.2")].status == "duplicate"
    assert sum(r.status == "duplicate" for r in bob.values()) == 4  # 2.3 and 2.4 are "not implemented" in both
    assert grade.totals(rows)["bob"] == {"points": 2, "max_points": 4}


def test_public_checks_pass_and_a_hidden_one_fails(graded):
    """The report tells the teacher which hidden input failed; the learner's texts say only its number."""
    _, by = graded
    assert _statuses(by, "hidden_fail") == {"2.1": "fail", "2.2": "pass", "2.3": "pass", "2.4": "pass"}
    r = by["hidden_fail"]["2.1"]
    assert r.points == 0 and r.hidden == "fail" and r.feedback == "public checks passed (all 4 inputs)"
    assert r.message.startswith("public checks passed (all 4 inputs); hidden input 2/2, a 2×1×3 batch"), r.message
    assert r.hidden_feedback == "hidden check 2 of 2: the output has the wrong shape", r.hidden_feedback
    assert by["hidden_fail"]["2.2"].hidden == "pass" and by["hidden_fail"]["2.3"].hidden == ""
    assert by["partial"]["2.3"].hidden == ""  # 2.3 has no hidden checks
    assert by["fake_pass"]["2.1"].hidden == "not run"


def test_a_copied_number_fails_and_the_declared_id_is_reported(graded):
    """copied_answer returns the number of its neighbour partial (whose numbers differ): it fails, and the note says
    which id the notebook declared; the learner's version of the note does not repeat that id."""
    rows, by = graded
    ex = catalog.exercise("2.4")
    assert ex.values("copied_answer") != ex.values("partial")
    assert _statuses(by, "copied_answer") == {"2.1": "pass", "2.2": "pass", "2.3": "pass", "2.4": "fail"}
    (note,) = [r for r in rows if r.student == "copied_answer" and r.status == "note"]
    assert "declares 'partial' in student(...), not 'copied_answer'" in note.message, note.message
    assert "partial" not in note.feedback and "declares another id" in note.feedback
    assert by["hidden_fail"]["2.4"].status == "pass"  # the same code on its own numbers passes
    assert not [r for r in rows if r.student == "hidden_fail" and r.status == "note"]  # it declared its own id


def test_huge_output(graded):
    _, by = graded
    assert _statuses(by, "huge_output")["2.1"] == "pass" and _total(by, "huge_output") == 1


def test_sys_exit_and_os_exit(graded):
    """sys.exit and exit() in cells are ignored; os._exit inside 2.3 ends the child, results so far are kept."""
    _, by = graded
    assert _statuses(by, "sys_exit") == {"2.1": "pass", "2.2": "pass", "2.3": "error", "2.4": "error"}
    assert "exit status 3" in by["sys_exit"]["2.3"].message


def test_crashing_interpreter(graded):
    _, by = graded
    assert _total(by, "segfault") == 0 and len(by["segfault"]) == 4
    assert all("ended the grading process" in r.message for r in by["segfault"].values())


def test_invalid_json(graded):
    _, by = graded
    assert sorted(by["invalid_json"]) == catalog.LECTURES["02"]  # the lecture is read from the file name
    assert all(r.points == 0 and "not a valid notebook" in r.message for r in by["invalid_json"].values())


def test_reports(graded, tmp_path):
    rows, by = graded
    csv_path, json_path = grade.write_reports(rows, tmp_path)
    with open(csv_path, newline="", encoding="utf-8") as fh:
        back = list(csv.DictReader(fh))
    assert len(back) == len(rows) and {"student", "exercise", "points", "message"} <= set(back[0])
    data = json.loads(json_path.read_text("utf-8"))
    assert data["totals"]["partial"] == {"points": 2, "max_points": 4}
    assert len(data["rows"]) == len(rows)
    text = grade.table(rows)
    assert "partial" in text and "2/4" in text
    assert LONG_NAME in text and "02_curves_and_lengths-Copy1.ipynb" in text  # names in full, a notebook column
    assert data["totals"]["bob"] == {"points": 2, "max_points": 4}


def _write(path: Path, *sources, metadata=None):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata.update(metadata or {})
    nbformat.write(nb, path)


def test_a_loop_that_swallows_the_alarm_is_killed_at_the_hard_timeout(tmp_path):
    src = "while True:\n    try:\n        while True:\n            pass\n    except BaseException:\n        pass"
    _write(tmp_path / "stubborn.ipynb", "def polygon_length(c):\n    return c", src)
    rows = grade.grade_notebook("stubborn", tmp_path / "stubborn.ipynb", timeout=4, lecture="02")
    assert [r.points for r in rows] == [0, 0, 0, 0]
    assert all("ran out of time (4 s)" in r.message for r in rows)


def test_slow_scratch_cells_leave_time_for_the_checks(tmp_path):
    """Five calls of a looping function in scratch cells: the cells get about half of the time, later cells run only
    their definitions, and every function is still checked (the loop fails, the rest passes)."""
    loop = "def curve_energy(c):\n    while True:\n        pass"
    decoded = "def decoded_length(c, f):\n    return polygon_length(f(c))"
    ex = catalog.exercise("2.4")
    answer = f"def answer_2_4():\n    return {ex.reference(ex.cases_for('kim')[0]).item()!r}"  # kim's own number
    _write(tmp_path / "kim.ipynb", SETUP, LENGTH, loop, *["curve_energy(torch.zeros(3, 2))"] * 5, decoded, answer,
           metadata=LEC02)
    rows = grade.grade_notebook("kim", tmp_path / "kim.ipynb", timeout=10)
    st = {r.exercise: r.status for r in rows}
    assert st == {"2.1": "pass", "2.2": "error", "2.3": "pass", "2.4": "pass", "-": "note"}, rows
    note = rows[-1].message
    assert "ran only their imports and def/class statements" in note and "code cell 4 " in note, note


def test_lecture_detection(tmp_path):
    _write(tmp_path / "bob.ipynb", "def bernoulli_kl(p, q):\n    pass\ndef kl_curve_energy(c, decoder):\n    pass")
    cells, meta, _ = grade._read_code_cells(tmp_path / "bob.ipynb")
    assert grade._lecture(tmp_path / "bob.ipynb", cells, meta, None) == "06"  # from the names it defines
    assert grade._lecture(tmp_path / "bob.ipynb", cells, {"coursekit": {"lecture": "03"}}, None) == "03"
    assert grade._lecture(tmp_path / "bob.ipynb", cells, meta, "04") == "04"
    _write(tmp_path / "eve.ipynb", "print('hello')")
    rows = grade.grade_notebook("eve", tmp_path / "eve.ipynb")
    assert len(rows) == 1 and rows[0].points == 0 and "could not tell which lecture" in rows[0].message


def test_command_line(tmp_path):
    subs = tmp_path / "subs"
    (subs / "carol").mkdir(parents=True)  # a folder without notebooks
    (subs / "dan.ipynb").write_text("not json")
    out = tmp_path / "report"
    res = subprocess.run([sys.executable, "-m", "coursekit.grade", str(subs), "--out", str(out), "--lecture", "02",
                          "--format", "canvas", "--format", "moodle"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "carol" in res.stdout and "dan" in res.stdout and "no notebook" in res.stdout
    assert {p.name for p in (out / "feedback").iterdir()} == {"carol.md", "carol.html", "dan.md", "dan.html"}
    with open(out / "canvas.csv", newline="", encoding="utf-8") as fh:
        canvas = list(csv.reader(fh))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Exercises 02"]
    assert canvas[1] == ["Points Possible", "", "", "", "", "4"]
    assert sorted(row[3] for row in canvas[2:]) == ["carol", "dan"] and {row[5] for row in canvas[2:]} == {"0"}
    assert (out / "moodle.csv").read_text("utf-8").startswith("Username,Exercises 02,Feedback: Exercises 02")
    data = json.loads((out / "scores.json").read_text())
    rows = data["rows"]
    assert {r["student"] for r in rows} == {"carol", "dan"} and all(r["points"] == 0 for r in rows)
    assert data["totals"]["carol"] == {"points": 0, "max_points": 4}  # the lecture's points, not 0/0
    assert (out / "scores.csv").exists()
    bad = subprocess.run([sys.executable, "-m", "coursekit.grade", str(tmp_path / "nope")], capture_output=True,
                         text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "is not a folder" in bad.stderr
    roster = tmp_path / "roster.csv"
    roster.write_text("Student,ID\nCarol,1\n")  # no SIS Login ID column to join on: refused before any grading
    bad = subprocess.run([sys.executable, "-m", "coursekit.grade", str(subs), "--format", "canvas", "--roster",
                          str(roster)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "has no column 'SIS Login ID'" in bad.stderr and "graded" not in bad.stderr
