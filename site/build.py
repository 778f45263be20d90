#!/usr/bin/env python3
"""Build the course website into ``_build/html`` with Jupyter Book 2, offline; ``python3 run.py site`` calls this.

    .venv/bin/python site/build.py            build (executing notebooks whose cache is missing or stale), print the path
    .venv/bin/python site/build.py --serve    build, then serve it on http://127.0.0.1:8000 until Ctrl-C

How it works (site/README.md has the details):

1. Jupyter Book 2 (``jupyter-book`` from PyPI, MyST under it, run by this machine's Node.js) reads ``myst.yml``: the
   README, then every ``lectures/NN_*.ipynb`` and ``exercises/NN_*.ipynb`` (patterns, so a new lecture appears by itself).
2. It executes each notebook in a kernel of a Jupyter server that this script starts on 127.0.0.1, and caches the
   outputs in ``_build/execute``, keyed by MyST on the notebook's code cells and kernel. A rebuild after a text edit
   reuses the cache; a changed code cell runs the notebook again.
3. What MyST's key does not see is the library the notebooks import: this script keys the whole cache also on a
   fingerprint of ``geomlib/`` (code and checkpoints) and the pins (``pyproject.toml``, ``requirements/constraints.txt``).
   A different fingerprint empties the cache before the build, so outputs computed with an older geomlib are never
   published. ``--strict``: an exception in any cell fails the build.
4. The pages are rendered by ``site/theme`` (a MyST site template with a ``render`` command), not by MyST's default
   book-theme, which is only published as a download from the web; the theme's assets come from registry packages
   (KaTeX's CSS and fonts from npm, plotly.js from the plotly wheel).
"""
from __future__ import annotations

import argparse
import hashlib
import http.server
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THEME = Path(__file__).resolve().parent / "theme"
# Beyond its own code cells, what a notebook's outputs depend on: the library it imports (code and shipped
# checkpoints) and the versions of everything else (the pins).
FINGERPRINT_INPUTS = ("geomlib", "pyproject.toml", "requirements/constraints.txt")
PARALLEL = 2  # notebooks executed at once (the CI machines have 2 cores)
STAMP = ".inputs-sha256"  # in _build/execute: the fingerprint the cached outputs were computed with


def say(msg: str) -> None:
    print(f"[site] {msg}", flush=True)


def fingerprint(root: Path, inputs=FINGERPRINT_INPUTS) -> str:
    """sha256 over the files under ``inputs`` (paths relative to root, and their bytes); caches are skipped."""
    h = hashlib.sha256()
    for name in inputs:
        path = root / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in files:
            rel = f.relative_to(root).as_posix()
            if "__pycache__" in f.parts or f.suffix == ".pyc" or ".egg-info" in rel:
                continue
            h.update(rel.encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def refresh_execution_cache(build: Path, fp: str) -> bool:
    """Empty ``build/execute`` unless it was computed with fingerprint ``fp``; True when it was kept."""
    cache = build / "execute"
    stamp = cache / STAMP
    kept = stamp.is_file() and stamp.read_text().strip() == fp
    if not kept and cache.exists():
        n = sum(1 for p in cache.glob("*.ipynb"))
        say(f"geomlib or the pins changed since the cached outputs were computed: dropping {n} cached notebook(s)")
        shutil.rmtree(cache)
    cache.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fp + "\n")
    return kept


