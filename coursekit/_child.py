"""The grader's child process: runs one submission's code cells, then the learner's functions on the checks' inputs.

Started by ``coursekit.grade`` in a fresh interpreter (``python -I``), in an empty working directory, with a time
limit, a file-size limit and a minimal environment. It judges nothing: it only writes, for every exercise, the
outputs of the learner's function on each input (or why there is none) to the results file. The parent compares
those outputs with references it computes itself, so nothing the submission prints, defines or writes can raise
its score: to fake an output it would have to know the right answer.

Order matters: the inputs are built (and ``coursekit.checks`` is replaced by a stub whose ``check`` does nothing)
before the first line of the submission runs.
"""
from __future__ import annotations

import builtins
import io
import json
import os
import re
import signal
import sys
import types

OUTPUT_LIMIT = 200_000  # characters of the submission's own printing kept through sys.stdout (the rest is dropped)


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


def main() -> None:
    job = json.loads(open(sys.argv[1], encoding="utf-8").read())
    import torch

    torch.set_num_threads(1)
    import geomlib  # noqa: F401  (imported before the submission: the references' inputs use it)
    from coursekit import catalog

    save, replace = torch.save, os.replace  # our own references, taken before the submission runs
    exercises = [catalog.exercise(i) for i in job["exercises"]]
    cases = {ex.id: ex.cases() for ex in exercises}
    call = catalog.call

    import coursekit

    stub = types.ModuleType("coursekit.checks")
    stub.check = lambda *args, **kwargs: None
    stub.evaluate = lambda *args, **kwargs: None
    sys.modules["coursekit.checks"] = stub
    coursekit.checks = stub

    out = {"cells": [], "exercises": {}}
    results, cell_timeout, call_timeout = job["results"], float(job["cell_timeout"]), float(job["call_timeout"])

    def write():
        tmp = results + ".tmp"
        save(out, tmp)
        replace(tmp, results)

    write()
    sys.stdout = sys.stderr = _Capped(OUTPUT_LIMIT)
    ns = {"__name__": "__main__", "__builtins__": builtins}
    for i, src in enumerate(job["cells"], 1):
        first = next((line.strip() for line in src.split("\n") if line.strip()), "")
        first = first if len(first) <= 40 else first[:39] + "…"
        where = f"code cell {i} ({first})"
        try:
            code = compile(_python_source(src), f"<cell {i}>", "exec")
        except (SyntaxError, ValueError) as err:
            out["cells"].append(f"{where} has a syntax error ({type(err).__name__}: {err})")
            continue
        try:
            _timed(lambda: exec(code, ns), cell_timeout)
        except _Timeout:
            out["cells"].append(f"{where} was stopped after {cell_timeout:g} s")
        except BaseException as err:  # SystemExit, KeyboardInterrupt and every error of the submission
            out["cells"].append(f"{where} raised {type(err).__name__}: {str(err)[:200]}")

    for ex in exercises:
        if ex.name not in ns:
            out["exercises"][ex.id] = {"missing": True, "outcomes": []}
            write()
            continue
        fn, outcomes = ns[ex.name], []
        for case in cases[ex.id]:
            try:
                status, value = _timed(lambda: call(ex, fn, case), call_timeout)
            except _Timeout:
                status, value = "error", f"took longer than {call_timeout:g} s"
            except BaseException as err:
                status, value = "error", f"raised {type(err).__name__}: {str(err)[:200]}"
            outcomes.append([status, value])
            if status != "ok":
                break
        out["exercises"][ex.id] = {"missing": False, "outcomes": outcomes}
        write()
    os._exit(0)  # skip atexit handlers and threads the submission may have left behind


if __name__ == "__main__":
    main()
