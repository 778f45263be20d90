"""Calling a learner's function on the checks' inputs and judging what it returns (used by ``coursekit.checks`` in
the notebook and by ``coursekit.grade`` for the teacher; ``coursekit.catalog`` re-exports these names).

``call`` runs the function on one ``Case`` and never raises for what the function does; ``judge`` turns the outcomes
on an exercise's cases into a ``Result``. A result carries two kinds of message: ``message``, for the teacher and
for the learner's own ``check(...)`` (it shows expected and obtained values of the public inputs, never a question's
answer), and ``feedback``/``hidden_feedback``, safe to send to a learner: no value of any reference, and nothing
about a hidden input but its number (``hidden check 2 of 3``) and what went wrong.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # only for the annotations; catalog imports this module
    from .catalog import Case, Exercise

__all__ = ["Result", "as_output", "call", "compare", "describe", "judge"]


@dataclass(frozen=True)
class Result:
    """The verdict on one exercise: ``points`` of ``max_points`` and a message for a human.

    ``hidden`` is the status of the hidden checks ("" when the exercise has none, "not run" when a public check
    failed first); ``feedback`` and ``hidden_feedback`` say the same as ``message`` without any reference value and
    without the hidden inputs."""

    id: str
    name: str
    points: int
    max_points: int
    status: str  # "pass", "fail", "not implemented", "missing", "error"
    message: str
    feedback: str = ""
    hidden: str = ""
    hidden_feedback: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "pass"


def _clone(x):
    return x.detach().clone() if isinstance(x, torch.Tensor) else x


def _detached(x, depth: int = 0):
    """x with every tensor in it (also inside lists and tuples) detached, so that converting it neither warns nor
    keeps a graph."""
    if isinstance(x, torch.Tensor):
        return x.detach()
    if isinstance(x, (list, tuple)):
        if depth > 8:
            raise TypeError("returned lists nested too deeply, expected a tensor or a number")
        return [_detached(v, depth + 1) for v in x]
    return x


def as_output(x) -> torch.Tensor:
    """What a learner returned, as a plain float64 CPU tensor; TypeError (with what it was) if not numeric."""
    if isinstance(x, torch.Tensor):
        if x.is_complex() or x.dtype == torch.bool:
            raise TypeError(f"returned a tensor of dtype {x.dtype}, expected real numbers")
        x = x.detach().to("cpu", torch.float64)
        return torch.empty(x.shape, dtype=torch.float64).copy_(x)  # a plain Tensor, whatever subclass came in
    if isinstance(x, bool) or x is None or isinstance(x, str):
        raise TypeError(f"returned {type(x).__name__} {x!r:.40}, expected a tensor or a number")
    try:
        return torch.as_tensor(_detached(x), dtype=torch.float64).clone()
    except Exception:
        raise TypeError(f"returned a {type(x).__name__}, expected a tensor or a number") from None


def _changed(before: torch.Tensor, after: torch.Tensor) -> bool:
    """Whether the learner's function changed a tensor it was given (its values, shape or dtype)."""
    if after.shape != before.shape or after.dtype != before.dtype:
        return True
    return not torch.equal(after.detach(), before)


def call(ex: Exercise, fn: Any, case: Case) -> tuple[str, Any]:
    """Run the learner's ``fn`` on one case: ("ok", tensor), ("not implemented", None), ("fail", message) when it
    changed one of its arguments in place, or ("error", message).

    The function gets copies of the inputs; afterwards they are compared with the originals, because a function
    that changes the caller's tensor (``c -= lr * g``, ``c.unsqueeze_(0)``) is wrong even when what it returns is
    right. Never raises for anything the learner's function does (KeyboardInterrupt and SystemExit excepted:
    those belong to whoever runs us).
    """
    if not callable(fn):
        return "error", f"{ex.name} should be a function, got {type(fn).__name__}"
    given = [_clone(a) for a in case.args]
    try:
        out = fn(*given)
    except NotImplementedError:
        return "not implemented", None
    except Exception as err:  # the learner's bug: report it, never propagate it
        return "error", f"raised {type(err).__name__}: {_short(str(err), 200)}"
    for name, before, after in zip(ex.argnames, case.args, given):
        if isinstance(before, torch.Tensor) and isinstance(after, torch.Tensor) and _changed(before, after):
            return "fail", (f"it changed its argument {name} in place; the caller's tensor must stay as it was "
                            f"(compute a new tensor, e.g. start from {name} = {name}.clone())")
    try:
        return "ok", as_output(out)
    except TypeError as err:
        return "error", str(err)


