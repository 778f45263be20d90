"""geomlib.fisher against truth: KL Hessians (autograd), score covariances (Monte Carlo), and the closed-form
Fisher–Rao distances of the Normal, Bernoulli, Categorical and Exponential families."""
from __future__ import annotations

import math

import mpmath  # a dependency of torch (through sympy)
import numpy as np
import pytest
import torch
from torch.autograd.functional import hessian
from torch.distributions import (Bernoulli, Beta, Categorical, Dirichlet, Exponential, Independent, Normal, VonMises,
                                 kl_divergence)

import geomlib as gl
from conftest import DEVICES

f64 = torch.float64


def unit(v):
    return v / v.norm(dim=-1, keepdim=True)


def T64(*x):
    return torch.tensor(x, dtype=f64)


# each family: (η ↦ distribution, η at which to test); η in the coordinates fisher_information documents
FAMILIES = {
    "Normal": (lambda e: Normal(e[0], e[1]), T64(0.3, 1.7)),
    "Bernoulli": (lambda e: Bernoulli(probs=e[0]), T64(0.3)),
    "Bernoulli(logits)": (lambda e: Bernoulli(logits=e[0]), T64(-1.3)),
    "Categorical(logits)": (lambda e: Categorical(logits=e), T64(0.5, -1.0, 2.0)),
    "Beta": (lambda e: Beta(e[0], e[1]), T64(2.5, 0.7)),
    "Dirichlet": (lambda e: Dirichlet(e), T64(0.5, 2.0, 3.5)),
    "Exponential": (lambda e: Exponential(e[0]), T64(2.0)),
    "VonMises": (lambda e: VonMises(e[0], e[1]), T64(0.4, 2.3)),
    "VonMises_kappa0": (lambda e: VonMises(e[0], e[1], validate_args=False), T64(0.4, 0.0)),
    # unit loc: the builder normalises, so perturbations off the sphere are seen through the normalisation
    "VonMisesFisher": (lambda e: gl.VonMisesFisher(unit(e[:4]), e[4]), torch.cat([unit(T64(1.0, -2.0, 0.5, 1.0)),
                                                                                   T64(3.0)])),
    "Independent(Beta)": (lambda e: Independent(Beta(e.reshape(3, 2)[:, 0], e.reshape(3, 2)[:, 1]), 1),
                          T64(1.5, 2.0, 0.5, 0.8, 3.0, 4.0)),
    "Product(Normal, VonMises)": (lambda e: gl.Product([Normal(e[0], e[1]), VonMises(e[2], e[3])]),
                                  T64(1.0, 0.5, -0.3, 4.0)),
}


@pytest.mark.parametrize("name", list(FAMILIES))
def test_fisher_information_is_the_hessian_of_kl(name):
    """F(η) = ∂²/∂η'² KL(p_η ‖ p_η') at η' = η (second-order expansion of the KL)."""
    build, eta = FAMILIES[name]
    H = hessian(lambda e: kl_divergence(build(eta), build(e)), eta.clone())
    F = gl.fisher_information(build(eta))
    assert F.shape == H.shape
    torch.testing.assert_close(F, H, rtol=1e-8, atol=1e-8)


