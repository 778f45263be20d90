"""The exercises: for each, the name the learner defines, the inputs it is tried on, and the reference answer.

One ``Exercise`` per id ("3.2" = exercise 2 of lecture 3). The learner writes a function ``name``; it is called
on every ``Case`` of the exercise and its output is compared with ``reference(case)``, computed by geomlib (or,
where geomlib has no such function, by an independent oracle such as ``torch.distributions``). Conceptual
questions are functions of no arguments that return a number (or a few numbers); their messages never show the
expected value, since it is the answer. A function that changes its arguments in place fails.

Two optional extras, both off by default so that an entry written as ``Exercise(id, name, title, argnames, cases,
reference)`` with plain ``Case(args, label)`` inputs works as it always did:

* **hidden checks**: a ``Case(..., public=False)`` is tried only by the grader, never by ``check(...)`` in the
  notebook, and its inputs are never shown to the learner (the exercise's points need every case, public and hidden);
* **per-student numbers**: an exercise with ``params`` (see ``coursekit.params``) gets its cases as
  ``cases(values)``, with the values drawn for the student's id (the defaults, the example version, for no id);
  questions get theirs from ``PER_STUDENT`` below and read them in the reference as ``case.hidden["params"]``.

This module never prints and never shows solution code; ``coursekit.checks`` (in the notebook) and
``coursekit.grade`` (for the teacher) build their messages from ``call`` and ``judge`` (``coursekit.judging``,
re-exported here).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from . import toys
from .judging import Result, as_output, call, compare, describe, judge  # noqa: F401  (re-exported)
from .params import Numbers, Param, draw

__all__ = ["Case", "Exercise", "EXERCISES", "LECTURES", "PER_STUDENT", "exercise", "call", "judge", "Result"]

f64 = torch.float64


@dataclass(frozen=True)
class Case:
    """One input of a check: ``args`` go to the learner's function; ``hidden`` only to the reference. A case with
    ``public=False`` is a hidden check: only the grader runs it, and the learner never sees its inputs."""

    args: tuple
    label: str
    hidden: dict = field(default_factory=dict)
    public: bool = True


@dataclass(frozen=True)
class Exercise:
    id: str  # "3.2"
    name: str  # what the learner defines
    title: str
    argnames: tuple[str, ...]
    cases: Callable[[], list[Case]]
    reference: Callable[[Case], torch.Tensor]
    points: int = 1
    rtol: float = 1e-5
    atol: float = 1e-7
    params: tuple[Param, ...] = ()  # per-student numbers; then ``cases`` is called as ``cases(values)``

    @property
    def lecture(self) -> str:
        return f"{int(self.id.split('.')[0]):02d}"

    def values(self, student=None) -> Numbers:
        """This student's numbers for the exercise (the defaults for no id; empty without ``params``)."""
        return draw(self.params, self.id, student)

    def cases_for(self, student=None) -> list[Case]:
        """The inputs for this student, public ones first and then the hidden ones (the order the checks run in)."""
        cases = self.cases(self.values(student)) if self.params else self.cases()
        return [c for c in cases if c.public] + [c for c in cases if not c.public]


EXERCISES: dict[str, Exercise] = {}


def _register(ex: Exercise) -> Exercise:
    EXERCISES[ex.id] = ex
    return ex


def exercise(exercise_id) -> Exercise:
    """The exercise with this id ("3.2"); a KeyError listing the known ids otherwise."""
    key = str(exercise_id).strip()
    if key not in EXERCISES:
        raise KeyError(f"no exercise {exercise_id!r}; known: {', '.join(EXERCISES)}")
    return EXERCISES[key]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(g, *shape):
    return torch.randn(*shape, generator=g, dtype=f64)


def _rand(g, *shape, lo=0.0, hi=1.0):
    return lo + (hi - lo) * torch.rand(*shape, generator=g, dtype=f64)


def _gl():
    import geomlib  # imported lazily: building cases needs only torch

    return geomlib


def _no_args(label="your answer"):
    return lambda: [Case((), label)]


