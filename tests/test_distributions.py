"""geomlib.distributions against truth: scipy's Bessel functions, quadrature on spheres, Monte-Carlo moments and KLs."""
from __future__ import annotations

import math

import mpmath  # a dependency of torch (through sympy)
import numpy as np
import pytest
import scipy.special as sp
import torch
from torch.distributions import Independent, Normal, VonMises, kl_divergence

import geomlib as gl
from conftest import DEVICES

f64 = torch.float64


def unit(v):
    return v / v.norm(dim=-1, keepdim=True)


# ------------------------------------------------------------------------------------------------ Bessel functions

@pytest.mark.parametrize("v", [0.0, 0.5, 1.0, 1.5, 2.5, 7.0, 49.0])
def test_log_bessel_iv_matches_scipy(v):
    x = torch.cat([torch.logspace(-4, 3.3, 400, dtype=f64), torch.tensor([79.999, 80.0, 80.001], dtype=f64)])
    ref = np.log(sp.ive(v, x.numpy())) + x.numpy()  # ive = I_v e^{-x}: no overflow up to x = 2000
    got = gl.log_bessel_iv(v, x)
    np.testing.assert_allclose(got.numpy(), ref, rtol=1e-12, atol=1e-9)
    # derivative: d/dx log I_v = I_{v+1}/I_v + v/x
    xg = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(gl.log_bessel_iv(v, xg).sum(), xg)
    ratio = sp.ive(v + 1, x.numpy()) / sp.ive(v, x.numpy())
    np.testing.assert_allclose(g.numpy(), ratio + v / x.numpy(), rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(gl.bessel_ratio(v, x).numpy(), ratio, rtol=1e-8, atol=1e-12)


def test_log_bessel_at_zero_and_float32():
    z = torch.zeros(2, dtype=f64)
    assert gl.log_bessel_iv(0.0, z).tolist() == [0.0, 0.0]
    assert gl.log_bessel_iv(1.5, z).tolist() == [-math.inf, -math.inf]
    # A_v(x) ≈ x/(2v+2) near 0: value 0 and a finite slope, through autograd
    x0 = torch.zeros(1, dtype=f64, requires_grad=True)
    (g,) = torch.autograd.grad(gl.bessel_ratio(1.0, x0).sum(), x0)
    assert gl.bessel_ratio(1.0, x0).item() == 0.0 and abs(g.item() - 0.25) < 1e-12
    x = torch.logspace(-3, 3, 200, dtype=f64)
    ref = gl.log_bessel_iv(1.0, x)
    got = gl.log_bessel_iv(1.0, x.float())
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), ref, rtol=1e-5, atol=1e-5)


def test_log_bessel_bad_input():
    with pytest.raises(ValueError, match=r"-1\.0"):
        gl.log_bessel_iv(0.5, torch.tensor([1.0, -1.0]))
    with pytest.raises(ValueError, match="order"):
        gl.log_bessel_iv(-1, torch.tensor([1.0]))
    for fn in (gl.log_bessel_iv, gl.bessel_ratio):  # integers would be truncated somewhere inside: refuse them
        with pytest.raises(TypeError, match=r"floating-point.*torch\.int64"):
            fn(1, torch.tensor([1, 2]))
        with pytest.raises(TypeError, match="list"):
            fn(1, [1.0])


def mp_ratio(v: float, x: float) -> tuple[float, float]:
    """A_v(x) = I_{v+1}(x)/I_v(x) and A_v'(x) = 1 − A² − (2v+1)A/x from mpmath at 60 digits (A' cancels to
    ~1/x² for large x: 60 digits leave 30 at x = 1e15)."""
    with mpmath.workdps(60):
        X = mpmath.mpf(x)
        A = mpmath.besseli(v + 1, X) / mpmath.besseli(v, X)
        return float(A), float(1 - A * A - (2 * v + 1) * A / X)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("v", [0.0, 0.5, 1.0, 1.5, 2.5, 49.0])
