"""Feedback files, one per student, safe to send: each has the student's statuses, messages, points and total, and
neither another student's name nor any reference value nor anything about a hidden input (checked by searching the
files for them), on a small class graded for real."""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest

from coursekit import catalog, feedback, grade
from fixtures.make_submissions import filled

ROOT = Path(__file__).resolve().parent.parent
CLASS = ("xavier", "yolanda", "zeno")


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """xavier: right, his own id. yolanda: the hidden_fail fixture (a hidden check of 2.1 fails; it declares another
    id). zeno: declares yolanda's id, doubles the lengths, raises with HTML in 2.3, and copies yolanda's 2.4 number."""
    subs, out = tmp_path_factory.mktemp("subs"), tmp_path_factory.mktemp("report")
    nbformat.write(filled("xavier"), subs / "xavier.ipynb")
    shutil.copy(ROOT / "tests" / "fixtures" / "submissions" / "hidden_fail.ipynb.json", subs / "yolanda.ipynb")
    ex = catalog.exercise("2.4")
    assert ex.values("yolanda") != ex.values("zeno")
    yolandas = ex.reference(ex.cases_for("yolanda")[0]).item()
    nbformat.write(filled("yolanda", {
        "2.1": "    return 2 * (c[..., 1:, :] - c[..., :-1, :]).norm(dim=-1).sum(-1)",
        "2.3": "    raise ValueError(\"<script>alert('zeno')</script>\")",
        "2.4": f"    return {yolandas!r}"}), subs / "zeno.ipynb")
    rows = grade.grade(subs, timeout=30, jobs=2)
    return rows, feedback.write_feedback(rows, out / "feedback"), out / "feedback"


def _text(folder: Path, name: str) -> str:
    return (folder / name).read_text("utf-8")


def test_one_markdown_and_one_html_file_per_student(graded):
    rows, written, folder = graded
    assert sorted(p.name for p in written) == sorted(f"{s}{x}" for s in CLASS for x in (".md", ".html"))
    md = _text(folder, "xavier.md")
    assert md.startswith("# Feedback for xavier\n") and "**Total: 4/4 points**" in md
    for i in catalog.LECTURES["02"]:
        assert f"| {i} {catalog.exercise(i).name} (" in md
    assert "| passed | 1/1 | all 4 inputs; hidden checks: passed |" in md
    zeno = _text(folder, "zeno.md")
    assert "**Total: 1/4 points**" in zeno and "| failed | 0/1 |" in zeno and "| error | 0/1 |" in zeno
    assert "values not within the tolerance (rtol 1e-05, atol 1e-07) of the reference" in zeno
    assert "your answer is not within ±0.001 of the right value" in zeno
    assert "hidden checks: not run (not run: a public check failed first)" in zeno
    yolanda = _text(folder, "yolanda.md")
    assert "public checks passed (all 4 inputs); hidden checks: failed (hidden check 2 of 2: the output has the " \
           "wrong shape)" in yolanda and "**Total: 3/4 points**" in yolanda
    assert "*Note:* the notebook declares another id in student(...)" in yolanda
    html = _text(folder, "zeno.html")
    assert html.startswith("<!DOCTYPE html>") and "<td>1/1</td>" in html and "Total: 1/4 points" in html


def test_no_other_students_names(graded):
    """zeno's notebook declares yolanda's id: the teacher's report says so, zeno's feedback does not."""
    rows, written, _ = graded
    assert any("declares 'yolanda'" in r.message for r in rows if r.student == "zeno")
    for path in written:
        text = path.read_text("utf-8")
        me = path.name.split(".")[0]
        assert f"for {me}" in text
        for other in set(CLASS) - {me}:
            assert other not in text, (path.name, other)


def test_no_reference_values_and_nothing_about_hidden_inputs(graded):
    """Every reference number of lecture 02 (public and hidden inputs, every student's version of 2.4, the example
    version) is absent from every file, in several formats, and so are the hidden inputs' labels; the teacher's
    messages do show values (so the search would find them if they leaked)."""
    rows, written, _ = graded
    numbers, labels = set(), set()
    for i in catalog.LECTURES["02"]:
        ex = catalog.exercise(i)
        for who in (None, *CLASS, "hidden_fail"):
            for case in ex.cases_for(who):
                for v in ex.reference(case).reshape(-1).tolist():
                    numbers |= {f"{v:.6g}", f"{v:.5g}", f"{v:.4f}", f"{v:.3f}"}
                if not case.public:
                    labels.add(case.label)
    numbers = {n for n in numbers if sum(ch.isdigit() for ch in n) >= 4}  # "5" or "0.75" would match anything
    assert len(numbers) > 50 and labels
    texts = {p.name: p.read_text("utf-8") for p in written}
    for name, text in texts.items():
        leaked = sorted(n for n in numbers if n in text)
        assert not leaked, (name, leaked)
        assert not [lab for lab in labels if lab in text], name
    teacher = " ".join(r.message for r in rows if r.student == "zeno")
    assert "expected 5, got 10" in teacher and any(n in teacher for n in numbers), teacher


def test_learner_html_is_escaped(graded):
    _, _, folder = graded
    html, md = _text(folder, "zeno.html"), _text(folder, "zeno.md")
    assert "<script>" not in html and "&lt;script&gt;alert(&#x27;zeno&#x27;)&lt;/script&gt;" in html
    assert "<script>" not in md and "&lt;script&gt;" in md


def test_feedback_refuses_rows_of_several_students(graded):
    rows, _, _ = graded
    with pytest.raises(ValueError, match="that student's rows only"):
        feedback.markdown("xavier", rows)
