#!/usr/bin/env python3
"""The course's two commands, for a fresh machine with nothing but Python 3.10+.

    python3 run.py lab     install what is needed into .venv, then open the course in JupyterLab
    python3 run.py test    install what is needed into .venv, then run the whole test suite

Both create ``.venv`` next to this file on first use and reinstall only when pyproject.toml or
requirements/constraints.txt change. Extra arguments after ``test`` go to pytest
(``python3 run.py test -k geodesic``), after ``lab`` to JupyterLab.

And one more, for the course website (not part of the two commands' contract; same .venv, same pins):

    python3 run.py site [--serve]   build the website into _build/html (Jupyter Book 2) and print its path
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".geomlib-installed"
INPUTS = [ROOT / "pyproject.toml", ROOT / "requirements" / "constraints.txt"]


def say(msg: str) -> None:
    print(f"[run.py] {msg}", flush=True)


def sh(*cmd: str | Path, **kw) -> None:
    subprocess.run([str(c) for c in cmd], check=True, **kw)


def digest() -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in INPUTS)).hexdigest()


def ensure_venv() -> None:
    if sys.version_info < (3, 10):
        sys.exit(f"Python 3.10 or newer is needed; this is {sys.version.split()[0]}.")
    if not PY.exists():
        say(f"creating {VENV}")
        venv.EnvBuilder(with_pip=True).create(VENV)
    if STAMP.exists() and STAMP.read_text() == digest():
        return
    say("installing geomlib and its requirements (first run takes a few minutes)")
    constraints = ROOT / "requirements" / "constraints.txt"
    install_torch(constraints)
    # the 'site' extra (Jupyter Book) too: the test suite builds the website (tests/test_site.py)
    sh(PY, "-m", "pip", "install", "-q", "-c", constraints, "-e", f"{ROOT}[test,site]")
    STAMP.write_text(digest())


def install_torch(constraints: Path) -> None:
    """torch first, on its own, and the CPU build wherever that is the one that will be used.

    1. a wheel already on this machine (pip's find-links), without asking any index (its dependencies
       then come from the registry);
    2. on Linux without an NVIDIA driver: PyTorch's CPU index (about 200 MB instead of several GB of CUDA
       packages, which PyPI's Linux wheel pulls in); the course runs on a CPU;
    3. otherwise, or if that index cannot be reached: the package registry (macOS and Windows get CPU builds).
    """
    pip = [PY, "-m", "pip", "install", "-q", "-c", constraints]
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if subprocess.call([str(c) for c in [*pip, "--no-index", "--no-deps", "torch"]], **quiet) == 0:
        sh(*pip, "torch")  # its dependencies; the torch just installed satisfies the pin
        return
    if sys.platform.startswith("linux") and shutil.which("nvidia-smi") is None:
        say("no NVIDIA GPU here: installing the CPU build of torch from download.pytorch.org")
        cpu = [*pip, "--index-url", "https://download.pytorch.org/whl/cpu", "torch"]
        if subprocess.call([str(c) for c in cpu]) == 0:
            return
        say("the CPU index could not be used; installing torch from the package registry")
    sh(*pip, "torch")


def ensure_browser() -> None:
    """Chromium for the end-to-end browser tests, from Debian's packages (never a downloaded build)."""
    ensure_debian(["chromium"], ["chromium"], "GEOMLIB_NO_BROWSER_INSTALL", "the browser test",
                  "the browser test will be skipped with a message")


def ensure_node() -> None:
    """Node.js and npm for Jupyter Book 2 (the website), from Debian's packages (Jupyter Book would download a build)."""
    ensure_debian(["node", "npm"], ["nodejs", "npm"], "GEOMLIB_NO_NODE_INSTALL", "the website build",
                  "install Node.js 18 or newer with npm to build the website")


def ensure_debian(commands: list[str], packages: list[str], opt_out: str, purpose: str, otherwise: str) -> None:
    """apt-get install Debian's ``packages`` unless all ``commands`` are on PATH (or ``$opt_out`` is set); as root only."""
    if all(shutil.which(c) for c in commands) or os.environ.get(opt_out):
        return
    names = " and ".join(packages)
    apt = shutil.which("apt-get")
    if apt is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        say(f"no {names} and no root apt-get here: {otherwise}")
        return
    say(f"installing Debian's {names} for {purpose}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        sh(apt, "-qq", "update", env=env, stdout=subprocess.DEVNULL)
        sh(apt, "-qq", "install", "-y", "--no-install-recommends", *packages, env=env, stdout=subprocess.DEVNULL)
    except subprocess.CalledProcessError as err:
        say(f"could not install {names} ({err}); {otherwise}")


def main(argv: list[str]) -> int:
    if argv and argv[0] == "site":  # the website: site/build.py (see its docstring and README.md)
        ensure_venv()
        ensure_node()
        return wait([PY, ROOT / "site" / "build.py", *argv[1:]], dict(os.environ, PYTHONHASHSEED="0"))
    if not argv or argv[0] not in {"lab", "test"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    ensure_venv()
    env = dict(os.environ, PYTHONHASHSEED="0")
    if command == "lab":
        root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []  # e.g. in a container
        # the whole course in the file browser (lectures, exercises, solutions), opening on the index
        return wait([PY, "-m", "jupyterlab", f"--ServerApp.root_dir={ROOT}",
                     "--LabApp.default_url=/lab/tree/lectures/00_index.ipynb", *root, *rest], env)
    ensure_browser()
    ensure_node()  # the website test builds the site
    # exercises/ are not run by nbval: as shipped they must fail their checks (tests/test_exercises.py runs them)
    args = rest if any(_is_path(a) for a in rest) else \
        [*rest, *(p for p in ("tests", "lectures", "solutions") if (ROOT / p).is_dir())]
    return wait([PY, "-m", "pytest", "--nbval-lax", *args], env)


def _is_path(arg: str) -> bool:
    """Does this pytest argument name files to test (``tests/test_x.py::test_y``)? Options and their values do not."""
    return not arg.startswith("-") and (ROOT / arg.split("::")[0]).exists()


def wait(cmd: list, env: dict) -> int:
    """Run cmd and wait for it. Ctrl-C goes to it too (same terminal): JupyterLab asks whether to shut down, pytest
    stops and reports; this process keeps waiting instead of dying with a traceback in the middle of that."""
    proc = subprocess.Popen([str(c) for c in cmd], cwd=ROOT, env=env)
    while True:
        try:
            return proc.wait()
        except KeyboardInterrupt:
            continue


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