def test_bessel_ratio_for_every_x(v, dtype):
    """A_v(x) for x from 1e-6 to 1e15 against mpmath: in [0, 1], non-decreasing, below 1 wherever 1 − A is
    representable, accurate in A and in 1 − A (the quantity the large-x cancellation used to destroy)."""
    x = torch.logspace(-6, 15, 85, dtype=dtype)
    ref = np.array([mp_ratio(v, xi)[0] for xi in x.tolist()])  # at x as rounded to dtype
    A = gl.bessel_ratio(v, x)
    assert A.dtype == dtype
    A = A.double().numpy()
    assert (A >= 0).all() and (A <= 1).all() and (np.diff(A) >= 0).all()
    eps = torch.finfo(dtype).eps
    assert (A[1 - ref > eps] < 1).all()
    if dtype == f64:
        np.testing.assert_allclose(A, ref, rtol=1e-11)
        np.testing.assert_allclose(1 - A, 1 - ref, rtol=1e-8, atol=eps)
    else:  # computed in float64 and rounded once
        np.testing.assert_allclose(A, ref, rtol=eps, atol=0)


# ------------------------------------------------------------------------------------------------ von Mises–Fisher

def test_vmf_p3_closed_form_matches_bessel_normaliser():
    kappa = torch.cat([torch.zeros(1, dtype=f64), torch.logspace(-8, 3, 60, dtype=f64)])
    mu = torch.tensor([0.0, 0.0, 1.0], dtype=f64).expand(len(kappa), 3)
    closed = gl.VonMisesFisher(mu, kappa).log_normalizer()
    # log C_3 = (1/2) log κ − (3/2) log 2π − log I_{1/2}(κ), with I_{1/2} from scipy
    k = kappa[1:].numpy()
    ref = 0.5 * np.log(k) - 1.5 * np.log(2 * np.pi) - (np.log(sp.ive(0.5, k)) + k)
    np.testing.assert_allclose(closed[1:].numpy(), ref, rtol=1e-12, atol=1e-12)
    assert abs(closed[0].item() + math.log(4 * math.pi)) < 1e-14  # uniform on S²: 1/(4π)


@pytest.mark.parametrize("kappa", [0.0, 0.5, 5.0, 50.0])
def test_vmf_log_prob_integrates_to_one_on_S2(kappa):
    g = torch.Generator().manual_seed(0)
    mu = unit(torch.randn(3, generator=g, dtype=f64))
    # Gauss–Legendre in cos θ times the periodic trapezoid rule in φ (spectrally accurate)
    u, wu = np.polynomial.legendre.leggauss(200)
    phi = np.linspace(0, 2 * np.pi, 256, endpoint=False)
    U, PHI = np.meshgrid(u, phi, indexing="ij")
    s = np.sqrt(1 - U ** 2)
    x = torch.tensor(np.stack([s * np.cos(PHI), s * np.sin(PHI), U], -1))  # (200, 256, 3)
    dens = gl.VonMisesFisher(mu, torch.tensor(kappa, dtype=f64)).log_prob(x).exp().numpy()
    total = (dens * wu[:, None]).sum() * (2 * np.pi / len(phi))
    assert abs(total - 1) < 1e-10


@pytest.mark.parametrize("p", [2, 4, 5, 10])
@pytest.mark.parametrize("kappa", [0.0, 1.0, 30.0, 200.0])
def test_vmf_log_prob_integrates_to_one_general_p(p, kappa):
    # ∫_{S^{p-1}} p(x) dx = |S^{p-2}| ∫_{-1}^{1} p(t μ + √(1−t²) u) (1 − t²)^{(p−3)/2} dt, u ⊥ μ:
    # Gauss–Jacobi quadrature with weight (1 − t²)^{(p−3)/2}.
    t, w = sp.roots_jacobi(120, (p - 3) / 2, (p - 3) / 2)
    mu = unit(torch.arange(1.0, p + 1, dtype=f64))
    e = torch.zeros(p, dtype=f64)
    e[0] = 1
    u = unit(e - (e @ mu) * mu)
    tt = torch.tensor(t)
    x = tt[:, None] * mu + (1 - tt[:, None] ** 2).sqrt() * u
    dens = gl.VonMisesFisher(mu, torch.tensor(kappa, dtype=f64)).log_prob(x).exp().numpy()
    area = 2 * np.pi ** ((p - 1) / 2) / sp.gamma((p - 1) / 2)
    assert abs(area * (dens * w).sum() - 1) < 1e-9


