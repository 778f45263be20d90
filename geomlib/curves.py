"""Curves in latent space. [Lecture 2]

A discrete curve is a tensor ``c`` of shape (..., T, d): the points c(t_n) on the uniform grid t_n = n/(T-1).
Learnable curves (``DiscreteCurve``, ``CubicSpline``) are ``nn.Module``s with fixed endpoints z0, z1 of shape
(B, d) and learnable interior; calling them with times t of shape (S,) gives points (B, S, d).
"""
from __future__ import annotations

import torch
from torch import nn

from . import _checks

__all__ = ["grid", "straight_line", "interpolate", "velocity", "resample", "DiscreteCurve", "CubicSpline"]


def grid(T: int, like: torch.Tensor) -> torch.Tensor:
    """The uniform grid t_n = n/(T-1), n = 0..T-1, shape=[T], with the dtype and device of ``like`` (floating)."""
    T = _checks.count(T, "T")
    if T < 2:
        raise ValueError(f"a curve needs T ≥ 2 points, got T={T}")
    like = _checks.as_tensor(like, "like")
    return torch.linspace(0.0, 1.0, T, dtype=like.dtype, device=like.device)


def straight_line(z0: torch.Tensor, z1: torch.Tensor, T: int = 32) -> torch.Tensor:
    """c(t) = (1-t) z0 + t z1 on T grid points. z0, z1 shape=[..., d] -> c shape=[..., T, d]."""
    z0, z1 = _checks.endpoints(z0, z1)
    t = grid(T, z0)[:, None]  # (T, 1)
    return z0[..., None, :] * (1 - t) + z1[..., None, :] * t  # (..., T, d)