def ensure_theme_packages(theme: Path = THEME) -> None:
    """KaTeX's CSS and fonts for the theme: ``npm ci`` from site/theme/package-lock.json (the npm registry only)."""
    marker = theme / "node_modules" / ".package-lock.json"
    lock = theme / "package-lock.json"
    if marker.exists() and marker.stat().st_mtime >= lock.stat().st_mtime:
        return
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("[site] npm is missing: install Debian's nodejs and npm (apt-get install nodejs npm)")
    say("installing the theme's npm packages (KaTeX) with npm ci")
    subprocess.run([npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"], cwd=theme, check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def jupyter_server(root: Path, scratch: Path):
    """A Jupyter server on 127.0.0.1 for MyST's kernels: yields (url, token). MyST would start one itself, but one
    that refuses to run as root (CI containers) and listens on every interface."""
    port, token = free_port(), secrets.token_hex(16)
    # one torch thread per kernel (as binder/start does): two notebooks run at once, each on one core
    env = dict(os.environ, PYTHONHASHSEED="0", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", JUPYTER_CONFIG_DIR=str(scratch / "config"),
               JUPYTER_RUNTIME_DIR=str(scratch / "runtime"), JUPYTER_DATA_DIR=str(scratch / "data"))
    # the kernels must find the venv's kernel (ipykernel), not whatever a user's jupyter data dir holds
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    cmd = [sys.executable, "-m", "jupyter_server", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    with jupyter_process(cmd, env, scratch / "jupyter-server.log", f"http://127.0.0.1:{port}", token) as url:
        yield url, token


@contextmanager
def jupyter_process(cmd: list[str], env: dict, log: Path, url: str, token: str, wait: float = 60):
    """Run a Jupyter server ``cmd`` (its output to ``log``) in a process group of its own, wait until ``url``
    answers /api/status, yield ``url``; on exit stop the server and the kernels it started. Shared with
    tests/test_browser.py (JupyterLab)."""
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.time() + wait
        while True:
            try:
                with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"the Jupyter server `{' '.join(cmd[:3])} ...` did not start (exit code "
                                   f"{proc.poll()}):\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)  # the server and its kernels (its own process group)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def jupyter_book() -> Path:
    exe = Path(sys.executable).parent / ("jupyter-book.exe" if os.name == "nt" else "jupyter-book")
    if not exe.exists():
        sys.exit("[site] jupyter-book is not installed here: run `python3 run.py site` (it installs the 'site' extra)")
    if shutil.which("node") is None:
        sys.exit("[site] Node.js is missing: install Debian's nodejs and npm (apt-get install nodejs npm); "
                 "Jupyter Book would otherwise download a Node.js build")
    return exe


def build(root: Path = ROOT, *, inputs=FINGERPRINT_INPUTS, binder_repo: str | None = None) -> Path:
    """Build the site of the MyST project in ``root`` into ``root/_build/html``; returns that folder.

    Raises subprocess.CalledProcessError when Jupyter Book fails (an exception in a cell, a broken page)."""
    exe = jupyter_book()
    ensure_theme_packages()
    build_dir = root / "_build"
    kept = refresh_execution_cache(build_dir, fingerprint(root, inputs))
    say(f"execution cache {'kept' if kept else 'empty'}: {build_dir / 'execute'}")
    scratch = build_dir / "jupyter"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    t0 = time.perf_counter()
    with jupyter_server(root, scratch) as (url, token):
        env = dict(os.environ, JUPYTER_BASE_URL=url, JUPYTER_TOKEN=token, PYTHONHASHSEED="0",
                   JB_ALLOW_NODEENV="no",  # never download Node.js
                   SITE_ROOT=str(root), SITE_PYTHON=sys.executable)
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", os.defpath)])
        if binder_repo:
            env["SITE_BINDER_REPO"] = binder_repo
        env.pop("BASE_URL", None)  # the theme writes relative links: the site works under any path
        subprocess.run([str(exe), "build", "--html", "--execute", "--execute-parallel", str(PARALLEL), "--strict", "--ci"], cwd=root, env=env, check=True)
    html = build_dir / "html"
    report = html / "site-build.json"
    if not report.is_file():
        raise RuntimeError(f"the theme wrote no {report}: did site/theme/render.py run?")
    pages = json.loads(report.read_text())["pages"]
    say(f"built {len(pages)} pages in {time.perf_counter() - t0:.0f} s")
    return html


def serve(html: Path, port: int = 8000) -> None:
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(html))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as httpd:
        say(f"serving {html} at http://127.0.0.1:{port}/ (Ctrl-C stops)")
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="run.py site", description="Build the course website into _build/html.")
    ap.add_argument("--serve", action="store_true", help="serve the built site on 127.0.0.1 afterwards")
    ap.add_argument("--port", type=int, default=8000, help="port for --serve (default 8000)")
    ap.add_argument("--binder-repo", default=None,
                    help="OWNER/REPO for the Binder buttons (default: the one in README.md's Binder badge)")
    args = ap.parse_args(argv)
    try:
        html = build(binder_repo=args.binder_repo)
    except subprocess.CalledProcessError as err:
        say(f"the build failed ({err}); nothing was published")
        return 1
    print(html)
    if args.serve:
        serve(html, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
