"""Distributions for decoders whose outputs live on spheres, tori and products of spaces. [Lecture 6]

``VonMisesFisher(loc, concentration)`` is the von Mises–Fisher distribution on the unit sphere S^{p-1} ⊂ R^p,

    p(x | μ, κ) = C_p(κ) exp(κ μᵀx),      C_p(κ) = κ^{p/2-1} / ((2π)^{p/2} I_{p/2-1}(κ)),

with I_v the modified Bessel function of the first kind (``log_bessel_iv``). ``Product([p_1, ..., p_m])`` is the
joint law of independent parts of any families, e.g. ``Product([Independent(Normal(x, s), 1), VonMisesFisher(q, k)])``
for a position in R³ and a rotation (a unit quaternion in S³), or a product of ``VonMises`` for a torus.

KL divergences are registered with ``torch.distributions.kl_divergence`` for VonMisesFisher‖VonMisesFisher,
VonMises‖VonMises (absent from torch) and Product‖Product (the sum over parts).
"""
from __future__ import annotations

import functools
import math

import torch
from torch.distributions import Distribution, VonMises, constraints, kl_divergence, register_kl

from . import _checks

__all__ = ["log_bessel_iv", "bessel_ratio", "vmf_kappa_factor", "vmf_kappa_arclength", "VonMisesFisher", "Product"]

# ---------------------------------------------------------------------------------------------------------------
# log I_v(x), stably, differentiably (autograd and torch.func), on any device and dtype
# ---------------------------------------------------------------------------------------------------------------

_SWITCH = 80.0  # series below, uniform asymptotic (Debye) expansion above: both ~1e-10 absolute in float64
_TERMS = 160  # enough series terms for x < _SWITCH: the terms peak at k ≈ x/2 and decay fast after
# Debye polynomials P_k(t) = u_k(t)/t^k (DLMF 10.41.10), as coefficients of t^0, t^2, t^4, ...
_DEBYE = [[1.0],
          [3 / 24, -5 / 24],
          [81 / 1152, -462 / 1152, 385 / 1152],
          [30375 / 414720, -369603 / 414720, 765765 / 414720, -425425 / 414720],
          [4465125 / 39813120, -94121676 / 39813120, 349922430 / 39813120, -446185740 / 39813120,
           185910725 / 39813120]]


def _log_iv_over_xv(v: float, x: torch.Tensor) -> torch.Tensor:
    """log(I_v(x) / x^v), an even analytic function of x, finite (and smooth) at x = 0. x ≥ 0, v ≥ 0."""
    if x.dtype != torch.float64 and x.device.type != "mps":  # float32: 160 Horner steps would lose ~1e-5
        return _log_iv_over_xv(v, x.to(torch.float64)).to(x.dtype)
    if v in (0.0, 1.0, 2.0) and x.device.type != "mps":  # the circle and S³ (orders 0, 1 and A's 2): fast
        return _log_iv_over_xv_012(v, x)
    small = x < _SWITCH
    # series: I_v(x)/x^v = 2^{-v}/Γ(v+1) · h(y), h(y) = Σ_k y^k Γ(v+1)/(k! Γ(k+v+1)), y = x²/4, by Horner's rule
    # h = 1 + y/(1(1+v)) (1 + y/(2(2+v)) (1 + ...)). A polynomial in y: every derivative is right at x = 0, and
    # 0 < h ≤ I_0(x) < 1e34 for x < 80, so it does not overflow even in float32.
    series = _log_series(v, torch.where(small, x, torch.zeros_like(x)), _TERMS)
    # Debye: I_v(x) ≈ e^{R} (x/(v+R))^v / √(2πR) · Σ_k P_k(v/R) / R^k with R = √(v² + x²); valid for all v ≥ 0
    # (it is an expansion in 1/R), accurate to ~1e-10 for R ≥ 80.
    xb = torch.where(small, torch.full_like(x, _SWITCH), x)
    R = torch.sqrt(xb * xb + v * v)
    t2 = (v / R) ** 2
    S = sum(sum(a * t2 ** j for j, a in enumerate(coef)) / R ** n for n, coef in enumerate(_DEBYE))
    debye = R - v * torch.log(v + R) - 0.5 * torch.log(2 * math.pi * R) + torch.log(S)
    return torch.where(small, series, debye)


def _log_series(v: float, x: torch.Tensor, terms: int) -> torch.Tensor:
    """log(I_v(x)/x^v) by its power series, the first ``terms`` terms summed by Horner's rule in y = x²/4."""
    y = x * x / 4
    h = torch.ones_like(x)
    for k in range(terms, 0, -1):
        h = 1 + y * h / (k * (k + v))
    return torch.log(h) - math.lgamma(v + 1) - v * math.log(2)


_SMALL_TERMS = 14  # series terms for x < 1 (y = x²/4 < 1/4): the 14th is below 1e-30 of the first


