"""The Binder environment builds from binder/ alone and runs the course.

What repo2docker does on mybinder.org, replayed in a fresh virtual environment: Binder's base Jupyter
packages, then ``pip install -r binder/requirements.txt`` over them, then ``binder/postBuild`` from a copy
of the repository, then a lecture runs in that environment's own kernel. PyTorch's CPU index stands behind the ``+cpu`` torch pin; where a local
wheel of that build is on one of pip's find-links (as on the course's CI machines) the index lines are
dropped and pip takes the wheel from there, otherwise the index is used, and without either the test is
skipped. About 1-2 minutes on 2 cores (most of it unpacking torch).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
TIME_COURSE = BINDER / "time_course.py"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
INDEX_LINE = re.compile(r"^\s*(--extra-index-url|--index-url|-i)([\s=]|$)")
# Lecture to run in the Binder environment, first one present wins: the curves lecture is quick and
# touches geomlib's core; 01 trains a model and 07 is mostly widgets, so they come last.
LECTURE_PREFERENCE = ["02_curves_and_lengths", "03_pullback_metrics", "00_index", "04_identifiability",
                      "05_stochastic_decoders", "06_fisher_rao", "01_latent_variable_models",
                      "07_interactive_geodesics"]
# Prebuilt JupyterLab extensions that must come with the pip packages (no JupyterLab build on Binder).
LABEXTENSIONS = ["@jupyter-widgets/jupyterlab-manager", "anywidget", "jupyterlab-plotly"]
# mybinder.org's base environment for runtime.txt python-3.11, which binder/requirements.txt is installed
# over: the Jupyter packages of repo2docker's environment.py-3.11 lock (frozen 2025-11-13), as pip
# packages. Replaying it lets pip check find pins that clash with what Binder already has (Notebook 7.4
# requires JupyterLab < 4.5, hence the notebook pin in binder/requirements.txt).
BINDER_BASE = ["jupyterlab==4.4.10", "notebook==7.4.7", "ipywidgets==8.1.8", "ipykernel==7.1.0",
               "jupyter-offlinenotebook==0.3.2", "jupyter-resource-usage==1.2.0", "jupyterlab-myst==2.4.2"]
COPY_IGNORE = shutil.ignore_patterns(".git", ".venv", "__pycache__", "*.egg-info", ".pytest_cache",
                                     ".ipynb_checkpoints", "build", "dist", "artifacts", "grading-report*",
                                     "node_modules")

PROBE = r'''
import json, sys
import torch
import geomlib as gl
A = torch.tensor([[1.0, 2.0], [0.5, -1.0], [3.0, 0.2]], dtype=torch.float64)
z0 = torch.tensor([[0.3, -0.2]], dtype=torch.float64)
z1 = torch.tensor([[-1.1, 0.9]], dtype=torch.float64)
c = gl.straight_line(z0, z1, 17)
# a straight line under the pullback of a linear map has length |A (z1 - z0)|
L = gl.length(c, gl.pullback(lambda z: z @ A.T))
assert torch.allclose(L, ((z1 - z0) @ A.T).norm(dim=-1), rtol=1e-10, atol=0), L
print("PROBE " + json.dumps({"prefix": sys.prefix, "geomlib": gl.__file__, "torch": torch.__version__}))
'''


def _pip_find_links(python: str) -> list[Path]:
    """Folders on pip's find-links (environment and pip config), as pip itself reads them."""
    values = os.environ.get("PIP_FIND_LINKS", "").split()
    out = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if key.endswith("find-links"):
            values += value.strip().strip("'\"").split()
    paths = []
    for v in values:
        p = Path(v[len("file://"):] if v.startswith("file://") else v)
        if p.is_dir() and p not in paths:
            paths.append(p)
    return paths


def _local_wheel(name: str, version: str, dirs: list[Path]) -> Path | None:
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    for d in dirs:
        for whl in d.glob(f"{name}-*.whl"):
            parts = whl.name.replace("%2B", "+").split("-")
            if parts[1] == version and parts[2] == tag:
                return whl
    return None


def _reachable(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - a fixed https URL
            return response.status < 400
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} failed ({out.returncode}):\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    return out


