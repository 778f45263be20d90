"""The course website: `python3 run.py site` builds it, and every page reads right in headless Chromium.

The module builds the site once with the README's command (a cold build in CI's fresh clone, a warm one here when
``_build/`` holds executed outputs), serves ``_build/html`` on 127.0.0.1, and opens every page with Debian's Chromium
(tests/test_browser.py's launcher). What a page must have is counted from MyST's own parse of the notebooks
(``_build/site/content``) and from the files in lectures/ and exercises/, not from the renderer's report:

* the pages follow the files (README, then lectures/NN_*.ipynb, then exercises/NN_*.ipynb), and previous/next too;
* every formula is typeset by KaTeX and no raw ``$…$`` is left in the text;
* every figure is there: each image output loads, each plotly output is drawn (widget cells: their static animation);
* the Binder button opens that notebook, and the download link gives the notebook;
* on lecture 07 pressing play advances the animation's frame (read from the figure's slider and title);
* search finds a lecture.

A second test builds a one-notebook project four times to show the execution cache at work: reused after a text edit,
refreshed after a code edit or a change of the library, never published stale, and a failing cell fails the build.
Screenshots go to artifacts/site/ (the top of every page, its first figure, the two lecture 07 animations while
they play, a search; ``*_failure.png``, of the whole page, when a check fails).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest

from test_browser import free_port, launch_chromium, require_chromium, site_build_module

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts" / "site"
CONTENT = ROOT / "_build" / "site" / "content"
PLOTLY = "application/vnd.plotly.v1+json"

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _require_tools() -> None:
    require_chromium()
    if not shutil.which("node") or not shutil.which("npm"):
        pytest.skip("Node.js and npm are missing: install Debian's nodejs and npm (run.py does this as root)")
    if not (Path(sys.executable).parent / "jupyter-book").exists():
        pytest.skip("jupyter-book is not installed in this environment: python3 run.py test installs it")


def course_files() -> list[str]:
    return (["/README.md"] + [f"/lectures/{p.name}" for p in sorted((ROOT / "lectures").glob("[0-9][0-9]_*.ipynb"))]
            + [f"/exercises/{p.name}" for p in sorted((ROOT / "exercises").glob("[0-9][0-9]_*.ipynb"))])


def walk(node: dict):
    yield node
    for child in node.get("children", []):
        yield from walk(child)


def expected(slug: str) -> dict:
    """What MyST parsed and executed for this page: formulas, image outputs, plotly outputs, widget outputs."""
    tree = json.loads((CONTENT / f"{slug}.json").read_text(encoding="utf-8"))["mdast"]
    out = {"math": 0, "images": 0, "plotly": 0, "widgets": 0}
    for n in walk(tree):
        if n["type"] in ("math", "inlineMath"):
            out["math"] += 1
        if n["type"] == "output":
            data = n["jupyter_data"].get("data", {})
            out["plotly"] += PLOTLY in data
            out["widgets"] += "application/vnd.jupyter.widget-view+json" in data
            out["images"] += PLOTLY not in data and any(m.startswith("image/") for m in data)
    return out


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no access log in the test output
        pass


@pytest.fixture(scope="module")
def site():
    """Build with `run.py site` (the README's command; CI and the Pages workflow run the same), serve on 127.0.0.1."""
    _require_tools()
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, str(ROOT / "run.py"), "site"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, f"run.py site failed:\n{out.stdout[-6000:]}\n{out.stderr[-4000:]}"
    html = Path(out.stdout.strip().splitlines()[-1])  # it prints the folder last
    assert html == ROOT / "_build" / "html" and (html / "index.html").is_file(), out.stdout[-2000:]
    print(f"site built in {time.perf_counter() - t0:.0f} s")
    report = json.loads((html / "site-build.json").read_text())
    assert report["problems"] == [], report["problems"]
    port = free_port()
    httpd = ThreadingHTTPServer(("127.0.0.1", port), partial(Quiet, directory=str(html)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}/", html, report
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_chromium(p)
        try:
            yield b
        finally:
            b.close()


def test_pages_follow_the_files(site):
    """The table of contents is the files: a new lectures/NN_*.ipynb appears without editing a list."""
    _, html, report = site
    assert [p["source"] for p in report["pages"]] == course_files()
    for p in report["pages"]:
        assert (html / p["url"] / "index.html").is_file(), p


# the visible text of the page with code, typeset formulas and scripts taken out: what is left must hold no TeX
RAW_TEX = """() => {
    const main = document.querySelector('main').cloneNode(true);
    main.querySelectorAll('pre, code, .katex, script, .plotly-output').forEach(e => e.remove());
    const text = main.textContent;
    const m = text.match(/\\$[^$\\n]+\\$|\\\\\\(|\\\\\\[|\\\\begin\\{|\\\\frac|\\\\mathbb/);
    return m ? text.slice(Math.max(0, m.index - 60), m.index + 60) : null;
}"""


def test_every_page_in_chromium(site, browser):
    base, html, report = site
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    pages = report["pages"]
    for i, p in enumerate(pages):
        want = expected(p["slug"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        name = p["source"].strip("/").replace("/", "_").rsplit(".", 1)[0]
        try:
            page.goto(base + p["url"], wait_until="load", timeout=60_000)
            assert page.locator("h1.title").inner_text() == p["title"]
            # formulas: each one typeset by KaTeX, none left raw
            assert page.locator("main .katex").count() == want["math"], p["source"]
            if p["source"].endswith(".ipynb"):
                source = nbformat.read(ROOT / p["source"].lstrip("/"), as_version=4)
                md = "\n".join(c.source for c in source.cells if c.cell_type == "markdown")
                assert (want["math"] > 0) == ("$" in md), p["source"]
            assert page.evaluate(RAW_TEX) is None, f"{p['source']}: raw TeX on the page: {page.evaluate(RAW_TEX)!r}"
            assert page.locator(".math-error, .widget-missing").count() == 0
            # figures: every image output loaded, every plotly output drawn (widget cells by their fallback)
            imgs = page.locator("main .image-output img")
            assert imgs.count() == want["images"], p["source"]
            page.wait_for_function("() => [...document.querySelectorAll('main .image-output img')]"
                                   ".every(i => i.complete && i.naturalWidth > 0)", timeout=30_000)
            if p["source"].startswith("/lectures/") and not p["source"].startswith("/lectures/00_"):
                assert want["images"] + want["plotly"] >= 1, f"{p['source']} has no figure"
            assert page.locator("main .plotly-figure").count() == want["plotly"]
            if want["plotly"]:
                page.wait_for_function(f"() => document.querySelectorAll('.plotly-figure[data-ready=true] .main-svg')"
                                       f".length >= {want['plotly']}", timeout=60_000)
            assert want["widgets"] <= want["plotly"]
            # Binder opens this notebook; the download link gives it
            binder = page.locator("a.button.binder")
            if binder.count():
                target = p["source"].lstrip("/") if p["source"].endswith(".ipynb") else "lectures/00_index.ipynb"
                assert re.fullmatch(rf"https://mybinder\.org/v2/gh/[^/]+/[^/]+/HEAD\?urlpath=lab/tree/{re.escape(target)}",
                                    binder.get_attribute("href")), binder.get_attribute("href")
            if p["source"].endswith(".ipynb"):
                link = page.locator("a.button.download")
                assert link.count() == 1
                got = page.request.get(page.url.split("#")[0] + link.get_attribute("href"))
                assert got.ok
                nb = nbformat.reads(got.text(), as_version=4)
                assert [c.source for c in nb.cells] == [c.source for c in source.cells]
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
            if want["images"]:
                imgs.first.screenshot(path=str(ARTIFACTS / f"{name}_figure1.png"))
            # previous / next in course order
            nxt = page.locator("nav.prev-next a[rel=next]")
            if i + 1 < len(pages):
                assert nxt.inner_text().endswith(pages[i + 1]["title"])
                nxt.click()
                page.wait_for_load_state("load")
                assert page.locator("h1.title").inner_text() == pages[i + 1]["title"]
                page.go_back()
            else:
                assert nxt.count() == 0
            assert not errors, f"{p['source']}: errors in the page's scripts: {errors}"
        except Exception:
            page.screenshot(path=str(ARTIFACTS / f"{name}_failure.png"), full_page=True)
            raise
        finally:
            page.close()


FIGURE_STATE = """(el) => ({active: el.layout.sliders[0].active, title: el.layout.title.text,
                          x: Array.from(el._fullData[el._moving].x)})"""


def test_lecture07_animation_plays(site, browser):
    """Both plotly animations of lecture 07 (the explorer's fallback and to_figure()) advance when play is pressed."""
    base, html, report = site
    (p,) = [p for p in report["pages"] if p["source"].startswith("/lectures/07_")]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(base + p["url"], wait_until="load", timeout=60_000)
        figs = page.locator(".plotly-figure")
        n = figs.count()
        assert n >= 2 and n == expected(p["slug"])["plotly"]
        page.wait_for_function(f"() => document.querySelectorAll('.plotly-figure[data-ready=true]').length === {n}",
                               timeout=60_000)
        for k in range(n):
            fig = figs.nth(k)
            fig.scroll_into_view_if_needed()
            # the trace that moves: the frames name it (the curve)
            fig.evaluate("(el) => { el._moving = el._transitionData._frames[0].traces[0]; }")
            before = fig.evaluate(FIGURE_STATE)
            n_frames = fig.evaluate("(el) => el._transitionData._frames.length")
            assert before["active"] == n_frames - 1  # at rest: the geodesic, the last frame
            fig.evaluate("""(el) => { el._seen = [];
                el.on('plotly_animatingframe', (e) => el._seen.push(Number(e.name))); }""")
            fig.locator(".updatemenu-button").filter(has_text="play").click()
            # the slider steps on: play starts again from the straight line, frame 0, and moves forward
            fig.wait_for(state="visible")
            page.wait_for_function("(el) => el._seen.length >= 3", arg=fig.element_handle(), timeout=20_000)
            page.wait_for_timeout(100)
            during = fig.evaluate(FIGURE_STATE)
            seen = fig.evaluate("(el) => el._seen")
            assert seen[:3] == [0, 1, 2], seen  # from the straight line, frame after frame
            assert seen == sorted(seen), seen
            assert during["active"] in seen and during["active"] < before["active"], (before["active"], during, seen)
            assert during["title"] != before["title"] and "iteration" in during["title"]
            assert len(before["x"]) > 2 and during["x"] != before["x"]  # the curve drawn is another iterate
            fig.screenshot(path=str(ARTIFACTS / f"lecture07_animation_{k}.png"))
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "lecture07_animation_failure.png"), full_page=True)
        raise
    finally:
        page.close()


def test_search_finds_a_lecture(site, browser):
    base, html, report = site
    (fisher,) = [p for p in report["pages"] if p["source"].startswith("/lectures/06_")]
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(base, wait_until="load")
        page.fill("#search-input", "Fisher information")
        results = page.locator("#search-results li a")
        results.first.wait_for(state="visible", timeout=15_000)
        hrefs = [results.nth(k).get_attribute("href") for k in range(results.count())]
        assert any(h.split("#")[0].rstrip("/") == fisher["url"].rstrip("/") for h in hrefs), hrefs
        page.screenshot(path=str(ARTIFACTS / "search.png"))
        page.fill("#search-input", "zzqx-no-such-word")
        page.locator("#search-results .none").wait_for(state="visible", timeout=5_000)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "search_failure.png"))
        raise
    finally:
        page.close()