# Questions whose numbers depend on the student: name, the example value, and the grid a student's value comes from
# (wide enough that two students rarely share an answer within the tolerance: tests/test_params.py measures it).
PER_STUDENT: dict[str, tuple[Param, ...]] = {
    "1.4": (Param("x", 2.0, 1.0, 3.0, 0.01),),  # the observation
    "2.4": (Param("p", 2.0, 1.2, 6.0, 0.01),),  # c(t) = (t^p, 0)
    "3.4": (Param("r", 1.0, 0.5, 2.0, 0.05), Param("theta", math.pi, 1.5, 3.0, 0.05)),  # (r, 0) -> (r, theta)
    "4.3": (Param("s", 3.0, 1.5, 4.0, 0.01),),  # h(z) = s R z
    "5.3": (Param("a", 0.1, 0.05, 0.5, 0.01), Param("z1", 2.0, 1.0, 3.0, 0.1)),  # sigma = a |z|^2 at (z1, 0)
    "6.4": (Param("p0", 0.1, 0.02, 0.3, 0.01), Param("p1", 0.9, 0.6, 0.98, 0.01)),  # Bernoulli(p0), Bernoulli(p1)
}


def _question(exercise_id: str, name: str, title: str, reference: Callable[[Case], torch.Tensor],
              atol: float) -> Exercise:
    """A question: ``name()`` takes no arguments and returns a number (or a few). Right when every number is within
    ``atol`` of the reference (no relative part, so the tolerance the notebook states is the whole story). With an
    entry in ``PER_STUDENT`` its numbers are the student's, in ``case.hidden["params"]``."""
    params = PER_STUDENT.get(exercise_id, ())

    def cases(values=draw(params, exercise_id)):
        return [Case((), "your answer", {"params": Numbers(values)})]

    return _register(Exercise(exercise_id, name, title, (), cases, reference, rtol=0.0, atol=atol, params=params))


# ---------------------------------------------------------------------------------------------- Lecture 1


def _normal(mu, sigma):
    return torch.distributions.Normal(mu, sigma, validate_args=False)


def _kl_prior_ref(mu, sigma):
    # oracle: torch.distributions' KL between the factors, summed over the latent dims
    prior = _normal(torch.zeros_like(mu), torch.ones_like(sigma))
    return torch.distributions.kl_divergence(_normal(mu, sigma), prior).sum(-1)


def _q_cases():
    g = _gen(11)
    return [
        Case((torch.zeros(1, 2, dtype=f64), torch.ones(1, 2, dtype=f64)), "q = N(0, I) in d=2: KL is 0"),
        Case((torch.tensor([1.0, 0.0], dtype=f64), torch.tensor([1.0, 0.5], dtype=f64)),
             "one q in d=2: mu = (1, 0), sigma = (1, 0.5)"),
        Case((_randn(g, 5, 3), _rand(g, 5, 3, lo=0.2, hi=2.0)), "a batch of 5, d=3"),
        Case((2 * _randn(g, 2, 3, 2), _rand(g, 2, 3, 2, lo=0.01, hi=0.1)),
             "a 2×3 batch, d=2, small sigma (confident encoder)"),
    ]


_register(Exercise("1.1", "kl_to_prior", "KL(N(mu, diag sigma²) ‖ N(0, I)) in closed form", ("mu", "sigma"),
                   _q_cases, lambda k: _kl_prior_ref(*k.args)))


def _reparam_cases():
    g = _gen(12)
    mu, sigma = torch.tensor([1.0, -2.0], dtype=f64), torch.tensor([0.5, 3.0], dtype=f64)
    return [
        Case((mu, sigma, torch.tensor([2.0, 1.0], dtype=f64)), "mu = (1, -2), sigma = (0.5, 3), eps = (2, 1)"),
        Case((_randn(g, 4, 3), _rand(g, 4, 3, lo=0.1, hi=2.0), _randn(g, 4, 3)), "a batch of 4, d=3, one eps each"),
        Case((_randn(g, 4, 2), _rand(g, 4, 2, lo=0.1, hi=2.0), _randn(g, 10, 4, 2)),
             "S=10 samples for each of 4 q's: eps (S, 4, d) against mu, sigma (4, d)"),
    ]


def _ref_reparam(k):
    mu, sigma, eps = k.args
    return torch.distributions.transforms.AffineTransform(mu, sigma)(eps)  # the map ε ↦ μ + σ ε, broadcast


_register(Exercise("1.2", "reparametrize", "the reparametrised sample z = mu + sigma ⊙ eps", ("mu", "sigma", "eps"),
                   _reparam_cases, _ref_reparam))


