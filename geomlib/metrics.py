"""Riemannian metrics on latent space, as functions G(z) -> (..., d, d). [Lecture 3]

A metric is a ``Metric``: call it on points z shape=[..., d] to get the full matrix G(z) shape=[..., d, d].
Every metric answers the same five questions, so no consumer ever branches on its kind:

    G(z)                    the matrix,
    sqnorm(z, v)            vᵀ G(z) v for tangent vectors v shape=[..., d]  (often cheaper than G),
    step_sqlen(a, b)        the squared length of the short step a -> b of a discrete curve,
    curve_sqlen(c)          the same for all T-1 steps of curves c shape=[..., T, d] at once,
    acceleration(z, v)      c̈ of the geodesic through z with velocity v: −Γᵏ_ij vⁱ vʲ.

Combinators build metrics: ``euclidean``, ``pullback(f)`` (G = JᵀJ), ``expected_pullback(mu, sigma)``
(geomlib.stochastic), ``fisher_pullback(decoder)`` (geomlib.fisher). A plain function z -> G(z) works
wherever a metric is expected (it is wrapped by ``as_metric``).
"""
from __future__ import annotations

from typing import Callable

import torch

from . import _checks
from .jacobians import checked, jacobian_unchecked, jvp_unchecked, pointwise_jacobian_unchecked

__all__ = ["Metric", "as_metric", "euclidean", "pullback", "inner", "norm", "angle", "volume",
           "magnification", "christoffel"]


