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

from . import _blocktri, _checks
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
    reason: tuple[str, ...] = ()  # (B,) why each pair stopped: "converged", or what went wrong
    length_error: torch.Tensor | None = None  # (B,) estimated relative discretisation error of length (see geodesic)


def _default_tol(dtype: torch.dtype) -> float:
    return 1e-10 if dtype == torch.float64 else 1e-6


# Exceptions that a metric raises at a point outside its domain (torch's argument validation raises ValueError):
# at a trial point of the line search they reject the step. Anything else (TypeError, a shape error) is a bug and
# propagates; so does any exception on the initial curves.
_DOMAIN_ERRORS = (ValueError, ArithmeticError, AssertionError, torch.linalg.LinAlgError)


def _guarded(fn: Callable, b: int):
    """fn(sel) -> tuple of tensors with leading dimension len(sel), for row selections sel (None: all b rows).
    Where fn raises one of _DOMAIN_ERRORS, bisect to the rows that raise. Returns (ok (b,) bool, the outputs for the
    ok rows, in order, and the first error or None). Costs one call when nothing raises, O(k log b) for k bad rows."""
    try:
        out = fn(None)
        return None, out, None
    except _DOMAIN_ERRORS as err:
        if b == 1:
            return torch.zeros(1, dtype=torch.bool), None, err
        first = err
    parts, oks = [], []

    def run(sel):
        nonlocal first
        try:
            parts.append(fn(sel))
            oks.append(sel)
        except _DOMAIN_ERRORS as err:
            if sel.numel() > 1:
                h = sel.numel() // 2
                run(sel[:h])
                run(sel[h:])
            first = first or err

    idx = torch.arange(b)
    h = b // 2
    run(idx[:h])
    run(idx[h:])
    ok = torch.zeros(b, dtype=torch.bool)
    if oks:
        ok[torch.cat(oks)] = True
        return ok, tuple(torch.cat(p) for p in zip(*parts)), first
    return ok, None, first


def _take(t: torch.Tensor | tuple, sel):
    if isinstance(t, tuple):
        return tuple(_take(u, sel) for u in t)
    return t if sel is None else t[sel.to(t.device)]


