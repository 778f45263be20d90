"""The Fisher–Rao metric of a decoder that outputs distributions, and its pullback to latent space. [Lecture 6]

A decoder z ↦ p(x | η(z)) maps latent points to the parameters η of a family of distributions. The family
carries its own metric, the Fisher information F(η) = E[∇_η log p ∇_η log pᵀ], which is also the curvature of
the KL divergence: KL(p_η ‖ p_{η+δ}) = ½ δᵀ F(η) δ + O(δ³). Pulled back to latent space,

    G(z) = J(z)ᵀ F(η(z)) J(z),      J = ∂η/∂z,

summed over the independent data dimensions. Because of the KL expansion a discrete curve's energy needs no
Jacobian at all: with steps s_n² = 2 KL(p(c_n) ‖ p(c_{n+1})),

    E[c] ≈ ½ (T−1) Σ_n s_n² = (T−1) Σ_n KL(p(c_n) ‖ p(c_{n+1})),

which converges to the metric energy as T grows (with error O(1/T): the KL is not symmetric, its cubic term
does not cancel).
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
from torch.distributions import (Bernoulli, Beta, Categorical, Dirichlet, Distribution, Exponential,
                                 Independent, Normal, VonMises, kl_divergence)

from . import _checks
from .distributions import Product, VonMisesFisher, _ratio_and_slope, _unit_tol
from .jacobians import jacobian_unchecked, jvp_unchecked
from .metrics import Metric

__all__ = ["fisher_information", "fisher_pullback", "kl_energy"]


# ---------------------------------------------------------------------------------------------------------------
# Elementary families: coordinates η (..., k) and F(η) (..., k, k), with the set where η is a valid parameter
# ---------------------------------------------------------------------------------------------------------------

def _diag(*entries: torch.Tensor) -> torch.Tensor:
    return torch.diag_embed(torch.stack(entries, -1))


def _F_normal(eta):
    sigma = eta[..., 1]
    return _diag(1 / sigma ** 2, 2 / sigma ** 2), sigma > 0, "scale > 0"


def _F_bernoulli(eta):
    p = eta[..., 0]
    return (1 / (p * (1 - p)))[..., None, None], (p > 0) & (p < 1), "0 < probs < 1"


def _F_bernoulli_logits(eta):
    p = torch.sigmoid(eta[..., 0])
    return (p * (1 - p))[..., None, None], ~torch.isnan(eta[..., 0]), "logits not NaN"


def _F_categorical_logits(eta):
    p = torch.softmax(eta, -1)
    return torch.diag_embed(p) - p[..., :, None] * p[..., None, :], ~torch.isnan(eta).any(-1), "logits not NaN"


def _from_logits(q) -> bool:
    """Whether a Bernoulli/Categorical was built from logits (then η = logits: stable when saturated)."""
    param = getattr(q, "_param", None)
    return param is not None and param is q.__dict__.get("logits")


def _F_categorical(eta):
    return torch.diag_embed(1 / eta), (eta > 0).all(-1) & (eta <= 1).all(-1), "0 < probs ≤ 1"


def _F_beta(eta):
    a, b = eta[..., 0], eta[..., 1]
    t = torch.polygamma(1, a + b)
    F = torch.stack([torch.stack([torch.polygamma(1, a) - t, -t], -1),
                     torch.stack([-t, torch.polygamma(1, b) - t], -1)], -2)
    return F, (a > 0) & (b > 0), "concentrations > 0"


def _F_dirichlet(eta):
    F = torch.diag_embed(torch.polygamma(1, eta)) - torch.polygamma(1, eta.sum(-1))[..., None, None]
    return F, (eta > 0).all(-1), "concentration > 0"


def _F_exponential(eta):
    lam = eta[..., 0]
    return (1 / lam ** 2)[..., None, None], lam > 0, "rate > 0"


def _F_von_mises(eta):
    kappa = eta[..., 1]
    k = kappa.clamp_min(0)
    A, dA = _ratio_and_slope(0.0, k)  # A = I₁/I₀; F_κκ = Var(cos(x − μ)) = A'(κ) = 1 − A/κ − A², stably
    return _diag(k * A, dA), kappa >= 0, "concentration ≥ 0"


def _F_vmf(eta):
    mu, kappa = eta[..., :-1], eta[..., -1]
    p = mu.shape[-1]
    k = kappa.clamp_min(0)
    A, dA = _ratio_and_slope(p / 2 - 1, k)  # F_κκ = Var(μᵀx) = A'(κ) = 1 − A² − (p−1) A/κ, stably
    P = torch.eye(p, dtype=eta.dtype, device=eta.device) - mu[..., :, None] * mu[..., None, :]  # tangent projector
    F = torch.zeros(*eta.shape, p + 1, dtype=eta.dtype, device=eta.device)
    F = F + torch.nn.functional.pad((k * A)[..., None, None] * P, (0, 1, 0, 1))
    F = F + torch.nn.functional.pad(dA[..., None, None], (p, 0, p, 0))
    valid = (kappa >= 0) & ((mu.norm(dim=-1) - 1).abs() <= _unit_tol(eta.dtype))
    return F, valid, "concentration ≥ 0 and unit-norm loc"


def _elementary(dist: Distribution) -> list:
    """[(η (..., k), F-function, name)] for the elementary families inside dist (Independent and Product unfolded)."""
    if isinstance(dist, Product):
        return [e for q in dist.parts for e in _elementary(q)]
    if isinstance(dist, Independent):
        return _elementary(dist.base_dist)
    if type(dist) in (Bernoulli, Categorical) and _from_logits(dist):
        if type(dist) is Bernoulli:
            return [(dist.logits[..., None], _F_bernoulli_logits, "Bernoulli")]
        return [(dist.logits, _F_categorical_logits, "Categorical")]
    if isinstance(dist, VonMisesFisher):
        return [(torch.cat([dist.loc, dist.concentration[..., None]], -1), _F_vmf, "VonMisesFisher")]
    table = {
        Normal: (lambda q: torch.stack([q.loc, q.scale], -1), _F_normal),
        Bernoulli: (lambda q: q.probs[..., None], _F_bernoulli),
        Categorical: (lambda q: q.probs, _F_categorical),
        Beta: (lambda q: torch.stack([q.concentration1, q.concentration0], -1), _F_beta),
        Dirichlet: (lambda q: q.concentration, _F_dirichlet),
        Exponential: (lambda q: q.rate[..., None], _F_exponential),
        VonMises: (lambda q: torch.stack(torch.broadcast_tensors(q.loc, q.concentration), -1), _F_von_mises),
    }
    for family, (eta, F) in table.items():
        if type(dist) is family:
            return [(eta(dist), F, family.__name__)]
    raise TypeError(f"no Fisher information for {type(dist).__name__}; supported: Normal, Bernoulli, Categorical, "
                    f"Beta, Dirichlet, Exponential, VonMises, VonMisesFisher, and Independent or Product of these")


def _check_params(eta: torch.Tensor, valid: torch.Tensor, name: str, rule: str) -> None:
    """Raise, naming the values, where η (..., k) is NaN or outside the family's domain (skipped under vmap)."""
    try:
        bad = ~valid | torch.isnan(eta).any(-1)
        if not bool(bad.any()):
            return
    except RuntimeError:  # inside torch.func.vmap: values cannot be inspected
        return
    found = eta[bad][:5].tolist()
    raise ValueError(f"{name} parameters must satisfy {rule} (and not be NaN); found {int(bad.sum())} invalid "
                     f"parameter vectors η of {valid.numel()}, e.g. {found}")


