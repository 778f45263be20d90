"""Feedback in the notebook: ``check("3.2", my_function)`` prints PASS or FAIL with the reason.

A check tries the function on several inputs and compares with geomlib's answer. It prints which input failed,
the expected and obtained shapes or values, and never the solution: for a question (a function of no arguments,
whose expected value *is* the answer) it says only that the answer is not within the stated tolerance. It never
raises because of the learner's code (an unimplemented exercise prints "not implemented yet"), so a notebook of
exercises runs top to bottom.
"""
from __future__ import annotations

from . import catalog

__all__ = ["check", "evaluate"]


def evaluate(exercise_id, fn) -> catalog.Result:
    """The verdict on ``fn`` for one exercise, as a ``Result`` (points, status, message)."""
    ex = catalog.exercise(exercise_id)
    cases = ex.cases()
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
    try:
        r = evaluate(ex.id, fn)
    except Exception as err:  # a bug in a reference must not crash the learner's notebook either
        print(f"FAIL  Exercise {ex.id} ({ex.name}): the check itself failed ({type(err).__name__}: {err}); "
              "please tell your teacher")
        return
    head = "PASS" if r.passed else "FAIL"
    print(f"{head}  Exercise {ex.id} ({ex.name}, {ex.title}): {r.message}")
