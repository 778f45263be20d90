"""Geodesics: locally shortest curves under a metric. [Lecture 3]

Boundary-value problems (``geodesic``): minimise the discrete energy E = ½ (T-1) Σ_n s_n² of curves with
fixed endpoints; minimisers of the energy are constant-speed geodesics, and their length is the geodesic
distance (if the minimiser is global). Initial-value problems (``shoot``, ``exp_map``): integrate the
geodesic equation c̈ᵏ = −Γᵏ_ij ċⁱ ċʲ. ``graph_geodesic`` gives shortest paths through a k-NN graph of points,
a good start for curves that must go around regions of high metric.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable

import torch

from . import _checks
from .curves import resample, straight_line
from .metrics import Metric, as_metric

__all__ = ["GeodesicResult", "GeodesicWarning", "geodesic", "log_map", "shoot", "exp_map", "graph_geodesic",
           "distance", "distance_matrix"]


class GeodesicWarning(UserWarning):
    """Some boundary-value problems did not converge."""


@dataclass(frozen=True)
class GeodesicResult:
    """What ``geodesic`` returns. B = number of endpoint pairs (the batch shape of z0, z1, flattened)."""

    curve: torch.Tensor  # (B, T, d), endpoints exactly z0, z1
    length: torch.Tensor  # (B,)
    energy: torch.Tensor  # (B,)
    converged: torch.Tensor  # (B,) bool: the convergence criterion was met
    iterations: torch.Tensor  # (B,) long: iterations used per pair


def _energy(metric: Metric, z0, x, z1) -> torch.Tensor:
    c = torch.cat([z0[:, None], x, z1[:, None]], dim=1)  # (b, T, d)
    return 0.5 * (c.shape[1] - 1) * metric.curve_sqlen(c).sum(-1)  # (b,)


def _default_tol(dtype: torch.dtype) -> float:
    return 1e-10 if dtype == torch.float64 else 1e-6


def geodesic(G, z0: torch.Tensor, z1: torch.Tensor, T: int = 32, *, init=None, graph_points=None,
             max_iter: int = 500, tol: float | None = None, memory: int = 10,
             callback: Callable[[int, torch.Tensor], None] | None = None,
             precondition: str = "metric", refresh: int = 3) -> GeodesicResult:
    """Solve B boundary-value problems c(0) = z0, c(1) = z1 by minimising the discrete curve energy.

    Args:
        G: a metric (``Metric`` or a function z -> G(z)); None for Euclidean.
        z0, z1: endpoints shape=[B, d], or [d] for one pair (B = 1); a [d] endpoint is shared by all B pairs.
        T: points per curve (T ≥ 3).
        init: initial curves shape=[B, T, d] with the given endpoints; None for the straight line; "graph"
            for shortest paths through a k-NN graph of ``graph_points`` (shape [N, d]).
        max_iter: iteration limit per pair. tol: relative convergence tolerance (default 1e-10 in float64,
            1e-6 in float32).
        callback: called as callback(iteration, curves (B, T, d)) after each iteration (e.g. to animate).
        precondition: "metric" (default) or "euclidean", the L-BFGS start matrix (see the note);
            refresh: recompute the metric once every ``refresh`` iterations. memory: L-BFGS history length.

    Returns: ``GeodesicResult(curve (B, T, d), length (B,), energy (B,), converged (B,), iterations (B,))``.

    Convergence: pair b has converged when the decrease in energy that a quasi-Newton step still predicts,
    gᵀH⁻¹g (the squared Newton decrement), is at most tol·E_b; it is checked before every step and after the
    last one. Pairs that hit ``max_iter`` without meeting it report ``converged = False``. A pair whose line
    search cannot decrease the energy any more stops there; it reports ``converged = True`` only if the criterion
    holds within 100·tol (round-off), otherwise False (a broken metric). Where the frozen-metric start matrix
    gives no descent (G singular, e.g. d > D), that pair goes on with the Euclidean one before giving up.

    Algorithmic note: batched L-BFGS on the T-2 interior points of all pairs at once, each pair with its own
    memory, step size and stopping time (converged pairs drop out of the batch). The start matrix H0 of each
    L-BFGS step is the Hessian of the discrete energy with the metric frozen at the curve's midpoints, a
    block-tridiagonal "metric Laplacian" (T-1)(G(c̄_{i-1}) + G(c̄_i)) / −(T-1)G(c̄_i), solved by a batched Cholesky
    factorisation; L-BFGS's memory adds what freezing G leaves out (how G varies along the curve). This makes
    the iteration count nearly independent of T and of how unevenly G scales space: on the benchmark decoder
    (benchmarks/bench_geodesics.py) the hardest of 16 pairs needs 7 iterations instead of 37 with a Euclidean
    start matrix. Per iteration: one energy-and-gradient evaluation (plus backtracking when the full step is
    rejected); every ``refresh`` iterations also G at T-1 points and a Cholesky factorisation of (T-2)d rows.
    """
    z0, z1 = _checks.endpoints(z0, z1)
    if z0.dim() > 2:
        raise ValueError(f"endpoints must have shape (B, d) or (d,), got {tuple(z0.shape)}")
    z0, z1 = z0.reshape(-1, z0.shape[-1]), z1.reshape(-1, z1.shape[-1])  # (B, d)
    metric = as_metric(G)
    if _checks.count(T, "T") < 3:
        raise ValueError(f"a geodesic needs T ≥ 3 points (at least one free point), got T={T}")
    memory, refresh = _checks.count(memory, "memory"), _checks.count(refresh, "refresh")
    max_iter = _checks.count(max_iter, "max_iter", minimum=0)
    tol = _default_tol(z0.dtype) if tol is None else float(tol)
    B, d = z0.shape
    c0 = _initial_curves(metric, z0, z1, T, init, graph_points)

    if precondition not in ("metric", "euclidean"):
        raise ValueError(f"precondition must be 'metric' or 'euclidean', got {precondition!r}")
    n = T - 2
    lap = _laplacian_factor(n, d, z0)  # (n·d, n·d), Cholesky factor of the Euclidean energy's Hessian
    H0 = lap.expand(B, n * d, n * d).clone()  # per pair: Cholesky factor of the L-BFGS start matrix

    def solve_H0(idx, q):  # H0⁻¹ q for q shape (b, n, d)
        return torch.cholesky_solve(q.reshape(q.shape[0], n * d, 1), H0[idx]).reshape(q.shape)

    def dot(a, b):  # per-pair inner product of (b, n, d) tensors -> (b,)
        return (a * b).sum((1, 2))

    def energy_and_grad(idx, x):
        x = x.detach().requires_grad_(True)
        with torch.enable_grad():
            E = _energy(metric, z0[idx], x, z1[idx])
            (g,) = torch.autograd.grad(E.sum(), x)
        return E.detach(), g

    x = c0[:, 1:-1].clone()  # (B, n, d)
    all_idx = torch.arange(B, device=z0.device)
    E, g = energy_and_grad(all_idx, x)
    _check_finite_energy(E, "the initial curves")
    S = torch.zeros(memory, B, n, d, dtype=x.dtype, device=x.device)  # L-BFGS memory, newest last
    Y = torch.zeros_like(S)
    rho = torch.zeros(memory, B, dtype=x.dtype, device=x.device)
    filled = torch.zeros(B, dtype=torch.long, device=x.device)  # how many memory slots hold pairs
    iterations = torch.zeros(B, dtype=torch.long, device=x.device)
    converged = torch.zeros(B, dtype=torch.bool, device=x.device)
    active = torch.ones(B, dtype=torch.bool, device=x.device)
    euclid = torch.full((B,), precondition == "euclidean", dtype=torch.bool, device=x.device)  # H0 = Laplacian

    for it in range(1, max_iter + 2):  # the last round only checks the curves that max_iter steps left
        idx = all_idx[active]
        if idx.numel() == 0:
            break
        xa, ga, Ea = x[idx], g[idx], E[idx]
        Sa, Ya, ra, fa = S[:, idx], Y[:, idx], rho[:, idx], filled[idx]
        # two-loop recursion, batched over pairs; slots a pair has not filled yet have rho = 0 (no effect)
        q = ga.clone()
        alpha = torch.zeros_like(ra)
        for k in range(memory - 1, -1, -1):
            alpha[k] = ra[k] * dot(Sa[k], q)
            q = q - alpha[k][:, None, None] * Ya[k]
        ea = euclid[idx]
        if (it - 1) % refresh == 0 and not bool(ea.all()):
            m = idx[~ea]
            H0[m] = _metric_laplacian_factor(metric, z0[m], x[m], z1[m], lap)
        r = solve_H0(idx, q)
        if bool(ea.any()):  # the metric Laplacian carries the metric's scale; the Euclidean one needs sᵀy/yᵀH0y
            newest_y, newest_s = Ya[-1], Sa[-1]
            gamma = torch.where(ea & (fa > 0), dot(newest_s, newest_y)
                                / dot(newest_y, solve_H0(idx, newest_y)).clamp_min(torch.finfo(x.dtype).tiny),
                                torch.ones_like(Ea))
            r = gamma[:, None, None] * r
        for k in range(memory):
            beta = ra[k] * dot(Ya[k], r)
            r = r + (alpha[k] - beta)[:, None, None] * Sa[k]
        gr = dot(ga, r)  # predicted decrease (squared Newton decrement), > 0 for a descent direction
        bad = ~(gr > 0)
        if bool(bad.any()):  # lost positive definiteness: restart that pair's memory with the preconditioner
            r = torch.where(bad[:, None, None], solve_H0(idx, ga), r)
            gr = dot(ga, r)
            filled[idx[bad]] = 0
            rho[:, idx[bad]] = 0
        done = gr <= tol * Ea.abs().clamp_min(torch.finfo(x.dtype).tiny)
        if bool(done.any()):
            converged[idx[done]] = True
            active[idx[done]] = False
            keep = ~done
            idx, xa, ga, Ea, r, gr = idx[keep], xa[keep], ga[keep], Ea[keep], r[keep], gr[keep]
            if idx.numel() == 0:
                break
        if it > max_iter:
            break
        # backtracking (Armijo) line search, each pair with its own step
        step = torch.ones_like(Ea)
        x_new, E_new, g_new = xa.clone(), Ea.clone(), ga.clone()
        pending = torch.ones_like(Ea, dtype=torch.bool)
        for _ in range(30):
            pi = pending.nonzero().squeeze(1)
            xt = xa[pi] - step[pi, None, None] * r[pi]
            Et, gt = energy_and_grad(idx[pi], xt)
            ok = torch.isfinite(Et) & (Et <= Ea[pi] - 1e-4 * step[pi] * gr[pi])
            acc = pi[ok]
            x_new[acc], E_new[acc], g_new[acc] = xt[ok], Et[ok], gt[ok]
            pending[acc] = False
            step[pi[~ok]] *= 0.5
            if not bool(pending.any()):
                break
        stalled = pending  # no decrease found: round-off level, a broken metric, or a bad start matrix
        retry = stalled & ~euclid[idx]
        if bool(retry.any()):  # where G is (nearly) singular the frozen-metric H0 can point nowhere useful:
            ridx = idx[retry]  # go on from here with the Euclidean start matrix and a fresh memory
            euclid[ridx], H0[ridx], filled[ridx], rho[:, ridx] = True, lap, 0, 0
            stalled = stalled & ~retry
        if bool(stalled.any()):
            sidx = idx[stalled]
            converged[sidx] = gr[stalled] <= 100 * tol * Ea[stalled].abs()
            active[sidx] = False
        moved = ~stalled
        midx = idx[moved]
        s_new, y_new = (x_new - xa)[moved], (g_new - ga)[moved]
        sy = dot(s_new, y_new)
        S[:, midx] = torch.roll(S[:, midx], -1, dims=0)
        Y[:, midx] = torch.roll(Y[:, midx], -1, dims=0)
        rho[:, midx] = torch.roll(rho[:, midx], -1, dims=0)
        S[-1, midx], Y[-1, midx] = s_new, y_new
        rho[-1, midx] = torch.where(sy > 0, 1.0 / sy.clamp_min(torch.finfo(x.dtype).tiny), torch.zeros_like(sy))
        filled[midx] = (filled[midx] + 1).clamp(max=memory)
        x[midx], E[midx], g[midx] = x_new[moved], E_new[moved], g_new[moved]
        iterations[idx] += 1
        if callback is not None:
            callback(it, torch.cat([z0[:, None], x, z1[:, None]], dim=1).detach())

    curve = torch.cat([z0[:, None], x, z1[:, None]], dim=1).detach()  # (B, T, d)
    with torch.no_grad():
        steps = metric.curve_sqlen(curve).clamp_min(0)  # (B, T-1)
    return GeodesicResult(curve=curve, length=steps.sqrt().sum(-1), energy=0.5 * (T - 1) * steps.sum(-1),
                          converged=converged, iterations=iterations)


def _laplacian_factor(n: int, d: int, like: torch.Tensor) -> torch.Tensor:
    """Cholesky factor of (T-1)·L ⊗ I_d, the Hessian of the Euclidean discrete energy in the n = T-2 interior
    points (L: the tridiagonal second-difference matrix). shape=[n·d, n·d]."""
    kw = dict(dtype=like.dtype, device=like.device)
    L = 2 * torch.eye(n, **kw) - torch.diag(torch.ones(n - 1, **kw), 1) - torch.diag(torch.ones(n - 1, **kw), -1)
    return torch.linalg.cholesky(torch.kron((n + 1) * L, torch.eye(d, **kw)))


def _metric_laplacian_factor(metric: Metric, z0, x, z1, fallback: torch.Tensor) -> torch.Tensor:
    """Cholesky factor of H, the discrete energy's Hessian with G frozen at the midpoints c̄_n of the curves:
    block tridiagonal, H_ii = (T-1)(G(c̄_{i-1}) + G(c̄_i)), H_{i,i+1} = H_{i+1,i} = −(T-1) G(c̄_i).
    x shape=[b, n, d] (interior points) -> shape=[b, n·d, n·d]. Pairs where H is not numerically positive
    definite get ``fallback`` (the Euclidean factor)."""
    b, n, d = x.shape
    T = n + 2
    c = torch.cat([z0[:, None], x, z1[:, None]], dim=1)  # (b, T, d)
    with torch.no_grad():
        Gm = (T - 1) * metric(0.5 * (c[:, 1:] + c[:, :-1]))  # (b, T-1, d, d)
    H = torch.zeros(b, n, d, n, d, dtype=x.dtype, device=x.device)  # (b, n, d, n, d): block (i, j) is H[:, i, :, j]
    i = torch.arange(n, device=x.device)
    H[:, i, :, i, :] = (Gm[:, :-1] + Gm[:, 1:]).transpose(0, 1)
    H[:, i[:-1], :, i[:-1] + 1, :] = -Gm[:, 1:-1].transpose(0, 1)
    H[:, i[:-1] + 1, :, i[:-1], :] = -Gm[:, 1:-1].transpose(0, 1)
    H = H.reshape(b, n * d, n * d)
    # a ridge at round-off level keeps H factorisable where G is (numerically) singular, without biasing the
    # step in well-posed but ill-conditioned directions
    ridge = 100 * torch.finfo(x.dtype).eps * H.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(torch.finfo(x.dtype).tiny)
    L, info = torch.linalg.cholesky_ex(H + ridge[:, None, None] * torch.eye(n * d, dtype=x.dtype, device=x.device))
    bad = (info != 0) | ~torch.isfinite(L).all(-1).all(-1)
    return torch.where(bad[:, None, None], fallback, L)


def _check_finite_energy(E: torch.Tensor, what: str) -> None:
    if not bool(torch.isfinite(E).all()):
        bad = (~torch.isfinite(E)).nonzero().squeeze(1).tolist()
        raise ValueError(f"the metric gives a non-finite energy on {what} for pairs {bad[:10]}"
                         f"{' ...' if len(bad) > 10 else ''}: check the decoder/metric there (NaN, inf, or a singular point)")


def _initial_curves(metric, z0, z1, T, init, graph_points) -> torch.Tensor:
    if init is None:
        return straight_line(z0, z1, T)
    if isinstance(init, str):
        if init != "graph":
            raise ValueError(f"init must be None, 'graph' or a tensor of curves, got {init!r}")
        if graph_points is None:
            raise ValueError("init='graph' needs graph_points, the points (N, d) to build the k-NN graph on")
        return graph_geodesic(metric, graph_points, z0, z1, T=T)
    c = _checks.curve(init, "init")
    _checks.same_kind(c, z0, "init", "z0")
    if c.shape != (z0.shape[0], T, z0.shape[1]):
        raise ValueError(f"init must have shape (B, T, d) = {(z0.shape[0], T, z0.shape[1])}, got {tuple(c.shape)}")
    err = torch.maximum((c[:, 0] - z0).abs().amax(), (c[:, -1] - z1).abs().amax())
    if err > 1e-5 * (1 + z0.abs().amax()):
        raise ValueError(f"init's endpoints differ from z0, z1 by up to {err.item():.3g}")
    c = c.clone()
    c[:, 0], c[:, -1] = z0, z1
    return c


def log_map(G, z0: torch.Tensor, z1: torch.Tensor, T: int = 32, **kw) -> torch.Tensor:
    """The initial velocity ċ(0) of the geodesic from z0 to z1 (so that exp_map(G, z0, log_map(G, z0, z1)) ≈ z1).

    z0, z1 shape=[B, d] -> shape=[B, d] (B = 1 for one pair of shape [d]). Solves the boundary-value problem and differentiates the constant-speed
    solution at t = 0 with the second-order one-sided difference (−3c₀ + 4c₁ − c₂)/(2Δt).
    """
    res = geodesic(G, z0, z1, T, **kw)
    _warn_unconverged(res, "log_map")
    c = res.curve
    return (-3 * c[:, 0] + 4 * c[:, 1] - c[:, 2]) * ((T - 1) / 2)


def shoot(G, z0: torch.Tensor, v0: torch.Tensor, T: int = 32, substeps: int = 4) -> torch.Tensor:
    """Solve the geodesic equation c̈ᵏ = −Γᵏ_ij ċⁱ ċʲ from c(0) = z0, ċ(0) = v0 on t ∈ [0, 1].

    z0, v0 shape=[B, d] -> curve shape=[B, T, d] on the uniform grid. Classical Runge–Kutta (RK4) with
    ``substeps`` steps per grid interval; the right-hand side is ``Metric.acceleration`` (Christoffel symbols
    by default; nested Jacobian-vector products for pullback metrics).
    """
    z0, v0 = _checks.endpoints(z0, v0, ("z0", "v0"))
    metric = as_metric(G)
    if _checks.count(T, "T") < 2:
        raise ValueError(f"shoot needs T ≥ 2, got T={T}")
    substeps = _checks.count(substeps, "substeps")
    h = 1.0 / ((T - 1) * substeps)

    def rhs(z, v):
        try:
            return v, metric.acceleration(z, v)
        except torch.linalg.LinAlgError as err:
            raise ValueError(f"the geodesic equation broke down: G is singular at a point the shot curve reached "
                             f"(|z| up to {z.abs().amax().item():.3g}); there the decoder's Jacobian has rank < d. "
                             f"Shoot with a shorter v0, or use geodesic() between endpoints instead") from err

    z, v = z0, v0
    out = [z]
    with torch.no_grad():
        for _ in range(T - 1):
            for _ in range(substeps):
                k1 = rhs(z, v)
                k2 = rhs(z + 0.5 * h * k1[0], v + 0.5 * h * k1[1])
                k3 = rhs(z + 0.5 * h * k2[0], v + 0.5 * h * k2[1])
                k4 = rhs(z + h * k3[0], v + h * k3[1])
                z = z + h / 6 * (k1[0] + 2 * k2[0] + 2 * k3[0] + k4[0])
                v = v + h / 6 * (k1[1] + 2 * k2[1] + 2 * k3[1] + k4[1])
            out.append(z)
    c = torch.stack(out, dim=-2)  # (..., T, d)
    _checks.finite(c, "the shot geodesic (the ODE blew up: a smaller v0 or a larger T/substeps may help)")
    return c


def exp_map(G, z0: torch.Tensor, v0: torch.Tensor, **kw) -> torch.Tensor:
    """Exp_z0(v0) = c(1) for the geodesic with c(0) = z0, ċ(0) = v0. shape=[..., d]."""
    return shoot(G, z0, v0, **kw)[..., -1, :]


def graph_geodesic(G, Z: torch.Tensor, z0: torch.Tensor, z1: torch.Tensor, T: int = 32, k: int = 8,
                   sub: int = 4) -> torch.Tensor:
    """Shortest paths from z0 to z1 through the k-nearest-neighbour graph of the points Z, resampled to T points.

    Z shape=[N, d]; z0, z1 shape=[B, d] -> curves shape=[B, T, d]. Nodes are Z and the endpoints; each node is
    joined to its k Euclidean nearest neighbours, and an edge weighs the metric length of the straight segment
    between its nodes, cut into ``sub`` steps, each measured by the metric's own step rule (``curve_sqlen``: the
    decoded chord for a pullback metric's default ``step="data"``, the midpoint rule for a plain function z -> G(z)).
    Dijkstra's algorithm (scipy) then finds the shortest paths; the polygons are resampled to constant Euclidean
    speed. Raises an error when z1 cannot be reached from z0.
    """
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import dijkstra

    z0, z1 = _checks.endpoints(z0, z1)
    z0, z1 = z0.reshape(-1, z0.shape[-1]), z1.reshape(-1, z1.shape[-1])
    Z = _checks.points(Z, "Z", d=z0.shape[-1])
    _checks.same_kind(Z, z0, "Z", "z0")
    metric = as_metric(G)
    k, sub = _checks.count(k, "k"), _checks.count(sub, "sub")
    if _checks.count(T, "T") < 2:
        raise ValueError(f"graph_geodesic needs T ≥ 2, got T={T}")
    B = z0.shape[0]
    nodes = torch.cat([Z.reshape(-1, Z.shape[-1]), z0, z1])  # (M, d)
    M = nodes.shape[0]
    kk = min(k, M - 1)
    D2 = torch.cdist(nodes, nodes)
    nbr = D2.topk(kk + 1, largest=False).indices[:, 1:]  # (M, k), drop self
    a = nodes[:, None].expand(M, kk, -1)
    b = nodes[nbr]
    with torch.no_grad():
        seg = straight_line(a, b, sub + 1)  # (M, k, sub+1, d)
        w = metric.curve_sqlen(seg).clamp_min(0).sqrt().sum(-1)  # (M, k)
    rows = np.repeat(np.arange(M), kk)
    A = coo_matrix((w.reshape(-1).cpu().double().numpy() + 1e-300, (rows, nbr.reshape(-1).cpu().numpy())), shape=(M, M))
    A = A.maximum(A.T).tocsr()  # symmetric k-NN graph
    src = np.arange(M - 2 * B, M - B)
    dist, pred = dijkstra(A, directed=False, indices=src, return_predecessors=True)
    curves = []
    for i in range(B):
        target = M - B + i
        if not np.isfinite(dist[i, target]):
            raise ValueError(f"pair {i}: z1 is not reachable from z0 in the {kk}-NN graph of {M - 2 * B} points; "
                             f"increase k or add points")
        path = [target]
        while path[-1] != src[i]:
            path.append(pred[i, path[-1]])
        poly = nodes[torch.as_tensor(path[::-1], device=nodes.device)]
        if not bool((poly[1:] != poly[:-1]).any()):  # z0 == z1: the constant curve (nothing to resample)
            curves.append(poly[:1].expand(T, -1).clone())
            continue
        if poly.shape[0] == 2:
            poly = straight_line(poly[0], poly[1], 3)
        curves.append(resample(poly, T))
    return torch.stack(curves)


def _warn_unconverged(res: GeodesicResult, what: str) -> None:
    if not bool(res.converged.all()):
        bad = (~res.converged).nonzero().squeeze(1).tolist()
        warnings.warn(f"{what}: {len(bad)} of {res.converged.numel()} geodesic problems did not converge "
                      f"(pairs {bad[:10]}{' ...' if len(bad) > 10 else ''}); raise max_iter, T or use init='graph'",
                      GeodesicWarning, stacklevel=3)


def distance(G, z0: torch.Tensor, z1: torch.Tensor, **kw) -> torch.Tensor:
    """Geodesic distance d(z0, z1) = length of the energy-minimising curve, shape=[B] (B = 1 for one pair).

    Keyword arguments go to ``geodesic``. Warns (``GeodesicWarning``) when a problem did not converge.
    """
    res = geodesic(G, z0, z1, **kw)
    _warn_unconverged(res, "distance")
    return res.length


def distance_matrix(G, Z: torch.Tensor, chunk: int = 1024, **kw) -> torch.Tensor:
    """Geodesic distances between all pairs of points Z shape=[N, d] -> shape=[N, N], symmetric, zero diagonal.

    Solves the N(N-1)/2 problems i < j in batches of ``chunk`` pairs. Keyword arguments go to ``geodesic``.
    """
    Z = _checks.points(Z, "Z")
    if Z.dim() != 2:
        raise ValueError(f"Z must have shape (N, d), got {tuple(Z.shape)}")
    chunk = _checks.count(chunk, "chunk")
    N = Z.shape[0]
    i, j = torch.triu_indices(N, N, offset=1, device=Z.device)
    out = torch.zeros(N, N, dtype=Z.dtype, device=Z.device)
    ok = torch.ones(i.numel(), dtype=torch.bool, device=Z.device)
    for s in range(0, i.numel(), chunk):
        res = geodesic(G, Z[i[s:s + chunk]], Z[j[s:s + chunk]], **kw)
        out[i[s:s + chunk], j[s:s + chunk]] = res.length
        ok[s:s + chunk] = res.converged
    if not bool(ok.all()):
        warnings.warn(f"distance_matrix: {int((~ok).sum())} of {ok.numel()} geodesic problems did not converge",
                      GeodesicWarning, stacklevel=2)
    return out + out.T