def _block_diag(blocks: list[torch.Tensor]) -> torch.Tensor:
    """Batched block-diagonal matrix from blocks (..., k_j, k_j) -> (..., Σk_j, Σk_j)."""
    n = sum(b.shape[-1] for b in blocks)
    rows, at = [], 0
    for b in blocks:
        k = b.shape[-1]
        rows.append(torch.nn.functional.pad(b, (at, n - at - k)))
        at += k
    return torch.cat(rows, -2)


def fisher_information(p: Distribution) -> torch.Tensor:
    """The Fisher information F(η) = E[∇_η log p(x|η) ∇_η log p(x|η)ᵀ] in the coordinates η of the constructor:

        Normal(loc μ, scale σ)            η = (μ, σ)          F = diag(1/σ², 2/σ²)
        Bernoulli(probs p)                η = (p,)            F = 1/(p(1−p))
        Bernoulli(logits θ)               η = (θ,)            F = p(1−p),  p = σ(θ)
        Categorical(probs p)              η = (p_1..p_K)      F = diag(1/p)  (on tangent vectors, Σ δp_i = 0)
        Categorical(logits θ)             η = (θ_1..θ_K)      F = diag(p) − ppᵀ,  p = softmax(θ)
        Beta(concentration1 a, concentration0 b)  η = (a, b)
                                          F = [[ψ₁(a) − ψ₁(a+b), −ψ₁(a+b)], [−ψ₁(a+b), ψ₁(b) − ψ₁(a+b)]]
        Dirichlet(concentration α)        η = α               F = diag(ψ₁(α)) − ψ₁(Σα) 11ᵀ
        Exponential(rate λ)               η = (λ,)            F = 1/λ²
        VonMises(loc μ, concentration κ)  η = (μ, κ)          F = diag(κA, 1 − A/κ − A²),  A = I₁(κ)/I₀(κ)
        VonMisesFisher(loc μ ∈ S^{p−1}, concentration κ)  η = (μ_1..μ_p, κ)
                                          F = [[κA_p (I − μμᵀ), 0], [0, 1 − A_p² − (p−1)A_p/κ]]
                                          (δμ tangent to the sphere; A_p = I_{p/2}(κ)/I_{p/2−1}(κ))
        Independent(base, n)              η = the base's η at each reinterpreted index in C order, concatenated;
                                          F block diagonal
        Product([p_1, ..., p_m])          η = (η_1, ..., η_m); F block diagonal

    (ψ₁ = trigamma.) Bernoulli and Categorical use the parameter they were built from: logits stay accurate
    where probabilities round to 0 or 1 (a saturated decoder), where F = 1/(p(1−p)) would be inf·0 in G.
    p: a distribution with batch_shape S. Returns F shape=[*S, k, k].
    Parameters outside the family's domain (e.g. a negative concentration, probabilities outside (0, 1), NaN)
    raise a ValueError that names them. [Lecture 6]
    """
    if not isinstance(p, Distribution):
        raise TypeError(f"fisher_information needs a torch Distribution, got {type(p).__name__}")
    nb = len(p.batch_shape)
    blocks = []
    for eta, F_fn, name in _elementary(p):
        F, valid, rule = F_fn(eta)
        _check_params(eta, valid, name, rule)
        M = eta.shape[nb:-1].numel()
        k = eta.shape[-1]
        F = F.reshape(*p.batch_shape, M, k, k)
        eye = torch.eye(M, dtype=F.dtype, device=F.device)
        blocks.append(torch.einsum("...mab,mn->...manb", F, eye).reshape(*p.batch_shape, M * k, M * k))
    return blocks[0] if len(blocks) == 1 else _block_diag(blocks)


