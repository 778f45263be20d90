"""Jacobians and Jacobian-vector products: the one place where ``torch.func`` is used. [Lecture 3]

A decoder ``f`` maps a batch of points ``(..., d)`` to ``(..., D)`` and acts on each point separately.

Thread safety: PyTorch keeps forward-mode AD levels per process, not per thread, so two threads inside
``torch.func.jvp`` at once corrupt each other's levels (errors, or silently wrong Jacobians). Every forward-mode
transform here runs under one re-entrant lock: threads take turns, nested transforms in one thread still work.
"""
from __future__ import annotations

import threading
import warnings
from typing import Callable

import torch
from torch.func import jacfwd as _jacfwd, jvp as _jvp, vmap as _vmap

from . import _checks

__all__ = ["jacobian", "jvp"]

_FORWARD_AD = threading.RLock()  # see the module docstring

# torch 2.13 loads its forward-mode decompositions lazily on the first jvp, through torch.jit.script, which warns
# (DeprecationWarning) about its own internals. Trigger that load once here, quietly, so users never see it.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=DeprecationWarning)
    _jvp(torch.sin, (torch.zeros(1),), (torch.ones(1),))  # *_unchecked: internal, used inside transforms and solvers


def _call(f: Callable, z: torch.Tensor, what: str = "f") -> torch.Tensor:
    x = f(z)
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{what} must return a torch.Tensor, got {type(x).__name__} for input of shape {tuple(z.shape)}")
    if x.shape[:-1] != z.shape[:-1]:
        raise ValueError(f"{what} must map (..., d) to (..., D) point by point; input shape {tuple(z.shape)} "
                         f"gave output shape {tuple(x.shape)}")
    return x


def checked(f: Callable, what: str = "f") -> Callable:
    """f, with every output checked: a tensor of shape (..., D) for input (..., d) (a clear error otherwise).
    The checks only look at types and shapes, so they work inside ``torch.func`` transforms too."""
    return lambda z: _call(f, z, what)


def jacobian(f: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor, *, return_value: bool = False):
    """J(z) = ∂f/∂z for every point of a batch.

    Args: f, batched map (..., d) -> (..., D); z, points shape=[..., d].
    Returns: J shape=[..., D, d] (and f(z) shape=[..., D] with ``return_value=True``).

    Algorithmic note: forward mode, batched twice: one Jacobian-vector product per basis vector e_i covers every
    point, and vmap over the d basis vectors shares one forward pass of f, so the cost is about one forward pass
    plus d tangent passes (latent spaces are small); no Python loop over points. A decoder that vmap cannot
    batch (one that draws random numbers, say) falls back to d separate passes.
    """
    z = _checks.points(z, "z")
    _call(f, z.reshape(-1, z.shape[-1])[:1], "f")  # a clear error for a bad decoder before vmap hides it
    return jacobian_unchecked(f, z, return_value=return_value)


def jacobian_unchecked(f, z, *, return_value: bool = False):
    """``jacobian`` without input checks: safe to call inside other ``torch.func`` transforms."""
    d = z.shape[-1]
    z = z.contiguous()  # torch.func refuses expanded primals (several elements share one memory cell)
    basis = torch.eye(d, dtype=z.dtype, device=z.device)[:, None].expand(d, z.numel() // d, d)  # (d, N, d)
    basis = basis.reshape(d, *z.shape)  # (d, ..., d): tangent e_i at every point

    # Because f acts on each point separately, one batched JVP with tangent e_i gives column i of every
    # point's Jacobian at once, with the decoder's full-size matrix products (vmap over single points would
    # turn them into many tiny ones). vmap over the d tangents shares one forward pass of f between them.
    def column(e):
        return _jvp(f, (z,), (e,))

    with _FORWARD_AD:
        try:
            x, Jt = _vmap(column, out_dims=(None, 0))(basis)  # (..., D), (d, ..., D)
        except RuntimeError as err:  # vmap cannot batch every decoder (random ops, some in-place updates)
            if "vmap" not in str(err) and "batch" not in str(err).lower():
                raise
            cols = [column(e) for e in basis]  # one JVP per basis vector
            x, Jt = cols[0][0], torch.stack([Jv for _, Jv in cols])
    J = Jt.movedim(0, -1)  # (..., D, d)
    return (J, x) if return_value else J


def jvp(f: Callable[[torch.Tensor], torch.Tensor], z: torch.Tensor, v: torch.Tensor):
    """(f(z), J(z) v) for a batch of points z and tangent vectors v, both shape=[..., d].

    Returns f(z) shape=[..., D] and J(z) v shape=[..., D]. One forward-mode pass: because f acts on each
    point separately, the Jacobian of the batch is block diagonal and one pass gives every J(z_i) v_i.
    """
    z = _checks.points(z, "z")
    v = _checks.points(v, "v")
    _checks.same_kind(z, v, "z", "v")
    if v.shape != z.shape:
        raise ValueError(f"z and v must have the same shape, got {tuple(z.shape)} and {tuple(v.shape)}")
    _call(f, z.reshape(-1, z.shape[-1])[:1], "f")
    return jvp_unchecked(f, z, v)


def jvp_unchecked(f, z, v):
    """``jvp`` without input checks."""
    # contiguous: torch.func refuses primals/tangents made by expand (several elements share one memory cell)
    with _FORWARD_AD:
        return _jvp(f, (z.contiguous(),), (v.contiguous(),))


def pointwise_jacobian_unchecked(g, flat):
    """For g: one point (d,) -> (tensor A, aux), the pair (∂A/∂z, aux) at every row of ``flat`` (N, d): shapes
    (N, *A.shape, d) and (N, *aux.shape). For maps that are not batched point by point (Christoffel symbols)."""
    with _FORWARD_AD:
        return _vmap(_jacfwd(g, has_aux=True))(flat)