def test_fisher_information_categorical_on_the_simplex():
    """Categorical: F = diag(1/p) on tangent vectors of the simplex (Σ δp_i = 0)."""
    p = T64(0.1, 0.2, 0.3, 0.4)
    H = hessian(lambda q: kl_divergence(Categorical(probs=p), Categorical(probs=q)), p.clone())
    F = gl.fisher_information(Categorical(probs=p))
    Q = torch.eye(4, dtype=f64) - 1 / 4  # projector onto {Σ v_i = 0}
    torch.testing.assert_close(Q @ F @ Q, Q @ H @ Q, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(F, torch.diag(1 / p))


SCORE_FAMILIES = {  # batched builders: η shape (N, k) -> a batch of N distributions
    "Beta": (lambda e: Beta(e[:, 0], e[:, 1]), T64(2.5, 0.7)),
    "VonMises": (lambda e: VonMises(e[:, 0], e[:, 1]), T64(0.4, 2.3)),
    "Dirichlet": (lambda e: Dirichlet(e), T64(0.5, 2.0, 3.5)),
}


@pytest.mark.parametrize("name", list(SCORE_FAMILIES))
def test_fisher_information_is_the_covariance_of_the_score(name):
    """F(η) = E[s sᵀ], s = ∇_η log p(x | η), estimated by Monte Carlo; tolerance 5 standard errors per entry."""
    build, eta = SCORE_FAMILIES[name]
    N = 20000
    torch.manual_seed(0)
    e = eta.expand(N, -1).clone().requires_grad_(True)  # one copy of η per sample: per-sample scores in one pass
    x = build(e).sample()
    (s,) = torch.autograd.grad(build(e).log_prob(x).sum(), e)  # (N, k)
    outer = s[:, :, None] * s[:, None, :]  # (N, k, k)
    est, se = outer.mean(0), outer.std(0) / math.sqrt(N)
    F = gl.fisher_information(build(eta[None]))[0]
    assert ((est - F).abs() <= 5 * se).all(), (est, F, se)


def test_fisher_information_batched_and_independent_layout():
    loc, scale = torch.randn(4, 3, dtype=f64), torch.rand(4, 3, dtype=f64) + 0.5
    F = gl.fisher_information(Normal(loc, scale))
    assert F.shape == (4, 3, 2, 2)
    torch.testing.assert_close(F[..., 0, 0], 1 / scale ** 2)
    torch.testing.assert_close(F[..., 1, 1], 2 / scale ** 2)
    # Independent: the base's (μ_i, σ_i) per reinterpreted index, block diagonal
    Fi = gl.fisher_information(Independent(Normal(loc, scale), 1))
    assert Fi.shape == (4, 6, 6)
    torch.testing.assert_close(Fi, torch.diag_embed(torch.stack([1 / scale ** 2, 2 / scale ** 2], -1).reshape(4, 6)))


@pytest.mark.parametrize("dist, value", [
    (lambda: Normal(T64(0.0, 1.0), T64(1.0, -0.5), validate_args=False), r"-0\.5"),
    (lambda: Bernoulli(probs=T64(0.5, 1.25), validate_args=False), r"1\.25"),
    (lambda: Beta(T64(-1.5), T64(1.0), validate_args=False), r"-1\.5"),
    (lambda: Dirichlet(T64(1.0, float("nan")), validate_args=False), "nan"),
    (lambda: Exponential(T64(-3.0), validate_args=False), r"-3\.0"),
    (lambda: VonMises(T64(0.0), T64(-2.0), validate_args=False), r"-2\.0"),
])
def test_fisher_information_names_bad_parameters(dist, value):
    with pytest.raises(ValueError, match=value):
        gl.fisher_information(dist())


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("p", [2, 3, 4, 5, 7, 100])  # p = 2: VonMises; all: VonMisesFisher on S^{p−1}
def test_fisher_information_of_the_concentration_for_every_kappa(p, dtype):
    """F_κκ = Var(μᵀx) = A'(κ) = 1 − A² − (p−1)A/κ, A = I_{p/2}/I_{p/2−1}, against mpmath for κ from 1e-6 to
    1e15: positive and accurate, though its terms cancel to ~(p−1)/(2κ²) for large κ."""
    k = torch.logspace(-6, 15, 85, dtype=dtype)
    v = p / 2 - 1
    ref = []
    with mpmath.workdps(60):
        for ki in k.tolist():  # at κ as rounded to dtype
            K = mpmath.mpf(ki)
            A = mpmath.besseli(v + 1, K) / mpmath.besseli(v, K)
            ref.append(float(1 - A * A - (p - 1) * A / K))
    ref = np.array(ref)
    F = gl.fisher_information(VonMises(torch.zeros_like(k), k) if p == 2 else
                              gl.VonMisesFisher(unit(torch.ones(len(k), p, dtype=dtype)), k))
    assert F.dtype == dtype
    F_kk = F[:, -1, -1].double().numpy()
    assert (F_kk > 0).all()
    np.testing.assert_allclose(F_kk, ref, rtol=2e-8 if dtype == f64 else 2e-7, atol=0)


def test_fisher_information_unsupported_family():
    with pytest.raises(TypeError, match="Laplace"):
        gl.fisher_information(torch.distributions.Laplace(T64(0.0), T64(1.0)))


# ------------------------------------------------------------------------------------------------ the pullback

def mlp(d, D, seed, dtype=f64, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    W1 = torch.randn(d, 8, generator=g, dtype=f64).to(dtype=dtype, device=device)
    W2 = torch.randn(8, D, generator=g, dtype=f64).to(dtype=dtype, device=device) / 2
    return lambda z: torch.tanh(z @ W1) @ W2


def decoders(dtype=f64, device="cpu"):
    """name -> decoder z (..., 2) -> a distribution with batch shape (..., data dims)."""
    m3, m4, m5, s5 = mlp(2, 3, 0, dtype, device), mlp(2, 4, 1, dtype, device), mlp(2, 5, 2, dtype, device), \
        mlp(2, 5, 3, dtype, device)
    sp = torch.nn.functional.softplus
    return {
        "bernoulli": lambda z: Bernoulli(logits=m5(z)),  # (..., 5)
        "normal": lambda z: Normal(m5(z), sp(s5(z)) + 0.1),  # (..., 5)
        "categorical": lambda z: Categorical(logits=torch.stack([m5(z), s5(z)], -1)),  # (..., 5) of K = 2
        "beta": lambda z: Beta(sp(m5(z)) + 0.5, sp(s5(z)) + 0.5),
        "dirichlet": lambda z: Dirichlet(sp(m3(z)) + 0.5),  # (...,) of K = 3
        "von_mises": lambda z: VonMises(m3(z), sp(m3(z)) + 0.1),
        "pose": lambda z: gl.Product([Independent(Normal(m3(z), 0.5 + 0 * z[..., :1]), 1),
                                      gl.VonMisesFisher(unit(m4(z) + 0.3), sp(z.sum(-1)) + 1.0)]),
    }


@pytest.mark.parametrize("name", list(decoders()))
def test_pullback_is_the_hessian_of_kl_in_z(name):
    """G(z) = ∂²/∂z'² Σ_data KL(p(z) ‖ p(z')) at z' = z, for a batch of z; sqnorm = vᵀGv."""
    dec = decoders()[name]
    g = torch.Generator().manual_seed(5)
    z = torch.randn(3, 2, generator=g, dtype=f64)
    v = torch.randn(3, 2, generator=g, dtype=f64)
    G = gl.fisher_pullback(dec, step="midpoint")
    Gz = G(z)
    assert Gz.shape == (3, 2, 2)
    for b in range(3):
        H = hessian(lambda zz: kl_divergence(dec(z[b]), dec(zz)).sum(), z[b].clone())
        torch.testing.assert_close(Gz[b], H, rtol=1e-7, atol=1e-9)
    torch.testing.assert_close(G.sqnorm(z, v), torch.einsum("bi,bij,bj->b", v, Gz, v))


def test_pullback_of_a_saturated_bernoulli_decoder_is_finite():
    """Logits of ±60 give probabilities 0 and 1 in float64; the logits chart keeps G = Σ p(1−p) ∇θ ∇θᵀ finite."""
    W = T64(30.0, -20.0, 1.0, 60.0, 5.0, -2.0).reshape(2, 3)
    dec = lambda z: Bernoulli(logits=z @ W)
    z = T64(1.0, 1.0, 0.1, -0.2).reshape(2, 2)
    G = gl.fisher_pullback(dec)(z)
    assert torch.isfinite(G).all()
    for b in range(2):
        H = hessian(lambda zz: kl_divergence(dec(z[b]), dec(zz)).sum(), z[b].clone())
        torch.testing.assert_close(G[b], H, rtol=1e-7, atol=1e-12)


def test_kl_step_is_second_order_in_the_step():
    """2 KL(p(a) ‖ p(a + εv)) / ε² → vᵀG(a)v with error O(ε)."""
    dec = decoders()["normal"]
    a, v = T64(0.3, -0.2)[None], T64(1.0, 0.5)[None]
    G = gl.fisher_pullback(dec)  # step="kl"
    exact = G.sqnorm(a, v)
    errs = [((G.step_sqlen(a, a + eps * v) / eps ** 2 - exact).abs() / exact).item() for eps in (1e-2, 1e-3)]
    assert errs[0] < 0.05 and 8 < errs[0] / errs[1] < 12


def test_kl_energy_converges_to_the_metric_energy():
    """Normal in (μ, σ), straight line (0, 1) -> (2, 3): ½∫ċᵀGċ dt = ½(Δμ² + 2Δσ²)/(σ₀σ₁) = 2 exactly.
    The KL energy (T−1)ΣKL has error O(1/T) (it halves when T doubles); the midpoint rule O(1/T²)."""
    normal = lambda z: Normal(z[..., 0], z[..., 1])
    z0, z1 = T64(0.0, 1.0), T64(2.0, 3.0)
    err_kl, err_mid = [], []
    for T in (16, 32, 64, 128):
        c = gl.straight_line(z0, z1, T)
        err_kl.append(abs(gl.kl_energy(c, normal).item() - 2.0))
        assert abs(gl.energy(c, gl.fisher_pullback(normal, step="kl")).item() - 2.0) == pytest.approx(err_kl[-1])
        err_mid.append(abs(gl.energy(c, gl.fisher_pullback(normal, step="midpoint")).item() - 2.0))
    ratios = [a / b for a, b in zip(err_kl, err_kl[1:])]
    assert err_kl[-1] < 0.02 and all(1.8 < r < 2.2 for r in ratios), (err_kl, ratios)
    ratios = [a / b for a, b in zip(err_mid, err_mid[1:])]
    assert err_mid[-1] < 1e-4 and all(3.6 < r < 4.4 for r in ratios), (err_mid, ratios)


def test_kl_energy_batched_and_errors():
    dec = decoders()["bernoulli"]
    c = gl.straight_line(torch.randn(4, 2, dtype=f64), torch.randn(4, 2, dtype=f64), 10)  # (4, 10, 2)
    E = gl.kl_energy(c, dec)
    assert E.shape == (4,)
    for b in range(4):
        kl = sum(kl_divergence(dec(c[b, n]), dec(c[b, n + 1])).sum() for n in range(9))
        torch.testing.assert_close(E[b], 9 * kl)
    with pytest.raises(ValueError, match="T ≥ 2"):
        gl.kl_energy(c[:, :1], dec)


# ------------------------------------------------------------------------------------------------ Fisher–Rao distances

def normal_id(z):
    return Normal(z[..., 0], z[..., 1], validate_args=False)  # the latent point is (μ, σ)


def fr_normal(a, b):
    """Fisher–Rao distance of N(μ, σ²): √2 × the hyperbolic distance in (μ/√2, σ)."""
    return math.sqrt(2) * torch.arccosh(1 + ((a[..., 0] - b[..., 0]) ** 2 / 2 + (a[..., 1] - b[..., 1]) ** 2)
                                        / (2 * a[..., 1] * b[..., 1]))


def categorical_chart(z):  # the first K−1 probabilities
    return Categorical(probs=torch.cat([z, 1 - z.sum(-1, keepdim=True)], -1), validate_args=False)


CLOSED_FORMS = {
    "normal": (normal_id, fr_normal, T64(0.0, 1.0, 0.0, 0.5, -1.0, 2.0).reshape(3, 2),
               T64(3.0, 1.0, 1.0, 2.0, 2.0, 0.7).reshape(3, 2)),
    "bernoulli": (lambda z: Bernoulli(probs=z[..., 0], validate_args=False),
                  lambda a, b: 2 * (torch.arcsin(a[..., 0].sqrt()) - torch.arcsin(b[..., 0].sqrt())).abs(),
                  T64(0.1, 0.5)[:, None], T64(0.9, 0.6)[:, None]),
    "categorical": (categorical_chart,
                    lambda a, b: 2 * torch.arccos((torch.cat([a, 1 - a.sum(-1, keepdim=True)], -1)
                                                   * torch.cat([b, 1 - b.sum(-1, keepdim=True)], -1)).sqrt().sum(-1)),
                    T64(0.1, 0.2, 0.6, 0.1).reshape(2, 2), T64(0.7, 0.1, 0.2, 0.5).reshape(2, 2)),
    "exponential": (lambda z: Exponential(z[..., 0], validate_args=False),
                    lambda a, b: (a[..., 0].log() - b[..., 0].log()).abs(), T64(0.5, 2.0)[:, None],
                    T64(4.0, 1.5)[:, None]),
}


def test_identity_normal_metric_is_the_half_plane_metric():
    z = torch.stack([torch.randn(5, dtype=f64), torch.rand(5, dtype=f64) + 0.2], -1)
    G = gl.fisher_pullback(normal_id)(z)
    s2 = z[:, 1] ** 2
    torch.testing.assert_close(G, torch.diag_embed(torch.stack([1 / s2, 2 / s2], -1)))


@pytest.mark.parametrize("name", list(CLOSED_FORMS))
def test_geodesic_distance_matches_closed_form_fisher_rao(name):
    """Midpoint steps: second order, 0.1% at T = 24. KL steps: first order, error ~ 1/T, halving as T doubles."""
    dec, dist, z0, z1 = CLOSED_FORMS[name]
    ref = dist(z0, z1)
    res = gl.geodesic(gl.fisher_pullback(dec, step="midpoint"), z0, z1, T=24)
    assert res.converged.all()
    torch.testing.assert_close(res.length, ref, rtol=1e-3, atol=0)
    err = []
    for T in (16, 32):
        res = gl.geodesic(gl.fisher_pullback(dec, step="kl"), z0, z1, T=T)
        assert res.converged.all()
        err.append((res.length - ref).abs().max().item())
        assert err[-1] < 0.6 / T * ref.max().item()
    assert err[1] < 0.6 * err[0]


def test_distance_wrapper_and_float32():
    dec, dist, z0, z1 = CLOSED_FORMS["normal"]
    d32 = gl.distance(gl.fisher_pullback(dec, step="midpoint"), z0.float(), z1.float(), T=24)
    assert d32.dtype == torch.float32
    torch.testing.assert_close(d32.double(), dist(z0, z1), rtol=2e-3, atol=0)


# ------------------------------------------------------------------------------------------------ errors, dtypes, devices

def test_pullback_errors():
    with pytest.raises(ValueError, match="step"):
        gl.fisher_pullback(normal_id, step="data")
    with pytest.raises(TypeError, match="Distribution"):
        gl.fisher_pullback(lambda z: z)(torch.ones(2, 2, dtype=f64))
    with pytest.raises(ValueError, match="batch_shape"):
        gl.fisher_pullback(lambda z: Normal(torch.zeros(3, dtype=f64), 1.0))(torch.ones(2, 2, dtype=f64))
    # G names bad parameters; sqnorm and the steps give NaN there (a line search rejects them)
    bad = T64(0.0, -1.0)[None]
    with pytest.raises(ValueError, match=r"-1\.0"):
        gl.fisher_pullback(normal_id)(bad)
    assert torch.isnan(gl.fisher_pullback(normal_id).sqnorm(bad, T64(1.0, 1.0)[None])).all()
    assert torch.isnan(gl.fisher_pullback(normal_id).step_sqlen(bad, T64(0.0, 1.0)[None])).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pullback_dtype_and_device(device, dtype):
    z = torch.randn(2, 3, 2, dtype=f64, generator=torch.Generator().manual_seed(0))
    for name in ("bernoulli", "pose"):
        ref = gl.fisher_pullback(decoders()[name])(z)
        G = gl.fisher_pullback(decoders(dtype, device)[name])
        zz = z.to(dtype=dtype, device=device)
        Gz = G(zz)
        assert Gz.shape == (2, 3, 2, 2) and Gz.dtype == dtype and Gz.device.type == device
        tol = 1e-4 if dtype == torch.float32 else 1e-10
        torch.testing.assert_close(Gz.double().cpu(), ref, rtol=tol, atol=tol)
        c = gl.straight_line(zz[0], zz[1], 5)
        E = gl.kl_energy(c, decoders(dtype, device)[name])
        assert E.shape == (3,) and E.dtype == dtype and E.device.type == device
        F = gl.fisher_information(decoders(dtype, device)[name](zz))
        assert F.dtype == dtype and F.device.type == device