# ---------------------------------------------------------------------------------------------------------------
# The pullback
# ---------------------------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _unvalidated() -> Iterator[None]:
    """Build distributions without torch's default argument validation for the duration of the block, and put the
    previous default back afterwards, also when an exception escapes. A decoder that asks for validation
    explicitly (``validate_args=True``) still validates: the geodesic solver treats what it raises as a rejected
    step. (The default is global to the process: another thread building distributions meanwhile sees it off.)"""
    before = Distribution._validate_args
    Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        Distribution.set_default_validate_args(before)


def _decode(decoder: Callable, z: torch.Tensor) -> Distribution:
    dist = decoder(z)
    if not isinstance(dist, Distribution):
        raise TypeError(f"the decoder must return a torch Distribution, got {type(dist).__name__} for z of shape "
                        f"{tuple(z.shape)}")
    zb = z.shape[:-1]
    if dist.batch_shape[:len(zb)] != zb:
        raise ValueError(f"the decoder's distribution must have batch_shape = z's batch shape + data dims; "
                         f"z has shape {tuple(z.shape)} (batch {tuple(zb)}) but the distribution has batch_shape "
                         f"{tuple(dist.batch_shape)}")
    return dist


def fisher_pullback(decoder: Callable[[torch.Tensor], Distribution], step: str = "kl") -> Metric:
    """The Fisher–Rao metric pulled back through a decoder z ↦ p(x | η(z)):

        G(z) = Σ_data J(z)ᵀ F(η(z)) J(z),      J = ∂η/∂z,      vᵀG(z)v = Σ_data (Jv)ᵀ F(η) (Jv).

    decoder: z shape=[..., d] -> a Distribution (any family ``fisher_information`` knows, or a Product or
    Independent of them) whose parameters are differentiable in z and whose batch_shape is z's batch shape
    followed by data dims, e.g. (..., D) for D independent Bernoullis; every data dim is summed over.
    step: "kl" (s_n² = 2 KL(p(c_n) ‖ p(c_{n+1})) summed over data dims, so ``energy`` = (T−1) Σ KL) or
    "midpoint" (s_n² = Δcᵀ G(c̄) Δc, the metric's own quadrature).
    Returns a ``Metric``: G(z) shape=[..., d, d].

    Algorithmic note: G costs d forward-mode passes through z ↦ η (``jacobian``); vᵀGv one pass (``jvp``);
    F is applied block by block (one k×k block per data dim), never as a (Dk)×(Dk) matrix. G(z) raises on
    parameters outside the family's domain; sqnorm and step_sqlen return NaN there instead (they build the
    distributions with torch's default validation switched off for the call, and switch it back on after), which
    the geodesic solver's line search rejects as a step outside the domain. [Lecture 6]
    """
    if not callable(decoder):
        raise TypeError(f"decoder must be a function z -> Distribution, got {type(decoder).__name__}")
    if step not in ("kl", "midpoint"):
        raise ValueError(f"step must be 'kl' or 'midpoint', got {step!r}")
    meta: list = []  # the structure of η, recorded while tracing: [(F-function, name, shape (*extra, k))]

    def eta_flat(z):
        dist = _decode(decoder, z)
        zb = z.shape[:-1]
        parts = _elementary(dist)
        meta[:] = [(F_fn, name, tuple(eta.shape[len(zb):])) for eta, F_fn, name in parts]
        return torch.cat([eta.reshape(*zb, -1) for eta, _, _ in parts], -1)  # (..., Dη)

    def blocks(eta, zb, check):
        """Split flat η (..., Dη) into parts -> [(F (..., M, k, k), slice of the flat axis, k)]."""
        out, at = [], 0
        for F_fn, name, shape in meta:
            n = torch.Size(shape).numel()
            e = eta[..., at:at + n].reshape(*zb, -1, shape[-1])  # (..., M, k)
            F, valid, rule = F_fn(e)
            if check:
                _check_params(e, valid, name, rule)
            else:
                F = torch.where(valid[..., None, None], F, torch.full_like(F, float("nan")))
            out.append((F, slice(at, at + n), shape[-1]))
            at += n
        return out

    def G(z):
        J, eta = jacobian_unchecked(eta_flat, z, return_value=True)  # (..., Dη, d), (..., Dη)
        zb, d = z.shape[:-1], z.shape[-1]
        total = torch.zeros(*zb, d, d, dtype=z.dtype, device=z.device)
        for F, sl, k in blocks(eta, zb, check=True):
            Jp = J[..., sl, :].reshape(*zb, -1, k, d)  # (..., M, k, d)
            total = total + torch.einsum("...mai,...mab,...mbj->...ij", Jp, F, Jp)
        return total

    def sqnorm(z, v):
        with _unvalidated():  # outside the family's domain: NaN below, not the distribution's own error
            eta, Jv = jvp_unchecked(eta_flat, z, v)  # (..., Dη) twice
        zb = z.shape[:-1]
        total = torch.zeros(zb, dtype=z.dtype, device=z.device)
        for F, sl, k in blocks(eta, zb, check=False):
            u = Jv[..., sl].reshape(*zb, -1, k)  # (..., M, k)
            total = total + torch.einsum("...ma,...mab,...mb->...", u, F, u)
        return total

    def kl_step(a, b):
        with _unvalidated():  # outside the family's domain: NaN (nan_outside), not the distribution's own error
            return 2 * _kl_sum(decoder, a, b, nan_outside=True)

    name = f"fisher_pullback({getattr(decoder, '__name__', type(decoder).__name__)}, step={step})"
    return Metric(G, sqnorm, kl_step if step == "kl" else None, name=name)


