"""Statistics with geodesic distances: interpolation, means and clusters that respect a metric. [Lecture 8]

Once a metric G on latent space is chosen, every statistic that a Euclidean method builds from straight lines and
differences can be rebuilt from geodesics and distances, and then it no longer depends on the latent coordinates:

    geodesic_interpolation(G, z0, z1, s)   the points at fractions s of the arc length of the geodesic z0 → z1
    frechet_mean(G, Z, weights)            m = argmin_m Σ_i w_i d(m, z_i)², by the Karcher iteration on log maps
    kmedoids(D, k)                         k-medoids (PAM) on a distance matrix D, e.g. gl.distance_matrix(G, Z)

Each one is batched: B endpoint pairs, B sets of points, or B distance matrices at once.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import torch

from . import _checks
from .curves import grid, straight_line
from .geodesics import GeodesicWarning, exp_map, geodesic
from .metrics import as_metric

__all__ = ["geodesic_interpolation", "FrechetMean", "frechet_mean", "KMedoids", "kmedoids"]


def _warn(converged: torch.Tensor, what: str) -> None:
    if not bool(converged.all()):
        bad = (~converged).nonzero().squeeze(1).tolist()
        warnings.warn(f"{what}: {len(bad)} of {converged.numel()} geodesic problems did not converge "
                      f"({bad[:10]}{' ...' if len(bad) > 10 else ''}); raise max_iter or T, or pass init",
                      GeodesicWarning, stacklevel=3)


# ---------------------------------------------------------------------------------------------------------------
# Interpolation at fractions of arc length
# ---------------------------------------------------------------------------------------------------------------

def geodesic_interpolation(G, z0: torch.Tensor, z1: torch.Tensor, s, T: int = 32, **kw) -> torch.Tensor:
    """The points γ(s) at fractions s ∈ [0, 1] of the arc length of the geodesic γ from z0 to z1:

        L[γ|₀^{γ(s)}] = s · L[γ],      γ(0) = z0, γ(1) = z1,

    the geodesic analogue of (1−s) z0 + s z1 (which it is for a linear decoder f(z) = Az).
    z0, z1 shape=[B, d] (or [d] for one pair, B = 1); s shape=[S] -> shape=[B, S, d].

    Algorithmic note: solves the B boundary-value problems with ``geodesic(G, z0, z1, T, **kw)``, measures the
    steps of each discrete geodesic with the metric's own step rule (the decoded chord for a pullback), and reads
    the latent polygon at the wanted cumulative lengths by linear interpolation within a step: exact for the
    polygon, and within the discretisation error O(1/T²) of the continuous geodesic. Warns (``GeodesicWarning``)
    when a problem did not converge. [Lecture 8]
    """
    z0, z1 = _checks.endpoints(z0, z1)
    if z0.dim() > 2:
        raise ValueError(f"endpoints must have shape (B, d) or (d,), got {tuple(z0.shape)}")
    s = torch.as_tensor(s, dtype=z0.dtype, device=z0.device)
    if s.dim() != 1 or not bool(torch.isfinite(s).all()) or bool(((s < 0) | (s > 1)).any()):
        raise ValueError(f"s must be fractions of the arc length, a 1-D tensor of values in [0, 1], got "
                         f"{s.tolist() if s.numel() <= 8 else tuple(s.shape)}")
    res = geodesic(G, z0, z1, T, **kw)
    _warn(res.converged, "geodesic_interpolation")
    c = res.curve  # (B, T, d)
    with torch.no_grad():
        step = as_metric(G).curve_sqlen(c).clamp_min(0).sqrt()  # (B, T-1)
    cum = torch.cat([torch.zeros_like(step[:, :1]), step.cumsum(-1)], -1)  # (B, T): length up to each point
    total = cum[:, -1:]
    frac = torch.where(total > 0, cum / total.clamp_min(torch.finfo(c.dtype).tiny), grid(T, c).expand_as(cum))
    target = s.expand(c.shape[0], -1).contiguous()  # (B, S)
    n = torch.searchsorted(frac.contiguous(), target, right=True).clamp(1, T - 1) - 1  # step n holds target
    lo, hi = frac.gather(1, n), frac.gather(1, n + 1)
    w = ((target - lo) / (hi - lo).clamp_min(torch.finfo(c.dtype).tiny)).clamp(0, 1)[..., None]  # (B, S, 1)
    a = c.gather(1, n[..., None].expand(-1, -1, c.shape[-1]))
    b = c.gather(1, (n + 1)[..., None].expand(-1, -1, c.shape[-1]))
    return (1 - w) * a + w * b


# ---------------------------------------------------------------------------------------------------------------
# Fréchet means
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FrechetMean:
    """What ``frechet_mean`` returns, for B sets of N points (batch shape (...) of Z without (N, d))."""

    mean: torch.Tensor  # (..., d) the weighted Fréchet mean m
    variance: torch.Tensor  # (...,) Σ_i w_i d(m, z_i)² / Σ_i w_i
    grad_norm: torch.Tensor  # (...,) ‖Σ_i w_i Log_m(z_i)‖_G / Σ_i w_i at the returned m
    converged: torch.Tensor  # (...,) bool: grad_norm ≤ tol · RMS distance, and every geodesic converged
    iterations: torch.Tensor  # (...,) long: Karcher steps taken
    curves: torch.Tensor  # (..., N, T, d) the geodesics from m to each z_i


def frechet_mean(G, Z: torch.Tensor, weights: torch.Tensor | None = None, *, init: torch.Tensor | None = None,
                 T: int = 16, max_iter: int = 50, tol: float | None = None, exp_steps: int = 8,
                 **geodesic_kw) -> FrechetMean:
    """The weighted Fréchet (Karcher) mean of points under a metric:

        m = argmin_m F(m),   F(m) = ½ Σ_i w_i d(m, z_i)²,   grad F(m) = −Σ_i w_i Log_m(z_i),

    found by the Karcher iteration m ← Exp_m(α v), v = Σ_i w_i Log_m(z_i) / Σ_i w_i, with α = 1 halved while F
    does not decrease. At a minimiser the log maps balance, Σ_i w_i Log_m(z_i) = 0; for a linear decoder this is
    the weighted average Σ_i w_i z_i / Σ_i w_i, on the sphere the centre of a symmetric configuration.

    Args:
        G: a metric (``Metric`` or function z -> G(z)); Z: points shape=[..., N, d] (a batch of sets);
        weights: shape=[..., N] (or [N]), ≥ 0 and not all 0 in a set; None for equal weights.
        init: the starting means shape=[..., d]; default the weighted average of Z in latent coordinates.
        T: points per geodesic; max_iter: Karcher steps; tol: stop when ‖v‖_{G(m)} ≤ tol · RMS distance (default
        1e-6 in float64, 1e-3 in float32);
        exp_steps: RK4 grid points of ``exp_map``; other keywords go to ``geodesic`` (e.g. max_iter is taken,
        so pass the solver's as ``geodesic_max_iter``).
    Returns a ``FrechetMean`` (mean, variance, grad_norm, converged, iterations, curves).

    Algorithmic note: every iteration solves the B·N geodesics m → z_i in one batched ``geodesic`` call, warm
    started from the previous curves with their first point moved to the new mean (a linear blend that keeps
    z_i fixed), so late iterations cost a few solver steps each. The step v is the exact gradient of the discrete
    objective Σ_i w_i E_i (E_i the discrete energy of the i-th geodesic, ½d² at constant speed): by the envelope
    theorem ∂E_i/∂m is the derivative of E_i in its first point, and v = −G(m)⁻¹ ∂/∂m Σ_i w_i E_i / Σ_i w_i
    equals Σ_i w_i Log_m(z_i) / Σ_i w_i in the limit T → ∞ (a finite difference of the discrete geodesics at
    m, as in ``log_map``, is only O(1/T²) close to it, and the iteration would stall at that level). So the mean
    found is the exact minimiser of the discrete problem, within O(1/T²) of the continuous mean. The step is the
    exponential map (``exp_map``, RK4 on the geodesic equation). [Lecture 8]
    """
    Z = _checks.points(Z, "Z")
    if Z.dim() < 2:
        raise ValueError(f"Z must be a set of points of shape (..., N, d), got shape {tuple(Z.shape)}")
    *batch, N, d = Z.shape
    Zf = Z.reshape(-1, N, d)  # (B, N, d)
    B = Zf.shape[0]
    if weights is None:
        w = torch.ones(B, N, dtype=Z.dtype, device=Z.device)
    else:
        w = _checks.as_tensor(weights, "weights")
        _checks.same_kind(w, Z, "weights", "Z")
        try:
            w = w.expand(*batch, N).reshape(B, N)
        except RuntimeError:
            raise ValueError(f"weights must have shape (..., N) = {(*batch, N)} (or broadcast to it), got "
                             f"{tuple(w.shape)}") from None
        _checks.finite(w, "weights")
        if bool((w < 0).any()) or bool((w.sum(-1) <= 0).any()):
            raise ValueError("weights must be ≥ 0 with a positive sum in every set")
    max_iter = _checks.count(max_iter, "max_iter", minimum=0)
    tol = (1e-6 if Z.dtype == torch.float64 else 1e-3) if tol is None else float(tol)
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    if _checks.count(T, "T") < 3:
        raise ValueError(f"T must be ≥ 3 (the log map needs two points after the first), got T={T}")
    exp_steps = _checks.count(exp_steps, "exp_steps", minimum=2)
    metric = as_metric(G)
    solver = dict(geodesic_kw)
    if "geodesic_max_iter" in solver:
        solver["max_iter"] = solver.pop("geodesic_max_iter")
    wn = w / w.sum(-1, keepdim=True)  # (B, N) normalised weights
    if init is None:
        m = (wn[..., None] * Zf).sum(-2)  # (B, d)
    else:
        m = _checks.points(init, "init", d=d)
        _checks.same_kind(m, Z, "init", "Z")
        if m.shape != (*batch, d):
            raise ValueError(f"init must have shape (..., d) = {(*batch, d)}, got {tuple(m.shape)}")
        m = m.reshape(B, d).clone()
    t = grid(T, Z)[:, None]  # (T, 1)
    curves = straight_line(m[:, None].expand(B, N, d), Zf, T)  # (B, N, T, d)

    def solve(m, curves):
        res = geodesic(metric, m[:, None].expand(B, N, d).reshape(-1, d), Zf.reshape(-1, d), T,
                       init=curves.reshape(-1, T, d), **solver)
        c = res.curve.reshape(B, N, T, d)
        # the exact gradient of the discrete objective F = Σ w E_i in m: E_i is minimised over the interior points,
        # so dE_i/dm = ∂E_i/∂c₀ (the envelope theorem), and the Riemannian step is v = −G(m)⁻¹ ∂F/∂m
        first = c[..., :1, :].detach().requires_grad_(True)
        with torch.enable_grad():
            E = 0.5 * (T - 1) * metric.curve_sqlen(torch.cat([first, c[..., 1:, :]], -2)).sum(-1)  # (B, N)
            (g,) = torch.autograd.grad((wn * E).sum(), first)
        with torch.no_grad():
            Gm = metric(m)  # (B, d, d)
            v = -torch.linalg.solve(Gm, g[..., 0, :].sum(-2))  # (B, d): Σ_i w_i Log_m(z_i) / Σ_i w_i, discretely
            gn = torch.einsum("bi,bij,bj->b", v, Gm, v).clamp_min(0).sqrt()
        F = (wn * E.detach()).sum(-1)  # (B,) half the weighted mean squared distance
        return c, v, F, gn, res.converged.reshape(B, N).all(-1)

    curves, v, F, gn, ok = solve(m, curves)
    alpha = torch.ones(B, dtype=Z.dtype, device=Z.device)
    iterations = torch.zeros(B, dtype=torch.long, device=Z.device)
    done = gn <= tol * (2 * F).sqrt()
    for _ in range(max_iter):
        if bool(done.all()):
            break
        active = ~done
        step = torch.where(active[:, None], alpha[:, None] * v, torch.zeros_like(v))
        with torch.no_grad():
            m_new = torch.where(active[:, None], exp_map(metric, m, step, T=exp_steps, substeps=2), m)
        _checks.finite(m_new, "the Karcher step (exp_map blew up)")
        moved = curves + (1 - t) * (m_new - m)[:, None, None, :]  # warm start: first point at the new mean
        c2, v2, F2, gn2, ok2 = solve(m_new, moved)
        better = active & (F2 <= F * (1 + 1e-12))
        m = torch.where(better[:, None], m_new, m)
        curves = torch.where(better[:, None, None, None], c2, curves)
        v, F = torch.where(better[:, None], v2, v), torch.where(better, F2, F)
        gn, ok = torch.where(better, gn2, gn), torch.where(better, ok2, ok)
        iterations += active.long()
        alpha = torch.where(better, torch.ones_like(alpha), torch.where(active, 0.5 * alpha, alpha))
        # a step that α ≤ 2⁻²⁰ cannot make decrease F stalls at round-off (or the solver's tolerance): stop there
        done = done | (gn <= tol * (2 * F).sqrt()) | (alpha < 2.0 ** -20)
    converged = (gn <= tol * (2 * F).sqrt()) & ok
    _warn(ok, "frechet_mean")
    with torch.no_grad():
        L2 = metric.curve_sqlen(curves).clamp_min(0).sqrt().sum(-1) ** 2  # (B, N) squared lengths
    variance = (wn * L2).sum(-1)
    return FrechetMean(mean=m.reshape(*batch, d), variance=variance.reshape(batch), grad_norm=gn.reshape(batch),
                       converged=converged.reshape(batch), iterations=iterations.reshape(batch),
                       curves=curves.reshape(*batch, N, T, d))


# ---------------------------------------------------------------------------------------------------------------
# k-medoids
# ---------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KMedoids:
    """What ``kmedoids`` returns for distance matrices D shape (..., N, N)."""

    medoids: torch.Tensor  # (..., k) long: indices of the medoids, in the order they were chosen
    labels: torch.Tensor  # (..., N) long in [0, k): the medoid (position in ``medoids``) nearest to each point
    cost: torch.Tensor  # (...,) Σ_x D[x, nearest medoid]
    iterations: torch.Tensor  # (...,) long: swaps made


_SWAP_CHUNK = 1 << 22  # elements of the (k, candidates, N) swap-cost tensor evaluated at once


def kmedoids(D: torch.Tensor, k: int, max_iter: int = 100) -> KMedoids:
    """k-medoids by PAM (Kaufman & Rousseeuw): the k points m_1..m_k that minimise Σ_x min_j D[x, m_j].

    BUILD picks the point with the least total distance, then, k−1 times, the point that lowers the cost most;
    SWAP then exchanges, while it lowers the cost, the medoid and non-medoid whose exchange lowers it most. The
    result is a local optimum: no single swap improves it (often, not always, the global one). Deterministic:
    ties go to the lowest index. Unlike k-means it needs only distances, so any metric's distances work, and
    the medoids are data points.

    D: distance matrices shape=[..., N, N]: symmetric, ≥ 0, zero diagonal (checked to 1e-6 of max D);
    k: 1 ≤ k ≤ N. Returns ``KMedoids(medoids (..., k), labels (..., N), cost (...), iterations (...))``.

    Algorithmic note: with the distance d₁(x) to the nearest medoid and d₂(x) to the second nearest, the cost
    after swapping medoid j for candidate o is Σ_x min(D[o, x], d₁(x) if x's nearest medoid is not j else d₂(x));
    all k·N swaps are evaluated at once per iteration (O(k N²), in chunks), for every matrix of the batch.
    [Lecture 8]
    """
    D = _checks.as_tensor(D, "D")
    if D.dim() < 2 or D.shape[-1] != D.shape[-2]:
        raise ValueError(f"D must be square distance matrices of shape (..., N, N), got {tuple(D.shape)}")
    _checks.finite(D, "D")
    N = D.shape[-1]
    k = _checks.count(k, "k")
    if k > N:
        raise ValueError(f"k={k} medoids need at least k points, got N={N}")
    max_iter = _checks.count(max_iter, "max_iter", minimum=0)
    batch = D.shape[:-2]
    Df = D.reshape(-1, N, N)  # (B, N, N)
    scale = Df.abs().amax().clamp_min(torch.finfo(D.dtype).tiny)
    tol = 1e-6 * scale
    if bool((Df < -tol).any()) or bool(((Df - Df.mT).abs() > tol).any()) or \
            bool((Df.diagonal(dim1=-2, dim2=-1).abs() > tol).any()):
        raise ValueError("D must be a distance matrix: symmetric, ≥ 0 and zero on the diagonal (to 1e-6 of its "
                         f"largest entry {scale.item():.3g})")
    B = Df.shape[0]
    ar = torch.arange(B, device=D.device)

    # BUILD
    med = Df.sum(-1).argmin(-1)[:, None]  # (B, 1)
    near = Df.gather(1, med[:, :, None].expand(B, 1, N))[:, 0]  # (B, N) distance to the nearest medoid
    for _ in range(1, k):
        gain = (near[:, None, :] - Df).clamp_min(0).sum(-1)  # (B, N): cost decrease if each point were added
        gain.scatter_(1, med, -1.0)  # never pick a medoid twice
        new = gain.argmax(-1)  # (B,)
        med = torch.cat([med, new[:, None]], 1)
        near = torch.minimum(near, Df[ar, new])

    def assign(med):
        Dm = Df.gather(1, med[:, :, None].expand(B, med.shape[1], N))  # (B, k, N): medoid rows
        d2, j2 = Dm.topk(min(2, med.shape[1]), dim=1, largest=False)  # (B, ≤2, N)
        return Dm, d2, j2[:, 0]

    iterations = torch.zeros(B, dtype=torch.long, device=D.device)
    for _ in range(max_iter if k < N else 0):
        Dm, d12, nearest = assign(med)
        d1 = d12[:, 0]
        d2 = d12[:, 1] if k > 1 else torch.full_like(d1, float("inf"))
        cost = d1.sum(-1)  # (B,)
        slots = torch.arange(k, device=D.device)
        excl = torch.where(nearest[:, None, :] == slots[None, :, None], d2[:, None, :], d1[:, None, :])  # (B, k, N)
        best = torch.full((B,), float("inf"), dtype=D.dtype, device=D.device)
        best_j = torch.zeros(B, dtype=torch.long, device=D.device)
        best_o = torch.zeros(B, dtype=torch.long, device=D.device)
        chunk = max(1, _SWAP_CHUNK // (k * N))
        for o0 in range(0, N, chunk):
            cand = Df[:, o0:o0 + chunk]  # (B, c, N)
            new_cost = torch.minimum(excl[:, :, None, :], cand[:, None, :, :]).sum(-1)  # (B, k, c)
            flat = new_cost.reshape(B, -1)
            val, idx = flat.min(-1)
            take = val < best
            best = torch.where(take, val, best)
            best_j = torch.where(take, idx // new_cost.shape[-1], best_j)
            best_o = torch.where(take, o0 + idx % new_cost.shape[-1], best_o)
        is_med = (med == best_o[:, None]).any(-1)
        improve = (best < cost - 1e-12 * cost.abs().clamp_min(tol)) & ~is_med
        if not bool(improve.any()):
            break
        med = med.clone()
        med[ar[improve], best_j[improve]] = best_o[improve]
        iterations += improve.long()

    Dm, d12, nearest = assign(med)
    return KMedoids(medoids=med.reshape(*batch, k), labels=nearest.reshape(*batch, N),
                    cost=d12[:, 0].sum(-1).reshape(batch), iterations=iterations.reshape(batch))
