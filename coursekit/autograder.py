"""A Gradescope autograder for one lecture: ``python -m coursekit.autograder --lecture 02 --out autograder.zip``.

The zip follows Gradescope's autograder specification (https://gradescope-autograders.readthedocs.io/en/latest/specs/):
at its root ``setup.sh`` (run once, as root, when Gradescope builds the image: Python, a virtual environment,
torch's CPU build and geomlib's other runtime requirements at the course's pinned versions) and ``run_autograder``
(run for every submission, from ``/autograder``), plus what they need: ``config.json`` (lecture, time limit, which
field of ``submission_metadata.json`` is the student's id), ``references.pt`` (the reference answers of the lecture's
checks, as computed when the zip was built) and ``package/`` (this coursekit and geomlib, which compute the per-student
references and run the notebook the same way ``coursekit.grade`` does: a fresh process, time and memory limits).

For every submission ``run_autograder`` grades the notebooks in ``/autograder/submission`` as the lecture and writes
``/autograder/results/results.json``: one test per exercise with ``score``, ``max_score``, ``status``, ``name`` and
``output``. An exercise with hidden checks gets two tests: its public checks, visible at once and worth no points by
themselves, and its hidden checks, which carry the exercise's points and have ``"visibility": "after_published"``, so
that their result and text are shown only when the teacher publishes the grades (Gradescope then also hides the total
until publication). The texts say "public checks passed", never "all tests passed" (a pass of the public checks is
not a pass: otter-grader's issue #138). The submission's output (the table with the teacher's messages, which name
the hidden inputs) goes to stdout, which ``"stdout_visibility": "hidden"`` shows to instructors only.

``COURSEKIT_AUTOGRADER_ROOT`` (default ``/autograder``) and ``COURSEKIT_AUTOGRADER_PYTHON`` (default
``$ROOT/venv/bin/python``) let a test run the same ``run_autograder`` in a temporary folder laid out the same way.
"""
from __future__ import annotations

import argparse
import io
import json
import re
import sys
import time
import zipfile
from pathlib import Path

import torch

from . import catalog, grade

__all__ = ["build", "run", "results", "ID_FIELDS"]

ID_FIELDS = ("email", "sid", "id", "name")  # of the first user in submission_metadata.json
RUNTIME = ("torch", "numpy", "scipy", "scikit-learn", "tqdm")  # geomlib's requirements without the notebook UI
VISIBILITY = ("hidden", "after_due_date", "after_published", "visible")

SETUP = """#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder image (Ubuntu; the network is there then).
set -euo pipefail
apt-get install -y --no-install-recommends python3 python3-venv python3-pip
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install --no-cache-dir -r /autograder/source/requirements.txt
PYTHONPATH=/autograder/source/package /autograder/venv/bin/python -c "import geomlib, coursekit.autograder"
"""

RUN = """#!/usr/bin/env bash
# Gradescope runs this for every submission, in /autograder: it grades /autograder/submission into
# /autograder/results/results.json. COURSEKIT_AUTOGRADER_ROOT and COURSEKIT_AUTOGRADER_PYTHON move it (for tests).
set -euo pipefail
ROOT="${COURSEKIT_AUTOGRADER_ROOT:-/autograder}"
PY="${COURSEKIT_AUTOGRADER_PYTHON:-$ROOT/venv/bin/python}"
export PYTHONPATH="$ROOT/source/package"
exec "$PY" -m coursekit.autograder --run --root "$ROOT"
"""


def _requirements() -> str:
    """pip requirements for the image: the runtime packages with pyproject's ranges, pinned by constraints.txt."""
    deps = re.findall(r'^\s*"([A-Za-z0-9_.-]+)([^"]*)"', (grade.ROOT / "pyproject.toml").read_text("utf-8"), re.M)
    ranges = {name.lower(): name + spec for name, spec in deps}
    lines = ["# geomlib's runtime requirements for grading (no notebook UI), pinned by the course's constraints",
             "--extra-index-url https://download.pytorch.org/whl/cpu", "-c constraints.txt"]
    return "\n".join(lines + [ranges.get(n, n) for n in RUNTIME]) + "\n"