def _kl_sum(decoder: Callable, a: torch.Tensor, b: torch.Tensor, nan_outside: bool = False) -> torch.Tensor:
    """Σ_data KL(p(a) ‖ p(b)) for a, b shape=[..., d] -> shape=[...]; with nan_outside, NaN where either end's
    parameters leave the family's domain (torch's KL formulas do not always notice, e.g. a negative scale)."""
    pa, pb = _decode(decoder, a), _decode(decoder, b)
    kl = kl_divergence(pa, pb)  # (..., *data)
    n = a.dim() - 1
    kl = kl.sum(tuple(range(n, kl.dim()))) if kl.dim() > n else kl
    if nan_outside:
        for dist in (pa, pb):
            for eta, F_fn, _ in _elementary(dist):
                valid = F_fn(eta)[1]  # (..., *extra)
                valid = valid.reshape(*a.shape[:-1], -1).all(-1)
                kl = torch.where(valid, kl, torch.full_like(kl, float("nan")))
    return kl


def kl_energy(c: torch.Tensor, decoder: Callable[[torch.Tensor], Distribution]) -> torch.Tensor:
    """E[c] ≈ (T−1) Σ_n KL(p(c_n) ‖ p(c_{n+1})), summed over data dims. c shape=[..., T, d] -> shape=[...].

    Equal to ``energy(c, fisher_pullback(decoder, step="kl"))``; converges to the Fisher–Rao energy
    ½∫ċᵀGċ dt as T grows, with error O(1/T). [Lecture 6]
    """
    c = _checks.curve(c)
    if not callable(decoder):
        raise TypeError(f"decoder must be a function z -> Distribution, got {type(decoder).__name__}")
    return (c.shape[-2] - 1) * _kl_sum(decoder, c[..., :-1, :], c[..., 1:, :]).sum(-1)
