"""The Gradescope autograder: the zip is built, unpacked into a temporary root laid out as Gradescope lays out
/autograder, and its own run_autograder grades several submissions; results.json is checked against the fields of
Gradescope's specification (https://gradescope-autograders.readthedocs.io/en/latest/specs/)."""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from coursekit import autograder, catalog

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
TOP = {"score", "execution_time", "output", "output_format", "test_output_format", "test_name_format", "visibility",
       "stdout_visibility", "extra_data", "tests", "leaderboard"}
TEST = {"score", "max_score", "status", "name", "name_format", "number", "output", "output_format", "tags",
        "visibility", "extra_data"}
VISIBILITY = {"hidden", "after_due_date", "after_published", "visible"}
EMAIL = "alice@example.edu"  # the user in tests/fixtures/gradescope/submission_metadata.json


@pytest.fixture(scope="module")
def zip_path(tmp_path_factory):
    return autograder.build("02", tmp_path_factory.mktemp("build") / "autograder.zip", timeout=20)


def _metadata(email: str = EMAIL) -> dict:
    meta = json.loads((FIXTURES / "gradescope" / "submission_metadata.json").read_text("utf-8"))
    meta["users"][0]["email"] = email
    return meta


def _run(zip_path: Path, tmp: Path, notebooks: dict[str, Path | str], metadata: dict | None = None) -> tuple[dict, str]:
    """Lay out a Gradescope root in ``tmp``, put the notebooks in submission/ and submission_metadata.json beside it
    (the fixture's unless given; none for ``{}``), run run_autograder there."""
    root = tmp / "autograder"
    (root / "source").mkdir(parents=True)
    (root / "submission").mkdir()
    (root / "results").mkdir()
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(root / "source")
        for info in z.infolist():  # extractall drops the permission bits; Gradescope keeps them
            os.chmod(root / "source" / info.filename, (info.external_attr >> 16) & 0o777)
    shutil.copy(root / "source" / "run_autograder", root / "run_autograder")  # where Gradescope copies it
    metadata = _metadata() if metadata is None else metadata
    if metadata:
        (root / "submission_metadata.json").write_text(json.dumps(metadata), "utf-8")
    for name, src in notebooks.items():
        target = root / "submission" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(src, Path):
            shutil.copy(src, target)
        else:
            target.write_text(src)
    env = {**os.environ, "COURSEKIT_AUTOGRADER_ROOT": str(root), "COURSEKIT_AUTOGRADER_PYTHON": sys.executable}
    env.pop("PYTHONPATH", None)
    res = subprocess.run([str(root / "run_autograder")], cwd=root, env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads((root / "results" / "results.json").read_text("utf-8")), res.stdout


def _valid(results: dict) -> None:
    """The fields and values Gradescope's specification allows, and our promises about visibility and wording."""
    assert set(results) <= TOP and "tests" in results
    assert results["visibility"] in VISIBILITY and results["stdout_visibility"] == "hidden"
    assert isinstance(results["output"], str) and isinstance(results["execution_time"], (int, float))
    for t in results["tests"]:
        assert set(t) <= TEST and {"name", "output", "status", "visibility"} <= set(t), t
        assert t["visibility"] in VISIBILITY and t["status"] in ("passed", "failed")
        if "score" in t:
            assert isinstance(t["score"], (int, float)) and 0 <= t["score"] <= t["max_score"]
    assert results["score"] == sum(t.get("score", 0) for t in results["tests"])
    text = json.dumps(results).lower()
    assert "all tests passed" not in text  # otter-grader #138: a pass of the public checks is not a pass
    visible = json.dumps([results["output"]] + [t for t in results["tests"] if t["visibility"] == "visible"])
    for i in catalog.LECTURES["02"]:  # nothing about a hidden input anywhere, and its result only after publication
        ex = catalog.exercise(i)
        for case in ex.cases_for(EMAIL):
            if not case.public:
                assert case.label not in json.dumps(results), case.label
    assert "hidden check" not in visible.replace("hidden checks, which count", "")
    for t in results["tests"]:
        assert (t["visibility"] == "after_published") == t["name"].endswith("(hidden checks)")


def _tests(results):
    return {t["name"].split(" ")[0] + (" hidden" if t["name"].endswith("(hidden checks)") else ""): t
            for t in results["tests"]}


def test_zip_follows_the_specification(zip_path):
    with zipfile.ZipFile(zip_path) as z:
        names = set(z.namelist())
        modes = {i.filename: (i.external_attr >> 16) for i in z.infolist()}
    assert {"setup.sh", "run_autograder", "config.json", "references.pt", "requirements.txt"} <= names
    assert {"package/coursekit/grade.py", "package/coursekit/_child.py", "package/geomlib/__init__.py"} <= names
    assert modes["setup.sh"] & stat.S_IXUSR and modes["run_autograder"] & stat.S_IXUSR
    assert not [n for n in names if "__pycache__" in n or n.startswith("/")]
    config = json.loads(zipfile.ZipFile(zip_path).read("config.json"))
    assert config["lecture"] == "02" and config["id_field"] == "email"
    assert autograder.build("02", zip_path.with_name("again.zip"), timeout=20).read_bytes() == zip_path.read_bytes()


def test_a_solution_scores_full_marks_on_its_own_numbers(zip_path, tmp_path):
    results, stdout = _run(zip_path, tmp_path, {"02_curves_and_lengths.ipynb": ROOT / "solutions" /
                                                "02_curves_and_lengths.ipynb"})
    _valid(results)
    assert f"student {EMAIL!r}" in stdout and str(tmp_path) in stdout.split("coursekit from ")[1].split(";")[0]
    assert results["score"] == 4
    tests = _tests(results)
    assert set(tests) == {"2.1", "2.1 hidden", "2.2", "2.2 hidden", "2.3", "2.4"}
    assert tests["2.1"]["output"] == "public checks passed (all 4 inputs)" and "score" not in tests["2.1"]
    assert tests["2.1 hidden"]["score"] == 1 and tests["2.1 hidden"]["output"] == "all 2 hidden checks passed"
    assert results["output"].startswith("Lecture 02: public checks passed for 4 of 4 exercises.")


def test_hidden_failures_are_shown_only_after_publication(zip_path, tmp_path):
    """hidden_fail passes the public checks of 2.1 and fails a hidden one: the visible test says "public checks
    passed", the hidden test scores 0 and is after_published; the teacher's stdout names the hidden input."""
    results, stdout = _run(zip_path, tmp_path, {"work/hidden_fail.ipynb": FIXTURES / "submissions" /
                                                "hidden_fail.ipynb.json"})
    _valid(results)
    tests = _tests(results)
    assert tests["2.1"]["status"] == "passed" and tests["2.1"]["output"] == "public checks passed (all 4 inputs)"
    hidden = tests["2.1 hidden"]
    assert hidden["visibility"] == "after_published" and hidden["score"] == 0 and hidden["status"] == "failed"
    assert hidden["output"] == "hidden check 2 of 2: the output has the wrong shape"
    assert "hidden input 2/2, a 2×1×3 batch" in stdout  # for the instructor only (stdout_visibility hidden)
    assert results["score"] == 3  # 2.4 passes on alice's numbers: its code reads them from student(...)


def test_blank_exercises_and_no_notebook_score_zero(zip_path, tmp_path):
    blank, _ = _run(zip_path, tmp_path / "a", {"02.ipynb": ROOT / "exercises" / "02_curves_and_lengths.ipynb"})
    _valid(blank)
    assert blank["score"] == 0 and all(t["status"] == "failed" for t in blank["tests"])
    assert _tests(blank)["2.1"]["output"] == "not implemented yet (it raises NotImplementedError)"
    assert "public checks passed for 0 of 4" in blank["output"]
    empty, _ = _run(zip_path, tmp_path / "b", {"notes.txt": "my answers are on paper"}, metadata={})
    _valid(empty)
    assert empty["score"] == 0 and "no notebook (.ipynb) in the submission" in empty["output"]
    assert "example numbers" in empty["output"]  # no submission_metadata.json: nobody's numbers


def test_a_number_copied_from_a_neighbour_fails(zip_path, tmp_path):
    """The same notebook scores 4 for the student whose number it holds and loses 2.4 for anyone else."""
    ex = catalog.exercise("2.4")
    theirs = ex.reference(ex.cases_for(EMAIL)[0]).item()
    src = (ROOT / "solutions" / "02_curves_and_lengths.ipynb").read_text("utf-8").replace(
        "    return polygon_length(c) ** 2 / (2 * curve_energy(c))", f"    return {theirs!r}")
    mine, _ = _run(zip_path, tmp_path / "alice", {"02.ipynb": src})
    assert mine["score"] == 4
    assert ex.values("bob@example.edu") != ex.values(EMAIL)
    # the one input that differs: the id Gradescope gives the submission
    copied, _ = _run(zip_path, tmp_path / "bob", {"02.ipynb": src}, metadata=_metadata("bob@example.edu"))
    _valid(copied)
    assert copied["score"] == 3 and _tests(copied)["2.4"]["status"] == "failed"
