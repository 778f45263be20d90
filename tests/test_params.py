"""Per-student numbers: two students get different numbers, each passes with their own answer and fails with the
other's, the references agree with closed forms for any numbers, and the whole path works from the exercise notebook
(student("...") and check) to the grade (the grader runs the notebook with the numbers of the name it was handed in
under)."""
from __future__ import annotations

import itertools
import math

import nbformat
import pytest
import torch

from coursekit import catalog, checks, grade
from coursekit.params import Param, Student, draw, normalise
from fixtures.make_submissions import filled  # exercise notebook 02 filled in with the solutions' code

PARAMETRISED = sorted(catalog.PER_STUDENT)
A, B = "alice", "bob"


@pytest.fixture(autouse=True)
def _fresh_session():
    """check() follows the last student(...) call of the session; leave it as it was."""
    before = checks._session["student"]
    yield
    checks._session["student"] = before


def _answer(ex_id, who):
    ex = catalog.exercise(ex_id)
    return ex.reference(ex.cases_for(who)[0])


def test_one_question_per_lecture_has_per_student_numbers():
    assert sorted({catalog.exercise(i).lecture for i in PARAMETRISED}) == ["01", "02", "03", "04", "05", "06"]
    assert all(not catalog.exercise(i).argnames for i in PARAMETRISED)  # numeric questions
    assert not [i for i, ex in catalog.EXERCISES.items() if ex.params and i not in PARAMETRISED]


def test_numbers_are_the_ids_own_deterministic_and_on_the_grid():
    for ex_id in PARAMETRISED:
        ex = catalog.exercise(ex_id)
        assert ex.values(A) != ex.values(B), ex_id
        assert ex.values(A) == ex.values(" Alice ") == ex.values("ALICE")  # ids compared stripped and case-folded
        assert ex.values(None) == ex.values("") == ex.values("  ") == {p.name: p.default for p in ex.params}
        for sid in (A, B, "s042"):
            for p in ex.params:
                v = ex.values(sid)[p.name]
                k = (v - p.low) / p.step
                assert p.low - 1e-12 <= v <= p.high + 1e-12 and abs(k - round(k)) < 1e-6, (ex_id, p, v)
    assert normalise("  JDoe ") == "jdoe" and normalise("") is None and normalise(None) is None
    assert Student("Alice").params("1.4") == catalog.exercise("1.4").values(A)
    assert repr(draw((Param("x", 2.0, 1.0, 3.0, 0.5),), "9.9", "z")).startswith("x = ")
    with pytest.raises(ValueError, match="step > 0"):
        Param("x", 1.0, 0.0, 1.0, 0.0)


@pytest.mark.parametrize("ex_id", PARAMETRISED)
def test_each_passes_with_their_own_answer_and_fails_with_the_others(ex_id):
    mine, theirs = _answer(ex_id, A), _answer(ex_id, B)
    assert checks.evaluate(ex_id, lambda: mine, A).passed and checks.evaluate(ex_id, lambda: theirs, B).passed
    a_with_b = checks.evaluate(ex_id, lambda: theirs, A)
    b_with_a = checks.evaluate(ex_id, lambda: mine, B)
    assert not a_with_b.passed and not b_with_a.passed
    assert "within ±" in a_with_b.message  # and, as for every question, not the right value
    assert not checks.evaluate(ex_id, lambda: mine).passed  # nor is alice's answer the example's


def test_two_students_rarely_share_an_answer():
    """Over 100 ids, the fraction of pairs whose answers agree within the question's tolerance (a copied number that
    would pass): below 1% for each question (measured: coursekit/README.md quotes the figures)."""
    ids = [f"s{i:03d}" for i in range(100)]
    for ex_id in PARAMETRISED:
        ex = catalog.exercise(ex_id)
        ans = [_answer(ex_id, s).reshape(-1) for s in ids]
        close = [bool(((ans[a] - ans[b]).abs() <= ex.atol).all()) for a, b in itertools.combinations(range(100), 2)]
        assert sum(close) / len(close) < 0.01, (ex_id, sum(close) / len(close))


@pytest.mark.parametrize("who", [None, A, B, "s001", "s002"])
def test_references_agree_with_closed_forms_for_any_numbers(who):
    v = {i: catalog.exercise(i).values(who) for i in PARAMETRISED}
    x = v["1.4"]["x"]
    assert abs(_answer("1.4", who).item() - (x**2 / 4 + 0.5 - 0.5 * math.log(2))) < 1e-12  # KL(N(0,1) ‖ N(x/2, ½))
    p = v["2.4"]["p"]
    assert abs(_answer("2.4", who).item() - (2 * p - 1) / p**2) < 1e-4  # continuous value; T = 101 is within 1e-4
    assert abs(_answer("3.4", who).item() - v["3.4"]["r"] * v["3.4"]["theta"]) < 1e-10  # an arc of radius r
    assert torch.allclose(_answer("4.3", who), torch.tensor([v["4.3"]["s"], 1.0], dtype=torch.float64), atol=1e-10)
    a, z1 = v["5.3"]["a"], v["5.3"]["z1"]
    assert abs(_answer("5.3", who).item() - math.sqrt(1 + 4 * a**2 * z1**2)) < 1e-12
    p0, p1 = v["6.4"]["p0"], v["6.4"]["p1"]
    assert abs(_answer("6.4", who).item() - 2 * (math.asin(math.sqrt(p1)) - math.asin(math.sqrt(p0)))) < 1e-5


