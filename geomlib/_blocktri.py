"""Batched symmetric positive definite block-tridiagonal systems, for the geodesic solver's start matrix.

H has n diagonal blocks A_i and upper blocks C_i = H[i, i+1] (the lower ones are C_iᵀ), each d×d, for a batch of
b matrices: A shape=[b, n, d, d], C shape=[b, n-1, d, d]. ``factor(A, C)`` returns an object whose
``solve(q)`` gives H⁻¹q for q shape=[b, n, d], and a mask of the matrices that are not (numerically) positive
definite (their rows of ``solve`` are garbage; the caller replaces them).

Algorithmic note: small systems (n·d ≤ DENSE_MAX) are assembled into one (n·d)×(n·d) matrix and factorised by one
batched Cholesky call: cost b(nd)³/3, memory b(nd)², and a single call is fastest while that is small. Larger ones
use block cyclic reduction: eliminating the even-numbered blocks leaves a block-tridiagonal Schur complement in
the odd ones (positive definite when H is), half the size; ⌈log₂ n⌉ such levels, each a few batched d×d
Cholesky factorisations and products over all blocks at once. Cost O(b n d³) and memory O(b n d²), with
O(log n) rather than O(n) Python-level steps (cyclic reduction is Gaussian elimination in the odd-even order,
which is stable for positive definite H).
"""
from __future__ import annotations

import functools

import torch

DENSE_MAX = 96  # n·d up to which one dense Cholesky factorisation is faster (measured on a CPU, b = 16 and 256)


def factor(A: torch.Tensor, C: torch.Tensor):
    """(factorisation, bad (b,) bool) of the block-tridiagonal matrices with diagonal A and upper blocks C."""
    b, n, d, _ = A.shape
    if n * d <= DENSE_MAX:
        return _Dense.of(A, C)
    return _Cyclic.of(A, C)


def _bad(info: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
    """Pairs whose Cholesky factor failed: info (b, ...) ≠ 0 or non-finite entries in L (b, ...)."""
    return (info != 0).flatten(1).any(1) | ~torch.isfinite(L).flatten(1).all(1)


@functools.lru_cache(maxsize=32)
def _dense_index(n: int, d: int, device: torch.device) -> torch.Tensor:
    """Positions in the flattened (n·d)×(n·d) matrix of the entries of A (n, d, d), C (n-1, d, d) and Cᵀ, in order."""
    i, a, c = torch.meshgrid(torch.arange(n), torch.arange(d), torch.arange(d), indexing="ij")  # block, row, column
    N = n * d
    diag = (i * d + a) * N + i * d + c
    upper = ((i * d + a) * N + (i + 1) * d + c)[:-1]
    lower = (((i + 1) * d + a) * N + i * d + c)[:-1]
    return torch.cat([diag.reshape(-1), upper.reshape(-1), lower.reshape(-1)]).to(device)


class _Dense:
    def __init__(self, L: torch.Tensor, shape):
        self.L, self.shape = L, shape  # L (b, n·d, n·d)

    @classmethod
    def of(cls, A, C):
        b, n, d, _ = A.shape
        vals = torch.cat([A.reshape(b, -1), C.reshape(b, -1), C.transpose(-1, -2).reshape(b, -1)], 1)
        H = A.new_zeros(b, (n * d) ** 2).index_copy_(1, _dense_index(n, d, A.device), vals)
        L, info = torch.linalg.cholesky_ex(H.view(b, n * d, n * d))
        return cls(L, (n, d)), _bad(info[:, None], L)

    def solve(self, q: torch.Tensor) -> torch.Tensor:
        b = q.shape[0]
        return torch.cholesky_solve(q.reshape(b, -1, 1), self.L).reshape(q.shape)

    def select(self, keep: torch.Tensor) -> "_Dense":
        return _Dense(self.L[keep], self.shape)


class _Cyclic:
    """Levels of block cyclic reduction. Each level keeps, for the even blocks e_i = 2i: the Cholesky factors of
    A_e, Cl_i = H[2i, 2i+1], Cr_i = H[2i+1, 2i+2], P_i = A_{e_i}⁻¹ Cl_i and Q_i = A_{e_{i+1}}⁻¹ Cr_iᵀ."""

    def __init__(self, levels, last):
        self.levels, self.last = levels, last

    @classmethod
    def of(cls, A, C):
        levels, bad = [], torch.zeros(A.shape[0], dtype=torch.bool, device=A.device)
        while A.shape[1] > 1:
            n = A.shape[1]
            ne = (n + 1) // 2  # even blocks 0, 2, ...; n // 2 odd ones
            Le, info = torch.linalg.cholesky_ex(A[:, 0::2])  # (b, ne, d, d)
            bad |= _bad(info, Le)
            Cl, Cr = C[:, 0::2], C[:, 1::2]  # (b, n//2, d, d), (b, ne-1, d, d)
            P = torch.cholesky_solve(Cl, Le[:, :Cl.shape[1]])  # A_e⁻¹ Cl
            Q = torch.cholesky_solve(Cr.transpose(-1, -2), Le[:, 1:])  # A_{e+1}⁻¹ Crᵀ
            A_odd = A[:, 1::2] - Cl.transpose(-1, -2) @ P  # Schur complement in the odd blocks
            A_odd[:, :Q.shape[1]] -= Cr @ Q
            A_odd = 0.5 * (A_odd + A_odd.transpose(-1, -2))
            C_odd = -Cr[:, :Cl.shape[1] - 1] @ P[:, 1:]  # odd 2i+1 to odd 2i+3, through even 2i+2
            levels.append((Le, Cl, Cr, P, Q))
            A, C = A_odd, C_odd
        L, info = torch.linalg.cholesky_ex(A)  # (b, 1, d, d)
        bad |= _bad(info, L)
        return cls(levels, L), bad

    def solve(self, q: torch.Tensor) -> torch.Tensor:
        q = q[..., None]  # (b, n, d, 1)
        ys = []
        for Le, Cl, Cr, P, Q in self.levels:  # forward elimination
            ye = torch.cholesky_solve(q[:, 0::2], Le)  # A_e⁻¹ q_e
            qo = q[:, 1::2] - Cl.transpose(-1, -2) @ ye[:, :Cl.shape[1]]
            qo[:, :Cr.shape[1]] -= Cr @ ye[:, 1:]
            ys.append(ye)
            q = qo
        x = torch.cholesky_solve(q, self.last)
        for (Le, Cl, Cr, P, Q), ye in zip(reversed(self.levels), reversed(ys)):  # back substitution
            xe = ye.clone()
            xe[:, :P.shape[1]] -= P @ x
            xe[:, 1:Q.shape[1] + 1] -= Q @ x[:, :Q.shape[1]]
            n = ye.shape[1] + x.shape[1]
            full = x.new_empty(x.shape[0], n, *x.shape[2:])
            full[:, 0::2], full[:, 1::2] = xe, x
            x = full
        return x[..., 0]

    def select(self, keep: torch.Tensor) -> "_Cyclic":
        return _Cyclic([tuple(t[keep] for t in lvl) for lvl in self.levels], self.last[keep])