class Metric:
    """A metric tensor field (final class: build new metrics with the combinators, not by subclassing).

    Args:
        G: z shape=[..., d] -> G(z) shape=[..., d, d], symmetric positive definite.
        sqnorm: optional (z, v) -> vᵀG(z)v shape=[...]; default contracts G.
        step_sqlen: optional (a, b) -> squared length of the step a -> b, shape=[...]; default the midpoint
            rule (b-a)ᵀ G((a+b)/2) (b-a), which is second-order accurate.
        curve_sqlen: optional c shape=[..., T, d] -> the T-1 squared step lengths shape=[..., T-1], when doing
            a whole curve at once is cheaper than step by step (e.g. decoding each point once, not twice).
        acceleration: optional (z, v) -> c̈ shape=[..., d] of the geodesic equation; default contracts the
            Christoffel symbols (a forward-mode derivative of G).
        name: shown in plots and error messages.
        embedding: optional map φ: z shape=[..., d] -> shape=[..., D] when the steps are decoded chords,
            s_n² = ‖φ(c_{n+1}) − φ(c_n)‖² (``pullback``'s default). Then ``curve_sqlen`` defaults to those chords,
            and the geodesic solver uses the least-squares form of the energy (see ``geodesic``).
    """

    def __init__(self, G: Callable, sqnorm: Callable | None = None, step_sqlen: Callable | None = None,
                 name: str = "metric", acceleration: Callable | None = None, curve_sqlen: Callable | None = None,
                 embedding: Callable | None = None):
        self._G, self._sqnorm, self._step, self._acc, self.name = G, sqnorm, step_sqlen, acceleration, name
        self._curve, self.embedding = curve_sqlen, embedding
        if embedding is not None and step_sqlen is None:
            self._step = lambda a, b: (embedding(b) - embedding(a)).pow(2).sum(-1)
        if embedding is not None and curve_sqlen is None:
            self._curve = lambda c: _chords(embedding(c))

    def __init_subclass__(cls, **kw):
        raise TypeError("Metric is final: combine functions instead of subclassing")

    def __repr__(self) -> str:
        return f"Metric({self.name})"

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        G = self._G(z)
        if not isinstance(G, torch.Tensor) or G.shape != (*z.shape, z.shape[-1]):
            got = tuple(G.shape) if isinstance(G, torch.Tensor) else type(G).__name__
            raise ValueError(f"metric {self.name} must map z shape (..., d) = {tuple(z.shape)} to G shape "
                             f"(..., d, d) = {(*z.shape, z.shape[-1])}, got {got}")
        if G.dtype != z.dtype:
            raise TypeError(f"metric {self.name} returned G of dtype {G.dtype} for z of dtype {z.dtype}; it must "
                            "return z's dtype")
        return G

    def sqnorm(self, z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """vᵀ G(z) v, shape=[...]."""
        if self._sqnorm is not None:
            return self._sqnorm(z, v)
        return torch.einsum("...i,...ij,...j->...", v, self(z), v)

    def step_sqlen(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Squared length of the step from a to b (consecutive points of a discrete curve), shape=[...]."""
        if self._step is not None:
            return self._step(a, b)
        return self.sqnorm(0.5 * (a + b), b - a)

    def curve_sqlen(self, c: torch.Tensor) -> torch.Tensor:
        """Squared lengths of the T-1 steps of curves c shape=[..., T, d] -> shape=[..., T-1]."""
        if self._curve is not None:
            return self._curve(c)
        return self.step_sqlen(c[..., :-1, :], c[..., 1:, :])

    def acceleration(self, z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """c̈ᵏ = −Γᵏ_ij(z) vⁱ vʲ, the geodesic equation's right-hand side, shape=[..., d]."""
        if self._acc is not None:
            return self._acc(z, v)
        return -torch.einsum("...kij,...i,...j->...k", christoffel_unchecked(self, z), v, v)


def as_metric(G) -> Metric:
    """None -> euclidean; a Metric -> itself; a function z -> G(z) -> a Metric around it."""
    if G is None:
        return euclidean
    if isinstance(G, Metric):
        return G
    if callable(G):
        return Metric(G, name=getattr(G, "__name__", "metric"))
    raise TypeError(f"expected a metric (a Metric or a function z -> G(z)), got {type(G).__name__}")


def _eye(z: torch.Tensor) -> torch.Tensor:
    d = z.shape[-1]
    return torch.eye(d, dtype=z.dtype, device=z.device).expand(*z.shape, d)


euclidean = Metric(_eye, sqnorm=lambda z, v: (v * v).sum(-1), step_sqlen=lambda a, b: ((b - a) ** 2).sum(-1),
                   name="euclidean")
euclidean.__doc__ = "The Euclidean metric G(z) = I."


_CHUNK = (2048, 65536)  # points per Jacobian evaluation in pullback's G: on a CPU, on a GPU


def pullback(f: Callable[[torch.Tensor], torch.Tensor], step: str = "data") -> Metric:
    """The pullback of the Euclidean metric of data space through the decoder f: G(z) = J(z)ᵀ J(z).

    f maps z shape=[..., d] to x shape=[..., D]. vᵀGv = ‖J v‖² costs one Jacobian-vector product.
    step: how a discrete curve's steps are measured.
      "data" (default): s_n² = ‖f(c_{n+1}) − f(c_n)‖², the decoded polygon. It never underestimates a step
        by more than the chord does, and it is cheaper (one forward pass per point).
      "midpoint": s_n² = ‖J(c̄_n) Δc_n‖², the metric's own quadrature. Beware: with a decoder that saturates
        far from the data (G → 0 there), a long step whose midpoint lands far away costs almost nothing, and
        an energy minimiser can exploit that; use it for analysis on fine curves, not for solving.
    [Lecture 3]
    """
    if step not in ("midpoint", "data"):
        raise ValueError(f"step must be 'midpoint' or 'data', got {step!r}")
    if not callable(f):
        raise TypeError(f"the decoder f must be a function z -> x, got {type(f).__name__}")
    f = checked(f, "the decoder")

    def G(z):
        # In chunks of points, so that J (chunk, D, d) stays small and its memory is reused: for 10,000 points
        # and D = 784 this halves the time on a CPU (no fresh pages to fault in) and bounds the memory on a GPU.
        d, zf = z.shape[-1], z.reshape(-1, z.shape[-1])  # (N, d)
        Js = (jacobian_unchecked(f, zc) for zc in zf.split(_CHUNK[z.device.type == "cuda"]))  # (n, D, d) each
        Gf = torch.cat([J.transpose(-1, -2) @ J for J in Js]) if zf.shape[0] else zf.new_zeros(0, d, d)
        return Gf.reshape(*z.shape, d)  # (..., d, d)

    def sqnorm(z, v):
        return jvp_unchecked(f, z, v)[1].pow(2).sum(-1)

    def acceleration(z, v):
        # x = f(c) is a geodesic of data space projected onto the decoded surface: Jᵀ(J c̈ + D²f[ċ, ċ]) = 0,
        # so c̈ = −(JᵀJ)⁻¹ Jᵀ D²f[v, v], with D²f[v, v] from two nested Jacobian-vector products.
        J = jacobian_unchecked(f, z)  # (..., D, d)
        h = jvp_unchecked(lambda zz: jvp_unchecked(f, zz, v)[1], z, v)[1]  # (..., D)
        rhs = (J.transpose(-1, -2) @ h[..., None])[..., 0]
        return -torch.linalg.solve(J.transpose(-1, -2) @ J, rhs)

    return Metric(G, sqnorm, name=f"pullback({getattr(f, '__name__', type(f).__name__)})", acceleration=acceleration,
                  embedding=f if step == "data" else None)


def _chords(x: torch.Tensor) -> torch.Tensor:
    """‖x_{n+1} − x_n‖² for decoded curves x shape=[..., T, D] -> shape=[..., T-1] (each point decoded once)."""
    return (x[..., 1:, :] - x[..., :-1, :]).pow(2).sum(-1)


def _sqrt(s2: torch.Tensor) -> torch.Tensor:
    """√s² for s² ≥ 0 (0 where s² ≤ 0), with gradient 0 there: sqrt's own is infinite at 0, and the chain rule's
    0 · ∞ would make the whole gradient NaN (a curve with a repeated point, a zero tangent vector)."""
    pos = s2 > 0
    return torch.where(pos, torch.where(pos, s2, 1.0).sqrt(), 0.0)


def _prep(G, z, **vs):
    """The metric, z, and the tangent vectors (named by keyword), each shape=[..., d] broadcast to z's shape."""
    z = _checks.points(z, "z")
    out = []
    for name, v in vs.items():
        _checks.points(v, name)
        _checks.same_kind(z, v, "z", name)
        try:
            fits = v.shape[-1] == z.shape[-1] and torch.broadcast_shapes(v.shape, z.shape) == z.shape
        except RuntimeError:
            fits = False
        if not fits:
            raise ValueError(f"{name} must have z's shape (..., d) = {tuple(z.shape)} (or one that broadcasts to "
                             f"it), got {name} shape {tuple(v.shape)}")
        out.append(v.expand(z.shape))
    return as_metric(G), z, *out


def inner(G, z: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """⟨u, v⟩_z = uᵀ G(z) v for z shape=[..., d] and u, v of z's shape (or broadcastable to it) -> shape=[...]."""
    G, z, u, v = _prep(G, z, u=u, v=v)
    return torch.einsum("...i,...ij,...j->...", u, G(z), v)


def norm(G, z: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """‖v‖_z = √(vᵀ G(z) v) for z shape=[..., d] and v of z's shape (or broadcastable to it) -> shape=[...]."""
    G, z, v = _prep(G, z, v=v)
    return _sqrt(G.sqnorm(z, v))


def angle(G, z: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The angle between tangent vectors u and v at z: arccos(⟨u,v⟩_z / (‖u‖_z ‖v‖_z)), in [0, π].

    For two curves through z, pass their velocities there (e.g. ``curves.velocity(c)[..., n, :]``).
    """
    G, z, u, v = _prep(G, z, u=u, v=v)
    Gz = G(z)
    uv = torch.einsum("...i,...ij,...j->...", u, Gz, v)
    uu = torch.einsum("...i,...ij,...j->...", u, Gz, u)
    vv = torch.einsum("...i,...ij,...j->...", v, Gz, v)
    if bool(((uu <= 0) | (vv <= 0)).any()):
        raise ValueError("angle is undefined for a zero tangent vector")
    return torch.arccos((uv / (uu * vv).sqrt()).clamp(-1.0, 1.0))


def volume(G, z: torch.Tensor) -> torch.Tensor:
    """The volume element (magnification factor) √det G(z), shape=[...]: how much f stretches area at z."""
    G, z = _prep(G, z)
    return torch.linalg.det(G(z)).clamp_min(0).sqrt()


magnification = volume


def christoffel(G, z: torch.Tensor) -> torch.Tensor:
    """Christoffel symbols of the second kind, Γ[..., k, i, j] = Γᵏ_ij, shape=[..., d, d, d]:

        Γᵏ_ij = ½ Gᵏˡ (∂_i G_lj + ∂_j G_li − ∂_l G_ij).

    The derivatives ∂G come from one batched forward-mode Jacobian of z -> G(z).
    """
    G, z = _prep(G, z)
    return christoffel_unchecked(G, z)


def christoffel_unchecked(G: Metric, z: torch.Tensor) -> torch.Tensor:
    d = z.shape[-1]
    flat = z.reshape(-1, d)  # (N, d)

    def single(zi):
        Gi = G(zi[None])[0]
        return Gi, Gi

    dG, Gz = pointwise_jacobian_unchecked(single, flat)  # dG[n, l, j, i] = ∂_i G_lj, shape (N, d, d, d)
    # T[l, i, j] = ∂_i G_lj + ∂_j G_li − ∂_l G_ij
    Tlij = dG.permute(0, 1, 3, 2) + dG - dG.permute(0, 3, 1, 2)
    Gam = 0.5 * torch.einsum("nkl,nlij->nkij", torch.linalg.inv(Gz), Tlij)
    return Gam.reshape(*z.shape, d, d)
