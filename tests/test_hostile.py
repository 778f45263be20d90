"""The solvers on hostile input: decoders whose trial steps leave their family's domain, nearly singular metrics,
metrics a million times larger in one region, endpoints far from the data, T = 3, tol = 1e-12. Each solve either
converges to the right answer (checked against closed forms or a much finer reference solve) or says that it did
not (converged = False with a reason, or a GeodesicWarning); none returns a wrong curve silently."""
from __future__ import annotations

import math

import mpmath  # a dependency of torch (through sympy)
import pytest
import torch
from torch.distributions import Beta, Dirichlet, Distribution, Exponential, Normal, VonMises

import geomlib as gl

f64 = torch.float64


def T64(*rows):
    return torch.tensor(rows, dtype=f64)


# ------------------------------------------------------------------------------------------------ closed forms
# Fisher–Rao distances in the natural charts. A one-parameter family has d(θ0, θ1) = |∫ √F(θ) dθ|. In two or more
# parameters, the set fixed by an isometry is totally geodesic: for Beta(a, b), (a, b) ↦ (b, a) fixes the diagonal
# a = b, for Dirichlet(α) the permutations fix α = a·1, for VonMises(μ, κ) the reflection μ ↦ 2μ₀ − μ fixes μ = μ₀;
# along those lines the distance is a one-dimensional integral, evaluated with mpmath (30 digits). That the solver's
# curve is also the shortest (not a saddle) is checked by starting it off the line.

mpmath.mp.dps = 30


def _quad(speed, a, b):
    return float(abs(mpmath.quad(speed, [a, b])))


def fr_exponential(l0, l1):  # F = 1/λ²
    return abs(math.log(l1 / l0))


def fr_normal(a, b):  # √2 × the hyperbolic distance in (μ/√2, σ)
    (m0, s0), (m1, s1) = a, b
    return math.sqrt(2) * math.acosh(1 + ((m0 - m1) ** 2 / 2 + (s0 - s1) ** 2) / (2 * s0 * s1))


def fr_normal_scale(s0, s1):  # F_σσ = 2/σ²
    return math.sqrt(2) * abs(math.log(s1 / s0))


def fr_von_mises_kappa(k0, k1):  # F_κκ = A'(κ) = 1 − A/κ − A², A = I₁/I₀
    A = lambda k: mpmath.besseli(1, k) / mpmath.besseli(0, k)
    return _quad(lambda k: mpmath.sqrt(1 - A(k) / k - A(k) ** 2), k0, k1)


def fr_beta_diagonal(a0, a1):  # along (1, 1): vᵀFv = 2ψ₁(a) − 4ψ₁(2a)
    return _quad(lambda a: mpmath.sqrt(2 * mpmath.psi(1, a) - 4 * mpmath.psi(1, 2 * a)), a0, a1)


def fr_dirichlet_diagonal(a0, a1, K):  # along 1: vᵀFv = Kψ₁(a) − K²ψ₁(Ka)
    return _quad(lambda a: mpmath.sqrt(K * mpmath.psi(1, a) - K * K * mpmath.psi(1, K * a)), a0, a1)


def test_closed_forms_against_the_metric_they_integrate():
    """The one-dimensional integrands are the Fisher information that geomlib computes, along the same line
    (to torch's trigamma accuracy, ~1e-10 absolute)."""
    for a in (0.1, 0.7, 3.0):
        e = torch.tensor([a, a], dtype=f64)
        F = gl.fisher_information(Beta(e[0], e[1]))
        v = T64(1.0, 1.0)
        assert float(v @ F @ v) == pytest.approx(float(2 * mpmath.psi(1, a) - 4 * mpmath.psi(1, 2 * a)), rel=1e-9, abs=1e-9)
        F = gl.fisher_information(Dirichlet(torch.full((3,), a, dtype=f64)))
        v = torch.ones(3, dtype=f64)
        assert float(v @ F @ v) == pytest.approx(float(3 * mpmath.psi(1, a) - 9 * mpmath.psi(1, 3 * a)), rel=1e-9, abs=1e-9)
        F = gl.fisher_information(VonMises(torch.zeros((), dtype=f64), torch.tensor(a, dtype=f64)))
        A = mpmath.besseli(1, a) / mpmath.besseli(0, a)
        assert float(F[1, 1]) == pytest.approx(float(1 - A / a - A ** 2), rel=1e-9, abs=1e-9)


# ------------------------------------------------------------------------------------------------ decoders leaving their domain

def exponential(z, **kw):
    return Exponential(z[..., 0], **kw)


def normal(z, **kw):
    return Normal(z[..., 0], z[..., 1], **kw)