def _short(s: str, n: int) -> str:
    s = "".join(ch if ch.isprintable() or ch == " " else " " for ch in str(s))
    return s if len(s) <= n else s[: n - 1] + "…"


def _fmt(t: torch.Tensor, n: int = 6) -> str:
    flat = t.reshape(-1)
    vals = ", ".join(f"{v:.6g}" for v in flat[:n].tolist())
    more = ", …" if flat.numel() > n else ""
    return f"{vals}" if t.dim() == 0 else f"[{vals}{more}]"


def _shape(t) -> str:
    return "a scalar" if t.dim() == 0 else f"shape {tuple(t.shape)}"


def describe(ex: Exercise, case: Case) -> str:
    """The input of a case in words, with the shapes of its tensors."""
    shapes = [f"{n} {tuple(a.shape)}" for n, a in zip(ex.argnames, case.args) if isinstance(a, torch.Tensor)]
    return case.label + (f" [{', '.join(shapes)}]" if shapes else "")


def compare(ex: Exercise, expected: torch.Tensor, got: torch.Tensor, reveal: str = "all") -> str | None:
    """None when got matches expected (shape and values within rtol, atol); otherwise why not.

    For a question (no arguments) the expected value is the solution, so the message never shows it: only that the
    answer is not within the tolerance, and which of its numbers. Its numbers are compared in order, whatever the
    shape they come in (``tensor([[1.08]])`` answers a one-number question). ``reveal`` says what else the message
    may show: "all" (expected and obtained values: the notebook's check and the teacher's report), "shapes" (shapes
    but no value: a learner's feedback), "nothing" (not even shapes or where the error is: a hidden input)."""
    if reveal not in ("all", "shapes", "nothing"):
        raise ValueError(f"reveal must be 'all', 'shapes' or 'nothing', got {reveal!r}")
    expected = expected.detach().to("cpu", torch.float64)
    values = reveal == "all"
    if not ex.argnames:
        return _compare_answer(ex, expected, got, values)
    if got.numel() == expected.numel() == 1 and got.dim() <= 1 and expected.dim() <= 1:
        got = got.reshape(expected.shape)  # a number is a number, whether float, 0-d or shape (1,)
    if got.shape != expected.shape:
        return "the output has the wrong shape" if reveal == "nothing" else \
            f"expected {_shape(expected)}, got {_shape(got)}"
    if not bool(torch.isfinite(got).all()):
        return f"got non-finite values (NaN or inf){f': {_fmt(got)}' if values else ''}"
    if torch.allclose(got, expected, rtol=ex.rtol, atol=ex.atol):
        return None
    err = (got - expected).abs()
    idx = tuple(int(i) for i in torch.unravel_index(err.argmax(), err.shape)) if err.dim() else ()
    where = f" (largest at index {idx})" if idx else ""
    if not values:
        return f"values not within the tolerance (rtol {ex.rtol:g}, atol {ex.atol:g}) of the reference" \
            + (f"; the largest error is at index {idx}" if idx and reveal == "shapes" else "")
    return f"expected {_fmt(expected)}, got {_fmt(got)}: max |error| {err.max().item():.3g}{where}"


def _numbers(n: int) -> str:
    return "one number" if n == 1 else f"{n} numbers"


def _compare_answer(ex: Exercise, expected: torch.Tensor, got: torch.Tensor, reveal: bool) -> str | None:
    want, have = expected.reshape(-1), got.reshape(-1)
    if have.numel() != want.numel():
        return f"expected {_numbers(want.numel())}, got {_numbers(have.numel())} ({_shape(got)})"
    if not bool(torch.isfinite(have).all()):
        return f"got non-finite values (NaN or inf){f': {_fmt(got)}' if reveal else ''}"
    bad = [i for i in range(want.numel()) if not abs(have[i].item() - want[i].item()) <= ex.atol + ex.rtol * abs(
        want[i].item())]
    if not bad:
        return None
    yours = _fmt(got) if reveal else "your answer"
    if want.numel() == 1:
        return f"{yours} is not within ±{ex.atol:g} of the right value"
    which = ", ".join(str(i + 1) for i in bad)
    return f"{yours}: number{'s' if len(bad) > 1 else ''} {which} (of {want.numel()}) not within ±{ex.atol:g} " \
        "of the right value"


