"""Feedback in the notebook: ``check("3.2", my_function)`` prints PASS or FAIL with the reason.

A check tries the function on the exercise's public inputs and compares with geomlib's answer. It prints which input
failed, the expected and obtained shapes or values, and never the solution: for a question (a function of no
arguments, whose expected value *is* the answer) it says only that the answer is not within the stated tolerance. It
never raises because of the learner's code (an unimplemented exercise prints "not implemented yet"), so a notebook of
exercises runs top to bottom. Where the grader also runs hidden checks, the PASS line says so: a PASS here is a pass
of the public checks only.

Questions with per-student numbers: ``me = student("jdoe")`` says whose numbers this notebook uses, and
``me.params("1.4")`` gives them; from then on ``check`` checks that student's version (``student("")``, or no call
at all, gives the example numbers).
"""
from __future__ import annotations

from . import catalog
from .params import Student

__all__ = ["check", "evaluate", "student"]

_session = {"student": None}  # the id last given to student(...) in this kernel: whose version check(...) checks


def student(student_id: str = "") -> Student:
    """Use the numbers of ``student_id`` (the name your teacher grades you under) in this notebook; returns the
    ``Student``, whose ``.params("1.4")`` are your numbers for a question. Prints whose numbers they are."""
    me = Student(student_id)
    _session["student"] = me.id
    if me.id is None:
        print("No id given: these are the example numbers. Write your id between the quotes, e.g. student(\"jdoe\"), "
              "and run the cell again; the grader uses your own numbers.")
    else:
        print(f"Numbers for {me.id!r}. The grader uses the id you hand your notebook in under; if that is not "
              f"{me.id!r}, change it here.")
    return me


def evaluate(exercise_id, fn, student=None) -> catalog.Result:
    """The verdict on ``fn`` for one exercise on its public inputs, for ``student``'s numbers (default: the example
    numbers), as a ``Result`` (points, status, message)."""
    ex = catalog.exercise(exercise_id)
    cases = [c for c in ex.cases_for(student) if c.public]
    outcomes = []
    for case in cases:
        outcomes.append(catalog.call(ex, fn, case))
        if outcomes[-1][0] != "ok":
            break  # the first problem is the message; no need to run the rest
    expected = [ex.reference(c) if o[0] == "ok" else None for c, o in zip(cases, outcomes)]
    return catalog.judge(ex, cases, outcomes, expected)


def check(exercise_id, fn) -> None:
    """Print ``PASS`` or ``FAIL`` for the learner's ``fn`` on exercise ``exercise_id`` (e.g. "3.2")."""
    try:
        ex = catalog.exercise(exercise_id)
    except KeyError as err:
        print(f"FAIL  {err.args[0]}")
        return
    who = _session["student"]
    try:
        r = evaluate(ex.id, fn, who)
        hidden = sum(not c.public for c in ex.cases_for(who))
    except Exception as err:  # a bug in a reference must not crash the learner's notebook either
        print(f"FAIL  Exercise {ex.id} ({ex.name}): the check itself failed ({type(err).__name__}: {err}); "
              "please tell your teacher")
        return
    head = "PASS" if r.passed else "FAIL"
    notes = []
    if hidden:
        notes.append(f"the grader also runs {hidden} hidden check{'s' if hidden > 1 else ''}")
    if ex.params:
        notes.append(f"{who}'s numbers" if who else "example numbers: give your id to student(...) to check yours")
    extra = f" ({'; '.join(notes)})" if notes else ""
    print(f"{head}  Exercise {ex.id} ({ex.name}, {ex.title}): {r.message}{extra}")