@pytest.mark.parametrize("p, kappa", [(3, 0.5), (3, 50.0), (4, 5.0), (4, 50.0), (7, 0.5), (7, 20.0)])
def test_vmf_sample_moments_and_entropy(p, kappa):
    torch.manual_seed(p)
    mu = unit(torch.linspace(-1.0, 2.0, p, dtype=f64))
    q = gl.VonMisesFisher(mu, torch.tensor(kappa, dtype=f64))
    N = 10000
    x = q.sample((N,))  # (N, p)
    assert x.shape == (N, p) and torch.allclose(x.norm(dim=-1), torch.ones(N, dtype=f64), atol=1e-12)
    se = x.std(0) / math.sqrt(N)
    assert ((x.mean(0) - q.mean).abs() <= 5 * se + 1e-12).all()
    # E[(μᵀx)²] = 1 − (p−1) A_p(κ)/κ
    w2 = (x @ mu) ** 2
    A = gl.bessel_ratio(p / 2 - 1, torch.tensor(kappa, dtype=f64))
    assert abs(w2.mean() - (1 - (p - 1) * A / kappa)) <= 5 * w2.std() / math.sqrt(N)
    lp = q.log_prob(x)
    assert abs(-lp.mean() - q.entropy()) <= 5 * lp.std() / math.sqrt(N)


def test_vmf_sampling_is_seeded_and_batched():
    mu = unit(torch.randn(4, 2, 4, dtype=f64, generator=torch.Generator().manual_seed(1)))
    kappa = torch.tensor([1.0, 10.0], dtype=f64)
    q = gl.VonMisesFisher(mu, kappa)
    assert q.batch_shape == (4, 2) and q.event_shape == (4,)
    torch.manual_seed(7)
    a = q.sample((3,))
    torch.manual_seed(7)
    b = q.sample((3,))
    assert a.shape == (3, 4, 2, 4) and torch.equal(a, b)
    assert q.log_prob(a).shape == (3, 4, 2) and q.entropy().shape == (4, 2) and q.mean.shape == (4, 2, 4)
    # the loc equal to e₁ (Householder reflection degenerate) and κ = 0 (uniform)
    e1 = torch.tensor([1.0, 0.0, 0.0, 0.0], dtype=f64)
    s = gl.VonMisesFisher(e1, torch.tensor(1e3, dtype=f64)).sample((500,))
    assert (s @ e1).min() > 0.98
    s0 = gl.VonMisesFisher(e1, torch.tensor(0.0, dtype=f64)).sample((4000,))
    assert s0.mean(0).abs().max() < 5 * 0.5 / math.sqrt(4000)


def test_vmf_rsample_gradients():
    torch.manual_seed(0)
    # p = 3: pathwise gradient of E[μᵀx] = A_3(κ) in κ equals A_3'(κ) = 1/κ² − 1/sinh²κ
    kappa = torch.tensor(2.0, dtype=f64, requires_grad=True)
    mu = torch.tensor([0.0, 0.6, 0.8], dtype=f64)
    x = gl.VonMisesFisher(mu, kappa).rsample((20000,))
    w = x @ mu
    (g,) = torch.autograd.grad(w.mean(), kappa)
    k = 2.0
    assert abs(g.item() - (1 / k ** 2 - 1 / math.sinh(k) ** 2)) < 0.01
    # p = 4 with a κ that needs gradients: refuse rather than return wrong ones
    with pytest.raises(NotImplementedError, match="p = 3"):
        gl.VonMisesFisher(unit(torch.ones(4, dtype=f64)), kappa).rsample()
    # gradients in loc flow for every p: E[aᵀx] = A aᵀμ, so ∂/∂μ = A a (tangent part, μ on the sphere)
    m = unit(torch.ones(4, dtype=f64)).requires_grad_(True)
    q = gl.VonMisesFisher(m, torch.tensor(3.0, dtype=f64))
    a = torch.tensor([1.0, -2.0, 0.5, 0.0], dtype=f64)
    (gm,) = torch.autograd.grad((q.rsample((20000,)) @ a).mean(), m)
    A = q.mean_resultant_length().item()
    P = torch.eye(4, dtype=f64) - torch.outer(m.detach(), m.detach())
    assert torch.allclose(P @ gm, A * P @ a, atol=0.03)