def _elbo_cases():
    g = _gen(13)
    out = []
    for seed, S, batch, label in [(0, 1, (3,), "Gaussian decoder R²→R⁴, 3 images, S=1 sample each"),
                                  (1, 16, (2, 2), "Gaussian decoder R²→R⁴, a 2×2 batch, S=16 samples each")]:
        mu, sigma = toys.gaussian(seed)
        z_true = _randn(g, *batch, 2)  # the data: drawn from the decoder, so that the ELBO is of a sensible size
        x = mu(z_true) + sigma(z_true) * _randn(g, *batch, 4)
        q_mu, q_sigma = z_true + 0.3 * _randn(g, *batch, 2), _rand(g, *batch, 2, lo=0.2, hi=1.0)
        out.append(Case((x, q_mu, q_sigma, _randn(g, S, *batch, 2), mu, sigma), label))
    return out


def _ref_elbo(k):
    x, q_mu, q_sigma, eps, mu, sigma = k.args
    z = q_mu + q_sigma * eps  # (S, ..., d)
    log_lik = _normal(mu(z), sigma(z)).log_prob(x).sum(-1)  # (S, ...)
    return log_lik.mean(0) - _kl_prior_ref(q_mu, q_sigma)


_register(Exercise("1.3", "elbo_estimate", "Monte Carlo ELBO of a Gaussian decoder",
                   ("x", "q_mu", "q_sigma", "eps", "mu", "sigma"), _elbo_cases, _ref_elbo))


def _ref_1_4(k):
    # p(z) = N(0, 1), p(x|z) = N(z, 1): the gap log p(x) − ELBO(q) is KL(q ‖ p(z|x)), p(z|x) = N(x/2, 1/2)
    x = k.hidden["params"]["x"]
    q, posterior = _normal(torch.tensor(0.0, dtype=f64), torch.tensor(1.0, dtype=f64)), \
        _normal(torch.tensor(x / 2, dtype=f64), torch.tensor(0.5, dtype=f64).sqrt())
    return torch.distributions.kl_divergence(q, posterior)


_question("1.4", "answer_1_4", "the ELBO gap when q(z|x) is the prior", _ref_1_4, atol=1e-2)

# ---------------------------------------------------------------------------------------------- Lecture 2


def _curves(seed):
    g = _gen(seed)
    return [
        Case((torch.tensor([[0.0, 0.0], [3.0, 4.0]], dtype=f64),), "one step from (0, 0) to (3, 4)"),
        Case((torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=f64),),
             "three unit steps around a square (uneven speed is fine)"),
        Case((_randn(g, 4, 7, 3),), "a batch of 4 random curves, T=7 points in d=3"),
        Case((_randn(g, 2, 3, 5, 2),), "a 2×3 batch of curves, T=5, d=2 (two batch dimensions)"),
        Case((_randn(g, 50, 1).cumsum(0),), "one curve of T=50 points in d=1, no batch dimension", public=False),
        Case((_randn(g, 2, 1, 3, 2, 4),), "a 2×1×3 batch of curves, T=2, d=4 (three batch dimensions)", public=False),
    ]


_register(Exercise("2.1", "polygon_length", "length of a discrete curve", ("c",), lambda: _curves(21),
                   lambda k: _gl().length(*k.args)))
_register(Exercise("2.2", "curve_energy", "energy of a discrete curve with Δt = 1/(T-1)", ("c",),
                   lambda: _curves(22), lambda k: _gl().energy(*k.args)))


def _decoded_cases():
    g = _gen(23)
    line = torch.stack([torch.ones(9, dtype=f64), torch.linspace(0, math.pi, 9, dtype=f64)], -1)
    return [
        Case((line, toys.polar), "polar decoder, the straight line r=1, θ from 0 to π (T=9)"),
        Case((_rand(g, 3, 6, 2, lo=0.5, hi=2.0), toys.polar), "polar decoder, 3 random curves, T=6"),
        Case((_randn(g, 5, 4, 2), toys.mlp(3)), "a small MLP decoder R²→R⁵, 5 random curves, T=4"),
    ]


_register(Exercise("2.3", "decoded_length", "length of the decoded polygon", ("c", "f"), _decoded_cases,
                   lambda k: _gl().data_length(*k.args)))


def _ref_2_4(k):
    gl = _gl()
    t = torch.linspace(0, 1, 101, dtype=f64)
    c = torch.stack([t ** k.hidden["params"]["p"], torch.zeros_like(t)], -1)
    return gl.length(c) ** 2 / (2 * gl.energy(c))


