"""Exercises and checks: exercises/ is generated from solutions/, notebooks are valid and run as shipped, the checks'
references are right (closed forms) and a check never raises on a learner's mistake."""
from __future__ import annotations

import math
import re
from pathlib import Path

import nbformat
import pytest
import torch

from coursekit import catalog, generate
from coursekit.checks import check, evaluate

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
EXERCISES = sorted((ROOT / "exercises").glob("*.ipynb"))


def test_exercises_in_sync_with_solutions():
    assert SOLUTIONS, "no solution notebooks"
    stale = [p.name for p in SOLUTIONS if generate.render(p) != (ROOT / "exercises" / p.name).read_text("utf-8")
             if (ROOT / "exercises" / p.name).exists()]
    missing = [p.name for p in SOLUTIONS if not (ROOT / "exercises" / p.name).exists()]
    extra = sorted({p.name for p in EXERCISES} - {p.name for p in SOLUTIONS})
    assert not (stale or missing or extra), (f"exercises/ is out of date (stale {stale}, missing {missing}, extra "
                                             f"{extra}); run `python -m coursekit.generate`")


@pytest.mark.parametrize("path", SOLUTIONS + EXERCISES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_is_valid(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["coursekit"]["lecture"] in catalog.LECTURES
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    if path.parent.name == "exercises":
        assert "BEGIN SOLUTION" not in code and "END SOLUTION" not in code
        assert not any("solution" in c.metadata.get("tags", []) for c in nb.cells)
        assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


def test_every_exercise_has_one_solution_region_and_one_check():
    by_lecture = {p.name[:2]: nbformat.read(p, as_version=4) for p in SOLUTIONS}
    assert set(catalog.LECTURES) <= set(by_lecture)
    for ex in catalog.EXERCISES.values():
        code = "\n".join(c.source for c in by_lecture[ex.lecture].cells if c.cell_type == "code")
        assert len(re.findall(rf"### BEGIN SOLUTION {re.escape(ex.id)}\s*$", code, flags=re.M)) == 1, ex.id
        assert re.search(rf"^def {ex.name}\(", code, flags=re.M), ex.id
        assert len(re.findall(rf'check\("{re.escape(ex.id)}", {ex.name}\)', code)) == 1, ex.id


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.name)
def test_solution_functions_pass_their_checks(path, capsys):
    """Each solution notebook's code, run here (it is ours), defines functions that pass every check of its lecture."""
    nb = nbformat.read(path, as_version=4)
    dtype, rng = torch.get_default_dtype(), torch.random.get_rng_state()
    ns = {"__name__": "__main__"}
    try:
        for cell in nb.cells:
            if cell.cell_type == "code":
                exec(compile(cell.source, f"{path.name}", "exec"), ns)
        ids = catalog.LECTURES[nb.metadata["coursekit"]["lecture"]]
        results = [evaluate(i, ns[catalog.exercise(i).name]) for i in ids]
    finally:  # the notebooks set the default dtype and the seed; leave this process as it was
        torch.set_default_dtype(dtype)
        torch.random.set_rng_state(rng)
    printed = capsys.readouterr().out
    for r in results:
        assert r.passed, (r.id, r.message)
        assert f"PASS  Exercise {r.id} " in printed


def _nb(*sources, tags=None):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    if tags:
        nb.cells.append(nbformat.v4.new_markdown_cell("the answer", metadata={"tags": tags}))
    return nb


def test_strip_solutions_replaces_regions_and_drops_solution_cells():
    src = "def f(x):\n    '''doc'''\n    ### BEGIN SOLUTION 2.1\n    return x\n    ### END SOLUTION\n\nprint(1)"
    nb = _nb(src, tags=["solution"])
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", text="x")]
    nb.cells[0].execution_count = 3
    out = generate.strip_solutions(nb)
    assert out.cells[0].source == "def f(x):\n    '''doc'''\n    raise NotImplementedError(\"Exercise 2.1\")\n\nprint(1)"
    assert out.cells[0].outputs == [] and out.cells[0].execution_count is None
    assert len(out.cells) == 1 and len(nb.cells) == 2 and "BEGIN" in nb.cells[0].source  # input unchanged


@pytest.mark.parametrize("src, msg", [
    ("### BEGIN SOLUTION 2.1\nx = 1", "never closed"),
    ("x = 1\n### END SOLUTION", "without a BEGIN"),
    ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION", "exercise id"),
    ("### BEGIN SOLUTION 9.9\nx = 1\n### END SOLUTION", "exercise id"),
    ("### BEGIN SOLUTION 2.1\n### BEGIN SOLUTION 2.2\n### END SOLUTION", "inside"),
])
def test_strip_solutions_rejects_bad_fences(src, msg):
    with pytest.raises(ValueError, match=msg):
        generate.strip_solutions(_nb(src), "nb")


def test_generate_writes_and_check_reports(tmp_path):
    sol, ex = tmp_path / "solutions", tmp_path / "exercises"
    sol.mkdir()
    nbformat.write(_nb("def f():\n    ### BEGIN SOLUTION 2.4\n    return 0.75\n    ### END SOLUTION"), sol / "a.ipynb")
    assert generate.main(["--solutions", str(sol), "--exercises", str(ex), "--check"]) == 1
    assert generate.main(["--solutions", str(sol), "--exercises", str(ex)]) == 0
    assert 'raise NotImplementedError("Exercise 2.4")' in nbformat.read(ex / "a.ipynb", as_version=4).cells[0].source
    assert generate.main(["--solutions", str(sol), "--exercises", str(ex), "--check"]) == 0
    (ex / "b.ipynb").write_text("{}")
    assert generate.generate(sol, ex, check=True) == ["b.ipynb (no solution notebook)"]


def test_exercise_notebook_runs_as_shipped_and_prints_fail():
    """The smallest exercise notebook in a real kernel: no cell errors; every check says "not implemented yet".
    (All of exercises/ also runs under nbval in CI: ``pytest --nbval-lax exercises``.)"""
    from nbclient import NotebookClient

    path = ROOT / "exercises" / "02_curves_and_lengths.ipynb"
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=60, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "".join(o.get("text", "") for o in outputs)
    assert text.count("FAIL") == len(catalog.LECTURES["02"]) and text.count("not implemented yet") == 4
    assert "PASS" not in text


# ------------------------------------------------------------------ references against closed forms

def _ref(ex_id, i=0):
    ex = catalog.exercise(ex_id)
    return ex.reference(ex.cases()[i])


def test_references_match_closed_forms():
    f64 = dict(dtype=torch.float64)
    assert torch.allclose(_ref("1.1"), torch.zeros(1, **f64))  # q = p: KL is 0
    kl = 0.5 * (1 + 1 - 1 - 0) + 0.5 * (0.25 + 0 - 1 - math.log(0.25))  # ½(σ² + μ² − 1 − log σ²) per dimension
    assert abs(_ref("1.1", 1).item() - kl) < 1e-12
    assert torch.allclose(_ref("1.2"), torch.tensor([2.0, 1.0], **f64))  # (1, −2) + (0.5, 3) ⊙ (2, 1)
    gap = (-0.5 * math.log(4 * math.pi) - 1) - (-0.5 * math.log(2 * math.pi) - 2.5)  # log N(2|0,2) − ELBO of q = N(0,1)
    assert abs(_ref("1.4").item() - gap) < 1e-12
    assert torch.allclose(_ref("2.1"), torch.tensor(5.0, **f64))  # a 3-4-5 step
    assert torch.allclose(_ref("2.1", 1), torch.tensor(3.0, **f64))
    assert torch.allclose(_ref("2.2"), torch.tensor(12.5, **f64))  # ½ (T-1) ‖Δc‖² with T = 2
    assert torch.allclose(_ref("2.2", 1), torch.tensor(4.5, **f64))  # ½ · 3 · 3
    assert abs(_ref("2.4").item() - 0.75) < 1e-4  # L = 1, E = 2/3 in the limit
    assert abs(_ref("3.2").item() - math.pi) < 1e-12  # r = 1 under diag(1, r²): exact for every T
    assert abs(_ref("3.4").item() - math.pi) < 1e-12
    G = _ref("3.1")  # polar at r = 2: diag(1, 4)
    assert torch.allclose(G, torch.diag(torch.tensor([1.0, 4.0], **f64))[None], atol=1e-12)
    assert torch.allclose(_ref("4.2", 2), torch.tensor([math.atan(2.0)], **f64))  # cos = 1/√5 under diag(1, 4)
    assert torch.allclose(_ref("4.3"), torch.tensor([3.0, 1.0], **f64), atol=1e-10)
    assert abs(_ref("5.3").item() - math.sqrt(1.16)) < 1e-12
    assert abs(_ref("6.1").item()) < 1e-15
    exact = 2 * (math.asin(math.sqrt(0.9)) - math.asin(math.sqrt(0.1)))
    assert abs(_ref("6.4").item() - exact) < 1e-6


def test_energy_step_reference_lowers_the_energy_and_keeps_endpoints():
    import geomlib as gl

    ex = catalog.exercise("3.3")
    for case in ex.cases():
        c, f, lr = case.args
        new = ex.reference(case)
        assert torch.equal(new[..., [0, -1], :], c[..., [0, -1], :])
        assert bool((gl.data_energy(new, f) < gl.data_energy(c, f)).all())


def test_expected_metric_reference_is_the_sum_of_two_pullbacks():
    import geomlib as gl

    ex = catalog.exercise("5.1")
    for case in ex.cases():
        mu, sigma, z = case.hidden["mu"], case.hidden["sigma"], case.hidden["z"]
        want = gl.pullback(mu)(z) + gl.pullback(sigma)(z)
        assert torch.allclose(ex.reference(case), want, rtol=1e-12, atol=1e-12)


def test_kl_energy_reference_is_close_to_fisher_energy_for_a_fine_curve():
    """(T-1) Σ KL ≈ ½ (T-1) Σ Δzᵀ G_FR Δz, G_FR from the arcsin isometry, on a smooth curve with many points."""
    import geomlib as gl

    dec = catalog.toys.bernoulli(0)
    z0, z1 = torch.tensor([-1.0, 0.5], dtype=torch.float64), torch.tensor([1.0, -0.3], dtype=torch.float64)
    c = gl.straight_line(z0, z1, 400)
    kl_energy = catalog.exercise("6.2").reference(catalog.Case((c, dec), ""))
    fisher = gl.energy(c, gl.pullback(lambda z: 2 * torch.arcsin(dec(z).sqrt()), step="data"))
    assert abs(kl_energy.item() / fisher.item() - 1) < 1e-2


# ------------------------------------------------------------------ checks never raise

def _polygon_length(c):
    return (c[..., 1:, :] - c[..., :-1, :]).norm(dim=-1).sum(-1)


def _not_implemented(*args):
    raise NotImplementedError("Exercise 2.1")


def _recurse(c):
    return _recurse(c)


@pytest.mark.parametrize("fn, status, words", [
    (_polygon_length, "pass", "all 4 inputs"),
    (_not_implemented, "not implemented", "not implemented yet"),
    (None, "error", "should be a function"),
    (lambda c: 1 / 0, "error", "ZeroDivisionError"),
    (_recurse, "error", "RecursionError"),
    (lambda c: "five", "error", "expected a tensor or a number"),
    (lambda c: _polygon_length(c)[..., None], "fail", "expected shape (4,), got shape (4, 1)"),
    (lambda c: _polygon_length(c) * float("nan"), "fail", "non-finite"),
    (lambda c: 2 * _polygon_length(c), "fail", "input 1/4, one step from (0, 0) to (3, 4) [c (2, 2)]: expected 5, got 10"),  # noqa: E501
    (lambda c: _polygon_length(c).float(), "pass", "all 4 inputs"),  # float32 is accurate enough
    (lambda c: _polygon_length(c).tolist(), "pass", "all 4 inputs"),  # so is a list of numbers
])
def test_check_reports_without_raising(fn, status, words, capsys):
    r = evaluate("2.1", fn)
    assert r.status == status and words in r.message and r.points == (r.max_points if status == "pass" else 0)
    check("2.1", fn)
    out = capsys.readouterr().out
    assert out.startswith("PASS" if status == "pass" else "FAIL") and words in out


def test_check_does_not_change_the_learners_inputs_for_the_next_case():
    def vandal(c):
        c.mul_(0)  # in place, on what it was given
        return _polygon_length(c)

    assert evaluate("2.1", vandal).status == "fail"
    assert catalog.exercise("2.1").cases()[0].args[0].abs().sum() > 0


def _step(c, f, lr):
    c = c.detach().clone().requires_grad_(True)
    x = f(c)  # (..., T, D)
    energy = 0.5 * (c.shape[-2] - 1) * (x[..., 1:, :] - x[..., :-1, :]).pow(2).sum()
    (g,) = torch.autograd.grad(energy, c)
    g[..., [0, -1], :] = 0
    return c.detach() - lr * g


def _step_in_place(c, f, lr):
    new = _step(c, f, lr)
    with torch.no_grad():
        c.copy_(new)  # right values, but the caller's curve is gone
    return c


@pytest.mark.parametrize("ex_id, fn", [
    ("3.3", _step_in_place),
    ("2.1", lambda c: _polygon_length(c.unsqueeze_(0))[0]),  # stochman's bug: a shape change of the caller's tensor
    ("1.2", lambda mu, sigma, eps: mu.add_(sigma * eps)),
])
def test_a_function_that_changes_its_arguments_in_place_fails(ex_id, fn):
    r = evaluate(ex_id, fn)
    assert r.status == "fail" and r.points == 0 and "changed its argument" in r.message and "in place" in r.message
    assert evaluate("3.3", _step).passed  # the same step on a copy passes


QUESTIONS = [i for i, ex in catalog.EXERCISES.items() if not ex.argnames]


@pytest.mark.parametrize("ex_id", QUESTIONS)
def test_a_wrong_answer_to_a_question_does_not_show_the_right_one(ex_id, capsys):
    """A question's expected value is its answer: a FAIL states the tolerance, never the value (nor anything that
    depends on it, e.g. the direction, which would let a learner bisect to it)."""
    ex = catalog.exercise(ex_id)
    right = ex.reference(ex.cases()[0]).reshape(-1)
    check(ex_id, lambda: 0.0 * right)
    out = capsys.readouterr().out
    assert out.startswith("FAIL") and f"within ±{ex.atol:g}" in out and "expected" not in out.split("answer:")[1], out
    assert not [v for v in right.tolist() if len(f"{v:.6g}") > 3 and f"{v:.6g}" in out], out
    others = (right + 5 * ex.atol, right - 7 * ex.atol, 3 * right + 1)  # other "right answers", away from each wrong
    for wrong in (0.0 * right, right + 10 * ex.atol, right - 10 * ex.atol, -right):
        msgs = {catalog.compare(ex, exp, wrong) for exp in (right, *others)}
        assert len(msgs) == 1 and None not in msgs, msgs  # the same words whatever the right answer is


@pytest.mark.parametrize("ex_id", QUESTIONS)
def test_a_question_accepts_its_numbers_in_any_shape_and_with_a_graph(ex_id, recwarn):
    ex = catalog.exercise(ex_id)
    right = ex.reference(ex.cases()[0]).reshape(-1)
    for shape in ((1, -1), (-1, 1), (1, 1, -1)):
        assert evaluate(ex_id, lambda: right.reshape(shape)).passed, shape
    x = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    assert evaluate(ex_id, lambda: [x * v for v in right.tolist()]).passed  # a list of tensors that need grad
    assert evaluate(ex_id, lambda: right * x).passed
    assert not [w for w in recwarn.list if issubclass(w.category, UserWarning)], [str(w.message) for w in recwarn]
    r = evaluate(ex_id, lambda: torch.cat([right, right]))
    assert r.status == "fail" and "numbers" in r.message


def test_every_question_states_its_precision():
    """The notebook text of each question says how close the answer must be (the check's atol)."""
    by_lecture = {p.name[:2]: nbformat.read(p, as_version=4) for p in SOLUTIONS}
    for ex_id in QUESTIONS:
        ex = catalog.exercise(ex_id)
        text = next(c.source for c in by_lecture[ex.lecture].cells
                    if c.cell_type == "markdown" and c.source.startswith(f"## {ex_id} "))
        assert f"±{ex.atol:g}" in text.replace("\\pm ", "±").replace("\\pm", "±"), (ex_id, text)


def test_check_unknown_exercise_prints(capsys):
    check("9.9", _polygon_length)
    assert "no exercise '9.9'" in capsys.readouterr().out


def test_value_answers_accept_numbers_and_tensors():
    assert evaluate("2.4", lambda: 0.75).passed
    assert evaluate("2.4", lambda: torch.tensor([0.75])).passed
    assert not evaluate("2.4", lambda: 1.0).passed
    assert evaluate("4.3", lambda: (3, 1)).passed
    assert "expected 2 numbers, got one number" in evaluate("4.3", lambda: 3.0).message


def test_question_1_4_text_and_tolerance_agree():
    """The text of 1.4 says a Monte Carlo estimate needs S = 10⁶ samples and a fixed seed to be within ±0.01: true, and
    with S = 10⁴ (what "very many samples" used to invite) it misses most of the time."""
    nb = nbformat.read(ROOT / "solutions" / "01_latent_variable_models.ipynb", as_version=4)
    text = next(c.source for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("## 1.4 "))
    assert "S = 10^6" in text and "±0.01" in text and "fixed seed" in text
    ref_elbo = catalog.exercise("1.3").reference  # the Monte Carlo ELBO the learner wrote in 1.3
    log_px = -0.5 * math.log(4 * math.pi) - 1.0  # log N(2 | 0, 2)

    def monte_carlo(S, seed):
        def answer_1_4():
            eps = torch.randn(S, 1, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
            args = (torch.tensor([[2.0]]), torch.zeros(1, 1), torch.ones(1, 1), eps, lambda z: z, torch.ones_like)
            return log_px - ref_elbo(catalog.Case(args, "")).item()
        return answer_1_4

    assert all(evaluate("1.4", monte_carlo(10**6, seed)).passed for seed in range(3))
    assert sum(not evaluate("1.4", monte_carlo(10**4, seed)).passed for seed in range(20)) >= 8