def interpolate(c: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Evaluate the piecewise-linear curve through the points of c at times t ∈ [0, 1].

    c shape=[..., T, d] on the uniform grid; t shape=[S] -> shape=[..., S, d].
    """
    c = _checks.curve(c)
    t = _times(t)
    T = c.shape[-2]
    s = t.to(c) * (T - 1)
    i = s.floor().long().clamp(max=T - 2)  # segment index, (S,)
    w = (s - i.to(c))[:, None]  # position inside the segment, (S, 1)
    return c[..., i, :] * (1 - w) + c[..., i + 1, :] * w


def _times(t) -> torch.Tensor:
    """Times t shape=[S] in [0, 1]: a curve is not extrapolated beyond its ends."""
    t = _checks.points(t, "t")
    if t.dim() != 1:
        raise ValueError(f"t must have shape (S,), got {tuple(t.shape)}")
    out = (t < 0) | (t > 1)
    if bool(out.any()):
        raise ValueError(f"t must lie in [0, 1]; {int(out.sum())} of {len(t)} values do not: "
                         f"{t[out][:5].tolist()}")
    return t


def velocity(c: torch.Tensor) -> torch.Tensor:
    """ċ on the grid by finite differences (central inside, one-sided at the ends): shape=[..., T, d]."""
    c = _checks.curve(c)
    return torch.gradient(c, spacing=1.0 / (c.shape[-2] - 1), dim=-2, edge_order=1)[0]


def resample(c: torch.Tensor, T: int | None = None, G=None) -> torch.Tensor:
    """Reparametrise c to constant speed under the metric G (Euclidean by default), keeping its trace.

    c shape=[..., T, d] -> shape=[..., T', d] with T' = T or c's T. The new points are equally spaced in
    arc length of the piecewise-linear curve, with segment lengths measured by ``lengths.segment_lengths``.
    """
    from .lengths import segment_lengths  # lengths builds on curves; import here to keep the order of modules

    c = _checks.curve(c)
    T_out = c.shape[-2] if T is None else T
    s = segment_lengths(c, G)  # (..., T-1)
    cum = torch.cat([torch.zeros_like(s[..., :1]), s.cumsum(-1)], -1)  # (..., T)
    total = cum[..., -1:]
    if bool((total <= 0).any()):
        raise ValueError("cannot resample a curve of zero length (all its points coincide)")
    target = grid(T_out, c) * total  # (..., T')
    i = torch.searchsorted(cum.contiguous(), target.contiguous(), right=True).clamp(1, c.shape[-2] - 1) - 1
    lo, hi = cum.gather(-1, i), cum.gather(-1, i + 1)
    w = ((target - lo) / (hi - lo).clamp_min(torch.finfo(c.dtype).tiny))[..., None]  # (..., T', 1)
    idx = i[..., None].expand(*i.shape, c.shape[-1])
    out = c.gather(-2, idx) * (1 - w) + c.gather(-2, idx + 1) * w
    out = out.clone()
    out[..., 0, :], out[..., -1, :] = c[..., 0, :], c[..., -1, :]  # exact endpoints
    return out


class _Curve(nn.Module):
    """Abstract: a curve with fixed endpoints z0, z1 shape=[B, d] and a learnable interior."""

    def __init__(self, z0: torch.Tensor, z1: torch.Tensor):
        super().__init__()
        z0, z1 = _checks.endpoints(z0, z1)
        if z0.dim() != 2:
            raise ValueError(f"endpoints must have shape (B, d), got {tuple(z0.shape)}")
        self.register_buffer("z0", z0.detach().clone())
        self.register_buffer("z1", z1.detach().clone())

    def points(self, T: int) -> torch.Tensor:
        """The curve on the uniform grid of T points: shape=[B, T, d]."""
        return self(grid(T, self.z0))


class DiscreteCurve(_Curve):
    """A polygon through T points, endpoints fixed; c(t) interpolates linearly between the points.

    ``DiscreteCurve(z0, z1, T)`` starts on the straight line; ``DiscreteCurve.from_points(c)`` from c (B, T, d).
    """

    def __init__(self, z0: torch.Tensor, z1: torch.Tensor, T: int = 32):
        super().__init__(z0, z1)
        self.interior = nn.Parameter(straight_line(self.z0, self.z1, T)[:, 1:-1].clone())  # (B, T-2, d)

    @classmethod
    def from_points(cls, c: torch.Tensor) -> "DiscreteCurve":
        c = _checks.curve(c)
        out = cls(c[..., 0, :], c[..., -1, :], c.shape[-2])
        with torch.no_grad():
            out.interior.copy_(c[..., 1:-1, :])
        return out

    @property
    def nodes(self) -> torch.Tensor:
        """All T points, endpoints included: shape=[B, T, d]."""
        return torch.cat([self.z0[:, None], self.interior, self.z1[:, None]], dim=1)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return interpolate(self.nodes, t)


class CubicSpline(_Curve):
    """A natural cubic spline through K nodes on a uniform grid of [0, 1], endpoints fixed, smooth (C²).

    c(t) for t ∈ [0, 1] shape=[S] -> shape=[B, S, d]. The K-2 interior nodes are the parameters; the second
    derivatives M at the nodes solve the tridiagonal system of a natural spline (M_0 = M_{K-1} = 0),
    here as one precomputed (K-2)×(K-2) matrix applied to all curves at once.
    """

    def __init__(self, z0: torch.Tensor, z1: torch.Tensor, K: int = 8):
        super().__init__(z0, z1)
        K = _checks.count(K, "K")
        if K < 2:
            raise ValueError(f"a spline needs K ≥ 2 nodes, got K={K}")
        self.K = K
        self.interior = nn.Parameter(straight_line(self.z0, self.z1, K)[:, 1:-1].clone())  # (B, K-2, d)
        h = 1.0 / (K - 1)
        n = K - 2
        A = torch.zeros(n, n, dtype=torch.float64)
        if n:
            A += torch.diag(torch.full((n,), 4.0, dtype=torch.float64))
            A += torch.diag(torch.ones(n - 1, dtype=torch.float64), 1) + torch.diag(torch.ones(n - 1, dtype=torch.float64), -1)
        # M_inner = (6 / h²) A⁻¹ (second differences of the nodes)
        self.register_buffer("solve", (torch.linalg.inv(A) * 6.0 / h**2).to(self.z0) if n else torch.zeros(0, 0).to(self.z0))

    @property
    def nodes(self) -> torch.Tensor:
        return torch.cat([self.z0[:, None], self.interior, self.z1[:, None]], dim=1)  # (B, K, d)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        t = _times(t)
        y = self.nodes  # (B, K, d)
        K, h = self.K, 1.0 / (self.K - 1)
        second = y[:, 2:] - 2 * y[:, 1:-1] + y[:, :-2]  # (B, K-2, d)
        M_in = torch.einsum("ij,bjd->bid", self.solve, second)
        zero = torch.zeros_like(y[:, :1])
        M = torch.cat([zero, M_in, zero], dim=1)  # (B, K, d)
        s = t.to(y) / h
        i = s.floor().long().clamp(0, K - 2)  # (S,)
        a = (i.to(y) + 1 - s)[:, None]  # weight of the left node, (S, 1)
        b = 1 - a
        return (a * y[:, i] + b * y[:, i + 1]
                + ((a**3 - a) * M[:, i] + (b**3 - b) * M[:, i + 1]) * (h**2 / 6))  # (B, S, d)