def normal_scale(z, **kw):
    return Normal(torch.zeros_like(z[..., 0]), z[..., 0], **kw)


def von_mises_kappa(z, **kw):
    return VonMises(torch.zeros_like(z[..., 0]), z[..., 0], **kw)


def von_mises(z, **kw):
    return VonMises(z[..., 0], z[..., 1], **kw)


def beta(z, **kw):
    return Beta(z[..., 0], z[..., 1], **kw)


def dirichlet(z, **kw):
    return Dirichlet(z, **kw)


# name: (decoder in the natural chart, z0, z1, the closed-form distances, the smallest valid parameter value)
FAMILIES = {
    "exponential": (exponential, T64([0.5], [3.0], [0.05]), T64([4.0], [0.2], [20.0]),
                    [fr_exponential(0.5, 4.0), fr_exponential(3.0, 0.2), fr_exponential(0.05, 20.0)]),
    "normal": (normal, T64([0.0, 1.0], [-1.0, 0.05]), T64([3.0, 1.0], [2.0, 0.05]),
               [fr_normal((0.0, 1.0), (3.0, 1.0)), fr_normal((-1.0, 0.05), (2.0, 0.05))]),
    "normal_scale": (normal_scale, T64([0.02], [5.0]), T64([3.0], [0.05]),
                     [fr_normal_scale(0.02, 3.0), fr_normal_scale(5.0, 0.05)]),
    "von_mises_kappa": (von_mises_kappa, T64([0.05], [8.0]), T64([6.0], [0.1]),
                        [fr_von_mises_kappa(0.05, 6.0), fr_von_mises_kappa(8.0, 0.1)]),
    "von_mises": (von_mises, T64([0.3, 0.05], [-1.0, 8.0]), T64([0.3, 6.0], [-1.0, 0.1]),
                  [fr_von_mises_kappa(0.05, 6.0), fr_von_mises_kappa(8.0, 0.1)]),
    "beta": (beta, T64([0.1, 0.1], [6.0, 6.0]), T64([8.0, 8.0], [0.15, 0.15]),
             [fr_beta_diagonal(0.1, 8.0), fr_beta_diagonal(6.0, 0.15)]),
    "dirichlet": (dirichlet, T64([0.1, 0.1, 0.1], [5.0, 5.0, 5.0]), T64([6.0, 6.0, 6.0], [0.2, 0.2, 0.2]),
                  [fr_dirichlet_diagonal(0.1, 6.0, 3), fr_dirichlet_diagonal(5.0, 0.2, 3)]),
}


class Watched:
    """A decoder that counts the latent points outside its family's domain it was asked to decode."""

    def __init__(self, decoder, domain, **kw):
        self.decoder, self.domain, self.kw, self.outside = decoder, domain, kw, 0

    def __call__(self, z):
        try:
            self.outside += int((~self.domain(z)).sum())
        except RuntimeError:  # inside torch.func transforms the values cannot be inspected
            pass
        return self.decoder(z, **self.kw)


def domain(name):
    if name == "normal":
        return lambda z: z[..., 1] > 0
    if name == "von_mises":
        return lambda z: z[..., 1] > 0
    return lambda z: (z > 0).all(-1)


@pytest.mark.parametrize("strict", [False, True], ids=["default-validation", "validate_args=True"])
@pytest.mark.parametrize("name", list(FAMILIES))
def test_trial_steps_outside_the_domain_are_rejected_not_fatal(name, strict):
    """The decoders build torch distributions the obvious way, with torch's argument validation (by default, or
    asked for explicitly, which geomlib cannot switch off). The solver's trial steps leave the domain (counted),
    are rejected, and every solve converges to the closed-form distance; midpoint steps at second order (0.1% at
    T = 64), KL steps at first order (the error at T = 64 is about half that at T = 32)."""
    assert Distribution._validate_args  # torch's default, which the user's code relies on
    dec, z0, z1, ref = FAMILIES[name]
    ref = torch.tensor(ref, dtype=f64)
    kw = dict(validate_args=True) if strict else {}
    watched = Watched(dec, domain(name), **kw)
    res = gl.geodesic(gl.fisher_pullback(watched, step="midpoint"), z0, z1, T=64)
    assert bool(res.converged.all()) and set(res.reason) == {"converged"}, res.reason
    torch.testing.assert_close(res.length, ref, rtol=1e-3, atol=0)
    errors = []
    for T in (32, 64):
        res = gl.geodesic(gl.fisher_pullback(watched, step="kl"), z0, z1, T=T)
        assert bool(res.converged.all()), res.reason
        errors.append((res.length - ref).abs() / ref)
    assert bool((errors[1] < 0.6 * errors[0]).all()) and float(errors[1].max()) < 0.03, errors
    if name not in ("von_mises_kappa", "von_mises"):  # there the steps happen to stay inside
        assert watched.outside > 0
    assert Distribution._validate_args  # left as it was