def test_the_notebook_shows_and_checks_the_students_own_numbers(capsys):
    """In the notebook (here in-process, as test_exercises runs the solutions): student("alice") prints whose numbers
    they are, the question's cell gets alice's p, and check() passes on alice's numbers."""
    nb = filled("alice")
    ns = {"__name__": "__main__"}
    dtype, rng = torch.get_default_dtype(), torch.random.get_rng_state()
    try:
        for cell in nb.cells:
            if cell.cell_type == "code":
                exec(compile(cell.source, "02", "exec"), ns)
    finally:
        torch.set_default_dtype(dtype)
        torch.random.set_rng_state(rng)
    out = capsys.readouterr().out
    assert ns["p"] == catalog.exercise("2.4").values(A)["p"] != 2.0
    assert "Numbers for 'alice'" in out and f"your p = {ns['p']:g}" in out
    assert "PASS  Exercise 2.4 " in out and "alice's numbers" in out
    assert "PASS  Exercise 2.1 " in out and "the grader also runs 2 hidden checks" in out
    assert checks._session["student"] == A


def test_end_to_end_from_the_exercise_notebook_to_the_grade(tmp_path):
    """alice hands in her notebook; bob hands in a copy with alice's number for 2.4 typed in; carol's code is right
    but she left the id empty. The grader grades each on the numbers of the name they handed in under."""
    ex = catalog.exercise("2.4")
    alices = ex.reference(ex.cases_for(A)[0]).item()
    subs = tmp_path / "subs"
    subs.mkdir()
    nbformat.write(filled("alice"), subs / "alice.ipynb")
    nbformat.write(filled("alice", {"2.4": f"    return {alices!r}"}), subs / "bob.ipynb")
    (subs / "carol").mkdir()
    nbformat.write(filled(""), subs / "carol" / "02_curves_and_lengths.ipynb")
    rows = grade.grade(subs, timeout=30, jobs=2)
    by = {(r.student, r.exercise): r for r in rows}
    assert by[("alice", "2.4")].status == "pass" and by[("carol", "2.4")].status == "pass"
    assert by[("bob", "2.4")].status == "fail" and "not within ±0.001" in by[("bob", "2.4")].message
    assert grade.totals(rows) == {"alice": {"points": 4, "max_points": 4}, "bob": {"points": 3, "max_points": 4},
                                  "carol": {"points": 4, "max_points": 4}}
    notes = {r.student: r for r in rows if r.status == "note"}
    assert set(notes) == {"bob", "carol"}  # alice declared her own id: nothing to say
    assert "declares 'alice' in student(...), not 'bob'" in notes["bob"].message
    assert "declares no id in student(...), not 'carol'" in notes["carol"].message
    assert "alice" not in notes["bob"].feedback


def test_an_exercise_without_numbers_is_unchanged():
    """The Exercise/Case form other entries use keeps working: no params, cases() called without arguments."""
    calls = []

    def cases():
        calls.append(1)
        return [catalog.Case((torch.tensor([1.0, 2.0], dtype=torch.float64),), "two numbers")]

    ex = catalog.Exercise("9.1", "double", "twice x", ("x",), cases, lambda k: 2 * k.args[0])
    assert ex.values("alice") == {} and len(ex.cases_for("alice")) == 1 and calls == [1]
    catalog.EXERCISES["9.1"] = ex
    try:
        assert checks.evaluate("9.1", lambda x: 2 * x, "alice").passed
        assert checks.evaluate("9.1", lambda x: 3 * x).message.startswith("input 1/1, two numbers [x (2,)]: expected")
    finally:
        del catalog.EXERCISES["9.1"]


def test_fill_in_puts_code_in_place_of_each_exercise_and_refuses_to_leave_one(tmp_path):
    from coursekit.generate import fill_in

    (tmp_path / "solutions").mkdir()
    (tmp_path / "exercises").mkdir()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell('me = student("")\n\ndef f():\n    raise NotImplementedError("Exercise 9.9")')]
    nbformat.write(nb, tmp_path / "solutions" / "x.ipynb")  # no solution region: nothing to fill 9.9 with
    nbformat.write(nb, tmp_path / "exercises" / "x.ipynb")
    with pytest.raises(ValueError, match="no code for"):
        fill_in("x.ipynb", root=tmp_path)
    done = fill_in("x.ipynb", 'o"hara', {"9.9": "    return 1"}, root=tmp_path)
    assert done.cells[0].source == 'me = student("o\\"hara")\n\ndef f():\n    return 1'
