"""Lengths and energies of discrete curves. [Lecture 2, Lecture 3]

The convention of the whole library (see ``help(geomlib)``): on T points with Δt = 1/(T-1) and s_n the
metric length of step n (from c_n to c_{n+1}),

    L ≈ Σ_n s_n,        E ≈ ½ Σ_n Δt (s_n/Δt)² = ½ (T-1) Σ_n s_n²,

so L² ≤ 2E (Cauchy–Schwarz) with equality exactly when all steps are equally long (constant speed).
How s_n² is measured is the metric's business (``Metric.curve_sqlen``): the midpoint rule
s_n² = Δc_nᵀ G((c_n + c_{n+1})/2) Δc_n for a plain function z -> G(z); the decoded chord ‖f(c_{n+1}) − f(c_n)‖²
for ``pullback(f)`` and ``expected_pullback`` (their default step="data"); 2 KL(p_n ‖ p_{n+1}) for
``fisher_pullback`` (its default step="kl").
"""
from __future__ import annotations

from typing import Callable

import torch

from . import _checks
from .metrics import _sqrt, as_metric

__all__ = ["segment_lengths", "length", "energy", "data_length", "data_energy"]


def _steps_sq(c: torch.Tensor, G) -> torch.Tensor:
    return as_metric(G).curve_sqlen(c)  # (..., T-1)


def segment_lengths(c: torch.Tensor, G=None) -> torch.Tensor:
    """s_n, the metric lengths of the T-1 steps of c shape=[..., T, d] -> shape=[..., T-1]."""
    c = _checks.curve(c)
    return _sqrt(_steps_sq(c, G))  # gradient 0 (not NaN) at a zero-length step


def length(c: torch.Tensor, G=None) -> torch.Tensor:
    """L[c] ≈ Σ_n s_n for c shape=[..., T, d] -> shape=[...]. G: a metric (default Euclidean)."""
    return segment_lengths(c, G).sum(-1)


def energy(c: torch.Tensor, G=None) -> torch.Tensor:
    """E[c] ≈ ½ (T-1) Σ_n s_n² for c shape=[..., T, d] -> shape=[...]. G: a metric (default Euclidean)."""
    c = _checks.curve(c)
    return 0.5 * (c.shape[-2] - 1) * _steps_sq(c, G).sum(-1)


def _decoded_steps(c: torch.Tensor, f: Callable) -> torch.Tensor:
    c = _checks.curve(c)
    x = f(c)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"the decoder must return a torch.Tensor, got {type(x).__name__}")
    if x.shape[:-1] != c.shape[:-1]:
        raise ValueError(f"the decoder must map (..., T, d) to (..., T, D); curve shape {tuple(c.shape)} "
                         f"gave {tuple(x.shape)}")
    dx = x[..., 1:, :] - x[..., :-1, :]
    return dx.pow(2).sum(-1)  # (..., T-1)


def data_length(c: torch.Tensor, f: Callable) -> torch.Tensor:
    """Length of the decoded polygon Σ_n ‖f(c_{n+1}) − f(c_n)‖ in data space. c shape=[..., T, d] -> [...]."""
    return _sqrt(_decoded_steps(c, f)).sum(-1)


def data_energy(c: torch.Tensor, f: Callable) -> torch.Tensor:
    """Energy of the decoded polygon ½ (T-1) Σ_n ‖f(c_{n+1}) − f(c_n)‖². c shape=[..., T, d] -> [...]."""
    c = _checks.curve(c)
    return 0.5 * (c.shape[-2] - 1) * _decoded_steps(c, f).sum(-1)