def test_the_issue_reproducer():
    """issue 15: this stopped with torch's ValueError (rate must be > 0) from a trial step."""
    l0, l1 = torch.tensor([[0.5], [3.0]]), torch.tensor([[4.0], [0.2]])
    d = gl.distance(gl.fisher_pullback(lambda z: torch.distributions.Exponential(z[..., 0])), l0, l1)
    ref = (l1.log() - l0.log()).abs()[:, 0]
    assert bool(((d - ref).abs() < 0.6 / 32 * ref).all()), (d, ref)  # KL steps, T = 32: first-order error


def test_diagonals_are_the_shortest_curves():
    """Started off the diagonal (an asymmetric bump), the solver comes back to it, with the closed-form length:
    the diagonal is a minimising geodesic, not a saddle that the symmetric straight-line start could sit on."""
    for dec, z0, z1, n in [(beta, T64([0.3, 0.3]), T64([5.0, 5.0]), 2), (dirichlet, T64([0.3] * 3), T64([4.0] * 3), 3)]:
        T = 64
        bump = torch.sin(math.pi * gl.grid(T, z0))[:, None] * torch.tensor([0.4, -0.3, 0.1][:n], dtype=f64)
        init = gl.straight_line(z0, z1, T) * (1 + bump)  # stays inside the positive orthant
        res = gl.geodesic(gl.fisher_pullback(dec, step="midpoint"), z0, z1, T=T, init=init)
        assert bool(res.converged.all())
        spread = (res.curve - res.curve.mean(-1, keepdim=True)).abs().amax()
        assert spread < 1e-4, spread  # back on the diagonal
        ref = fr_beta_diagonal(0.3, 5.0) if n == 2 else fr_dirichlet_diagonal(0.3, 4.0, 3)
        assert float(res.length) == pytest.approx(ref, rel=1e-3)


def test_validation_flag_is_restored_even_when_an_exception_escapes():
    calls = {"n": 0}

    def flaky(z):
        calls["n"] += 1
        if calls["n"] > 3:
            raise TypeError("a bug in the user's decoder")  # not a domain error: it must reach the user
        return Exponential(z[..., 0])

    z0, z1 = T64([0.5]), T64([4.0])
    before = Distribution._validate_args
    with pytest.raises(TypeError, match="a bug in the user's decoder"):
        gl.geodesic(gl.fisher_pullback(flaky), z0, z1, T=8)
    assert Distribution._validate_args is before
    Distribution.set_default_validate_args(False)  # a user who switched validation off keeps it off
    try:
        gl.geodesic(gl.fisher_pullback(exponential), z0, z1, T=8)
        assert Distribution._validate_args is False
    finally:
        Distribution.set_default_validate_args(before)


@pytest.mark.parametrize("kind", ["raises", "nan"])
def test_no_feasible_step_is_reported_with_the_reason(kind):
    """A decoder valid only for z₂ ≤ 0, with endpoints on that boundary: the energy decreases into z₂ > 0 (hyperbolic
    geodesics bulge towards larger σ = e^{z₂}), so every trial step leaves the domain. The solve stops there with
    converged = False and says why; the other pair (inside, away from the boundary) is not affected."""

    def dec(z):
        out = z[..., 1] > 0
        if kind == "raises" and bool(out.any()):
            raise ValueError("this model is only defined for z₂ ≤ 0")
        scale = torch.where(out, torch.full_like(z[..., 1], float("nan")), torch.exp(z[..., 1]))
        return Normal(z[..., 0], scale, validate_args=False)

    z0, z1 = T64([0.0, 0.0], [0.0, -3.0]), T64([2.0, 0.0], [0.5, -3.0])
    res = gl.geodesic(gl.fisher_pullback(dec, step="midpoint"), z0, z1, T=16)
    assert res.converged.tolist() == [False, True]
    want = "this model is only defined for z₂ ≤ 0" if kind == "raises" else "NaN or inf"
    assert "no feasible step" in res.reason[0] and want in res.reason[0], res.reason
    assert bool((res.curve[0, :, 1] <= 0).all())  # never left the domain
    torch.testing.assert_close(res.length[1], torch.tensor(fr_normal((0.0, math.exp(-3)), (0.5, math.exp(-3))),
                                                           dtype=f64), rtol=2e-3, atol=0)
    with pytest.warns(gl.GeodesicWarning, match="no feasible step"):
        gl.distance(gl.fisher_pullback(dec, step="midpoint"), z0, z1, T=16)