def test_vmf_validation_errors():
    with pytest.raises(ValueError, match=r"1\.41"):
        gl.VonMisesFisher(torch.tensor([1.0, 1.0, 0.0], dtype=f64), torch.tensor(1.0, dtype=f64))
    with pytest.raises(ValueError, match=r"-2\.0"):
        gl.VonMisesFisher(torch.tensor([1.0, 0.0, 0.0], dtype=f64), torch.tensor([1.0, -2.0], dtype=f64))
    with pytest.raises(ValueError, match="nan"):
        gl.VonMisesFisher(torch.tensor([1.0, 0.0, 0.0], dtype=f64), torch.tensor(float("nan"), dtype=f64))
    with pytest.raises(ValueError, match="p ≥ 2"):
        gl.VonMisesFisher(torch.tensor([1.0], dtype=f64), torch.tensor(1.0, dtype=f64))
    q = gl.VonMisesFisher(torch.tensor([1.0, 0.0, 0.0], dtype=f64), torch.tensor(1.0, dtype=f64))
    with pytest.raises(ValueError, match=r"\(\.\.\., 3\)"):
        q.log_prob(torch.ones(4, dtype=f64))


# ------------------------------------------------------------------------------------------------ KL divergences

def mc_kl(p, q, N, seed):
    torch.manual_seed(seed)
    x = p.sample((N,))
    r = p.log_prob(x) - q.log_prob(x)
    return r.mean(0), r.std(0) / math.sqrt(N)


@pytest.mark.parametrize("p_dim", [3, 4, 6])
def test_kl_vmf_matches_monte_carlo(p_dim):
    g = torch.Generator().manual_seed(p_dim)
    mu = unit(torch.randn(3, p_dim, dtype=f64, generator=g))
    nu = unit(torch.randn(3, p_dim, dtype=f64, generator=g))
    a = gl.VonMisesFisher(mu, torch.tensor([0.3, 4.0, 40.0], dtype=f64))
    b = gl.VonMisesFisher(nu, torch.tensor([2.0, 1.0, 30.0], dtype=f64))
    est, se = mc_kl(a, b, 10000, 0)
    kl = kl_divergence(a, b)
    assert kl.shape == (3,) and ((est - kl).abs() <= 5 * se).all()
    assert kl_divergence(a, a).abs().max() < 1e-10


def test_kl_von_mises_matches_monte_carlo():
    a = VonMises(torch.tensor([0.0, 1.0, -2.0], dtype=f64), torch.tensor([0.5, 3.0, 20.0], dtype=f64))
    b = VonMises(torch.tensor([2.0, 1.5, -1.0], dtype=f64), torch.tensor([1.0, 0.1, 10.0], dtype=f64))
    est, se = mc_kl(a, b, 20000, 1)
    assert ((est - kl_divergence(a, b)).abs() <= 5 * se).all()
    assert kl_divergence(a, a).abs().max() < 1e-12


def test_product_log_prob_sample_kl():
    mu = unit(torch.tensor([[1.0, 2.0, 0.0, -1.0], [0.0, 0.0, 0.0, 1.0]], dtype=f64))
    pose = lambda m, s, q, k: gl.Product([Independent(Normal(m, s), 1), gl.VonMisesFisher(q, k),
                                         VonMises(torch.zeros(2, dtype=f64), k)])
    a = pose(torch.zeros(2, 3, dtype=f64), torch.ones(2, 3, dtype=f64), mu, torch.tensor([3.0, 8.0], dtype=f64))
    b = pose(torch.ones(2, 3, dtype=f64), 2 * torch.ones(2, 3, dtype=f64), mu.flip(-1),
             torch.tensor([1.0, 5.0], dtype=f64))
    assert a.batch_shape == (2,) and a.event_shape == (8,) and a.mean.shape == (2, 8)
    torch.manual_seed(3)
    x = a.sample((5,))
    assert x.shape == (5, 2, 8)
    parts = [Independent(Normal(torch.zeros(2, 3, dtype=f64), 1.0), 1).log_prob(x[..., :3]),
             a.parts[1].log_prob(x[..., 3:7]), a.parts[2].log_prob(x[..., 7])]
    torch.testing.assert_close(a.log_prob(x), sum(parts))
    torch.testing.assert_close(gl.Product(a.parts[:2]).entropy(), sum(q.entropy() for q in a.parts[:2]))
    est, se = mc_kl(a, b, 5000, 2)
    kl = kl_divergence(a, b)
    assert kl.shape == (2,) and ((est - kl).abs() <= 5 * se).all()