def _log_iv_over_xv_012(v: float, x: torch.Tensor) -> torch.Tensor:
    """log(I_v(x)/x^v) for v = 0, 1, 2 (float64): the power series below x = 1, and above it torch.special's
    exponentially scaled i0e, i1e (Cephes' Chebyshev expansions, ~1e-15) with I_2 = I_0 − (2/x) I_1, which loses
    at most one digit for x ≥ 1. One fused kernel per function instead of 160 Horner steps, which makes KL
    divergences of von Mises and S³ von Mises–Fisher distributions (and their gradients) several times faster."""
    small = x < 1
    series = _log_series(v, torch.where(small, x, torch.zeros_like(x)), _SMALL_TERMS)
    xb = torch.where(small, torch.ones_like(x), x)
    if v == 0.0:
        big = torch.log(torch.special.i0e(xb))
    elif v == 1.0:
        big = torch.log(torch.special.i1e(xb) / xb)
    else:
        big = torch.log((torch.special.i0e(xb) - 2 * torch.special.i1e(xb) / xb) / (xb * xb))
    return torch.where(small, series, big + xb)


def _order(v) -> float:
    v = float(v)
    if not v >= 0:
        raise ValueError(f"the Bessel order v must be ≥ 0, got {v}")
    return v


def log_bessel_iv(v: float, x: torch.Tensor) -> torch.Tensor:
    """log I_v(x), the modified Bessel function of the first kind, for a real order v ≥ 0 and x ≥ 0.

    x shape=[...] -> shape=[...] (−inf at x = 0 for v > 0). Differentiable in x to any order.

    Algorithmic note: the power series I_v(x) = Σ_k (x/2)^{2k+v} / (k! Γ(k+v+1)) (160 terms, Horner's rule in
    (x/2)², so derivatives of every order are right at x = 0) for x < 80, and the uniform asymptotic (Debye)
    expansion with five terms above, in R = √(v² + x²); float32 inputs are computed in float64 and cast back.
    Both agree with scipy's ``ive`` to ~1e-10 for every v (tests/test_distributions.py).
    torch.special has only I_0 and I_1; this covers the orders p/2 − 1 of every von Mises–Fisher.
    [Lecture 6]
    """
    v = _order(v)
    _checks.as_tensor(x, "x")
    _nonnegative(x, "x")
    return _log_iv_over_xv(v, x) + v * torch.log(x) if v > 0 else _log_iv_over_xv(v, x)


def bessel_ratio(v: float, x: torch.Tensor) -> torch.Tensor:
    """A_v(x) = I_{v+1}(x) / I_v(x) ∈ [0, 1), x ≥ 0 shape=[...] -> shape=[...]; A_v(0) = 0.

    For the von Mises–Fisher on S^{p-1}, A_p(κ) = I_{p/2}(κ)/I_{p/2-1}(κ) = E[μᵀx] (v = p/2 − 1). [Lecture 6]

    Algorithmic note: computed in float64 (float32 is cast back at the end, so it rounds to exactly 1 once
    1 − A < 6e-8, i.e. x ≳ 1e7). For x ≥ max(200, (v+1)²/2) the asymptotic series A_v(x) ~ Σ_k a_k x^{-k},
    a_0 = 1, a_1 = −(2v+1)/2, ... (12 terms, error < 1e-15), as the ratio of two Bessel functions each near e^x
    loses a relative ~1e-16·x; below, the ratio of the series or Debye expansions of ``log_bessel_iv``.
    """
    v = _order(v)
    _checks.as_tensor(x, "x")
    _nonnegative(x, "x")
    return _ratio(v, x)


_ASYMPTOTIC_TERMS = 12  # terms of the series of A_v in 1/x: relative error < 1e-15 where used (vs mpmath)