_question("2.4", "answer_2_4", "L²/(2E) for c(t) = (t^p, 0)", _ref_2_4, atol=1e-3)

# ---------------------------------------------------------------------------------------------- Lecture 3


def _jacobian_cases():
    gl, g = _gl(), _gen(31)
    out = []
    for f, z, label in [
        (toys.polar, torch.tensor([[2.0, 0.3]], dtype=f64), "polar decoder at one point (r=2, θ=0.3)"),
        (toys.mlp(1), _randn(g, 5, 2), "MLP R²→R⁵ at 5 points: J shape (5, 5, 2)"),
        (toys.mlp(2, d=3, D=4), _randn(g, 2, 3, 3), "MLP R³→R⁴ on a 2×3 batch: J shape (2, 3, 4, 3)"),
    ]:
        out.append(Case((gl.jacobian(f, z),), label, {"f": f, "z": z}))
    return out


_register(Exercise("3.1", "pullback_metric", "the pullback metric G = JᵀJ", ("J",), _jacobian_cases,
                   lambda k: _gl().pullback(k.hidden["f"])(k.hidden["z"])))


def _metric_curves():
    g = _gen(32)
    polar_metric = lambda z: torch.diag_embed(torch.stack([torch.ones_like(z[..., 0]), z[..., 0] ** 2], -1))
    line = torch.stack([torch.ones(17, dtype=f64), torch.linspace(0, math.pi, 17, dtype=f64)], -1)
    return [
        Case((line, polar_metric), "G = diag(1, r²) (polar), the line r=1, θ from 0 to π (T=17)"),
        Case((_randn(g, 3, 5, 2), toys.conformal), "G = (1 + ‖z‖²) I, 3 random curves, T=5, d=2"),
        Case((_randn(g, 2, 4, 3), toys.conformal), "G = (1 + ‖z‖²) I, 2 random curves, T=4, d=3"),
        Case((_randn(g, 4, 2, 1), toys.conformal), "G = (1 + z²) in d=1, 4 curves of T=2", public=False),
        Case((_randn(g, 12, 2), polar_metric), "G = diag(1, r²), one random curve of T=12, no batch dimension",
             public=False),
    ]


_register(Exercise("3.2", "metric_length", "length under a metric, midpoint rule", ("c", "G"), _metric_curves,
                   lambda k: _gl().length(*k.args)))


def _step_cases():
    g = _gen(33)
    return [
        Case((_randn(g, 1, 6, 2), toys.polar, 0.1), "polar decoder, one curve, T=6, lr=0.1"),
        Case((_randn(g, 3, 8, 2), toys.mlp(4), 0.05), "MLP decoder R²→R⁵, 3 curves, T=8, lr=0.05"),
    ]


def _ref_step(k):
    c, f, lr = k.args
    c = c.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(_gl().data_energy(c, f).sum(), c)
    grad[..., 0, :] = 0
    grad[..., -1, :] = 0
    return (c - lr * grad).detach()


_register(Exercise("3.3", "energy_step", "one gradient step on the decoded-curve energy", ("c", "f", "lr"),
                   _step_cases, _ref_step))


def _ref_3_4(k):
    gl, r, theta = _gl(), k.hidden["params"]["r"], k.hidden["params"]["theta"]
    c = gl.straight_line(torch.tensor([r, 0.0], dtype=f64), torch.tensor([r, theta], dtype=f64), 256)
    return gl.length(c, gl.pullback(toys.polar, step="midpoint"))  # exact on this curve: G is constant along it


_question("3.4", "answer_3_4", "pullback length of a latent straight line (polar)", _ref_3_4, atol=1e-2)

# ---------------------------------------------------------------------------------------------- Lecture 4


def _coord_cases():
    gl, g = _gl(), _gen(41)
    th = 0.7
    R = torch.tensor([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]], dtype=f64)
    A2 = torch.tensor([[2.0, 0.5], [-0.3, 1.0]], dtype=f64)
    out = []
    for f, A, z, label in [
        (toys.mlp(5), 3 * R, _randn(g, 4, 2), "MLP decoder, A = 3·rotation, 4 points"),
        (toys.mlp(6), A2, _randn(g, 2, 3, 2), "MLP decoder, a shear-and-scale A, a 2×3 batch of points"),
    ]:
        out.append(Case((gl.pullback(f)(z), A), label, {"f": f, "z": z}))
    return out