def test_torus_product_of_von_mises_integrates_to_one():
    q = gl.Product([VonMises(torch.tensor(0.5, dtype=f64), torch.tensor(2.0, dtype=f64)),
                    VonMises(torch.tensor(-1.0, dtype=f64), torch.tensor(7.0, dtype=f64))])
    th = torch.linspace(-math.pi, math.pi, 257, dtype=f64)[:-1]
    X = torch.stack(torch.meshgrid(th, th, indexing="ij"), -1)  # (256, 256, 2)
    total = q.log_prob(X).exp().sum() * (2 * math.pi / 256) ** 2
    assert abs(total.item() - 1) < 1e-8  # torch's VonMises normaliser is a polynomial fit, good to ~1e-9


def test_product_errors():
    with pytest.raises(ValueError, match=r"one batch_shape"):
        gl.Product([Normal(torch.zeros(3), 1.0), Normal(torch.zeros(2), 1.0)])
    with pytest.raises(TypeError):
        gl.Product([])
    q = gl.Product([Normal(torch.zeros(3), 1.0), Normal(torch.zeros(3), 1.0)])
    with pytest.raises(ValueError, match=r"\(\.\.\., 2\)"):
        q.log_prob(torch.zeros(3, 5))
    with pytest.raises(ValueError, match="different structure"):
        kl_divergence(q, gl.Product([Independent(Normal(torch.zeros(3, 2), 1.0), 1)]))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_vmf_dtype_and_device(device, dtype):
    torch.manual_seed(0)
    mu = unit(torch.randn(5, 4, dtype=dtype, device=device))
    kappa = torch.linspace(0.0, 100.0, 5, dtype=dtype, device=device)
    q = gl.VonMisesFisher(mu, kappa)
    x = q.sample((2,))
    assert x.dtype == dtype and x.device.type == device
    for out in (q.log_prob(x), q.entropy(), q.mean, kl_divergence(q, q)):
        assert out.dtype == dtype and out.device.type == device and torch.isfinite(out).all()
    ref = gl.VonMisesFisher(mu.double().cpu(), kappa.double().cpu())
    tol = 1e-4 if dtype == torch.float32 else 1e-12
    torch.testing.assert_close(q.entropy().double().cpu(), ref.entropy(), rtol=tol, atol=tol)


# ------------------------------------------------------------------------------------------------ the fast orders 0, 1, 2

@pytest.mark.parametrize("v", [0.0, 1.0, 2.0])
def test_log_bessel_orders_0_1_2_match_scipy_across_the_switch(v):
    """Orders 0, 1, 2 use the series below x = 1 and torch.special's i0e, i1e above: both sides agree with scipy,
    and value, first and second derivative are continuous across x = 1 (forward mode too, for Jacobians of G)."""
    x = torch.cat([torch.logspace(-6, 3.3, 300, dtype=f64), 1 + torch.tensor([-1e-9, 0.0, 1e-9], dtype=f64)])
    np.testing.assert_allclose(gl.log_bessel_iv(v, x).numpy(), np.log(sp.ive(v, x.numpy())) + x.numpy(),
                               rtol=1e-13, atol=1e-13)
    f = lambda t: gl.log_bessel_iv(v, t)
    d1 = torch.func.vmap(torch.func.grad(f))(x)
    d2 = torch.func.vmap(torch.func.jacfwd(torch.func.grad(f)))(x)
    ratio = sp.ive(v + 1, x.numpy()) / sp.ive(v, x.numpy())
    np.testing.assert_allclose(d1.numpy(), ratio + v / x.numpy(), rtol=1e-10, atol=1e-12)
    # d²/dx² log I_v = 1 − A² − (2v+1)A/x + ... = (I_v''/I_v) − (I_v'/I_v)²,  I_v'' = I_v (1 + v²/x²) − I_v'/x
    lp = ratio + v / x.numpy()
    np.testing.assert_allclose(d2.numpy(), 1 + v ** 2 / x.numpy() ** 2 - lp / x.numpy() - lp ** 2, rtol=1e-7, atol=1e-9)


# ------------------------------------------------------------------------------------------------ the κ factor c_p(κ)

def _angle_table(p, kappa, n=200001):
    """θ-grid and CDF F_κ(θ) of the angle θ = ∠(x, μ), x ~ vMF on S^{p−1}, by the midpoint rule (numpy)."""
    th = np.linspace(0.0, np.pi, n)
    mid = 0.5 * (th[1:] + th[:-1])
    dens = np.exp(kappa * (np.cos(mid) - 1)) * np.sin(mid) ** (p - 2)
    F = np.concatenate([[0.0], np.cumsum(dens)])
    return th, F / F[-1]