def _ratio_and_slope(v: float, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A_v(x) and its derivative A_v'(x) = 1 − A² − (2v+1) A/x ≥ 0 (the Fisher information of κ), both accurate
    to a relative ~1e-8 (A to ~1e-12) for every x ≥ 0, float32 rounded once at the end.

    The derivative is a difference of O(1) terms that cancel to ~(2v+1)/(2x²) for large x, so there it comes
    from the asymptotic series instead: A ~ Σ_k a_k x^{-k} solves the Riccati equation A' = 1 − A² − (2v+1)A/x
    order by order, 2a_n = (n − 1 − (2v+1)) a_{n−1} − Σ_{0<i<n} a_i a_{n−i}, and A' ~ Σ_k −k a_k x^{-k-1}.
    """
    dtype = x.dtype
    if dtype != torch.float64 and x.device.type != "mps":  # float32: A and A' cancel catastrophically
        x = x.to(torch.float64)
    c, a = 2 * v + 1, [1.0]
    for n in range(1, _ASYMPTOTIC_TERMS + 1):
        a.append(0.5 * ((n - 1 - c) * a[n - 1] - sum(a[i] * a[n - i] for i in range(1, n))))
    x_big = max(200.0, (v + 1) ** 2 / 2)
    big = x >= x_big
    # each branch sees only its own x (a harmless stand-in elsewhere), so neither makes inf or NaN gradients
    xs = torch.where(big, torch.full_like(x, x_big), x)
    A_over_x = torch.exp(_log_iv_over_xv(v + 1, xs) - _log_iv_over_xv(v, xs))  # smooth through x = 0
    A_small = xs * A_over_x
    slope_small = 1 - A_small * A_small - c * A_over_x
    y = 1 / torch.where(big, x, torch.full_like(x, x_big))
    A_big, slope_big = torch.zeros_like(y), torch.zeros_like(y)
    for k in range(_ASYMPTOTIC_TERMS, 0, -1):  # Horner's rule in y = 1/x
        A_big = (A_big + a[k]) * y
        slope_big = (slope_big - k * a[k]) * y
    A = torch.where(big, 1 + A_big, A_small)
    slope = torch.where(big, slope_big * y, slope_small)
    return A.to(dtype), slope.to(dtype)


def _ratio(v: float, x: torch.Tensor) -> torch.Tensor:
    return _ratio_and_slope(v, x)[0]


def _nonnegative(x: torch.Tensor, name: str) -> None:
    try:
        bad = bool(((x < 0) | torch.isnan(x)).any())
    except RuntimeError:  # inside torch.func.vmap: data-dependent checks are impossible, skip them
        return
    if bad:
        vals = x[(x < 0) | torch.isnan(x)].flatten()[:5].tolist()
        raise ValueError(f"{name} must be ≥ 0 (and not NaN); found values {vals} in a tensor of shape "
                         f"{tuple(x.shape)}")


_QUAD_NODES = 513  # trapezoid nodes on [0, θ_max] for vmf_kappa_factor, and every other node for Richardson
_QUAD_WIDTHS = 25.0  # θ_max = min(π, 25/√κ): beyond, the density is below e^{-312} of its peak (and its square
#                      stays a normal float64, so gradients through the tails never meet 0/0)
_QUAD_CHUNK = 2048  # concentrations per quadrature batch: (chunk, nodes) float64 temporaries of 8 MB


def vmf_kappa_factor(p: int, kappa: torch.Tensor) -> torch.Tensor:
    """c_p(κ) = E[(∂θ/∂κ)²], the weight of J_κᵀJ_κ in the expected metric of a von Mises–Fisher decoder.

    θ = arccos(μᵀx) ∈ [0, π] is the angle between a sample x ~ vMF(μ, κ) on S^{p−1} and the mean direction; its
    density is f_κ(θ) = e^{κ cos θ} sin^{p−2}θ / Z(κ). With one uniform draw u held fixed, θ(κ) = F_κ⁻¹(u)
    (the inverse CDF) moves with κ, ∂θ/∂κ = −∂_κF_κ(θ)/f_κ(θ), and

        c_p(κ) = ∫₀^π (∂_κF_κ(θ))² / f_κ(θ) dθ,      ∂_κF_κ(θ) = ∫₀^θ (cos t − A_p(κ)) f_κ(t) dt,

    which is also the 2-Wasserstein metric of the family of laws of θ. Closed forms at the ends:
    c_p(0) = 1/(p(p−1)) (1/2 on the circle, 1/12 on S³) and c_p(κ) = (p−1)/(4κ³)(1 + O(1/κ)) as κ → ∞.
    It is at least A_p'(κ)², the part that the mean E[x] = A_p(κ)μ alone would give.

    Why it is the weight: on the groups S¹ (angles) and S³ (unit quaternions) the random decoder
    r(z) = μ(z)·y, y = (cos θ(κ(z)), sin θ(κ(z)) v) with v uniform on the unit sphere of the other coordinates
    (one draw (u, v) for all z), has r(z) ~ vMF(μ(z), κ(z)) and E[J_rᵀJ_r] = J_μᵀJ_μ + c_p(κ) ∇κ∇κᵀ: left
    multiplication by a unit quaternion is a rotation of R^p, so the mean direction enters with weight exactly 1,
    and the cross terms average to 0 over v. [Lecture 8]

    p ≥ 2 (the sphere S^{p−1} ⊂ R^p); kappa ≥ 0 shape=[...] -> shape=[...], differentiable in κ.

    Algorithmic note: trapezoid quadrature in float64 on 513 nodes of [0, θ_max], θ_max = min(π, 25/√κ), and
    on every other node, combined by Richardson extrapolation (the trapezoid error is O(h²)); ∂_κF is accumulated
    from θ = 0 up to the angle where cos θ = A_p(κ) and from θ_max down beyond it, so that each side sums terms of
    one sign and its ratio to the small f_κ in the tails keeps its relative accuracy. Relative error below 1e-6
    for every κ ≥ 0 (tests/test_distributions.py: closed forms at κ = 0, the asymptote, a fine quadrature and a
    Monte-Carlo average of (∂θ/∂κ)² by finite differences of the inverse CDF).
    """
    if isinstance(p, bool) or not isinstance(p, int) or p < 2:
        raise ValueError(f"p (the sphere S^(p-1) lives in R^p) must be an int ≥ 2, got {p!r}")
    _checks.as_tensor(kappa, "kappa")
    _nonnegative(kappa, "kappa")
    dtype = kappa.dtype
    flat = kappa.reshape(-1).to(torch.float64)
    out = [_kappa_factor(p, k) for k in flat.split(_QUAD_CHUNK)] if flat.numel() else [flat]
    return torch.cat(out).reshape(kappa.shape).to(dtype)


def _kappa_factor(p: int, kappa: torch.Tensor) -> torch.Tensor:
    """vmf_kappa_factor for a flat float64 kappa shape=[K]: Richardson's (4 c_h − c_2h)/3."""
    u = torch.linspace(0, 1, _QUAD_NODES, dtype=kappa.dtype, device=kappa.device)  # (n,)
    # θ_max: all of [0, π] for small κ, 25 standard deviations 1/√κ of θ for large κ (safe at κ = 0)
    t_max = torch.minimum(torch.full_like(kappa, math.pi), _QUAD_WIDTHS / kappa.clamp_min(1e-300).sqrt())
    th = t_max[:, None] * u  # (K, n)
    cos = torch.cos(th)
    f = torch.exp(kappa[:, None] * (cos - 1))  # unnormalised, scaled by e^{-κ} so that it cannot overflow
    if p > 2:
        f = f * torch.sin(th) ** (p - 2)
    dt = t_max / (_QUAD_NODES - 1)  # (K,)
    fine = _kappa_factor_trapezoid(cos, f, dt)
    coarse = _kappa_factor_trapezoid(cos[:, ::2], f[:, ::2], 2 * dt)
    return (4 * fine - coarse) / 3


def _kappa_factor_trapezoid(cos: torch.Tensor, f: torch.Tensor, dt: torch.Tensor) -> torch.Tensor:
    """∫ (∂_κF)²/f dθ by the trapezoid rule on a uniform grid: cos θ and the unnormalised density (K, n), step (K,)."""
    trap = lambda y: dt * (y.sum(-1) - 0.5 * (y[:, 0] + y[:, -1]))  # (K,)
    f = f / trap(f)[:, None]
    A = trap(cos * f)  # E[cos θ] = A_p(κ), on this grid
    g = (cos - A[:, None]) * f  # ∂_κ f_κ(θ)
    seg = 0.5 * dt[:, None] * (g[:, 1:] + g[:, :-1])  # (K, n-1)
    zero = torch.zeros_like(seg[:, :1])
    left = torch.cat([zero, seg.cumsum(-1)], -1)  # ∫₀^θ g: terms ≥ 0 while cos θ > A
    right = -torch.cat([seg.flip(-1).cumsum(-1).flip(-1), zero], -1)  # −∫_θ^θmax g: terms ≤ 0 where cos θ < A
    dF = torch.where(cos >= A[:, None], left, right)
    pos = f > 0
    return trap(torch.where(pos, dF * dF / torch.where(pos, f, torch.ones_like(f)), torch.zeros_like(f)))


_ARC_NODES = 1025  # nodes of the table of ψ_p, uniform in s = asinh κ ∈ [0, asinh 1e9]
_ARC_SMAX = math.asinh(1e9)


def vmf_kappa_arclength(p: int, kappa: torch.Tensor) -> torch.Tensor:
    """ψ_p(κ) = −∫_κ^∞ √c_p(s) ds, a coordinate on the concentrations in which the κ-term of the expected metric
    of a von Mises–Fisher decoder is Euclidean: c_p(κ) dκ² = dψ², so J_κᵀ c_p(κ) J_κ = J_ψᵀJ_ψ (c_p is
    ``vmf_kappa_factor``). ψ_p increases from ψ_p(0) < 0 to ψ_p(∞) = 0; ψ_p(κ) ≈ −√(p−1) κ^{-1/2} for large κ.

    With it the expected metric of a decoder to vMF(μ(z), κ(z)) on S¹ or S³ is the plain pullback metric of
    z ↦ (μ(z), ψ_p(κ(z))), and the length of a step from κ_a to κ_b is exactly |ψ_p(κ_b) − ψ_p(κ_a)| (a
    midpoint rule in κ would badly underestimate a step across a steep change of κ, c_p falling like κ⁻³).

    p ≥ 2; kappa ≥ 0 shape=[...] -> shape=[...], differentiable (C¹) in κ. [Lecture 8]

    Algorithmic note: a table of ψ_p at 1025 nodes uniform in s = asinh κ (κ from 0 to 1e9), built once per
    (p, dtype, device) from c_p at the nodes and at 3 Gauss–Legendre points per interval, and read by cubic
    Hermite interpolation with the exact slopes dψ/ds = √c_p(κ) cosh s at the nodes (error below 1e-9 of
    |ψ_p(0)|); beyond 1e9 the asymptote −√(p−1)κ^{-1/2}. tests/test_distributions.py checks dψ/dκ = √c_p and
    ψ_p(b) − ψ_p(a) against a direct quadrature of √c_p.
    """
    if isinstance(p, bool) or not isinstance(p, int) or p < 2:
        raise ValueError(f"p (the sphere S^(p-1) lives in R^p) must be an int ≥ 2, got {p!r}")
    _checks.as_tensor(kappa, "kappa")
    _nonnegative(kappa, "kappa")
    psi, slope = _arclength_table(p, str(kappa.device))  # float64 (n,) each
    k = kappa.to(torch.float64)
    s = torch.asinh(k)
    h = _ARC_SMAX / (_ARC_NODES - 1)
    x = (s / h).clamp(max=_ARC_NODES - 1 - 1e-9)
    i = x.detach().floor().long().clamp(0, _ARC_NODES - 2)
    t = x - i
    # cubic Hermite basis on [s_i, s_{i+1}], slopes in ds scaled by the interval h
    h00, h10, h01, h11 = 2 * t ** 3 - 3 * t ** 2 + 1, t ** 3 - 2 * t ** 2 + t, -2 * t ** 3 + 3 * t ** 2, t ** 3 - t ** 2
    inside = h00 * psi[i] + h10 * h * slope[i] + h01 * psi[i + 1] + h11 * h * slope[i + 1]
    far = -math.sqrt(p - 1) * k.clamp_min(1e9).rsqrt()
    return torch.where(s < _ARC_SMAX, inside, far).to(kappa.dtype)


@functools.lru_cache(maxsize=None)
def _arclength_table(p: int, device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """ψ_p and dψ/ds at the table's nodes s_j = j·h (float64, on ``device``): a constant, built on first use."""
    kw = dict(dtype=torch.float64, device=device)
    n, h = _ARC_NODES, _ARC_SMAX / (_ARC_NODES - 1)
    s = torch.arange(n, **kw) * h  # (n,)
    slope = vmf_kappa_factor(p, torch.sinh(s)).sqrt() * torch.cosh(s)  # dψ/ds at the nodes
    g = torch.tensor([-math.sqrt(0.6), 0.0, math.sqrt(0.6)], **kw)  # 3-point Gauss–Legendre on [-1, 1]
    w = torch.tensor([5 / 9, 8 / 9, 5 / 9], **kw)
    mid = s[:-1, None] + 0.5 * h * (1 + g)  # (n-1, 3)
    piece = 0.5 * h * (vmf_kappa_factor(p, torch.sinh(mid)).sqrt() * torch.cosh(mid) * w).sum(-1)  # ∫ over each interval
    tail = math.sqrt(p - 1) / math.sqrt(math.sinh(_ARC_SMAX))  # ∫ from κ_max to ∞ of √((p−1)/4) κ^{-3/2}
    psi = -(torch.cat([piece.flip(0).cumsum(0).flip(0), piece.new_zeros(1)]) + tail)  # ψ(s_j) = −∫_{s_j}^∞
    return psi, slope


# ---------------------------------------------------------------------------------------------------------------
# von Mises–Fisher
# ---------------------------------------------------------------------------------------------------------------

def _unit_tol(dtype: torch.dtype) -> float:
    """How far from 1 a norm may be for a point to count as on the unit sphere (round-off of a normalisation,
    also after a cast from float32 to float64)."""
    return 1e-6 if dtype == torch.float64 else 1e-4


class _UnitSphere(constraints.Constraint):
    event_dim = 1

    def check(self, value):
        return (value.norm(dim=-1) - 1).abs() <= _unit_tol(value.dtype)

    def __repr__(self):
        return "UnitSphere()"


def _log_c3(kappa: torch.Tensor) -> torch.Tensor:
    """log C_3(κ) = log κ − log(4π sinh κ) = log(κ / (1 − e^{−2κ})) − κ − log 2π, smooth at κ = 0."""
    tiny = kappa < 1e-5
    ks = torch.where(tiny, torch.ones_like(kappa), kappa)
    big = torch.log(ks / -torch.expm1(-2 * ks))
    near0 = torch.log(0.5 * (1 + kappa + kappa * kappa / 3))  # κ/(1 − e^{−2κ}) = ½(1 + κ + κ²/3 + O(κ⁴))
    return torch.where(tiny, near0, big) - kappa - math.log(2 * math.pi)


class VonMisesFisher(Distribution):
    """The von Mises–Fisher distribution on S^{p-1} = {x ∈ R^p : ‖x‖ = 1}:

        log p(x) = log C_p(κ) + κ μᵀx,     log C_p(κ) = (p/2 − 1) log κ − (p/2) log 2π − log I_{p/2−1}(κ).

    Args: loc μ shape=[..., p], unit norm (p ≥ 2); concentration κ ≥ 0 shape=[...] (broadcast with loc's batch).
    batch_shape = broadcast(loc.shape[:-1], concentration.shape), event_shape = (p,). κ = 0 is the uniform law.

    mean = A_p(κ) μ with A_p = I_{p/2}/I_{p/2−1} (``bessel_ratio``); entropy = −log C_p(κ) − κ A_p(κ).
    For p = 3 the normaliser has the closed form C_3(κ) = κ / (4π sinh κ), used here.

    Sampling (Wood 1994): w = μᵀx is drawn from its marginal ∝ e^{κw} (1 − w²)^{(p−3)/2} (by rejection from a
    Beta proposal; for p = 3 exactly, by the inverse CDF w = 1 + log(u + (1−u) e^{−2κ})/κ), a direction uniform on
    the sphere orthogonal to e₁, and a Householder reflection that maps e₁ to μ. Uses torch's global generator, so
    ``torch.manual_seed`` makes samples reproducible. ``rsample`` is reparameterised in μ for every p, and in κ
    for p = 3; for p ≠ 3 it refuses a κ that requires grad rather than return wrong gradients. [Lecture 6]
    """

    arg_constraints = {"loc": _UnitSphere(), "concentration": constraints.nonnegative}
    has_rsample = True

    def __init__(self, loc: torch.Tensor, concentration: torch.Tensor, validate_args: bool | None = None):
        if not isinstance(loc, torch.Tensor) or not loc.is_floating_point():
            raise TypeError(f"loc must be a floating-point tensor shape (..., p), got {type(loc).__name__}")
        if loc.dim() < 1 or loc.shape[-1] < 2:
            raise ValueError(f"loc must have shape (..., p) with p ≥ 2, got {tuple(loc.shape)}")
        concentration = torch.as_tensor(concentration, dtype=loc.dtype, device=loc.device)
        try:
            batch = torch.broadcast_shapes(loc.shape[:-1], concentration.shape)
        except RuntimeError:
            raise ValueError(f"loc shape {tuple(loc.shape)} (batch {tuple(loc.shape[:-1])}) and concentration shape "
                             f"{tuple(concentration.shape)} do not broadcast") from None
        self.p = loc.shape[-1]
        self.loc = loc.expand(*batch, self.p)
        self.concentration = concentration.expand(batch)
        if validate_args is not False:
            _check_vmf(self.loc, self.concentration)
        super().__init__(batch, torch.Size([self.p]), validate_args=False)  # checked above, with clearer errors

    @property
    def support(self):
        return _UnitSphere()

    def expand(self, batch_shape, _instance=None):
        batch_shape = torch.Size(batch_shape)
        return VonMisesFisher(self.loc.expand(*batch_shape, self.p), self.concentration.expand(batch_shape),
                              validate_args=False)

    def log_normalizer(self) -> torch.Tensor:
        """log C_p(κ), shape=batch_shape."""
        if self.p == 3:
            return _log_c3(self.concentration)
        return -(self.p / 2) * math.log(2 * math.pi) - _log_iv_over_xv(self.p / 2 - 1, self.concentration)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if value.shape[-1:] != (self.p,):
            raise ValueError(f"value must have shape (..., p) = (..., {self.p}), got {tuple(value.shape)}")
        return self.log_normalizer() + self.concentration * (value * self.loc).sum(-1)

    @property
    def mean(self) -> torch.Tensor:
        return _ratio(self.p / 2 - 1, self.concentration)[..., None] * self.loc

    @property
    def mode(self) -> torch.Tensor:
        return self.loc

    def mean_resultant_length(self) -> torch.Tensor:
        """A_p(κ) = E[μᵀx] = ‖mean‖, shape=batch_shape."""
        return _ratio(self.p / 2 - 1, self.concentration)

    def entropy(self) -> torch.Tensor:
        return -self.log_normalizer() - self.concentration * self.mean_resultant_length()

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        with torch.no_grad():
            return self._draw(torch.Size(sample_shape))

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        if self.p != 3 and self.concentration.requires_grad:
            raise NotImplementedError(
                f"VonMisesFisher.rsample is reparameterised in concentration only for p = 3 (got p = {self.p}): "
                "Wood's rejection sampler has no exact pathwise gradient in κ. Use sample() (no gradient), detach "
                "the concentration, or use a score-function estimator.")
        return self._draw(torch.Size(sample_shape))

    def _draw(self, sample_shape: torch.Size) -> torch.Tensor:
        shape = sample_shape + self.batch_shape  # (*S, *batch)
        p, mu = self.p, self.loc.expand(*shape, self.p)
        kappa = self.concentration.expand(shape)
        w = _sample_w3(kappa) if p == 3 else _sample_w_wood(kappa.detach(), p)  # (*S, *batch), μᵀx
        v = torch.randn(*shape, p - 1, dtype=mu.dtype, device=mu.device)
        v = v / v.norm(dim=-1, keepdim=True).clamp_min(torch.finfo(mu.dtype).tiny)  # uniform on S^{p-2}
        x = torch.cat([w[..., None], (1 - w * w).clamp_min(0).sqrt()[..., None] * v], -1)  # around e₁
        # Householder reflection H = I − 2uuᵀ, u = (e₁ − μ)/‖e₁ − μ‖, maps e₁ to μ (none needed when μ = e₁)
        e1 = torch.zeros_like(mu)
        e1[..., 0] = 1
        u = e1 - mu
        un = u.norm(dim=-1, keepdim=True)
        flat = un < 1e-12
        u = u / torch.where(flat, torch.ones_like(un), un)
        return torch.where(flat, x, x - 2 * (x * u).sum(-1, keepdim=True) * u)


def _check_vmf(loc: torch.Tensor, kappa: torch.Tensor) -> None:
    try:
        norms = loc.norm(dim=-1)
        bad_loc = (norms - 1).abs() > _unit_tol(loc.dtype)
        any_bad_loc = bool(bad_loc.any() | torch.isnan(norms).any())
        any_bad_k = bool(((kappa < 0) | torch.isnan(kappa)).any())
    except RuntimeError:  # under torch.func.vmap, values cannot be inspected
        return
    if any_bad_loc:
        found = norms[bad_loc | torch.isnan(norms)].flatten()[:5].tolist()
        raise ValueError(f"VonMisesFisher loc must have unit norm along its last dimension; found norms {found} "
                         f"(loc shape {tuple(loc.shape)}); normalise it, e.g. loc / loc.norm(dim=-1, keepdim=True)")
    if any_bad_k:
        found = kappa[(kappa < 0) | torch.isnan(kappa)].flatten()[:5].tolist()
        raise ValueError(f"VonMisesFisher concentration must be ≥ 0; found {found} (shape {tuple(kappa.shape)})")


def _sample_w3(kappa: torch.Tensor) -> torch.Tensor:
    """w = μᵀx on S² by the inverse CDF of its density κ e^{κw} / (2 sinh κ) on [−1, 1]."""
    u = torch.rand(kappa.shape, dtype=kappa.dtype, device=kappa.device)
    tiny = kappa < 1e-6
    ks = torch.where(tiny, torch.ones_like(kappa), kappa)
    w = 1 + torch.logaddexp(torch.log(u), torch.log1p(-u) - 2 * ks) / ks
    return torch.where(tiny, 2 * u - 1, w).clamp(-1, 1)


def _sample_w_wood(kappa: torch.Tensor, p: int, max_rounds: int = 1000) -> torch.Tensor:
    """Wood (1994): w from the density ∝ e^{κw} (1 − w²)^{(p−3)/2} by rejection from a transformed Beta."""
    m = p - 1
    b = m / (2 * kappa + torch.sqrt(4 * kappa * kappa + m * m))  # = (−2κ + √(4κ² + m²))/m, stably
    x0 = (1 - b) / (1 + b)
    c = kappa * x0 + m * torch.log(1 - x0 * x0)
    beta = torch.distributions.Beta(torch.tensor(m / 2, dtype=kappa.dtype, device=kappa.device),
                                    torch.tensor(m / 2, dtype=kappa.dtype, device=kappa.device))
    w = torch.zeros_like(kappa)
    todo = torch.ones_like(kappa, dtype=torch.bool)
    for _ in range(max_rounds):  # acceptance is at least ~0.6 for every κ and p, so this ends in a few rounds
        eps = beta.sample(kappa.shape)
        wt = (1 - (1 + b) * eps) / (1 - (1 - b) * eps)
        u = torch.rand(kappa.shape, dtype=kappa.dtype, device=kappa.device)
        ok = todo & (kappa * wt + m * torch.log(1 - x0 * wt) - c >= torch.log(u))
        w = torch.where(ok, wt, w)
        todo = todo & ~ok
        if not bool(todo.any()):
            return w
    raise RuntimeError(f"Wood's rejection sampler did not finish in {max_rounds} rounds (p = {p})")


# ---------------------------------------------------------------------------------------------------------------
# Products of independent distributions of different families
# ---------------------------------------------------------------------------------------------------------------

class Product(Distribution):
    """The joint law of independent parts: p(x) = Π_j p_j(x_j), x = (x_1, ..., x_m) concatenated.

    Args: parts, a list of distributions with one common batch_shape and event shapes () or (n_j,) (wrap a
    batch of scalars into a vector event with ``Independent(base, 1)``).
    event_shape = (Σ_j n_j,) (a scalar event counts n_j = 1); values are the parts' values concatenated along
    the last dimension. log_prob sums the parts'; mean, sample concatenate; entropy sums. [Lecture 6]

    Example: R³ × S³ (position and unit quaternion) as
    ``Product([Independent(Normal(x, s), 1), VonMisesFisher(q, k)])``;
    a torus as ``Product([VonMises(a, k1), VonMises(b, k2)])``.
    """

    arg_constraints: dict = {}

    def __init__(self, parts, validate_args: bool | None = None):
        parts = list(parts)
        if not parts or not all(isinstance(q, Distribution) for q in parts):
            raise TypeError(f"Product needs a non-empty list of torch Distributions, got "
                            f"{[type(q).__name__ for q in parts]}")
        shapes = [tuple(q.batch_shape) for q in parts]
        if len(set(shapes)) != 1:
            raise ValueError(f"the parts of a Product must have one batch_shape, got {shapes} for "
                             f"{[type(q).__name__ for q in parts]}")
        for q in parts:
            if len(q.event_shape) > 1:
                raise ValueError(f"Product parts need event shape () or (n,), got {tuple(q.event_shape)} for "
                                 f"{type(q).__name__}")
        self.parts = parts
        self.sizes = [q.event_shape[0] if len(q.event_shape) else 1 for q in parts]
        super().__init__(parts[0].batch_shape, torch.Size([sum(self.sizes)]), validate_args=False)

    def __repr__(self):
        return f"Product({', '.join(type(q).__name__ for q in self.parts)})"

    @property
    def support(self):
        return constraints.real_vector

    def expand(self, batch_shape, _instance=None):
        return Product([q.expand(batch_shape) for q in self.parts])

    def _split(self, value: torch.Tensor):
        if value.shape[-1:] != self.event_shape:
            raise ValueError(f"a value of {self!r} must have shape (..., {self.event_shape[0]}) (the parts' "
                             f"events {self.sizes} concatenated), got {tuple(value.shape)}")
        xs = torch.split(value, self.sizes, dim=-1)
        return [x if len(q.event_shape) else x[..., 0] for q, x in zip(self.parts, xs)]

    def _join(self, xs):
        return torch.cat([x if len(q.event_shape) else x[..., None] for q, x in zip(self.parts, xs)], -1)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        return sum(q.log_prob(x) for q, x in zip(self.parts, self._split(value)))

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        return self._join([q.sample(sample_shape) for q in self.parts])

    def rsample(self, sample_shape=torch.Size()) -> torch.Tensor:
        return self._join([q.rsample(sample_shape) for q in self.parts])

    @property
    def has_rsample(self) -> bool:  # type: ignore[override]
        return all(q.has_rsample for q in self.parts)

    @property
    def mean(self) -> torch.Tensor:
        return self._join([q.mean for q in self.parts])

    def entropy(self) -> torch.Tensor:
        return sum(q.entropy() for q in self.parts)


# ---------------------------------------------------------------------------------------------------------------
# KL divergences
# ---------------------------------------------------------------------------------------------------------------

@register_kl(VonMisesFisher, VonMisesFisher)
def _kl_vmf_vmf(p: VonMisesFisher, q: VonMisesFisher) -> torch.Tensor:
    """KL(p‖q) = log C(κ_p) − log C(κ_q) + A(κ_p) (κ_p − κ_q μ_qᵀμ_p), since E_p[x] = A(κ_p) μ_p."""
    if p.p != q.p:
        raise ValueError(f"KL between von Mises–Fisher on different spheres: p = {p.p} and p = {q.p}")
    A = p.mean_resultant_length()
    return p.log_normalizer() - q.log_normalizer() + A * (p.concentration - q.concentration * (p.loc * q.loc).sum(-1))


def _kl_vm_vm(p: VonMises, q: VonMises) -> torch.Tensor:
    """KL(p‖q) = log I₀(κ_q) − log I₀(κ_p) + A(κ_p) (κ_p − κ_q cos(μ_p − μ_q)), A = I₁/I₀."""
    A = _ratio(0.0, p.concentration)
    return (_log_iv_over_xv(0.0, q.concentration) - _log_iv_over_xv(0.0, p.concentration)
            + A * (p.concentration - q.concentration * torch.cos(p.loc - q.loc)))


def _torch_has_vm_kl() -> bool:
    one = torch.ones(1)
    try:
        kl_divergence(VonMises(one, one), VonMises(one, one))
        return True
    except NotImplementedError:
        return False


if not _torch_has_vm_kl():  # torch ≤ 2.13 has none; register ours only where torch still lacks one
    register_kl(VonMises, VonMises)(_kl_vm_vm)


@register_kl(Product, Product)
def _kl_product_product(p: Product, q: Product) -> torch.Tensor:
    """KL(Πp_j ‖ Πq_j) = Σ_j KL(p_j ‖ q_j) for independent parts."""
    if p.sizes != q.sizes or len(p.parts) != len(q.parts):
        raise ValueError(f"KL between products of different structure: {p!r} with events {p.sizes} and "
                         f"{q!r} with events {q.sizes}")
    return sum(kl_divergence(a, b) for a, b in zip(p.parts, q.parts))