def _hidden_error(value: str) -> str:
    """What a learner may read about an error on a hidden input: the exception's type, not its text (which may
    quote the input's shapes or values)."""
    value = str(value)
    if value.startswith("raised "):
        return value.split(":", 1)[0] + " (its message is not shown for hidden inputs)"
    return value


def _part(ex: Exercise, cases: list[Case], outcomes: list, expected: list, hidden: bool):
    """(status, message, feedback) of the first problem among these cases, or None when every one passes."""
    n = len(cases)
    for i, (case, (status, value), exp) in enumerate(zip(cases, outcomes, expected)):
        if status == "not implemented":
            msg = "not implemented yet (it raises NotImplementedError)"
            return "not implemented", msg, msg
        if hidden:
            where, safe = f"hidden input {i + 1}/{n}, {describe(ex, case)}", f"hidden check {i + 1} of {n}"
        else:
            where = f"input {i + 1}/{n}, {describe(ex, case)}" if ex.argnames else "your answer"
            safe = where
        if status == "fail":  # the function changed its inputs (the message names the argument only)
            return "fail", f"{where}: {_short(value, 300)}", f"{safe}: {_short(value, 300)}"
        if status != "ok":
            shown = _hidden_error(value) if hidden else value
            return "error", f"{where}: {_short(value, 300)}", f"{safe}: {_short(shown, 300)}"
        if not isinstance(value, torch.Tensor) or type(value) is not torch.Tensor:
            return "error", f"{where}: the output could not be read", f"{safe}: the output could not be read"
        why = compare(ex, exp, value)
        if why is not None:
            return "fail", f"{where}: {why}", f"{safe}: {compare(ex, exp, value, 'nothing' if hidden else 'shapes')}"
    if len(outcomes) < n:
        msg = f"only {len(outcomes)} of {n} {'hidden ' if hidden else ''}inputs could be checked (time ran out?)"
        return "error", msg, msg
    return None


def judge(ex: Exercise, cases: list[Case], outcomes: list[tuple[str, Any]], expected: list[torch.Tensor]) -> Result:
    """The verdict from the outcomes of ``call`` on the cases, in order (full points only when every case passes).

    Public cases come first and hidden ones (``public=False``) after them, as ``Exercise.cases_for`` orders them.
    ``outcomes`` may stop early at its first failure; ``expected[i]`` is needed only where outcome i is "ok".
    The hidden checks are judged only when every public one passed; the message then says "public checks passed"
    and, separately, what the hidden checks gave, so that a pass of the public checks is never mistaken for a pass.
    """
    n_pub = sum(c.public for c in cases)
    if any(c.public for c in cases[n_pub:]):
        raise ValueError(f"exercise {ex.id}: public cases must come before hidden ones (use Exercise.cases_for)")
    n_hid = len(cases) - n_pub

    def res(status, msg, feedback, pts=0, hidden="", hidden_feedback=""):
        return Result(ex.id, ex.name, pts, ex.points, status, msg, feedback, hidden, hidden_feedback)

    public = _part(ex, cases[:n_pub], outcomes[:n_pub], expected[:n_pub], hidden=False)
    if public is not None:
        status, msg, feedback = public
        return res(status, msg, feedback, 0, *(("not run", "not run: a public check failed first") if n_hid else ()))
    what = f"all {n_pub} inputs" if ex.argnames else "your answer is right"
    if not n_hid:
        return res("pass", what, what, ex.points)
    hidden = _part(ex, cases[n_pub:], outcomes[n_pub:], expected[n_pub:], hidden=True)
    if hidden is None:
        return res("pass", f"{what} and {n_hid} hidden checks", what, ex.points, "pass",
                   f"all {n_hid} hidden checks passed")
    status, msg, feedback = hidden
    return res(status, f"public checks passed ({what}); {msg}", f"public checks passed ({what})", 0, status, feedback)