def _c_by_inverse_cdf(p, kappa, h=1e-4, m=20000):
    """An independent route to c_p(κ) = E[(∂θ/∂κ)²] = ∫₀¹ (∂_κ F_κ⁻¹(u))² du: inverse CDFs on a fine grid of u,
    central differences in κ."""
    u = (np.arange(m) + 0.5) / m
    th_p, F_p = _angle_table(p, kappa + h)
    th_m, F_m = _angle_table(p, kappa - h)
    dth = (np.interp(u, F_p, th_p) - np.interp(u, F_m, th_m)) / (2 * h)
    return float(np.mean(dth ** 2))


@pytest.mark.parametrize("p", [2, 3, 4])
def test_vmf_kappa_factor_against_closed_forms_and_an_inverse_cdf(p):
    # κ = 0: c_p(0) = 1/(p(p−1)); κ → ∞: (p−1)/(4κ³)
    zero = gl.vmf_kappa_factor(p, torch.zeros(1, dtype=f64))
    torch.testing.assert_close(zero, torch.tensor([1 / (p * (p - 1))], dtype=f64), rtol=1e-8, atol=0)
    big = torch.tensor([1e5, 1e7], dtype=f64)
    torch.testing.assert_close(gl.vmf_kappa_factor(p, big) * 4 * big ** 3 / (p - 1), torch.ones(2, dtype=f64),
                               rtol=1e-4, atol=0)
    kappa = torch.tensor([0.3, 2.0, 10.0, 60.0], dtype=f64)
    c = gl.vmf_kappa_factor(p, kappa)
    ref = torch.tensor([_c_by_inverse_cdf(p, k) for k in kappa.tolist()], dtype=f64)
    torch.testing.assert_close(c, ref, rtol=2e-4, atol=0)
    # at least the part of the mean: A_p'(κ)², A_p = E[cos θ]
    A = gl.bessel_ratio(p / 2 - 1, kappa)
    assert bool((c >= (1 - A ** 2 - (p - 1) * A / kappa) ** 2).all())


def test_vmf_kappa_factor_gradient_dtype_shape_and_errors():
    k = torch.tensor([[0.05, 0.7], [5.0, 300.0]], dtype=f64, requires_grad=True)
    c = gl.vmf_kappa_factor(4, k)
    assert c.shape == (2, 2)
    (g,) = torch.autograd.grad(c.sum(), k)
    kd = k.detach()
    fd = (gl.vmf_kappa_factor(4, kd * (1 + 1e-6)) - gl.vmf_kappa_factor(4, kd * (1 - 1e-6))) / (2e-6 * kd)
    torch.testing.assert_close(g, fd, rtol=1e-5, atol=1e-12)
    k0 = torch.zeros(1, dtype=f64, requires_grad=True)  # c_p is even in κ: slope 0 at κ = 0
    (g0,) = torch.autograd.grad(gl.vmf_kappa_factor(4, k0).sum(), k0)
    assert abs(g0.item()) < 1e-12
    assert gl.vmf_kappa_factor(2, torch.tensor([1.0])).dtype == torch.float32
    assert gl.vmf_kappa_factor(2, torch.zeros(0, dtype=f64)).shape == (0,)
    with pytest.raises(ValueError, match="must be ≥ 0"):
        gl.vmf_kappa_factor(4, torch.tensor([-1.0]))
    for p in (1, 2.0, True):
        with pytest.raises(ValueError, match="int ≥ 2"):
            gl.vmf_kappa_factor(p, torch.tensor([1.0]))


