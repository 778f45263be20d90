"""Small decoders with known geometry, used to build the inputs of the checks (torch only, deterministic).

Every function here is pure and seeded: building the same toy twice gives the same numbers, in this process or
in the grader's child process.
"""
from __future__ import annotations

import torch

__all__ = ["polar", "conformal", "mlp", "gaussian", "bernoulli"]


def polar(z: torch.Tensor) -> torch.Tensor:
    """(r, θ) -> (r cos θ, r sin θ), shape (..., 2) -> (..., 2); its pullback metric is diag(1, r²)."""
    r, th = z[..., 0], z[..., 1]
    return torch.stack([r * torch.cos(th), r * torch.sin(th)], -1)


def conformal(z: torch.Tensor) -> torch.Tensor:
    """A metric given directly as a function: G(z) = (1 + ‖z‖²) I, shape (..., d) -> (..., d, d)."""
    d = z.shape[-1]
    eye = torch.eye(d, dtype=z.dtype, device=z.device)
    return (1 + (z * z).sum(-1))[..., None, None] * eye


def _weights(seed: int, *shapes):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(*s, generator=g, dtype=torch.float64) / s[0] ** 0.5 for s in shapes]


def mlp(seed: int = 0, d: int = 2, D: int = 5, hidden: int = 16):
    """A seeded one-hidden-layer decoder f(z) = tanh(z W1 + b) W2 + z A, shape (..., d) -> (..., D)."""
    W1, b, W2, A = _weights(seed, (d, hidden), (1, hidden), (hidden, D), (d, D))

    def f(z):
        return torch.tanh(z @ W1.to(z) + b[0].to(z)) @ W2.to(z) + 0.3 * z @ A.to(z)

    f.__name__ = f"mlp{seed}"
    return f


def gaussian(seed: int = 0, d: int = 2, D: int = 4):
    """A seeded stochastic decoder (mu, sigma): mu as ``mlp``, sigma > 0 growing away from the origin (..., D)."""
    mu = mlp(seed, d, D)
    (V,) = _weights(seed + 1000, (d, D))

    def sigma(z):
        return 0.1 + 0.05 * (z * z).sum(-1, keepdim=True) + 0.1 * torch.nn.functional.softplus(z @ V.to(z))

    return mu, sigma


def bernoulli(seed: int = 0, d: int = 2, D: int = 6):
    """A seeded Bernoulli decoder z -> probabilities p(z) ∈ (0, 1), shape (..., d) -> (..., D)."""
    f = mlp(seed, d, D)

    def p(z):
        return torch.sigmoid(2 * f(z))

    return p
