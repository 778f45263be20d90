"""The grader's child process: runs one submission's code cells, then the learner's functions on the checks' inputs.

Started by ``coursekit.grade`` in a fresh interpreter (``python -I``), in an empty working directory, with a time
limit, a file-size limit and a minimal environment. It judges nothing: it only writes, for every exercise, the
outputs of the learner's function on each input (or why there is none) to the results file. The parent compares
those outputs with references it computes itself, so nothing the submission prints, defines or writes can raise
its score: to fake an output it would have to know the right answer.

Order matters: the inputs are built (and ``coursekit.checks`` is replaced by a stub whose ``check`` does nothing)
before the first line of the submission runs. The inputs are those of the student the grader names in the job (the
id the submission was handed in under), and the stub's ``student(...)`` gives the notebook that student's numbers
whatever id the notebook writes; the ids it writes are reported, so that the grader can say when they differ.
"""
from __future__ import annotations

import ast
import builtins
import io
import json
import os
import re
import signal
import sys
import time
import types

OUTPUT_LIMIT = 200_000  # characters of the submission's own printing kept through sys.stdout (the rest is dropped)
MAX_OUTPUT_NUMBERS = 100_000  # no check needs more; a bigger output would only fill the results file
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom)


class _Timeout(BaseException):
    """Raised by the alarm; a BaseException so that ``except Exception`` in the submission does not swallow it."""


class _Capped(io.TextIOBase):
    """A text stream that keeps at most ``limit`` characters and silently drops the rest."""

    def __init__(self, limit: int):
        self.limit, self.n, self.parts = limit, 0, []

    def writable(self) -> bool:
        return True

    def write(self, s) -> int:
        s = str(s)
        if self.n < self.limit:
            self.parts.append(s[: self.limit - self.n])
        self.n += len(s)
        return len(s)


def _on_alarm(signum, frame):
    raise _Timeout()


def _timed(fn, seconds: float):
    """fn() stopped after ``seconds`` (by SIGALRM, where the platform has it)."""
    if not hasattr(signal, "setitimer"):
        return fn()
    signal.signal(signal.SIGALRM, _on_alarm)  # again each time: the submission may have replaced it
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        return fn()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


_MAGIC = re.compile(r"^\s*[%!]")


def _python_source(src: str) -> str:
    """Comment out IPython magics and shell escapes (``%matplotlib``, ``!pip``): they are not Python."""
    return "\n".join("# " + line if _MAGIC.match(line) else line for line in src.split("\n"))


def limit_resources(file_bytes: int, memory_bytes: int) -> None:
    """No file written by this process may grow past ``file_bytes`` (its output log included: a write past it fails
    with an OSError instead of killing the process), and its address space stays under ``memory_bytes`` (0: no
    limit). Hard limits, so the submission cannot raise them."""
    try:
        import resource
    except ImportError:  # not POSIX: the Python-level cap on printing and the time limit still apply
        return
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_bytes, file_bytes))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


def _where(i: int, src: str) -> str:
    first = next((line.strip() for line in src.split("\n") if line.strip()), "")
    first = first if len(first) <= 40 else first[:39] + "…"
    return f"code cell {i} (counting code cells only; it starts `{first}`)"


def _ranges(numbers: list[int]) -> str:
    """[3, 4, 5, 8] -> "3–5, 8"."""
    parts, start = [], None
    for k, n in enumerate(numbers):
        start = n if start is None else start
        if k + 1 == len(numbers) or numbers[k + 1] != n + 1:
            parts.append(f"{start}" if start == n else f"{start}–{n}")
            start = None
    return ", ".join(parts)


