"""Per-student numbers: an exercise may take its constants from a seed derived from the student's id.

A question such as "how far below log p(x) is the ELBO, for your x?" then has one answer per student, so a number
copied from a neighbour fails. Each parameter is a ``Param``: a default (the example numbers, which the shipped
notebooks and an empty id get) and a grid ``low, low + step, ..., high`` from which a student's value is chosen by

    k = int(sha256(SALT, exercise id, parameter name, id)[:8]) mod (number of grid points),    value = low + k·step,

so the same id gives the same numbers in the student's notebook, in ``check(...)`` and in the grader, on every
machine, with no state kept anywhere. Ids are compared after ``strip()`` and ``casefold()`` ("JDoe " is "jdoe").
The seed is not a secret (anyone can compute a neighbour's numbers); it only makes copying a number fail.
Change ``SALT`` for a new term and every student's numbers change.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

__all__ = ["SALT", "Param", "Numbers", "Student", "normalise", "draw"]

SALT = "latent-geometry"


@dataclass(frozen=True)
class Param:
    """One per-student number: ``default`` for the example version, otherwise a point of the grid
    ``low, low + step, ..., high`` (values on a coarse grid print exactly and differ by at least ``step``)."""

    name: str
    default: float
    low: float
    high: float
    step: float

    def __post_init__(self):
        if not (self.step > 0 and self.low <= self.high):
            raise ValueError(f"Param {self.name!r}: need step > 0 and low <= high, got low={self.low}, "
                             f"high={self.high}, step={self.step}")

    @property
    def count(self) -> int:
        """How many values a student can get."""
        return int(round((self.high - self.low) / self.step)) + 1


class Numbers(dict):
    """A student's numbers for one exercise (a dict name -> value) that prints as ``x = 2.37, y = 0.5``."""

    def __repr__(self) -> str:
        return ", ".join(f"{k} = {v:g}" for k, v in self.items())


def normalise(student_id) -> str | None:
    """The id as compared: stripped and case-folded; None for no id (None or blank)."""
    s = "" if student_id is None else str(student_id).strip().casefold()
    return s or None


def _index(exercise_id: str, name: str, sid: str, count: int) -> int:
    digest = hashlib.sha256("\0".join([SALT, exercise_id, name, sid]).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def draw(params: tuple[Param, ...], exercise_id: str, student_id=None) -> Numbers:
    """The values of ``params`` for this student (the defaults when there is no id)."""
    sid = normalise(student_id)
    if sid is None:
        return Numbers((p.name, p.default) for p in params)
    return Numbers((p.name, round(p.low + p.step * _index(exercise_id, p.name, sid, p.count), 10)) for p in params)


class Student:
    """Who the numbers are for: ``Student("jdoe").params("1.4")`` -> ``x = 2.37``."""

    def __init__(self, student_id=None):
        self.id = normalise(student_id)

    def params(self, exercise_id) -> Numbers:
        """This student's numbers for an exercise (an empty ``Numbers`` when it has none)."""
        from .catalog import exercise  # lazily: catalog imports this module

        return exercise(exercise_id).values(self.id)

    def __repr__(self) -> str:
        return f"Student({self.id!r})"
