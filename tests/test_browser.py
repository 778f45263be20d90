"""End-to-end: JupyterLab runs Lecture 7 in headless Chromium, and the geodesic widget's plotly plot renders.

Starts a JupyterLab server on a free loopback port (token chosen here, no browser opened) with a temporary copy of
``lectures/`` as its root, drives Debian's /usr/bin/chromium with Playwright (no downloaded browser), runs all cells,
checks that no cell printed a traceback and that the widget's plot is on the page, and saves a screenshot to
``artifacts/browser/``. Skipped only when /usr/bin/chromium is missing.
"""
from __future__ import annotations

import importlib.util
import json
import os
import secrets
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
NOTEBOOK = "07_interactive_geodesics.ipynb"
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def require_chromium() -> None:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium; run.py does this as root)")


def launch_chromium(playwright):
    """Debian's Chromium, headless, kept off the network (no downloaded browser); shared with tests/test_site.py."""
    require_chromium()
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)


def site_build_module():
    """site/build.py as a module: its Jupyter-server launcher and free_port serve the website build and these tests."""
    spec = importlib.util.spec_from_file_location("coursesite_build_module", ROOT / "site" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_SITE = site_build_module()
free_port = _SITE.free_port


@pytest.fixture
def lab(tmp_path):
    """A JupyterLab server on 127.0.0.1 serving a copy of lectures/; yields (base url, token, log path)."""
    require_chromium()
    root = tmp_path / "root"
    shutil.copytree(ROOT / "lectures", root / "lectures", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    settings = tmp_path / "settings"  # all cells stay in the DOM (no windowing); no news pop-up
    for ext, name, value in [("notebook-extension", "tracker", {"windowingMode": "none"}),
                             ("apputils-extension", "notification", {"fetchNews": "false"})]:
        (settings / "@jupyterlab" / ext).mkdir(parents=True, exist_ok=True)
        (settings / "@jupyterlab" / ext / f"{name}.jupyterlab-settings").write_text(json.dumps(value))
    port, token = free_port(), secrets.token_hex(16)
    log = tmp_path / "lab.log"
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path / "jconfig"), JUPYTER_RUNTIME_DIR=str(tmp_path / "jruntime"),
               PYTHONHASHSEED="0")
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.news_url=", f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}",
           f"--LabApp.user_settings_dir={settings}",
           "--LabApp.expose_app_in_browser=True"]  # window.jupyterapp: run commands without menu clicking
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # CI containers run as root
    with _SITE.jupyter_process(cmd, env, log, f"http://127.0.0.1:{port}", token) as base:
        yield base, token, log


def test_lecture07_runs_and_widget_renders(lab):
    from playwright.sync_api import sync_playwright

    base, token, log = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    console_errors: list[str] = []
    with sync_playwright() as p:
        browser = launch_chromium(p)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
            page.goto(f"{base}/lab/tree/lectures/{NOTEBOOK}?token={token}", timeout=60_000)
            page.wait_for_selector(".jp-NotebookPanel .jp-Notebook", timeout=60_000)
            # the notebook's kernel is connected and idle (a fresh workspace, so nothing else competes for it)
            ready = """() => {
                const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                const ctx = w && w.sessionContext;
                const k = ctx && ctx.session && ctx.session.kernel;
                return !!(ctx && ctx.isReady && k && k.connectionStatus === 'connected' && k.status === 'idle');
            }"""
            page.wait_for_function(ready, timeout=60_000, polling=250)
            page.wait_for_timeout(1000)
            page.wait_for_function(ready, timeout=30_000, polling=250)
            # Run > Run All Cells
            page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            n_code = page.locator(".jp-CodeCell").count()
            # every code cell has an execution count (not "[*]") and the kernel is idle again
            page.wait_for_function(
                """(n) => {
                    const prompts = [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
                    const done = prompts.filter(p => /\\[\\d+\\]/.test(p.textContent));
                    const ind = document.querySelector(".jp-Notebook-ExecutionIndicator");
                    return done.length === n && ind && ind.getAttribute('data-status') === 'idle';
                }""", arg=n_code, timeout=90_000, polling=500)
            errors = page.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')
            tracebacks = [t for t in errors.all_inner_texts() if "Traceback" in t or "Error" in t]
            assert not tracebacks, "cells printed errors:\n" + "\n---\n".join(tracebacks)[:4000]
            assert page.locator(".jp-OutputArea-output .jp-RenderedText[data-mime-type='application/vnd.jupyter.error']"
                                ).count() == 0
            # the widget: an ipywidgets box holding the plotly FigureWidget, drawn by plotly.js
            widget_plot = page.locator(".jp-OutputArea-output .widget-box .js-plotly-plot")
            widget_plot.first.wait_for(state="visible", timeout=30_000)
            assert widget_plot.count() >= 2  # latent panel and decoded panel
            assert page.locator(".jp-OutputArea-output .widget-box .js-plotly-plot .main-svg").count() >= 2
            # the curves are drawn (scatter traces with a path) and the controls are there
            assert page.locator(".widget-box .js-plotly-plot .scatterlayer .trace path.js-line").count() >= 2
            assert page.locator(".widget-box .widget-play").count() == 1
            assert page.locator(".widget-box .widget-dropdown select").count() == 1
            # the static animation (no kernel needed) renders too
            static = page.locator(".jp-OutputArea-output.jp-RenderedPlotly.js-plotly-plot")  # plotly's mime renderer
            assert static.count() == 1 and static.locator(".main-svg").count() >= 1
            assert static.locator(".slider-container").count() == 1  # the frame slider of the animation
            static.scroll_into_view_if_needed()
            page.wait_for_timeout(300)
            static.screenshot(path=str(ARTIFACTS / "lecture07_static.png"))
            page.locator(".jp-OutputArea-output .widget-box").first.scroll_into_view_if_needed()
            page.wait_for_timeout(500)
            page.screenshot(path=str(ARTIFACTS / "lecture07_widget.png"))
            page.locator(".jp-OutputArea-output .widget-box").first.screenshot(path=str(ARTIFACTS / "lecture07_explorer.png"))
        except Exception:
            try:
                page.screenshot(path=str(ARTIFACTS / "lecture07_failure.png"))
            finally:
                print("JupyterLab log tail:\n" + log.read_text()[-3000:])
                print("browser console errors:\n" + "\n".join(console_errors[-20:]))
            raise
        finally:
            browser.close()