# ---- the execution cache ------------------------------------------------------------------------------------------

def _notebook(path: Path, text: str, code: list[str]) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(f"# Probe\n\n{text}")] + [nbformat.v4.new_code_cell(c) for c in code]
    nbformat.write(nb, path)


def _published(html: Path) -> str:
    return (html / "probe" / "index.html").read_text(encoding="utf-8")


def test_execution_cache_reused_refreshed_never_stale(tmp_path):
    """A one-notebook project, built four times: the cache serves a text edit, and a code edit or a change of the
    library (the fingerprinted inputs) runs the notebook again; a cell that raises fails the build."""
    _require_tools()
    build = site_build_module()
    (tmp_path / "lib.py").write_text("VERSION = 1\n")
    (tmp_path / "myst.yml").write_text(
        "version: 1\nproject:\n  title: Probe\n  toc:\n    - file: intro.md\n    - file: probe.ipynb\n"
        f"site:\n  template: {ROOT / 'site' / 'theme'}\n")
    (tmp_path / "intro.md").write_text("# Intro\n\nA page.\n")
    nb = tmp_path / "probe.ipynb"
    stamp = "import time\nprint('executed at', time.time_ns())"
    run = re.compile(r"executed at (\d+)")

    def go() -> str:
        html = build.build(tmp_path, inputs=("lib.py",))
        return _published(html)

    _notebook(nb, "Version A of the text.", [stamp])
    first = go()
    t1 = run.search(first).group(1)
    assert "Version A" in first
    _notebook(nb, "Version B of the text.", [stamp])  # a text edit: the cached outputs are still true
    second = go()
    assert "Version B" in second and run.search(second).group(1) == t1
    _notebook(nb, "Version B of the text.", [stamp, "print('a second cell')"])  # a code edit: run again
    third = go()
    t3 = run.search(third).group(1)
    assert t3 != t1 and "a second cell" in third
    (tmp_path / "lib.py").write_text("VERSION = 2\n")  # the library changed, the notebook did not: run again
    fourth = go()
    assert run.search(fourth).group(1) not in (t1, t3)
    _notebook(nb, "Version B of the text.", [stamp, "raise RuntimeError('a broken lecture')"])
    with pytest.raises(subprocess.CalledProcessError):
        build.build(tmp_path, inputs=("lib.py",))
    assert not (tmp_path / "_build" / "html" / "probe" / "index.html").exists()  # nothing stale left to publish