def _package_files() -> list[tuple[str, Path]]:
    """(name in the zip, file here) for coursekit and geomlib, their sources, shipped checkpoints and licence."""
    out = [(f"package/coursekit/{p.name}", p) for p in sorted((grade.ROOT / "coursekit").glob("*.py"))]
    geomlib = grade.ROOT / "geomlib"
    for p in sorted(geomlib.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts and (p.suffix in (".py", ".pt") or p.name == "py.typed"):
            out.append((f"package/geomlib/{p.relative_to(geomlib).as_posix()}", p))
    return out + [("package/LICENSE", grade.ROOT / "LICENSE")]


def build(lecture: str, out: Path, timeout: float = 60, memory_mb: int = grade.MEMORY_MB,
          id_field: str = "email") -> Path:
    """Write the autograder zip for ``lecture`` to ``out``; returns ``out``."""
    if lecture not in catalog.LECTURES:
        raise ValueError(f"no lecture {lecture!r}; known: {', '.join(catalog.LECTURES)}")
    if id_field not in ID_FIELDS:
        raise ValueError(f"id_field must be one of {', '.join(ID_FIELDS)}, got {id_field!r}")
    refs = {}
    for i in catalog.LECTURES[lecture]:
        ex = catalog.exercise(i)
        if not ex.params:  # per-student references are computed for each submission
            refs[i] = [ex.reference(c).detach() for c in ex.cases_for(None)]
    buf = io.BytesIO()
    torch.save(refs, buf)
    config = {"lecture": lecture, "timeout": timeout, "memory_mb": memory_mb, "id_field": id_field,
              "torch": torch.__version__}
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        def put(name: str, data: bytes, executable: bool = False):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # fixed: the same inputs, the same zip
            info.external_attr = (0o100755 if executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)

        put("setup.sh", SETUP.encode(), executable=True)
        put("run_autograder", RUN.encode(), executable=True)
        put("config.json", (json.dumps(config, indent=1) + "\n").encode())
        put("requirements.txt", _requirements().encode())
        put("constraints.txt", (grade.ROOT / "requirements" / "constraints.txt").read_bytes())
        put("references.pt", buf.getvalue())
        for name, path in _package_files():
            put(name, path.read_bytes())
    return out


def _student(root: Path, field: str) -> tuple[str | None, str]:
    """(the student's id from submission_metadata.json, a remark when it had to be guessed or is missing)."""
    try:
        users = json.loads((root / "submission_metadata.json").read_text("utf-8")).get("users") or []
    except (OSError, ValueError, AttributeError):
        return None, "no readable submission_metadata.json: graded with the example numbers"
    if not users or not isinstance(users[0], dict):
        return None, "submission_metadata.json names no user: graded with the example numbers"
    user = users[0]
    remark = "" if len(users) == 1 else f"a group of {len(users)}: graded with the numbers of the first member"
    if str(user.get(field) or "").strip():
        return str(user[field]).strip(), remark
    if str(user.get("email") or "").strip():
        return str(user["email"]).strip(), "; ".join(
            x for x in (remark, f"the user has no {field!r}: graded with the numbers of their email") if x)
    return None, "the user has no id: graded with the example numbers"


def _test(name: str, output: str, passed: bool, visibility: str, score=None, max_score=None) -> dict:
    t = {"name": name, "status": "passed" if passed else "failed", "output": output, "visibility": visibility}
    if score is not None:
        t.update(score=score, max_score=max_score)
    return t


def results(rows: list[grade.Row], lecture: str, student: str | None, remarks: list[str], seconds: float) -> dict:
    """The results.json object for the graded rows of one submission (learner-safe texts only)."""
    counted = {r.exercise: r for r in rows if r.exercise != "-" and r.status not in grade.UNCOUNTED}
    tests, public_ok, with_hidden = [], 0, 0
    for i in catalog.LECTURES[lecture]:
        ex = catalog.exercise(i)
        name = f"{ex.id} {ex.name}: {ex.title}"
        r = counted.get(i)
        hidden = sum(not c.public for c in ex.cases_for(student))
        with_hidden += bool(hidden)
        if r is None:
            out = "not graded: no notebook in the submission answers it"
            passed_public, hidden_out = False, "not run: no notebook in the submission answers it"
        else:
            passed_public = r.status == "pass" or r.hidden in ("pass", "fail", "error")
            out = (r.feedback if r.feedback.startswith("public checks passed") else
                   f"public checks passed ({r.feedback})") if passed_public else r.feedback
            hidden_out = r.hidden_feedback or r.feedback
        public_ok += passed_public
        points = r.points if r else 0
        if hidden:
            tests.append(_test(f"{name} (public checks)", out, passed_public, "visible"))
            tests.append(_test(f"{name} (hidden checks)", hidden_out, bool(r) and r.status == "pass", "after_published",
                               points, ex.points))
        else:
            tests.append(_test(name, out, passed_public, "visible", points, ex.points))
    n = len(catalog.LECTURES[lecture])
    text = [f"Lecture {lecture}: public checks passed for {public_ok} of {n} exercises."]
    if with_hidden:
        text.append(f"{with_hidden} exercise(s) also have hidden checks, which count too; their results are shown "
                    "when the grades are published.")
    text += [f"Note: {r.feedback}" for r in rows if r.status in ("note", "duplicate", "skipped", "error")
             and r.exercise == "-" and r.feedback] + [f"Note: {x}" for x in remarks if x]
    return {"score": sum(t.get("score", 0) for t in tests), "execution_time": round(seconds, 1),
            "output": "\n".join(text), "visibility": "visible", "stdout_visibility": "hidden", "tests": tests}


def run(root: Path) -> dict:
    """Grade ``root/submission`` as ``root/source/config.json`` says and write ``root/results/results.json``."""
    t0 = time.time()
    source = root / "source"
    config = json.loads((source / "config.json").read_text("utf-8"))
    lecture = config["lecture"]
    grade.preload_references(torch.load(source / "references.pt", weights_only=True))
    student, remark = _student(root, config.get("id_field", "email"))
    print(f"coursekit from {Path(grade.__file__).parent}; lecture {lecture}; student {student!r}")
    sub = root / "submission"
    notebooks = grade._notebooks_in(sub) if sub.is_dir() else []
    rows = []
    for nb in notebooks:
        rows += grade.grade_notebook(student or "", nb, config.get("timeout", 60), lecture,
                                     config.get("memory_mb", grade.MEMORY_MB), nb.relative_to(sub).as_posix())
    rows = grade._mark_duplicates(rows)
    remarks = [remark] + ([] if notebooks else ["no notebook (.ipynb) in the submission"])
    res = results(rows, lecture, student, remarks, time.time() - t0)
    if rows:
        print(grade.table(rows, width=200))
    (root / "results").mkdir(parents=True, exist_ok=True)
    (root / "results" / "results.json").write_text(json.dumps(res, indent=1, ensure_ascii=False), "utf-8")
    print(f"score {res['score']} of {sum(catalog.EXERCISES[i].points for i in catalog.LECTURES[lecture])}")
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m coursekit.autograder", description=__doc__.split("\n")[0])
    ap.add_argument("--lecture", choices=sorted(catalog.LECTURES), help="the lecture the autograder grades")
    ap.add_argument("--out", type=Path, default=Path("autograder.zip"), help="the zip to write")
    ap.add_argument("--timeout", type=float, default=60, help="seconds per notebook (default 60)")
    ap.add_argument("--memory-mb", type=int, default=grade.MEMORY_MB, help="address-space limit per notebook, MiB")
    ap.add_argument("--id-field", choices=ID_FIELDS, default="email",
                    help="the field of submission_metadata.json's user that is the student's id (default email)")
    ap.add_argument("--run", action="store_true", help="grade a submission (what run_autograder calls)")
    ap.add_argument("--root", type=Path, default=Path("/autograder"), help="with --run: the autograder folder")
    args = ap.parse_args(argv)
    if args.run:
        run(args.root)
        return 0
    if not args.lecture:
        ap.error("give --lecture NN")
    if args.timeout <= 0 or args.memory_mb < 0:
        ap.error("--timeout must be positive and --memory-mb not negative")
    out = build(args.lecture, args.out, args.timeout, args.memory_mb, args.id_field)
    print(f"wrote {out} ({out.stat().st_size // 1024} KiB): Gradescope autograder for lecture {args.lecture}; "
          f"upload it under Configure Autograder (base image Ubuntu 22.04)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
