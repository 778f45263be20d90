"""Stochastic decoders: the expected pullback metric, and a variance that knows where the data is. [Lecture 5]

A Gaussian decoder is a random map f(z) = μ(z) + σ(z) ⊙ ε with ε ~ N(0, I_D). Its Jacobian J_f = J_μ + diag(ε) J_σ
is random; the metric we use is its expectation (Arvanitidis, Hansen & Hauberg, "Latent Space Oddity", Thm 1):

    E[J_fᵀ J_f] = J_μᵀ J_μ + J_σᵀ J_σ          (the cross terms vanish because E[ε] = 0, E[εεᵀ] = I).

This is the plain pullback metric of the map z ↦ (μ(z), σ(z)) ∈ R^{2D}. It is only as good as σ: a trained
decoder's σ is often small even far from the training codes, so the metric does not see where the model knows
nothing. ``calibrate_sigma`` replaces σ by an RBF network whose precision falls to a small ζ away from the
codes, so σ̃ grows to 1/√ζ there, J_σ̃ is large at the border of the data, and geodesics stay near the data.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from . import _checks
from .jacobians import _call
from .metrics import Metric, pullback

__all__ = ["expected_pullback", "CalibratedSigma", "calibrate_sigma"]


def expected_pullback(mu: Callable[[torch.Tensor], torch.Tensor], sigma: Callable[[torch.Tensor], torch.Tensor],
                      step: str = "data") -> Metric:
    """The expected metric of a Gaussian decoder f(z) = μ(z) + σ(z) ⊙ ε, ε ~ N(0, I):

        G(z) = E[J_fᵀ J_f] = J_μ(z)ᵀ J_μ(z) + J_σ(z)ᵀ J_σ(z),      vᵀ G v = ‖J_μ v‖² + ‖J_σ v‖².

    Args: mu, sigma, batched maps z shape=[..., d] -> shape=[..., D]; step as in ``pullback`` ("data":
    s_n² = ‖Δμ‖² + ‖Δσ‖² between consecutive points of a curve).
    Returns a ``Metric``; G(z) shape=[..., d, d].

    Algorithmic note: G is the pullback through z ↦ (μ(z), σ(z)), so one Jacobian of that map (d forward
    passes) gives G and one Jacobian-vector product gives vᵀGv (it is the two products J_μ v and J_σ v at once).
    [Lecture 5]
    """
    if not callable(mu) or not callable(sigma):
        raise TypeError(f"mu and sigma must be functions z -> (..., D), got {type(mu).__name__} and "
                        f"{type(sigma).__name__}")

    def mu_sigma(z: torch.Tensor) -> torch.Tensor:
        m, s = _call(mu, z, "mu"), _call(sigma, z, "sigma")  # each a tensor (..., D): an error names which is not
        if m.shape != s.shape:
            raise ValueError(f"mu and sigma must return the same shape (..., D); for z of shape {tuple(z.shape)} "
                             f"mu gave {tuple(m.shape)} and sigma gave {tuple(s.shape)}")
        return torch.cat([m, s], dim=-1)  # (..., 2D)

    G = pullback(mu_sigma, step=step)
    G.name = "expected_pullback"
    return G


class CalibratedSigma(nn.Module):
    """σ̃(z) = 1/√β(z), with the precision an RBF network on K centres c_k in latent space:

        β(z) = W φ(z) + ζ,      φ_k(z) = exp(−λ_k ‖z − c_k‖²),      W ≥ 0, ζ > 0,

    so σ̃ ≈ the fitted σ near the centres and σ̃ → 1/√ζ far from all of them (Latent Space Oddity, Sec. 4).
    Buffers: centres shape=[K, d], lam shape=[K], W shape=[K, D], zeta shape=[] (a scalar).
    Call it on z shape=[..., d] to get σ̃(z) shape=[..., D]; ``precision(z)`` gives β(z). Build it with
    ``calibrate_sigma``. [Lecture 5]
    """

    def __init__(self, centres: torch.Tensor, lam: torch.Tensor, W: torch.Tensor, zeta):
        super().__init__()
        K, d = centres.shape
        if lam.shape != (K,) or W.dim() != 2 or W.shape[0] != K:
            raise ValueError(f"centres (K, d) = {tuple(centres.shape)} needs lam of shape ({K},) and W of shape "
                             f"({K}, D); got {tuple(lam.shape)} and {tuple(W.shape)}")
        self.register_buffer("centres", centres.detach().clone())
        self.register_buffer("lam", lam.detach().clone())
        self.register_buffer("W", W.detach().clone())
        self.register_buffer("zeta", torch.as_tensor(zeta, dtype=centres.dtype, device=centres.device).clone())

    def phi(self, z: torch.Tensor) -> torch.Tensor:
        """The RBF features φ_k(z) = exp(−λ_k ‖z − c_k‖²), shape=[..., K]."""
        z, d = _checks.as_tensor(z, "z"), self.centres.shape[1]
        if z.dim() < 1 or z.shape[-1] != d:
            raise ValueError(f"z must have shape (..., d) with d={d}, got {tuple(z.shape)}")
        if z.dtype != self.centres.dtype:
            raise TypeError(f"z has dtype {z.dtype} but this CalibratedSigma's buffers have dtype "
                            f"{self.centres.dtype}; convert one of them, e.g. z.to({self.centres.dtype})")
        sq = (z[..., None, :] - self.centres).pow(2).sum(-1)  # (..., K)
        return torch.exp(-self.lam * sq)

    def precision(self, z: torch.Tensor) -> torch.Tensor:
        """β(z) = W φ(z) + ζ, shape=[..., D]."""
        return self.phi(z) @ self.W + self.zeta

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.precision(z).rsqrt()

    def extra_repr(self) -> str:
        K, d = self.centres.shape
        return f"K={K}, d={d}, D={self.W.shape[1]}, zeta={float(self.zeta):g}"


def calibrate_sigma(sigma: Callable[[torch.Tensor], torch.Tensor], Z: torch.Tensor, k: int = 32,
                    zeta: float = 1e-2, bandwidth: float = 1.0, seed: int = 0) -> CalibratedSigma:
    """Fit a ``CalibratedSigma`` that agrees with a trained σ at the latent codes Z and grows away from them.

    1. Centres: k-means (scikit-learn, ``random_state=seed``) of the codes Z shape=[N, d] into K = k clusters C_k.
    2. Bandwidths: λ_k = ½ (a · mean_{z ∈ C_k} ‖z − c_k‖)⁻² with a = ``bandwidth`` (larger a: wider bumps).
    3. Weights: for each output dimension j, W[:, j] ≥ 0 solves the non-negative least-squares problem
       min Σ_n ((W φ(z_n) + ζ − β_nj) / β_nj)², the relative error to the trained precision β_nj = σ_j(z_n)⁻².

    Args: sigma, the trained z -> σ(z) shape=[..., D]; Z, the training codes (e.g. the encoder means);
    zeta, the precision far away (σ̃ → 1/√ζ there).
    Returns a ``CalibratedSigma`` on Z's dtype and device. [Lecture 5]

    Algorithmic note: a convex problem per output dimension (K unknowns, N equations), solved exactly by
    scipy's NNLS in float64; the fit is a one-off, so it runs on the CPU, in one thread, whatever the device of Z.
    """
    import numpy as np
    from scipy.optimize import nnls
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    Z = _checks.points(Z, "Z")
    if Z.dim() != 2:
        raise ValueError(f"Z must be a batch of codes of shape (N, d), got shape {tuple(Z.shape)}")
    N, d = Z.shape
    if not isinstance(k, int) or not 1 <= k <= N:
        raise ValueError(f"k must be an int in [1, N={N}], got {k!r}")
    if not zeta > 0:
        raise ValueError(f"zeta must be > 0 (the precision far from the data), got {zeta}")
    if not bandwidth > 0:
        raise ValueError(f"bandwidth must be > 0, got {bandwidth}")
    with torch.no_grad():
        s = sigma(Z)
    if not isinstance(s, torch.Tensor) or s.dim() != 2 or s.shape[0] != N:
        got = tuple(s.shape) if isinstance(s, torch.Tensor) else type(s).__name__
        raise ValueError(f"sigma must map Z shape (N, d) = {(N, d)} to shape (N, D), got {got}")
    if not bool((s > 0).all()):
        raise ValueError("sigma must be positive at every code")

    z = Z.detach().cpu().double().numpy()
    with threadpool_limits(1):  # tiny problem: OpenMP threads only wait on each other (seconds on a busy machine)
        km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(z)
    c, lab = km.cluster_centers_, km.labels_  # (K, d), (N,)
    spread = np.array([np.linalg.norm(z[lab == j] - c[j], axis=1).mean() for j in range(k)])  # (K,)
    spread[spread <= 0] = np.median(spread[spread > 0]) if (spread > 0).any() else 1.0  # singleton clusters
    lam = 0.5 / (bandwidth * spread) ** 2  # (K,)
    phi = np.exp(-lam * ((z[:, None, :] - c) ** 2).sum(-1))  # (N, K)
    beta = 1.0 / s.detach().cpu().double().numpy() ** 2  # (N, D) trained precision
    W = np.stack([nnls(phi / b[:, None], 1.0 - zeta / b)[0] for b in beta.T], axis=1)  # (K, D)
    like = dict(dtype=Z.dtype, device=Z.device)
    return CalibratedSigma(torch.as_tensor(c, **like), torch.as_tensor(lam, **like), torch.as_tensor(W, **like), zeta)