def _ref_coord(k):
    gl = _gl()
    f, z = k.hidden["f"], k.hidden["z"]
    A = k.args[1]
    Ainv = torch.linalg.inv(A)
    f_new = lambda zt: f(zt @ Ainv.T)  # the same model in the coordinates z̃ = A z
    return gl.pullback(f_new)(z @ A.T)


_register(Exercise("4.1", "change_coordinates", "the metric in new coordinates z̃ = A z", ("G", "A"),
                   _coord_cases, _ref_coord))


def _angle_cases():
    gl, g = _gl(), _gen(42)
    out = []
    for f, n, label in [(toys.polar, 1, "polar decoder at one point"), (toys.mlp(7), 6, "MLP decoder at 6 points")]:
        z = _rand(g, n, 2, lo=0.5, hi=2.0)
        u, v = _randn(g, n, 2), _randn(g, n, 2)
        out.append(Case((gl.pullback(f)(z), u, v), label, {"f": f, "z": z}))
    z = torch.tensor([[2.0, 0.0]], dtype=f64)
    e1, e2 = torch.tensor([[1.0, 0.0]], dtype=f64), torch.tensor([[1.0, 1.0]], dtype=f64)
    out.append(Case((gl.pullback(toys.polar)(z), e1, e2), "G = diag(1, 4), u = (1, 0), v = (1, 1): not 45°",
                    {"f": toys.polar, "z": z}))
    return out


_register(Exercise("4.2", "metric_angle", "the angle between tangent vectors under G", ("G", "u", "v"),
                   _angle_cases, lambda k: _gl().angle(_gl().pullback(k.hidden["f"]), k.hidden["z"], *k.args[1:])))


def _ref_4_3(k):
    gl = _gl()
    f = toys.mlp(0)
    A = k.hidden["params"]["s"] * torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=f64)
    c = gl.straight_line(torch.tensor([-1.0, 0.0], dtype=f64), torch.tensor([1.0, 1.0], dtype=f64), 64)
    ct = c @ A.T
    f_new = lambda zt: f(zt @ torch.linalg.inv(A).T)
    latent = gl.length(ct) / gl.length(c)
    pulled = gl.length(ct, gl.pullback(f_new, step="data")) / gl.length(c, gl.pullback(f, step="data"))
    return torch.stack([latent, pulled])


_question("4.3", "answer_4_3", "length ratios after z̃ = sRz", _ref_4_3, atol=1e-3)

# ---------------------------------------------------------------------------------------------- Lecture 5


def _cat(mu, sigma):
    return lambda z: torch.cat([mu(z), sigma(z)], -1)


def _expected_cases():
    gl, g = _gl(), _gen(51)
    out = []
    for seed, z, label in [(0, _randn(g, 3, 2), "Gaussian decoder R²→R⁴, 3 points"),
                           (1, 3 * _randn(g, 2, 2, 2), "Gaussian decoder, a 2×2 batch of points far from 0")]:
        mu, sigma = toys.gaussian(seed)
        out.append(Case((gl.jacobian(mu, z), gl.jacobian(sigma, z)), label, {"mu": mu, "sigma": sigma, "z": z}))
    return out


# the oracle: J_μᵀJ_μ + J_σᵀJ_σ is the plain pullback through the stacked map z -> (μ(z), σ(z))
_register(Exercise("5.1", "expected_metric", "the expected metric J_μᵀJ_μ + J_σᵀJ_σ", ("J_mu", "J_sigma"),
                   _expected_cases, lambda k: _gl().pullback(_cat(k.hidden["mu"], k.hidden["sigma"]))(k.hidden["z"])))


def _energy_cases():
    g = _gen(52)
    out = []
    for seed, c, label in [(0, _randn(g, 1, 5, 2), "Gaussian decoder, one curve, T=5"),
                           (2, 2 * _randn(g, 4, 9, 2), "Gaussian decoder, 4 curves, T=9")]:
        mu, sigma = toys.gaussian(seed)
        out.append(Case((c, mu, sigma), label))
    return out


_register(Exercise("5.2", "expected_energy", "the discrete expected curve energy", ("c", "mu", "sigma"),
                   _energy_cases, lambda k: _gl().data_energy(k.args[0], _cat(*k.args[1:]))))