def test_pages_workflow_runs_the_tested_command():
    """The GitHub Pages workflow builds with the README's command and publishes the folder it prints."""
    wf = (ROOT / ".github" / "workflows" / "pages.yml").read_text(encoding="utf-8")
    runs = [line.split("run:", 1)[1].strip() for line in wf.splitlines() if line.strip().startswith("run:")]
    assert any(re.match(r"python3 run\.py site(\s|$)", r) for r in runs), runs
    assert "path: _build/html" in wf and "actions/deploy-pages" in wf
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python3 run.py site" in readme


def test_cell_ids_unique_across_the_website():
    """MyST turns every cell id into a page anchor for the whole project: a repeated id is a broken link on the website
    (and a 'Duplicate identifier' warning in the build). Lectures and exercises are published; ids must not repeat."""
    seen: dict[str, str] = {}
    clashes = []
    for path in sorted([*ROOT.glob("lectures/[0-9][0-9]_*.ipynb"), *ROOT.glob("exercises/[0-9][0-9]_*.ipynb")]):
        for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
            where = f"{path.relative_to(ROOT)} cell {i}"
            if cell.get("id") in seen:
                clashes.append(f"id {cell.get('id')!r}: {seen[cell.get('id')]} and {where}")
            seen.setdefault(cell.get("id"), where)
    assert not clashes, "cell ids repeat across the website's notebooks:\n" + "\n".join(clashes)
