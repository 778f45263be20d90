"""Packaging is well formed and consistent in its four places.

pyproject.toml holds the ranges, requirements/constraints.txt the tested pins (used by run.py), binder/
the Binder environment, and README.md + run.py + .ci/run the two commands. Every check here reads those
files as the tools that consume them do (PEP 508/440 through ``packaging``, the TOML parser, the shell
script's command lines) and compares them with each other; nothing is compared with a hard-coded list.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = ROOT / "pyproject.toml"
CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
BINDER = ROOT / "binder"
BINDER_REQUIREMENTS = BINDER / "requirements.txt"
POSTBUILD = BINDER / "postBuild"
RUNTIME = BINDER / "runtime.txt"
README = ROOT / "README.md"
RUN_PY = ROOT / "run.py"
CI_RUN = ROOT / ".ci" / "run"

# pip options that may appear in binder/requirements.txt: only where packages come from. A local
# reference (-e ., a path) would make repo2docker copy the whole repository before installing, so every
# content change would rebuild the environment; geomlib itself is installed by postBuild instead.
INDEX_OPTIONS = ("--extra-index-url", "--index-url", "-i")
# Beyond geomlib's runtime dependencies Binder needs the kernel (a test dependency here) and a Notebook
# matching the pinned JupyterLab: Binder's base environment brings a Notebook 7.x that requires an older
# JupyterLab minor (tests/test_binder.py replays that base environment and runs pip check).
BINDER_EXTRAS = {"ipykernel", "notebook"}


def _toml_loads():
    try:
        import tomllib  # Python >= 3.11
        return tomllib.loads
    except ModuleNotFoundError:
        pass
    for name in ("tomli", "pip._vendor.tomli"):  # pip vendors tomli on 3.10
        try:
            module = __import__(name, fromlist=["loads"])
            return module.loads
        except ModuleNotFoundError:
            continue
    pytest.skip("no TOML parser here (Python < 3.11 without tomli): pyproject.toml checks need one")


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return _toml_loads()(PYPROJECT.read_text(encoding="utf-8"))


def _requirements(items) -> dict[str, Requirement]:
    out: dict[str, Requirement] = {}
    for item in items:
        req = Requirement(item)
        name = canonicalize_name(req.name)
        assert name not in out, f"{name} is listed twice: {out[name]} and {req}"
        out[name] = req
    return out


@pytest.fixture(scope="module")
def runtime_deps(pyproject) -> dict[str, Requirement]:
    return _requirements(pyproject["project"]["dependencies"])


@pytest.fixture(scope="module")
def test_deps(pyproject) -> dict[str, Requirement]:
    return _requirements(pyproject["project"]["optional-dependencies"]["test"])


@pytest.fixture(scope="module")
def site_deps(pyproject) -> dict[str, Requirement]:
    """The website's extra (run.py installs it with the test extra: the suite builds the site)."""
    return _requirements(pyproject["project"]["optional-dependencies"].get("site", []))