def _ref_5_3(k):
    gl, a, z1 = _gl(), k.hidden["params"]["a"], k.hidden["params"]["z1"]
    mu = lambda z: z
    sigma = lambda z: a * (z * z).sum(-1, keepdim=True)
    return gl.volume(gl.pullback(_cat(mu, sigma)), torch.tensor([z1, 0.0], dtype=f64))


_question("5.3", "answer_5_3", "volume element of the expected metric", _ref_5_3, atol=1e-3)

# ---------------------------------------------------------------------------------------------- Lecture 6


def _bernoulli_kl_ref(p, q):
    B = torch.distributions.Bernoulli
    return torch.distributions.kl_divergence(B(probs=p), B(probs=q)).sum(-1)


def _kl_cases():
    g = _gen(61)
    return [
        Case((torch.tensor([0.5], dtype=f64), torch.tensor([0.5], dtype=f64)), "p = q = (0.5): KL is 0"),
        Case((_rand(g, 4, 6, lo=0.05, hi=0.95), _rand(g, 4, 6, lo=0.05, hi=0.95)), "4 pairs, D=6 pixels"),
        Case((_rand(g, 2, 3, 5, lo=0.001, hi=0.999), _rand(g, 2, 3, 5, lo=0.001, hi=0.999)),
             "a 2×3 batch, D=5, probabilities near 0 and 1"),
        Case((_rand(g, 7, 1, lo=1e-6, hi=1e-3), _rand(g, 7, 1, lo=0.2, hi=0.8)), "7 pairs, D=1, p below 1e-3",
             public=False),
        Case((_rand(g, 40, lo=0.05, hi=0.95), _rand(g, 40, lo=0.05, hi=0.95)), "one pair, D=40, no batch dimension",
             public=False),
    ]


_register(Exercise("6.1", "bernoulli_kl", "KL between products of Bernoullis", ("p", "q"), _kl_cases,
                   lambda k: _bernoulli_kl_ref(*k.args)))


def _kl_energy_cases():
    g = _gen(62)
    return [Case((_randn(g, 1, 6, 2), toys.bernoulli(0)), "Bernoulli decoder R²→(0,1)⁶, one curve, T=6"),
            Case((_randn(g, 3, 10, 2), toys.bernoulli(1, D=8)), "Bernoulli decoder R²→(0,1)⁸, 3 curves, T=10")]


def _ref_kl_energy(k):
    c, dec = k.args
    p = dec(c)  # (..., T, D)
    return (c.shape[-2] - 1) * _bernoulli_kl_ref(p[..., :-1, :], p[..., 1:, :]).sum(-1)


_register(Exercise("6.2", "kl_curve_energy", "curve energy as a sum of KL divergences", ("c", "decoder"),
                   _kl_energy_cases, _ref_kl_energy))


def _fisher_cases():
    gl, g = _gl(), _gen(63)
    out = []
    for seed, z, label in [(0, _randn(g, 3, 2), "Bernoulli decoder, 3 points"),
                           (2, 2 * _randn(g, 2, 2, 2), "Bernoulli decoder, a 2×2 batch of points")]:
        dec = toys.bernoulli(seed)
        J, p = gl.jacobian(dec, z, return_value=True)
        out.append(Case((J, p), label, {"decoder": dec, "z": z}))
    return out


def _ref_fisher(k):
    # oracle: p -> 2 arcsin √p is an isometry from (0, 1) with the Bernoulli Fisher metric 1/(p(1-p)) to the line
    dec = k.hidden["decoder"]
    return _gl().pullback(lambda z: 2 * torch.arcsin(dec(z).sqrt()))(k.hidden["z"])


_register(Exercise("6.3", "bernoulli_fisher_metric", "the pulled-back Fisher–Rao metric of a Bernoulli decoder",
                   ("J", "p"), _fisher_cases, _ref_fisher))


def _ref_6_4(k):
    gl, p0, p1 = _gl(), k.hidden["params"]["p0"], k.hidden["params"]["p1"]
    c = gl.straight_line(torch.tensor([p0], dtype=f64), torch.tensor([p1], dtype=f64), 2001)
    return gl.length(c, lambda p: (1 / (p * (1 - p)))[..., None])


_question("6.4", "answer_6_4", "Fisher–Rao distance between Bernoulli(p0) and Bernoulli(p1)", _ref_6_4,
          atol=1e-3)

LECTURES: dict[str, list[str]] = {}
for _id, _ex in EXERCISES.items():
    LECTURES.setdefault(_ex.lecture, []).append(_id)