@pytest.fixture(scope="module")
def binder_env(tmp_path_factory):
    """(python of the Binder venv, the repository copy it was built from, its environment variables)."""
    tmp = tmp_path_factory.mktemp("binder")
    lines = (BINDER / "requirements.txt").read_text(encoding="utf-8").splitlines()
    torch_pin = next(Requirement(l) for l in lines if re.match(r"^\s*torch\s*==", l))
    version = next(iter(torch_pin.specifier)).version
    wheel = _local_wheel("torch", version, _pip_find_links(sys.executable))
    if wheel is not None:
        lines = [l for l in lines if not INDEX_LINE.match(l)]  # the local wheel stands in for the CPU index
    elif not _reachable(f"{CPU_INDEX}/torch/"):
        pytest.skip(f"torch=={version} is neither on pip's find-links nor can {CPU_INDEX} be reached")
    requirements = tmp / "requirements.txt"
    requirements.write_text("\n".join(lines) + "\n", encoding="utf-8")

    # repo2docker copies the repository into the image and runs postBuild from its root
    repo = tmp / "repo"
    shutil.copytree(ROOT, repo, ignore=COPY_IGNORE)
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", venv], timeout=120)
    python = venv / "bin" / "python"
    # pip's cache is used (no --no-cache-dir); --no-compile: the .pyc files would double the files written
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-compile", "-q"]
    _run([*pip, *BINDER_BASE], timeout=900)
    _run([*pip, "-r", requirements], timeout=900)
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv), PYTHONHASHSEED="0")
    _run([repo / "binder" / "postBuild"], cwd=repo, env=env, timeout=300)
    # The venv (~1.5 GB) stays in pytest's temporary folder, which keeps the last three runs: deleting its
    # tens of thousands of files here would add minutes to the suite on a busy 2-core machine.
    return python, repo, env


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_binder_environment_has_the_pinned_versions(binder_env):
    python, _, env = binder_env
    lines = (BINDER / "requirements.txt").read_text(encoding="utf-8").splitlines()
    pins = {}
    for line in lines:
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line and not line.startswith("-"):
            req = Requirement(line)
            pins[req.name] = next(iter(req.specifier)).version
    code = "import json, sys, importlib.metadata as m; print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
    installed = json.loads(_run([python, "-c", code, *pins], env=env, timeout=120).stdout)
    assert installed == pins
    check = _run([python, "-m", "pip", "check"], env=env, timeout=120)
    assert "No broken requirements" in check.stdout, check.stdout


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_binder_environment_has_the_prebuilt_widget_frontends(binder_env):
    python, _, env = binder_env
    out = _run([python, "-m", "jupyter", "labextension", "list"], env=env, timeout=120)
    text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)
    for name in LABEXTENSIONS:
        line = next((l for l in text.splitlines() if l.strip().startswith(name + " ")), None)
        assert line is not None, f"JupyterLab in the Binder environment does not list {name}:\n{text}"
        assert "enabled" in line and "OK" in line, line


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_lecture_runs_in_the_binder_kernel(binder_env, tmp_path):
    python, repo, env = binder_env
    import nbformat

    probe = tmp_path / "probe.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(PROBE)]
    nbformat.write(nb, probe)
    runner = ("import sys; sys.path.insert(0, sys.argv[1]); from time_course import execute; from pathlib import Path\n"
              "s, nb, err = execute(Path(sys.argv[2]), 300, 'python3'); assert err is None, err\n"
              "print(''.join(o.get('text', '') for c in nb.cells for o in c.outputs))")
    out = _run([python, "-c", runner, repo / "binder", probe], cwd=tmp_path, env=env, timeout=600).stdout
    found = json.loads(next(l for l in out.splitlines() if l.startswith("PROBE "))[len("PROBE "):])
    # the kernel is the Binder environment's, importing geomlib editable from the repository copy, CPU torch
    assert Path(found["prefix"]).resolve() == python.parent.parent.resolve(), found
    assert Path(found["geomlib"]).resolve().is_relative_to((repo / "geomlib").resolve()), found
    assert found["torch"].endswith("+cpu"), found

    lectures = sorted((repo / "lectures").glob("*.ipynb"))
    by_stem = {p.stem: p for p in lectures}
    chosen = next((by_stem[s] for s in LECTURE_PREFERENCE if s in by_stem), lectures[0] if lectures else None)
    if chosen is None:
        pytest.skip("lectures/ has no notebook yet; the probe notebook above ran in the Binder kernel")
    out = subprocess.run([str(python), str(repo / "binder" / "time_course.py"), str(chosen)],
                         cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"{chosen.name} failed in the Binder environment:\n{out.stdout}\n{out.stderr[-4000:]}"
    assert re.search(rf"{re.escape(chosen.name)}\s+[\d.]+\s+ok", out.stdout), out.stdout


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_time_course_reports_each_notebook_and_fails_on_an_error(tmp_path):
    import nbformat

    for name, source in [("good", "import geomlib\nx = 1 + 1"), ("bad", "raise ValueError('on purpose')")]:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(source)]
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    out = subprocess.run([sys.executable, str(TIME_COURSE), str(tmp_path / "good.ipynb"), str(tmp_path / "bad.ipynb")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert out.returncode == 1, out.stdout + out.stderr
    rows = {m[0]: (float(m[1]), m[2]) for m in re.findall(r"^(\S+)\s+(\d+\.\d)\s+(ok|FAILED .*|\d+/\d+ ok)$", out.stdout, re.M)}
    good = rows[str(tmp_path / "good.ipynb")]
    bad = rows[str(tmp_path / "bad.ipynb")]
    assert good[1] == "ok" and bad[1].startswith("FAILED") and "ValueError: on purpose" in bad[1], out.stdout
    # the total is the sum of the rows (each printed to 0.1 s)
    assert abs(rows["total"][0] - good[0] - bad[0]) <= 0.11, out.stdout
    assert rows["total"][1] == "1/2 ok"