class _ChordEnergy:
    """E = ½ (T-1) Σ_n ‖φ(c_{n+1}) − φ(c_n)‖² for a metric with an embedding φ (pullback's data steps).

    A least-squares problem in the decoded points: the gradient in the interior point c_n is
    (T-1) J(c_n)ᵀ (Δx_{n-1} − Δx_n), one vector-Jacobian product through φ with that known cotangent (no autograd
    through the chords), and the Gauss–Newton matrix of the energy is block tridiagonal with blocks
    2(T-1) J_nᵀJ_n and −(T-1) J_nᵀJ_{n+1}. φ(z0), φ(z1) are decoded once per solve."""

    def __init__(self, metric: Metric, z0, z1, T):
        self.phi, self.k = metric.embedding, T - 1
        eps = torch.finfo(z0.dtype).eps  # the relative accuracy of the finite-difference blocks
        self.ridge = eps ** (2 / 3) if z0.dtype == torch.float64 else eps ** 0.5
        with torch.no_grad():
            self.ends = (metric.embedding(z0), metric.embedding(z1))  # (B, D) each

    def grad(self, ends, x):
        """E (b,), g (b, n, d), the squared steps s² (b, T-1) and φ(x) (b, n, D) at interior points x (b, n, d)."""
        X0, X1 = ends
        xr = x.detach().requires_grad_(True)
        with torch.enable_grad():
            Xi = self.phi(xr)  # (b, n, D)
        with torch.no_grad():
            Xd = Xi.detach()
            dX = Xd.new_empty(Xd.shape[0], Xd.shape[1] + 1, Xd.shape[2])  # (b, T-1, D): Δx_n = x_{n+1} − x_n
            torch.sub(Xd[:, 1:], Xd[:, :-1], out=dX[:, 1:-1])
            torch.sub(Xd[:, 0], X0, out=dX[:, 0])
            torch.sub(X1, Xd[:, -1], out=dX[:, -1])
            s2 = torch.linalg.vector_norm(dX, dim=-1).square()
        (g,) = torch.autograd.grad(Xi, xr, dX.diff(dim=1))  # cotangent Δx_n − Δx_{n-1} = −∂E/∂x_n / (T-1)
        return 0.5 * self.k * s2.sum(-1), -self.k * g, s2, Xd

    def blocks(self, ends, x, Xi):
        """The Gauss–Newton blocks A (b, n, d, d), C (b, n-1, d, d), with J from finite differences.

        J_n e_i ≈ (φ(c_n + h e_i) − φ(c_n)) / h with h = √ε (1 + max|c|) in float32 (d forward passes, φ(c_n) is
        known); the central (φ(c_n + h e_i) − φ(c_n − h e_i)) / 2h with h = ε^⅓ (1 + max|c|) in float64 (2d passes,
        exact up to round-off for a decoder that is linear or quadratic). No autodiff: forward-mode AD costs several
        times more in PyTorch. The error, ~√ε or ε^⅔ relative, only shapes the steps: the energy and its gradient,
        hence the solution and the convergence test, are exact."""
        b, n, d = x.shape
        central = x.dtype == torch.float64
        eps = torch.finfo(x.dtype).eps
        h = (eps ** (1 / 3) if central else eps ** 0.5) * (1 + x.abs().amax((1, 2)))  # (b,)
        eye = torch.eye(d, dtype=x.dtype, device=x.device)
        A, C = x.new_empty(b, n, d, d), x.new_empty(b, n - 1, d, d)
        step = max(1, (1 << 22) // max(1, n * d * Xi.shape[-1]))  # pairs per chunk: J below 2²² numbers
        pos = torch.arange(step * n - 1, device=x.device)
        with torch.no_grad():
            for s in range(0, b, step):
                xs, hs = x[s:s + step, :, None, :], h[s:s + step, None, None, None]
                # hJ (bc, n, d, D): row i is h J_n e_i (2h J_n e_i for central differences)
                hJ = self.phi(xs + hs * eye).sub_(self.phi(xs - hs * eye) if central else Xi[s:s + step, :, None, :])
                scale = self.k / (hs * (2 if central else 1)) ** 2  # (bc, 1, 1, 1): (T-1)/h²
                m = xs.shape[0] * n
                Jf = hJ.reshape(m, d, -1)  # (bc·n, d, D), contiguous: neighbours along a curve are consecutive rows
                A[s:s + step] = 2 * scale * (Jf @ Jf.transpose(-1, -2)).reshape(-1, n, d, d)
                if n > 1:
                    JJ = torch.bmm(Jf[:-1], Jf[1:].transpose(-1, -2))  # consecutive rows, (bc·n - 1, d, d)
                    C[s:s + step] = -scale * JJ[pos[:m - 1] % n != n - 1].reshape(-1, n - 1, d, d)
        return A, C

    def length_error(self, c, Xi, L):
        """From φ at the T-1 cubic midpoints (φ at the nodes is known): chords x_n → x_m → x_{n+1}."""
        X0, X1 = self.ends
        with torch.no_grad():
            try:
                Xm = self.phi(_cubic_midpoints(c))  # (B, T-1, D)
            except _DOMAIN_ERRORS:  # an inserted point outside the decoder's domain: no estimate
                return torch.full_like(L, float("nan"))
            X = torch.cat([X0[:, None], Xi, X1[:, None]], 1)  # (B, T, D)
            Lf = (torch.linalg.vector_norm(Xm - X[:, :-1], dim=-1)
                  + torch.linalg.vector_norm(X[:, 1:] - Xm, dim=-1)).sum(-1)
        return _relative_change(Lf, L)


class _MetricEnergy:
    """E = ½ (T-1) Σ_n s_n² with the metric's own steps (``curve_sqlen``): gradient by autograd; start matrix the
    Hessian with G frozen at the midpoints c̄_n, blocks (T-1)(G(c̄_{n-1}) + G(c̄_n)) and −(T-1) G(c̄_n)."""

    def __init__(self, metric: Metric, z0, z1, T):
        self.metric, self.k, self.ends = metric, T - 1, (z0, z1)
        self.ridge = 100 * torch.finfo(z0.dtype).eps  # G is exact: round-off only

    def grad(self, ends, x):
        z0, z1 = ends
        xr = x.detach().requires_grad_(True)
        with torch.enable_grad():
            s2 = self.metric.curve_sqlen(torch.cat([z0[:, None], xr, z1[:, None]], 1))  # (b, T-1)
            E = 0.5 * self.k * s2.sum(-1)
            (g,) = torch.autograd.grad(E.sum(), xr)
        return E.detach(), g, s2.detach(), x.new_empty(x.shape[0], 0)

    def blocks(self, ends, x, _):
        z0, z1 = ends
        c = torch.cat([z0[:, None], x, z1[:, None]], 1)  # (b, T, d)
        with torch.no_grad():
            Gm = self.k * self.metric(0.5 * (c[:, 1:] + c[:, :-1]))  # (b, T-1, d, d)
        return Gm[:, :-1] + Gm[:, 1:], -Gm[:, 1:-1]

    def length_error(self, c, _, L):
        """From the metric's own steps on the refined curves (B, 2T-1, d); NaN where an inserted point is outside
        the metric's domain."""
        B, T, d = c.shape
        fine = torch.cat([torch.stack([c[:, :-1], _cubic_midpoints(c)], 2).reshape(B, 2 * (T - 1), d), c[:, -1:]], 1)
        try:
            with torch.no_grad():
                Lf = self.metric.curve_sqlen(fine).clamp_min(0).sqrt().sum(-1)
        except _DOMAIN_ERRORS:
            return torch.full_like(L, float("nan"))
        return _relative_change(Lf, L)


def _laplacian_blocks(b, n, d, k, like):
    """Blocks of (T-1)·L ⊗ I_d, the Hessian of the Euclidean discrete energy (L: second differences)."""
    eye = torch.eye(d, dtype=like.dtype, device=like.device)
    return (2 * k * eye).expand(b, n, d, d), (-k * eye).expand(b, n - 1, d, d)


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
            refresh: recompute it once every ``refresh`` iterations. memory: L-BFGS history length.

    Returns: ``GeodesicResult(curve (B, T, d), length (B,), energy (B,), converged (B,), iterations (B,),
    reason (B strings), length_error (B,))``.

    Convergence: pair b has converged when the decrease in energy that a quasi-Newton step still predicts,
    gᵀH⁻¹g (the squared Newton decrement), is at most tol·E_b; it is checked before every step and after the
    last one. Pairs that hit ``max_iter`` without meeting it report ``converged = False``. A pair whose line
    search cannot decrease the energy any more stops there; it reports ``converged = True`` only if the criterion
    holds within 100·tol (round-off), otherwise False (a broken metric). Where the start matrix gives no descent
    (G singular, e.g. d > D), that pair goes on with the Euclidean one before giving up. Converged means a
    critical point of the discrete energy, i.e. a geodesic: a local minimum, not necessarily the shortest curve,
    and where the start is exactly symmetric about a ridge of G (a straight line through the top of a symmetric
    bump) possibly a saddle on it; ``init="graph"`` starts near the shortest curve.

    Outside the metric's domain: a trial point where the metric raises (a ValueError, say from a torch
    distribution's argument validation, an ArithmeticError, an AssertionError or a LinAlgError) or gives a NaN or
    infinite energy is a rejected step, for that pair only, and the line search halves the step. A pair that finds
    no feasible step stops with ``converged = False``, and ``reason`` says why (with the metric's own message).
    The initial curves must lie in the domain (an error otherwise).

    Resolution: ``length_error`` estimates the relative discretisation error of ``length``: twice its change when
    the same curve is measured with every step halved (new points by cubic interpolation of the nodes). It is
    about (or above) the true error where T resolves how G varies along the curve, and large where it does not,
    e.g. where steps jump over a region in which G is much larger (a thin wall the curve should go around): then
    the length is an underestimate, and ``distance`` and ``distance_matrix`` warn (above 5%); raise T.

    Algorithmic note: batched L-BFGS on the T-2 interior points of all pairs at once, each pair with its own
    memory, step size and stopping time (finished pairs leave the batch, which is then compacted, so later
    iterations index nothing). The start matrix H0 of each step is block tridiagonal, the energy's Hessian with
    what varies slowly frozen: for decoded-chord steps (``pullback``, ``expected_pullback``) the Gauss–Newton
    matrix of the least-squares energy, with J from finite differences (d or 2d extra forward passes, see
    ``_ChordEnergy.blocks``); for other metrics the "metric Laplacian" with G(c̄_n) at the midpoints. L-BFGS's
    memory adds what the freezing leaves out, so the iteration count hardly depends on T or on how unevenly G
    scales space (on benchmarks/bench_geodesics.py's decoder the hardest of 16 pairs needs 7 iterations, 38 with
    a Euclidean start matrix). H0 is factorised by one dense Cholesky call for (T-2)d ≤ 96, by block cyclic
    reduction above (O(T d³) time and O(T d²) memory per pair, geomlib/_blocktri.py). Per iteration: one
    energy-and-gradient evaluation (for chord steps one forward pass and one vector-Jacobian product through the
    decoder, whose cotangent 2x_n − x_{n-1} − x_{n+1} is known in closed form); more only when the line search
    backtracks (by quadratic interpolation); every ``refresh`` iterations H0. At the end one more forward pass at
    the T-1 step midpoints for ``length_error``.
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
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    if precondition not in ("metric", "euclidean"):
        raise ValueError(f"precondition must be 'metric' or 'euclidean', got {precondition!r}")
    B, d = z0.shape
    n, k = T - 2, T - 1
    c0 = _initial_curves(metric, z0, z1, T, init, graph_points)
    energy = (_ChordEnergy if metric.embedding is not None else _MetricEnergy)(metric, z0, z1, T)
    tiny = torch.finfo(z0.dtype).tiny
    dev = z0.device

    # The active pairs' state, row-aligned (row i holds pair rows[i]); finished pairs leave by compaction.
    x = c0[:, 1:-1].contiguous()  # (b, n, d)
    ends = energy.ends
    ok, out, err = _guarded(lambda sel: energy.grad(_take(ends, sel), _take(x, sel)), B)
    if ok is not None or not bool(torch.isfinite(out[0]).all()):
        bad = (~ok if ok is not None else ~torch.isfinite(out[0])).nonzero().squeeze(1).tolist()
        why = f" ({type(err).__name__}: {err})" if err is not None else " (NaN, inf, or a singular point)"
        raise ValueError(f"the metric gives a non-finite energy on the initial curves for pairs {bad[:10]}"
                         f"{' ...' if len(bad) > 10 else ''}{why}: check the decoder/metric there, or start inside "
                         f"its domain (init=)")
    E, g, s2, aux = out
    st = _State(rows=torch.arange(B, device=dev), x=x, g=g, E=E, s2=s2, aux=aux,
                S=x.new_zeros(B, memory, n * d), Y=x.new_zeros(B, memory, n * d),  # L-BFGS memory: a ring buffer,
                rho=x.new_zeros(B, memory),  # slot (head - 1) % memory the newest; rho = 0: an empty slot
                its=torch.zeros(B, dtype=torch.long, device=dev),
                euclid=torch.full((B,), precondition == "euclidean", dtype=torch.bool, device=dev), ends=ends,
                ridge=energy.ridge)
    head, filled = 0, 0
    x_out, s2_out, aux_out = x.clone(), s2.clone(), aux.clone()  # aux: φ at the interior points (chord steps)
    converged = torch.zeros(B, dtype=torch.bool, device=dev)
    iterations = torch.zeros(B, dtype=torch.long, device=dev)
    reason = [""] * B

    def finish(mask, ok, why):  # pairs of the rows in mask stop: write them out, drop them from the batch
        r = st.rows[mask]
        x_out[r], s2_out[r], aux_out[r] = st.x[mask], st.s2[mask], st.aux[mask]
        converged[r], iterations[r] = ok, st.its[mask]
        for i, w in zip(r.tolist(), why):
            reason[i] = w
        st.keep(~mask)

    for it in range(1, max_iter + 2):  # the last round only checks the curves that max_iter steps left
        b = st.rows.numel()
        if b == 0:
            break
        if (it - 1) % refresh == 0 or st.factor is None:
            _refresh(st, energy, n, d, k)
        # two-loop recursion over the filled slots, newest first
        q = st.g.reshape(b, -1).clone()  # (b, n·d)
        slots = [(head - 1 - j) % memory for j in range(filled)]
        S, Y, rho = ({s: t[:, s] for s in slots} for t in (st.S, st.Y, st.rho))  # filled slots: (b, n·d), (b, n·d), (b,)
        alphas = []
        for s in slots:
            a = torch.linalg.vecdot(S[s], q).mul_(rho[s])
            q.addcmul_(a.unsqueeze(1), Y[s], value=-1)
            alphas.append(a)
        r = st.factor.solve(q.view(b, n, d)).view(b, -1)
        if filled and bool(st.euclid.any()):  # the Laplacian lacks the metric's scale: sᵀy / yᵀH0⁻¹y, as usual
            s = slots[0]
            yHy = torch.linalg.vecdot(Y[s], st.factor.solve(Y[s].view(b, n, d)).view(b, -1)).clamp_min(tiny)
            gamma = torch.where(st.euclid & (rho[s] > 0), torch.linalg.vecdot(S[s], Y[s]) / yHy, 1.0)
            r *= gamma.unsqueeze(1)
        for s, a in zip(reversed(slots), reversed(alphas)):
            beta = torch.linalg.vecdot(Y[s], r).mul_(rho[s])
            r.addcmul_((a - beta).unsqueeze(1), S[s])
        gflat = st.g.reshape(b, -1)
        gr = torch.linalg.vecdot(gflat, r)  # predicted decrease (squared Newton decrement), > 0 for descent
        bad = ~(gr > 0)
        if bool(bad.any()):  # lost positive definiteness: restart that pair's memory with the start matrix
            r = torch.where(bad[:, None], st.factor.solve(st.g).reshape(b, -1), r)
            gr = torch.linalg.vecdot(gflat, r)
            st.rho[bad] = 0
        rel = gr / st.E.abs().clamp_min(tiny)
        done = rel <= tol
        final = done if it <= max_iter else torch.ones_like(done)
        if bool(final.any()):
            why = [("converged" if ok_i else f"max_iter={max_iter} reached (gᵀH⁻¹g = {rl:.2g}·E > tol·E)")
                   for ok_i, rl in zip(done[final].tolist(), rel[final].tolist())]
            r, gr, rel = r[~final], gr[~final], rel[~final]
            finish(final, done[final], why)
            b = st.rows.numel()
            if b == 0:
                break
        r = r.view(b, n, d)
        # backtracking (Armijo) line search, each pair with its own step
        step = torch.ones_like(st.E)
        new = None  # the accepted trial state (x, E, g, s², aux), filled in where a step is accepted
        pending = torch.ones(b, dtype=torch.bool, device=dev)
        failure = torch.zeros(b, dtype=torch.long, device=dev)  # last rejected trial: 1 raised, 2 NaN/inf, 3 else
        last_err = None
        for attempt in range(30):
            pi = None if attempt == 0 else pending.nonzero().squeeze(1)
            xt = st.x - r if pi is None else st.x[pi] - step[pi, None, None] * r[pi]
            m = xt.shape[0]
            okt, outt, errt = _guarded(lambda sel: energy.grad(_take(_take(st.ends, pi), sel), _take(xt, sel)), m)
            if okt is None:  # nothing raised
                Et = outt[0]
            else:
                okt = okt.to(dev)
                Et = xt.new_full((m,), float("nan"))
                if outt is not None:
                    Et[okt] = outt[0]
            Ea, gra, sa = (st.E, gr, 1.0) if pi is None else (st.E[pi], gr[pi], step[pi])
            acc = Et < Ea - 1e-4 * sa * gra  # False for NaN; strict: an unchanged energy (round-off) is no progress
            if pi is None and okt is None and bool(acc.all()):  # the common case: every full step accepted
                new = (xt, *outt)
                pending.zero_()
                break
            pos = torch.arange(b, device=dev) if pi is None else pi
            if bool(acc.any()):
                if new is None:
                    new = tuple(t.clone() for t in (st.x, st.E, st.g, st.s2, st.aux))
                src = acc.nonzero().squeeze(1) if okt is None else (okt.cumsum(0) - 1)[acc]  # rows of outt
                dst = pos[acc]
                new[0][dst] = xt[acc]
                for t, o in zip(new[1:], outt):
                    t[dst] = o[src]
                pending[dst] = False
            rej = ~acc
            kind = torch.where(torch.isfinite(Et), 3, 2)
            if okt is not None:
                kind = torch.where(okt, kind, 1)
            failure[pos[rej]] = kind[rej]
            last_err = errt or last_err
            # the next trial: the minimiser of the parabola through E, the slope −gᵀr and E_t, kept in [0.1, 0.5]·step
            # (backtracking with quadratic interpolation; halving where E_t is not finite)
            curv = (Et - Ea + sa * gra) / (sa * sa)  # > 0 wherever Armijo failed with a finite E_t
            shrink = torch.where(torch.isfinite(Et) & (curv > 0), gra / (2 * curv * sa), 0.5).clamp(0.1, 0.5)
            step[pos[rej]] = (sa * shrink)[rej]
            if not bool(pending.any()):
                break
        if new is None:
            new = (st.x, st.E, st.g, st.s2, st.aux)
        st.its += 1
        stalled = pending  # no decrease found: round-off level, outside the domain, a broken metric or H0
        if bool(stalled.any()):
            retry = stalled & ~st.euclid
            if bool(retry.any()):  # where G is (nearly) singular the start matrix can point nowhere useful:
                st.euclid = st.euclid | retry  # go on from here with the Euclidean one and a fresh memory
                st.rho[retry] = 0
                _refactor(st, n, d, k)
                stalled = stalled & ~retry
        # the memory: s = 0, y = 0 (rho = 0, an empty slot) for pairs that did not move
        x_new, E_new, g_new, s2_new, aux_new = new
        s_new, y_new = (x_new - st.x).reshape(b, -1), (g_new - st.g).reshape(b, -1)
        sy = torch.linalg.vecdot(s_new, y_new)
        st.S[:, head], st.Y[:, head] = s_new, y_new
        st.rho[:, head] = torch.where(sy > 0, 1.0 / sy.clamp_min(tiny), 0.0)
        head, filled = (head + 1) % memory, min(filled + 1, memory)
        if bool(stalled.any()):
            why = []
            for kind, rl in zip(failure[stalled].tolist(), rel[stalled].tolist()):
                if rl <= 100 * tol:
                    why.append("converged (no further decrease: round-off level)")
                elif kind == 1:
                    why.append(f"no feasible step: every trial step left the metric's domain "
                               f"({type(last_err).__name__}: {str(last_err)[:300]})")
                elif kind == 2:
                    why.append("no feasible step: the energy was NaN or inf at every trial step "
                               "(outside the metric's domain?)")
                else:
                    why.append(f"the line search found no decrease (gᵀH⁻¹g = {rl:.2g}·E > 100·tol·E): a broken "
                               f"or very rough metric, or tol below round-off")
            finish(stalled, rel[stalled] <= 100 * tol, why)  # they did not move: their state is the old one
            keep = ~stalled
            x_new, E_new, g_new, s2_new, aux_new = (t[keep] for t in new)
        st.x, st.E, st.g, st.s2, st.aux = x_new, E_new, g_new, s2_new, aux_new
        if callback is not None:
            cur = x_out.clone()
            cur[st.rows] = st.x
            callback(it, torch.cat([z0[:, None], cur, z1[:, None]], dim=1).detach())

    curve = torch.cat([z0[:, None], x_out, z1[:, None]], dim=1).detach()  # (B, T, d)
    s2_out = s2_out.clamp_min(0)  # the squared steps of each returned curve, as the metric measures them
    L = s2_out.sqrt().sum(-1)
    return GeodesicResult(curve=curve, length=L, energy=0.5 * k * s2_out.sum(-1), converged=converged,
                          iterations=iterations, reason=tuple(reason),
                          length_error=energy.length_error(curve, aux_out, L))


def _cubic_midpoints(c: torch.Tensor) -> torch.Tensor:
    """The points halfway along each step of curves c (B, T, d), by cubic interpolation of the nodes (quadratic in
    the first and last step): shape (B, T-1, d). Their error is O(Δt⁴) on a smooth curve."""
    T = c.shape[1]
    if T == 2:
        return 0.5 * (c[:, :1] + c[:, 1:])
    first = (3 * c[:, :1] + 6 * c[:, 1:2] - c[:, 2:3]) / 8
    last = (-c[:, -3:-2] + 6 * c[:, -2:-1] + 3 * c[:, -1:]) / 8
    inner = (-c[:, :-3] + 9 * c[:, 1:-2] + 9 * c[:, 2:-1] - c[:, 3:]) / 16
    return torch.cat([first, inner, last], 1) if T > 3 else torch.cat([first, last], 1)


def _relative_change(Lf: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
    """The length_error estimate 2 |L' − L| / L from the refined length L' (0 where L = 0).

    L' is the length of the same curve with every step halved at cubic midpoints, so L' − L is the change of the
    length under refinement: for a step rule of order p the remaining error is (2^p − 1)⁻¹ times that, and the
    factor 2 covers p ≥ 1 (chords and midpoints are second order, KL steps first). Where T does not resolve how G
    varies along the curve (steps that jump over a region of large G) the change, and so the estimate, is large."""
    return torch.where(L > 0, 2 * (Lf - L).abs() / L.clamp_min(torch.finfo(L.dtype).tiny), torch.zeros_like(L))


class _State:
    """The solver's row-aligned tensors for the active pairs, and the start matrix's blocks and factor."""

    _ROWS = ("rows", "x", "g", "E", "s2", "aux", "S", "Y", "rho", "its", "euclid")

    def __init__(self, ends, ridge, **tensors):
        self.__dict__.update(tensors)
        self.ends, self.ridge, self.blocks, self.factor = ends, ridge, None, None

    def keep(self, keep: torch.Tensor) -> None:
        for name in self._ROWS:
            setattr(self, name, getattr(self, name)[keep])
        self.ends = _take(self.ends, keep)
        if self.blocks is not None:
            self.blocks, self.factor = _take(self.blocks, keep), self.factor.select(keep)


def _refresh(st: _State, energy, n: int, d: int, k: int) -> None:
    """New start-matrix blocks at the current curves (Euclidean where asked for, or where the metric raises)."""
    b = st.rows.numel()
    if bool(st.euclid.all()):
        A, C = (t.clone() for t in _laplacian_blocks(b, n, d, k, st.x))
    else:
        okb, outb, _ = _guarded(lambda sel: energy.blocks(_take(st.ends, sel), _take(st.x, sel), _take(st.aux, sel)), b)
        lap = st.euclid if okb is None else st.euclid | ~okb.to(st.x.device)
        if okb is None:
            A, C = outb
        else:
            A, C = (t.clone() for t in _laplacian_blocks(b, n, d, k, st.x))
            if outb is not None:
                A[okb], C[okb] = outb
        if bool(lap.any()):
            LA, LC = _laplacian_blocks(int(lap.sum()), n, d, k, st.x)
            A[lap], C[lap] = LA, LC
    st.blocks = (A, C)
    _refactor(st, n, d, k)


def _refactor(st: _State, n: int, d: int, k: int) -> None:
    """Factorise the blocks (the Euclidean ones for euclid pairs); where that fails (G singular, NaN): Euclidean."""
    A, C = st.blocks
    euclid = st.euclid
    if bool(euclid.any()):
        A, C = A.clone(), C.clone()
        LA, LC = _laplacian_blocks(int(euclid.sum()), n, d, k, A)
        A[euclid], C[euclid] = LA, LC
        st.blocks = (A, C)
    # A ridge in the shape of the Euclidean Laplacian, δ·(mean G)·(T-1)L⊗I: it keeps H0 positive definite where G
    # is (nearly) singular, and gives the directions G does not see the Euclidean start matrix's smoothing, while
    # every other direction is changed by a relative δ only (δ: the blocks' own accuracy, see the energies).
    tiny = torch.finfo(A.dtype).tiny
    scale = st.ridge * A.diagonal(dim1=-2, dim2=-1).mean((1, 2)).clamp_min(tiny) / (2 * k)  # δ × mean of G
    eye = torch.eye(d, dtype=A.dtype, device=A.device)
    Ar, C = A + (2 * k) * scale[:, None, None, None] * eye, C - k * scale[:, None, None, None] * eye
    st.factor, bad = _blocktri.factor(Ar, C)
    if bool(bad.any()):
        LA, LC = _laplacian_blocks(int(bad.sum()), n, d, k, A)
        Ar, C = Ar.clone(), C.clone()
        Ar[bad], C[bad] = LA, LC
        st.factor, _ = _blocktri.factor(Ar, C)


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


def shoot(G, z0: torch.Tensor, v0: torch.Tensor, T: int = 32, substeps: int = 4, *, tol: float = 1e-2) -> torch.Tensor:
    """Solve the geodesic equation c̈ᵏ = −Γᵏ_ij ċⁱ ċʲ from c(0) = z0, ċ(0) = v0 on t ∈ [0, 1].

    z0, v0 shape=[B, d] -> curve shape=[B, T, d] on the uniform grid. Classical Runge–Kutta (RK4) with
    ``substeps`` steps per grid interval; the right-hand side is ``Metric.acceleration`` (Christoffel symbols
    by default; nested Jacobian-vector products for pullback metrics).

    Accuracy check: a geodesic has constant speed, ċᵀG(c)ċ = v0ᵀG(z0)v0, so shoot measures the speed at the T
    grid points and warns (``GeodesicWarning``) when it drifts by more than ``tol`` (relative, in ċᵀGċ) for some
    curve: the integration is then inaccurate (G varies too fast for the step; raise ``substeps`` or T). An ODE
    that blows up (non-finite points), or G singular along the way, raises an error.
    """
    z0, v0 = _checks.endpoints(z0, v0, ("z0", "v0"))
    metric = as_metric(G)
    if _checks.count(T, "T") < 2:
        raise ValueError(f"shoot needs T ≥ 2, got T={T}")
    substeps = _checks.count(substeps, "substeps")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol}")
    h = 1.0 / ((T - 1) * substeps)

    def rhs(z, v):
        try:
            return v, metric.acceleration(z, v)
        except torch.linalg.LinAlgError as err:
            raise ValueError(f"the geodesic equation broke down: G is singular at a point the shot curve reached "
                             f"(|z| up to {z.abs().amax().item():.3g}); there the decoder's Jacobian has rank < d. "
                             f"Shoot with a shorter v0, or use geodesic() between endpoints instead") from err

    z, v = z0, v0
    out, vel = [z], [v]
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
            vel.append(v)
        c = torch.stack(out, dim=-2)  # (..., T, d)
        _checks.finite(c, "the shot geodesic (the ODE blew up: a smaller v0 or a larger T/substeps may help)")
        speed2 = metric.sqnorm(c, torch.stack(vel, dim=-2))  # (..., T)
    drift = ((speed2 - speed2[..., :1]).abs() / speed2[..., :1].clamp_min(torch.finfo(c.dtype).tiny)).amax(-1)
    drift = torch.where(speed2[..., 0] > 0, drift, (speed2 - speed2[..., :1]).abs().amax(-1))  # v0 = 0: absolute
    if not bool((drift <= tol).all()):  # False for NaN too
        bad = (~(drift <= tol)).reshape(-1).nonzero().squeeze(1).tolist()
        warnings.warn(f"shoot: the speed ċᵀG(c)ċ drifted by up to {float(drift.nan_to_num(float('inf')).max()):.3g} "
                      f"(relative; a geodesic keeps it constant, tol={tol:g}) on {len(bad)} of {drift.numel()} curves "
                      f"(curves {bad[:10]}{' ...' if len(bad) > 10 else ''}): the integration is inaccurate there; "
                      f"raise substeps or T", GeodesicWarning, stacklevel=2)
    return c


def exp_map(G, z0: torch.Tensor, v0: torch.Tensor, **kw) -> torch.Tensor:
    """Exp_z0(v0) = c(1) for the geodesic with c(0) = z0, ċ(0) = v0. shape=[..., d]."""
    return shoot(G, z0, v0, **kw)[..., -1, :]


def graph_geodesic(G, Z: torch.Tensor, z0: torch.Tensor, z1: torch.Tensor, T: int = 32, k: int = 8,
                   sub: int = 4) -> torch.Tensor:
    """Shortest paths from z0 to z1 through the k-nearest-neighbour graph of the points Z, resampled to T points.

    Z shape=[N, d]; z0, z1 shape=[B, d] -> curves shape=[B, T, d]. Nodes are the distinct points of Z and the
    endpoints (one node for an endpoint that pairs share or that is in Z); each node is
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
    # One node per distinct point: endpoints shared by several pairs, or that are graph points themselves, would
    # otherwise be copies at distance 0, each other's nearest neighbours and cut off from the rest of the graph.
    nodes, inv = torch.unique(torch.cat([Z.reshape(-1, Z.shape[-1]), z0, z1]), dim=0, return_inverse=True)  # (M, d)
    M, N = nodes.shape[0], Z.reshape(-1, Z.shape[-1]).shape[0]
    i0, i1 = inv[N:N + B].cpu().numpy(), inv[N + B:].cpu().numpy()  # (B,) node of each pair's z0, z1
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
    src, row = np.unique(i0, return_inverse=True)  # one Dijkstra run per distinct start node
    dist, pred = dijkstra(A, directed=False, indices=src, return_predecessors=True)
    curves = []
    for i in range(B):
        target, r = i1[i], row[i]
        if not np.isfinite(dist[r, target]):
            raise ValueError(f"pair {i}: z1 is not reachable from z0 in the {kk}-NN graph of {N} points; "
                             f"increase k or add points")
        path = [target]
        while path[-1] != src[r]:
            path.append(pred[r, path[-1]])
        poly = nodes[torch.as_tensor(path[::-1], device=nodes.device)]
        if not bool((poly[1:] != poly[:-1]).any()):  # z0 == z1: the constant curve (nothing to resample)
            curves.append(poly[:1].expand(T, -1).clone())
            continue
        if poly.shape[0] == 2:
            poly = straight_line(poly[0], poly[1], 3)
        curves.append(resample(poly, T))
    return torch.stack(curves)


def _reasons(reasons) -> str:
    """The commonest reasons for not converging, counted: '3× max_iter=500 reached (...); 1× no feasible step'."""
    from collections import Counter
    counts = Counter(r for r in reasons if r != "converged" and not r.startswith("converged "))
    return "; ".join(f"{n}× {r}" for r, n in counts.most_common(3))


_RESOLUTION = 5e-2  # distance and distance_matrix warn where length_error exceeds this (it errs high, ~2×)


def _warn_unconverged(res: GeodesicResult, what: str) -> None:
    if not bool(res.converged.all()):
        bad = (~res.converged).nonzero().squeeze(1).tolist()
        warnings.warn(f"{what}: {len(bad)} of {res.converged.numel()} geodesic problems did not converge "
                      f"(pairs {bad[:10]}{' ...' if len(bad) > 10 else ''}: {_reasons(res.reason)}); raise max_iter, "
                      f"T or use init='graph'", GeodesicWarning, stacklevel=3)
    _warn_unresolved(res.length_error, what, stacklevel=4)


def _warn_unresolved(err: torch.Tensor, what: str, stacklevel: int) -> None:
    coarse = ~(err <= _RESOLUTION)  # NaN (no estimate) counts
    if bool(coarse.any()):
        bad = coarse.nonzero().squeeze(1).tolist()
        warnings.warn(f"{what}: {len(bad)} of {err.numel()} lengths may be off by more than {_RESOLUTION:.0%} from "
                      f"the discretisation (length_error up to {float(err.nan_to_num(float('inf')).max()):.3g}, "
                      f"pairs {bad[:10]}{' ...' if len(bad) > 10 else ''}): the steps do not resolve how the metric "
                      f"varies along these curves (T too small, or a curve crosses a point where G is singular, "
                      f"such as a chart's pole); raise T", GeodesicWarning, stacklevel=stacklevel)


def distance(G, z0: torch.Tensor, z1: torch.Tensor, **kw) -> torch.Tensor:
    """Geodesic distance d(z0, z1) = length of the energy-minimising curve, shape=[B] (B = 1 for one pair).

    Keyword arguments go to ``geodesic``. Warns (``GeodesicWarning``) when a problem did not converge, or when its
    ``length_error`` exceeds 5% (T too small for the metric).
    """
    res = geodesic(G, z0, z1, **kw)
    _warn_unconverged(res, "distance")
    return res.length


def distance_matrix(G, Z: torch.Tensor, chunk: int = 1024, *, return_converged: bool = False, **kw):
    """Geodesic distances between all pairs of points Z shape=[N, d] -> shape=[N, N], symmetric, zero diagonal.

    Solves the N(N-1)/2 problems i < j in batches of ``chunk`` pairs (a larger batch shares the solver's
    per-iteration overhead among more pairs, and needs proportionally more memory). Keyword arguments go to
    ``geodesic``.
    Warns (``GeodesicWarning``, with the reasons) when some problems did not converge, or when a length's estimated
    discretisation error (``GeodesicResult.length_error``) exceeds 5%; with
    ``return_converged=True`` also returns which did: (D, converged), converged shape=[N, N] bool, symmetric, True
    on the diagonal.
    """
    Z = _checks.points(Z, "Z")
    if Z.dim() != 2:
        raise ValueError(f"Z must have shape (N, d), got {tuple(Z.shape)}")
    chunk = _checks.count(chunk, "chunk")
    N = Z.shape[0]
    i, j = torch.triu_indices(N, N, offset=1, device=Z.device)
    out = torch.zeros(N, N, dtype=Z.dtype, device=Z.device)
    ok = torch.ones(i.numel(), dtype=torch.bool, device=Z.device)
    err = torch.zeros(i.numel(), dtype=Z.dtype, device=Z.device)
    reasons: list[str] = []
    for s in range(0, i.numel(), chunk):
        res = geodesic(G, Z[i[s:s + chunk]], Z[j[s:s + chunk]], **kw)
        out[i[s:s + chunk], j[s:s + chunk]] = res.length
        ok[s:s + chunk], err[s:s + chunk] = res.converged, res.length_error
        reasons += res.reason
    if not bool(ok.all()):
        warnings.warn(f"distance_matrix: {int((~ok).sum())} of {ok.numel()} geodesic problems did not converge "
                      f"({_reasons(reasons)})", GeodesicWarning, stacklevel=2)
    _warn_unresolved(err, "distance_matrix", stacklevel=3)
    D = out + out.T
    if not return_converged:
        return D
    C = torch.ones(N, N, dtype=torch.bool, device=Z.device)
    C[i, j] = ok
    C[j, i] = ok
    return D, C
