"""Input checks shared by every module: errors say what was wrong, with the numbers involved."""
from __future__ import annotations

import operator

import torch

__all__: list[str] = []


def as_tensor(x, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not (x.is_floating_point()):
        raise TypeError(f"{name} must be a floating-point tensor (float32 or float64), got dtype {x.dtype}")
    return x


def points(z, name: str = "z", d: int | None = None) -> torch.Tensor:
    """A batch of points (..., d): floating, finite, at least 1-D."""
    z = as_tensor(z, name)
    if z.dim() < 1:
        raise ValueError(f"{name} must have shape (..., d), got a 0-d tensor")
    if d is not None and z.shape[-1] != d:
        raise ValueError(f"{name} must have last dimension d={d}, got shape {tuple(z.shape)}")
    finite(z, name)
    return z


def curve(c, name: str = "c") -> torch.Tensor:
    """A batch of discrete curves (..., T, d) with T ≥ 2."""
    c = as_tensor(c, name)
    if c.dim() < 2:
        raise ValueError(f"{name} must be a discrete curve of shape (..., T, d), got shape {tuple(c.shape)}")
    if c.shape[-2] < 2:
        raise ValueError(f"{name} needs T ≥ 2 points, got T={c.shape[-2]} (shape {tuple(c.shape)})")
    finite(c, name)
    return c


def finite(x: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(x).all()):
        bad = (~torch.isfinite(x)).sum().item()
        raise ValueError(f"{name} has {bad} non-finite entries (NaN or inf) out of {x.numel()}, shape {tuple(x.shape)}")


def same_kind(a: torch.Tensor, b: torch.Tensor, na: str, nb: str) -> None:
    if a.device != b.device:
        raise ValueError(f"{na} is on {a.device} but {nb} is on {b.device}; move both to one device")
    if a.dtype != b.dtype:
        raise TypeError(f"{na} has dtype {a.dtype} but {nb} has dtype {b.dtype}; use one dtype")


def endpoints(z0, z1, names: tuple[str, str] = ("z0", "z1")) -> tuple[torch.Tensor, torch.Tensor]:
    """Matching batches (..., d) of endpoints (or of points and velocities), broadcast to a common shape."""
    n0, n1 = names
    z0, z1 = points(z0, n0), points(z1, n1)
    same_kind(z0, z1, n0, n1)
    if z0.shape[-1] != z1.shape[-1]:
        raise ValueError(f"{n0} and {n1} must have the same dimension d: {n0} has shape {tuple(z0.shape)}, "
                         f"{n1} has shape {tuple(z1.shape)}")
    try:
        shape = torch.broadcast_shapes(z0.shape, z1.shape)
    except RuntimeError:
        raise ValueError(f"the batches of {n0} and {n1} do not match: {n0} has shape {tuple(z0.shape)}, "
                         f"{n1} has shape {tuple(z1.shape)}") from None
    return z0.expand(shape), z1.expand(shape)


def count(n, name: str, minimum: int = 1) -> int:
    """n as an int ≥ minimum (a bool or a float is refused: a count is a whole number); numpy and 0-d torch
    integers are fine."""
    try:
        k = operator.index(n)
    except TypeError:
        k = None
    if isinstance(n, bool) or k is None or k < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer ≥ {minimum}"
        raise ValueError(f"{name} must be {what}, got {n!r}")
    return k
