"""One feedback file per student, safe to send: ``feedback/<student>.md`` and ``feedback/<student>.html``.

For every notebook of the student and every exercise: the status, what the check said, the points, and the total.
Only the learner-safe messages of the grade rows (``Row.feedback`` and ``Row.hidden_feedback``) are used, never the
teacher's ``Row.message``: no expected value of any check, no answer to a question, nothing about a hidden input but
its number, and nothing about any other student (each file is made from that student's rows alone; a note about an
id the notebook declared does not repeat the id).
"""
from __future__ import annotations

import html
from pathlib import Path

from . import catalog

__all__ = ["markdown", "html_page", "write_feedback"]

STATUS = {"pass": "passed", "fail": "failed", "error": "error", "not implemented": "not implemented",
          "missing": "missing", "duplicate": "not counted (duplicate)", "skipped": "skipped", "not run": "not run"}
ABOUT = ("Public checks are the ones `check(...)` runs in your notebook. Hidden checks are run by the grader only; "
         "their inputs are not shown. An exercise scores its points when every check, public and hidden, passes.")


def _score(points, max_points) -> str:
    return f"{points}/{'?' if max_points is None else max_points}"


def _total(rows) -> tuple[int, int | None]:
    from .grade import totals  # lazily: grade imports this module

    t = totals(rows).get(rows[0].student, {"points": 0, "max_points": 0}) if rows else {"points": 0, "max_points": 0}
    return t["points"], t["max_points"]


def _sections(rows):
    """[(notebook, lecture, exercise rows, notes)] in the order of the rows."""
    out: dict[str, tuple] = {}
    for r in rows:
        nb = out.setdefault(r.notebook, (r.notebook, r.lecture, [], []))
        (nb[3] if r.status == "note" else nb[2]).append(r)
    return list(out.values())


def _exercise(r) -> str:
    if r.exercise == "-":
        return "-"
    ex = catalog.EXERCISES.get(r.exercise)
    return f"{r.exercise} {r.name}" + (f" ({ex.title})" if ex else "")


def _lines(r) -> list[str]:
    """What the learner reads about one row: the public part, then the hidden checks if the exercise has any."""
    text = [r.feedback or STATUS.get(r.status, r.status)]
    if r.hidden and r.status != "duplicate":
        text.append(f"hidden checks: {STATUS.get(r.hidden, r.hidden)}" +
                    (f" ({r.hidden_feedback})" if r.hidden_feedback and r.hidden != "pass" else ""))
    return text


def _points(r) -> str:
    return "—" if r.status == "duplicate" else _score(r.points, r.max_points)


def markdown(student: str, rows) -> str:
    """The Markdown feedback of one student, from that student's rows only."""
    if any(r.student != student for r in rows):
        raise ValueError("feedback for one student is made from that student's rows only")
    pts, mx = _total(rows)
    out = [f"# Feedback for {html.escape(student, quote=False)}", "", f"**Total: {_score(pts, mx)} points**", "",
           ABOUT, ""]
    # one table cell: one line, "|" escaped, and no raw HTML (Markdown viewers would render a learner's "<script>")
    cell = lambda s: html.escape(" ".join(str(s).split()), quote=False).replace("|", "\\|")  # noqa: E731
    for notebook, lecture, exercises, notes in _sections(rows):
        out += [f"## {cell(notebook)}" + (f" (lecture {lecture})" if lecture else ""), ""]
        if exercises:
            out += ["| exercise | status | points | what the check said |", "| --- | --- | --- | --- |"]
            out += [f"| {cell(_exercise(r))} | {cell(STATUS.get(r.status, r.status))} | {_points(r)} | "
                    f"{cell('; '.join(_lines(r)))} |" for r in exercises]
            out.append("")
        out += [f"*Note:* {cell(n.feedback)}" for n in notes if n.feedback] + [""]
    return "\n".join(out).rstrip() + "\n"


_CSS = ("body{font-family:system-ui,sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
        "table{border-collapse:collapse;width:100%}td,th{border:1px solid #ccc;padding:.3em .5em;text-align:left;"
        "vertical-align:top}.pass{color:#186a3b}.fail,.error,.missing{color:#922b21}")


def html_page(student: str, rows) -> str:
    """The same feedback as a standalone HTML page (every text escaped)."""
    if any(r.student != student for r in rows):
        raise ValueError("feedback for one student is made from that student's rows only")
    e = html.escape
    pts, mx = _total(rows)
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           f"<title>Feedback for {e(student)}</title><style>{_CSS}</style></head><body>",
           f"<h1>Feedback for {e(student)}</h1>", f"<p><strong>Total: {e(_score(pts, mx))} points</strong></p>",
           f"<p>{e(ABOUT).replace('`check(...)`', '<code>check(...)</code>')}</p>"]
    for notebook, lecture, exercises, notes in _sections(rows):
        out.append(f"<h2>{e(notebook)}" + (f" (lecture {e(lecture)})" if lecture else "") + "</h2>")
        if exercises:
            out.append("<table><tr><th>exercise</th><th>status</th><th>points</th><th>what the check said</th></tr>")
            for r in exercises:
                said = "<br>".join(e(t) for t in _lines(r))
                out.append(f'<tr><td>{e(_exercise(r))}</td><td class="{e(r.status.replace(" ", "-"))}">'
                           f"{e(STATUS.get(r.status, r.status))}</td><td>{e(_points(r))}</td><td>{said}</td></tr>")
            out.append("</table>")
        out += [f"<p><em>Note:</em> {e(n.feedback)}</p>" for n in notes if n.feedback]
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_feedback(rows, folder: Path) -> list[Path]:
    """Write ``<student>.md`` and ``<student>.html`` for every student in ``rows`` into ``folder``; the paths."""
    folder.mkdir(parents=True, exist_ok=True)
    by: dict[str, list] = {}
    for r in rows:
        by.setdefault(r.student, []).append(r)
    written = []
    for student, mine in by.items():
        for suffix, text in ((".md", markdown(student, mine)), (".html", html_page(student, mine))):
            path = folder / f"{student}{suffix}"
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written