def _req_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) of each non-blank line with comments removed (pip's requirements-file rules)."""
    out = []
    for i, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if line:
            out.append((i, line))
    return out


def _pins(path: Path) -> tuple[dict[str, Requirement], list[str]]:
    """Requirements and option lines of a requirements file."""
    reqs, options = [], []
    for i, line in _req_lines(path):
        if line.startswith("-"):
            options.append(line)
        else:
            try:
                reqs.append(str(Requirement(line)))
            except Exception as err:  # noqa: BLE001 - report the file and line
                pytest.fail(f"{path.relative_to(ROOT)}:{i}: {line!r} is not a PEP 508 requirement ({err})")
    return _requirements(reqs), options


def _probe_versions(spec: SpecifierSet) -> list[Version]:
    """The versions a pin admits, at its ends: '==X.Y.Z' -> [X.Y.Z]; '==X.Y.*' -> [X.Y.0, X.Y.99999].

    A wildcard pin admits every release in between, and a range from pyproject (a union of half-lines)
    contains all of them iff it contains both ends."""
    specs = list(spec)
    assert len(specs) == 1 and specs[0].operator in {"==", "==="}, (
        f"{spec!r} is not a pin: use '==X.Y.Z' or '==X.Y.*'")
    version = specs[0].version
    if version.endswith(".*"):
        base = version[:-2]
        return [Version(base + ".0"), Version(base + ".99999")]
    return [Version(version)]


def _admits(range_: SpecifierSet, version: Version) -> bool:
    return range_.contains(version, prereleases=True)


# --- pyproject.toml ----------------------------------------------------------------------------------


def test_pyproject_parses_and_declares_the_package(pyproject, runtime_deps, test_deps):
    project = pyproject["project"]
    assert project["name"] == "geomlib"
    Version(project["version"])  # raises on a malformed version
    SpecifierSet(project["requires-python"])
    assert pyproject["build-system"]["build-backend"] == "setuptools.build_meta"
    assert runtime_deps and test_deps
    overlap = set(runtime_deps) & set(test_deps)
    assert not overlap, f"listed both as runtime and test dependencies: {sorted(overlap)}"
    readme = project.get("readme")
    assert readme is None or (ROOT / readme).is_file(), f"pyproject's readme {readme!r} does not exist"


# --- requirements/constraints.txt ---------------------------------------------------------------------


def test_every_dependency_has_exactly_one_tested_pin(runtime_deps, test_deps, site_deps):
    pins, options = _pins(CONSTRAINTS)
    assert not options, f"constraints.txt takes no pip options (pip rejects most of them in -c): {options}"
    declared = set(runtime_deps) | set(test_deps) | set(site_deps)
    assert set(pins) - declared == set(), f"pinned but not a dependency: {sorted(set(pins) - declared)}"
    assert declared - set(pins) == set(), f"dependency without a tested pin: {sorted(declared - set(pins))}"


def test_every_constraint_pin_satisfies_the_pyproject_range(runtime_deps, test_deps, site_deps):
    pins, _ = _pins(CONSTRAINTS)
    ranges = {**runtime_deps, **test_deps, **site_deps}
    bad = []
    for name, pin in pins.items():
        assert not pin.extras, f"constraints.txt: {pin} -- no extras in a pin"
        # a marker may only narrow a pin to newer Pythons; the pins are the ones tested on Python 3.11
        assert pin.marker is None or pin.marker.evaluate({"python_version": "3.11", "python_full_version": "3.11.7"}), \
            f"constraints.txt: {pin} -- the tested pins must apply on Python 3.11"
        for v in _probe_versions(pin.specifier):
            if not _admits(ranges[name].specifier, v):
                bad.append(f"{pin} admits {v}, outside pyproject's {ranges[name]}")
    assert not bad, "\n".join(bad)


# --- binder/ ------------------------------------------------------------------------------------------


def test_binder_requirements_are_exact_pins_inside_both_ranges(runtime_deps, test_deps):
    reqs, options = _pins(BINDER_REQUIREMENTS)
    constraints, _ = _pins(CONSTRAINTS)
    ranges = {**runtime_deps, **test_deps}
    for opt in options:
        flag = opt.split("=", 1)[0].split()[0]
        assert flag in INDEX_OPTIONS, (
            f"binder/requirements.txt: {opt!r} -- only index options belong here ({', '.join(INDEX_OPTIONS)}); "
            "geomlib is installed by binder/postBuild")
    bad = []
    for name, req in reqs.items():
        if name not in ranges and name not in BINDER_EXTRAS:
            bad.append(f"{req}: not a dependency in pyproject.toml")
            continue
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==" or specs[0].version.endswith(".*"):
            bad.append(f"{req}: Binder pins exact versions ('==X.Y.Z') so every launch gets the same environment")
            continue
        v = Version(specs[0].version)
        if name in ranges and not _admits(ranges[name].specifier, v):
            bad.append(f"{req}: outside pyproject's {ranges[name]}")
        if name in constraints and not _admits(constraints[name].specifier, v):
            bad.append(f"{req}: outside the tested pin {constraints[name]}")
    assert not bad, "\n".join(bad)


def test_binder_installs_every_runtime_dependency_and_no_ci_tooling(runtime_deps, test_deps):
    reqs, _ = _pins(BINDER_REQUIREMENTS)
    missing = set(runtime_deps) - set(reqs)
    assert not missing, f"binder/requirements.txt lacks runtime dependencies: {sorted(missing)}"
    # The rest of the test extra (pytest, nbval, playwright, ...) is CI tooling that would only slow the
    # Binder build down.
    extra = set(reqs) - set(runtime_deps)
    assert extra <= BINDER_EXTRAS, f"binder/requirements.txt installs more than the notebooks need: {sorted(extra)}"


def test_binder_torch_is_the_cpu_build_from_the_cpu_index():
    reqs, options = _pins(BINDER_REQUIREMENTS)
    (spec,) = list(reqs["torch"].specifier)
    assert Version(spec.version).local == "cpu", f"Binder has no GPU: pin torch to a '+cpu' build, not {spec}"
    urls = [shlex.split(o.replace("=", " ", 1))[1] for o in options]
    assert "https://download.pytorch.org/whl/cpu" in [u.rstrip("/") for u in urls], (
        f"a '+cpu' torch is only on PyTorch's CPU index; binder/requirements.txt's index options: {options}")


def test_binder_runtime_is_a_python_that_pyproject_accepts(pyproject):
    lines = [line for _, line in _req_lines(RUNTIME)]
    assert len(lines) == 1 and re.fullmatch(r"python-3\.\d+", lines[0]), (
        f"binder/runtime.txt must hold one line 'python-3.X' (repo2docker's format), got {lines}")
    version = Version(lines[0].split("-", 1)[1])
    requires = SpecifierSet(pyproject["project"]["requires-python"])
    assert _admits(requires, version), f"{lines[0]} is outside requires-python {requires}"


def _assert_executable_script(path: Path) -> None:
    """repo2docker executes binder/postBuild and binder/start directly: a shebang and the executable bit, also
    in git (the mode a fresh clone, and Binder, gets)."""
    name = path.relative_to(ROOT).as_posix()
    assert path.read_text(encoding="utf-8").startswith("#!"), f"{name} needs a shebang line"
    assert os.access(path, os.X_OK), f"{name} is not executable (chmod +x {name})"
    git = shutil.which("git")
    if git and (ROOT / ".git").exists():
        staged = subprocess.run([git, "ls-files", "-s", "--", name], cwd=ROOT,
                                capture_output=True, text=True).stdout.split()
        if staged:  # tracked
            assert staged[0] == "100755", f"git records {name} as mode {staged[0]}, not 100755"


def test_start_runs_the_command_with_one_thread_per_kernel():
    start = ROOT / "binder" / "start"
    _assert_executable_script(start)
    out = subprocess.run([str(start), sys.executable, "-c", "import os; print(os.environ['OMP_NUM_THREADS'])"],
                         capture_output=True, text=True, env={k: v for k, v in os.environ.items()
                                                              if k != "OMP_NUM_THREADS"})
    assert out.returncode == 0 and out.stdout.strip() == "1", (out.returncode, out.stdout, out.stderr)


def test_postbuild_is_executable_and_installs_geomlib_editable():
    _assert_executable_script(POSTBUILD)
    installs = []
    for _, line in _req_lines(POSTBUILD):
        words = shlex.split(line)
        if "pip" in " ".join(words[:3]) and "install" in words:
            installs.append(words)
    editable = [w for w in installs if ("-e" in w and w[w.index("-e") + 1] == ".")
                or ("--editable" in w and w[w.index("--editable") + 1] == ".")]
    assert editable, f"binder/postBuild must 'pip install -e .' (found pip commands: {installs})"
    assert all("--no-deps" in w for w in editable), (
        "postBuild's editable install must use --no-deps: the pins in binder/requirements.txt are the environment")


# --- the two commands ---------------------------------------------------------------------------------


def test_readme_shows_the_two_commands_and_run_py_answers_them():
    readme = README.read_text(encoding="utf-8")
    for cmd in ("python3 run.py lab", "python3 run.py test"):
        assert cmd in readme, f"README.md does not show {cmd!r}"
    # run.py with no command prints its usage and exits 2 before touching .venv
    out = subprocess.run([sys.executable, str(RUN_PY)], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    for cmd in ("run.py lab", "run.py test"):
        assert cmd in out.stdout, f"run.py's usage does not mention {cmd!r}:\n{out.stdout}"
    source = RUN_PY.read_text(encoding="utf-8")
    assert re.search(r"""\{\s*["'](lab|test)["']\s*,\s*["'](lab|test)["']\s*\}""", source), (
        "run.py does not dispatch on the commands 'lab' and 'test'")
    assert "constraints.txt" in source, "run.py must install with the tested pins (requirements/constraints.txt)"


def test_ci_runs_the_readme_test_command():
    assert os.access(CI_RUN, os.X_OK), ".ci/run is not executable"
    commands = [line for _, line in _req_lines(CI_RUN)]
    assert any(re.search(r"(^|\s)python3?\s+run\.py\s+test(\s|$)", c) for c in commands), (
        f".ci/run does not call 'python3 run.py test': {commands}")


def test_readme_binder_links_open_files_that_exist():
    links = re.findall(r"https://mybinder\.org/v2/\S+?\?urlpath=lab/tree/([^)\s\"'>]+)", README.read_text("utf-8"))
    if not links:
        pytest.skip("README.md has no Binder launch link yet")
    missing = [p for p in links if not (ROOT / p).is_file()]
    assert not missing, f"README's Binder links open files that do not exist: {missing}"