def main() -> None:
    job = json.loads(open(sys.argv[1], encoding="utf-8").read())
    import torch

    torch.set_num_threads(1)
    import geomlib  # noqa: F401  (imported before the submission: the references' inputs use it)
    from coursekit import catalog
    from coursekit.params import Student

    save, replace, clock = torch.save, os.replace, time.time  # our own references, taken before the submission runs
    exercises = [catalog.exercise(i) for i in job["exercises"]]
    who = job.get("student")
    cases = {ex.id: ex.cases_for(who) for ex in exercises}
    call = catalog.call
    out = {"cells": [], "exercises": {}, "declared": []}

    def student(student_id="", *args, **kwargs):
        if len(out["declared"]) < 20:
            out["declared"].append(str(student_id)[:100])
        return Student(who)  # the numbers of the student being graded, whatever the notebook says

    import coursekit

    stub = types.ModuleType("coursekit.checks")
    stub.check = lambda *args, **kwargs: None
    stub.evaluate = lambda *args, **kwargs: None
    stub.student = student
    sys.modules["coursekit.checks"] = stub
    coursekit.checks = stub
    results, cell_timeout, call_timeout = job["results"], float(job["cell_timeout"]), float(job["call_timeout"])
    deadline = float(job["deadline"])

    def write():
        try:
            tmp = results + ".tmp"
            save(out, tmp)
            replace(tmp, results)
        except BaseException:  # the submission removed or filled the folder: go on; the parent says what is missing
            pass

    def note(i, kind, text):
        out["cells"].append({"cell": i, "kind": kind, "note": text})

    write()
    sys.stdout = sys.stderr = _Capped(OUTPUT_LIMIT)
    ns = {"__name__": "__main__", "__builtins__": builtins}
    start = clock()
    cells_end = start + max(0.0, deadline - start) / 2  # the other half is for the checks
    defs_only = []
    for i, src in enumerate(job["cells"], 1):
        where = _where(i, src)
        try:
            tree = ast.parse(_python_source(src), f"<cell {i}>")
            left = cells_end - clock()
            if left < 0.05:  # the cells' half of the time is used: keep only what defines names, which is instant
                tree.body = [node for node in tree.body if isinstance(node, DEFINITIONS)]
                defs_only.append(i)
                cap = min(cell_timeout, max(0.5, (deadline - clock()) / 20))
            else:
                cap = min(cell_timeout, left)
            code = compile(tree, f"<cell {i}>", "exec")
        except (SyntaxError, ValueError, RecursionError, MemoryError) as err:
            note(i, "syntax", f"{where} has a syntax error ({type(err).__name__}: {err})")
            write()
            continue
        try:
            _timed(lambda: exec(code, ns), cap)
        except _Timeout:
            why = "the limit for one cell" if cap >= cell_timeout else "the rest of the time for the notebook's cells"
            note(i, "time", f"{where} was stopped after {cap:.3g} s ({why})")
        except BaseException as err:  # SystemExit, KeyboardInterrupt and every error of the submission
            note(i, "error", f"{where} raised {type(err).__name__}: {str(err)[:200]}")
        write()
    if defs_only:
        note(defs_only[0], "time", f"code cell{'s' if len(defs_only) > 1 else ''} {_ranges(defs_only)} (counting code "
             f"cells only) ran only their imports and def/class statements: the notebook's cells had used their "
             f"half of the time ({cells_end - start:.3g} s); the other half is for the checks")
        write()

    for ex in exercises:
        if ex.name not in ns:
            out["exercises"][ex.id] = {"missing": True, "outcomes": []}
            write()
            continue
        fn, outcomes = ns[ex.name], []
        for case in cases[ex.id]:
            cap = min(call_timeout, deadline - clock())
            if cap < 0.05:
                status, value = "error", "not run: the time limit for the notebook was reached"
            else:
                try:
                    status, value = _timed(lambda: call(ex, fn, case), cap)
                except _Timeout:
                    status, value = "error", f"took longer than {cap:.3g} s" + (
                        "" if cap >= call_timeout else " (all that was left of the notebook's time)")
                except BaseException as err:
                    status, value = "error", f"raised {type(err).__name__}: {str(err)[:200]}"
            if status == "ok" and value.numel() > MAX_OUTPUT_NUMBERS:
                status, value = "error", f"returned {value.numel()} numbers, far more than any input here needs"
            outcomes.append([status, value])
            out["exercises"][ex.id] = {"missing": False, "outcomes": outcomes}
            write()  # after every call: a later one may never return
            if status != "ok":
                break
    os._exit(0)  # skip atexit handlers and threads the submission may have left behind


if __name__ == "__main__":
    main()