@pytest.mark.parametrize("p", [2, 4])
def test_vmf_kappa_arclength_integrates_the_square_root(p):
    k = torch.tensor([0.0, 1e-3, 0.4, 3.0, 25.0, 400.0, 5e4, 5e8, 5e9], dtype=f64, requires_grad=True)
    psi = gl.vmf_kappa_arclength(p, k)
    (g,) = torch.autograd.grad(psi.sum(), k)
    torch.testing.assert_close(g[1:], gl.vmf_kappa_factor(p, k.detach()[1:]).sqrt(), rtol=2e-6, atol=0)
    assert bool((psi < 0).all()) and bool((psi.diff() > 0).all())
    # ψ(b) − ψ(a) = ∫_a^b √c_p, by Simpson's rule in log κ
    from scipy.integrate import simpson
    for a, b in ((0.05, 2.0), (1.0, 300.0)):
        s = torch.linspace(math.log(a), math.log(b), 2001, dtype=f64)
        direct = torch.tensor(simpson((gl.vmf_kappa_factor(p, s.exp()).sqrt() * s.exp()).numpy(), x=s.numpy()),
                              dtype=f64)
        got = gl.vmf_kappa_arclength(p, torch.tensor(b, dtype=f64)) - gl.vmf_kappa_arclength(p, torch.tensor(a, dtype=f64))
        torch.testing.assert_close(got, direct, rtol=1e-7, atol=0)
    # ψ(∞) = 0 with the asymptote −√(p−1) κ^{-1/2}, inside and beyond the table
    torch.testing.assert_close(psi[-2:] * k.detach()[-2:].sqrt() / -math.sqrt(p - 1), torch.ones(2, dtype=f64),
                               rtol=1e-6, atol=0)
    assert gl.vmf_kappa_arclength(p, torch.tensor([3.0])).dtype == torch.float32


def _qmul(a, b):
    aw, av, bw, bv = a[..., :1], a[..., 1:], b[..., :1], b[..., 1:]
    return torch.cat([aw * bw - (av * bv).sum(-1, keepdim=True), aw * bv + bw * av + torch.linalg.cross(av, bv, dim=-1)], -1)


@pytest.mark.parametrize("p", [2, 4])
def test_expected_metric_of_a_vmf_decoder_is_mu_plus_c_kappa(p):
    """The claim behind c_p: for the random decoder r(z) = μ(z)·y with y = (cos θ, sin θ v), θ = F_κ(z)⁻¹(u) and
    one draw (u, v) shared by all z (v = ±1 on S¹, uniform on S² for S³), E[J_rᵀJ_r] = J_μᵀJ_μ + c_p(κ)∇κ∇κᵀ.
    Monte Carlo over (u, v), with J_r by central differences of the random map itself (within 5 standard errors);
    the cross terms between μ and κ average to zero."""
    g = torch.Generator().manual_seed(p)
    W, b = torch.randn(p, 2, generator=g, dtype=f64), torch.randn(p, generator=g, dtype=f64)
    mu = lambda z: unit(z @ W.T + b)
    kappa = lambda z: 3.0 + 2.0 * torch.tanh(z @ torch.tensor([1.0, -0.5], dtype=f64))
    z0, S, h = torch.tensor([0.3, -0.2], dtype=f64), 40000, 1e-5
    u = torch.rand(S, generator=g, dtype=f64).numpy()
    v = unit(torch.randn(S, p - 1, generator=g, dtype=f64))  # ±1 for p = 2
    cols = []
    for j in range(2):
        r = []
        for sgn in (1, -1):
            z = z0 + sgn * h * torch.eye(2, dtype=f64)[j]
            th_grid, F = _angle_table(p, float(kappa(z)), n=100001)
            th = torch.as_tensor(np.interp(u, F, th_grid))[:, None]  # (S, 1)
            y = torch.cat([torch.cos(th), torch.sin(th) * v], -1)  # (S, p) samples of vMF(e₁, κ(z))
            m = mu(z)
            r.append(_qmul(m.expand(S, 4), y) if p == 4 else torch.stack(
                [m[0] * y[:, 0] - m[1] * y[:, 1], m[1] * y[:, 0] + m[0] * y[:, 1]], -1))  # rotate e₁ onto μ(z)
        cols.append((r[0] - r[1]) / (2 * h))
    Jr = torch.stack(cols, -1)  # (S, p, 2)
    samples = Jr.mT @ Jr  # (S, 2, 2)
    mc, se = samples.mean(0), samples.std(0) / math.sqrt(S)
    J_mu = gl.jacobian(mu, z0)
    J_k = gl.jacobian(lambda z: kappa(z)[..., None], z0)[0]  # (2,)
    formula = J_mu.T @ J_mu + gl.vmf_kappa_factor(p, kappa(z0)) * torch.outer(J_k, J_k)
    assert bool(((mc - formula).abs() <= 5 * se + 1e-9).all()), (mc, formula, se)
