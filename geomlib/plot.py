"""Matplotlib helpers for pictures of latent geometry. [Lectures 1-7]

Import as ``import geomlib.plot as gp``; the core of geomlib never imports this module. Every helper draws on
an ``ax`` it is given and returns the artist it made, so a figure is composed by the caller:

    magnification(ax, G, extent)     background image of the magnification factor √det G(z) on a grid
    ellipses(ax, G, extent)          metric ellipses, the unit balls {v : vᵀ G(z) v = 1}, drawn at grid points
    curves(ax, c)                    discrete curves (T, 2) or (B, T, 2), endpoints marked
    scatter(ax, z, labels)           latent codes coloured by label
    decoded_images(ax, f, c)         what the decoder f gives along a curve, as a strip of small images

Latent spaces here are 2-D (d = 2). ``extent`` is ``(z1_min, z1_max, z2_min, z2_max)`` as in ``imshow``.
The pure helpers ``magnification_grid`` and ``ellipse_vertices`` compute the numbers; the widgets reuse them.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.image import AxesImage

from . import _checks
from .curves import interpolate
from .metrics import as_metric

__all__ = ["magnification_grid", "magnification", "ellipse_vertices", "ellipses", "curves", "scatter",
           "decode_along", "decoded_images"]


def _extent(extent) -> tuple[float, float, float, float]:
    if len(extent) != 4:
        raise ValueError(f"extent must be (z1_min, z1_max, z2_min, z2_max), got {extent!r}")
    x0, x1, y0, y1 = (float(e) for e in extent)
    if not (x1 > x0 and y1 > y0):
        raise ValueError(f"extent must have z1_min < z1_max and z2_min < z2_max, got {extent!r}")
    return x0, x1, y0, y1


def _centres(extent, n: int, dtype, device) -> torch.Tensor:
    """Centres of an n×n grid of cells covering extent: shape=[n, n, 2], row i = z2 index, column j = z1 index."""
    if n < 1:
        raise ValueError(f"the grid needs n ≥ 1 cells per side, got n={n}")
    x0, x1, y0, y1 = _extent(extent)
    u = (torch.arange(n, dtype=dtype, device=device) + 0.5) / n  # (n,)
    xs, ys = x0 + (x1 - x0) * u, y0 + (y1 - y0) * u
    Y, X = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([X, Y], -1)  # (n, n, 2)


def magnification_grid(G, extent, n: int = 64, *, log: bool = False, dtype: torch.dtype | None = None,
                       device=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The magnification factor √det G(z) at the centres of an n×n grid of cells covering ``extent``.

    Returns numpy arrays ``(z1s (n,), z2s (n,), M (n, n))`` with ``M[i, j] = √det G(z1s[j], z2s[i])``
    (image convention: rows run along z2), or log √det G with ``log=True``. The grid has the given dtype and
    device (default: torch's default dtype, CPU), which must suit the metric (e.g. float32 for a float32 model).
    [Lecture 3]
    """
    metric = as_metric(G)
    dtype = torch.get_default_dtype() if dtype is None else dtype
    z = _centres(extent, n, dtype, device)  # (n, n, 2)
    # one flat batch so that every metric sees the (N, d) shape it is surely written for
    M = torch.linalg.det(metric(z.reshape(-1, 2))).clamp_min(0).sqrt().reshape(n, n).detach()  # (n, n)
    if log:
        M = M.clamp_min(torch.finfo(M.dtype).tiny).log()
    return z[0, :, 0].cpu().numpy(), z[:, 0, 1].cpu().numpy(), M.cpu().numpy()


def magnification(ax, G, extent, n: int = 64, *, log: bool = True, colorbar: bool = False, dtype=None,
                  device=None, **imshow_kw) -> AxesImage:
    """Draw √det G(z) (log √det G with ``log=True``, the default) over ``extent`` as an image on ``ax``.

    Bright where the decoder stretches latent space most: there, short latent steps are long in data space.
    Keyword arguments go to ``ax.imshow`` (e.g. ``cmap``). Returns the ``AxesImage``. [Lecture 3]
    """
    _, _, M = magnification_grid(G, extent, n, log=log, dtype=dtype, device=device)
    kw = dict(cmap="viridis", origin="lower", extent=_extent(extent), aspect="auto", interpolation="bilinear")
    kw.update(imshow_kw)
    im = ax.imshow(M, **kw)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, label="log √det G" if log else "√det G")
    return im


def ellipse_vertices(G, z: torch.Tensor, scale: float = 1.0, m: int = 64) -> torch.Tensor:
    """Points on the metric ellipses z + scale·{v : vᵀ G(z) v = 1}, closed polygons of m points.

    z shape=[..., 2] -> shape=[..., m, 2]. With the Cholesky factor G = L Lᵀ, v = L⁻ᵀ u for unit vectors u gives
    vᵀ G v = uᵀ L⁻¹ L Lᵀ L⁻ᵀ u = 1, so every vertex lies exactly on the ellipse; its semi-axes are 1/√λ along the
    eigenvectors of G (long where G is small, i.e. where the decoder barely moves). [Lecture 3]
    """
    z = _checks.points(z, "z", d=2)
    Gz = as_metric(G)(z).detach()  # (..., 2, 2)
    L = torch.linalg.cholesky(Gz)  # (..., 2, 2)
    th = torch.linspace(0, 2 * math.pi, m, dtype=z.dtype, device=z.device)
    u = torch.stack([th.cos(), th.sin()], -1)  # (m, 2)
    # v = L⁻ᵀ u for all m directions at once: solve Lᵀ v = u, shape (..., 2, m)
    v = torch.linalg.solve_triangular(L.transpose(-1, -2), u.T.expand(*Gz.shape[:-2], 2, m), upper=True)
    return z.detach()[..., None, :] + scale * v.transpose(-1, -2)  # (..., m, 2)


def ellipses(ax, G, extent, n: int = 8, *, scale: float | None = None, dtype=None, device=None,
             **kw) -> LineCollection:
    """Draw the metric ellipses {z + scale·v : vᵀ G(z) v = 1} at the centres of an n×n grid over ``extent``.

    ``scale=None`` shrinks all ellipses by one common factor so that the largest fits in its grid cell (relative
    sizes stay true); ``scale=1`` draws the unit balls themselves. Returns the ``LineCollection``, one closed
    polygon per grid point (``get_segments()`` gives them in data coordinates). [Lecture 3]
    """
    dtype = torch.get_default_dtype() if dtype is None else dtype
    z = _centres(extent, n, dtype, device).reshape(-1, 2)  # (n², 2)
    V = ellipse_vertices(G, z, 1.0) - z[:, None]  # (n², m, 2), centred
    if scale is None:
        x0, x1, y0, y1 = _extent(extent)
        cell = min(x1 - x0, y1 - y0) / n
        radius = V.norm(dim=-1).amax()
        scale = 0.45 * cell / float(radius) if float(radius) > 0 else 1.0
    segs = (z[:, None] + scale * V).cpu().numpy()
    style = dict(colors="white", linewidths=1.0)
    style.update(kw)
    lc = LineCollection(list(segs), **style)
    ax.add_collection(lc)
    ax.autoscale_view()
    return lc


def _as_curves(c) -> torch.Tensor:
    c = _checks.curve(c)
    if c.shape[-1] != 2:
        raise ValueError(f"only 2-D latent curves can be drawn, got shape {tuple(c.shape)} (d={c.shape[-1]})")
    return c.detach().reshape(-1, c.shape[-2], 2)  # (B, T, 2)


def curves(ax, c, *, labels: Sequence[str] | None = None, endpoints: bool = True, color=None, **plot_kw) -> list:
    """Draw discrete curves c shape=[T, 2] or [..., T, 2] on ``ax``; mark their endpoints.

    ``labels`` names each curve in the legend. Keyword arguments go to ``ax.plot``.
    Returns the list of ``Line2D`` of the curves (one per curve, in order). [Lecture 2]
    """
    cs = _as_curves(c).cpu().numpy()  # (B, T, 2)
    if labels is not None and len(labels) != len(cs):
        raise ValueError(f"got {len(labels)} labels for {len(cs)} curves")
    lines = []
    for b, cb in enumerate(cs):
        kw = dict(lw=2)
        if color is not None:
            kw["color"] = color
        kw.update(plot_kw)
        (line,) = ax.plot(cb[:, 0], cb[:, 1], label=None if labels is None else labels[b], **kw)
        lines.append(line)
        if endpoints:
            ax.plot(cb[[0, -1], 0], cb[[0, -1], 1], "o", color=line.get_color(), ms=5, mec="k", mew=0.5)
    if labels is not None:
        ax.legend()
    return lines


def scatter(ax, z, labels=None, *, cmap: str = "tab10", legend: bool = True, s: float = 6, **kw) -> PathCollection:
    """Latent codes z shape=[N, 2] as points, coloured by integer ``labels`` shape=[N] if given.

    A legend with one entry per class is added when ``legend`` and labels are given. Returns the
    ``PathCollection``. [Lecture 1]
    """
    z = _checks.points(z, "z", d=2).detach()
    if z.dim() != 2:
        raise ValueError(f"z must have shape (N, 2), got {tuple(z.shape)}")
    zn = z.cpu().numpy()
    if labels is None:
        return ax.scatter(zn[:, 0], zn[:, 1], s=s, **kw)
    y = np.asarray(labels.cpu() if isinstance(labels, torch.Tensor) else labels)
    if y.shape != (zn.shape[0],):
        raise ValueError(f"labels must have shape (N,) = ({zn.shape[0]},), got {y.shape}")
    sc = ax.scatter(zn[:, 0], zn[:, 1], c=y, cmap=cmap, s=s, **kw)
    if legend:
        ax.legend(*sc.legend_elements(), loc="best", fontsize="small", markerscale=0.8)
    return sc


def decode_along(f: Callable, c: torch.Tensor, n: int = 10) -> torch.Tensor:
    """f at n points equally spaced in t along the piecewise-linear curve c: c shape=[..., T, d] -> [..., n, D]."""
    c = _checks.curve(c)
    if n < 2:
        raise ValueError(f"decode at n ≥ 2 points, got n={n}")
    with torch.no_grad():
        x = f(interpolate(c, torch.linspace(0, 1, n, dtype=c.dtype, device=c.device)))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"the decoder must return a torch.Tensor, got {type(x).__name__}")
    return x


def _tiles(x: np.ndarray, shape: tuple[int, int], gap: int = 1) -> np.ndarray:
    """Images x shape=[R, n, h·w] -> one mosaic (R·(h+gap)-gap, n·(w+gap)-gap), NaN in the gaps."""
    R, n = x.shape[:2]
    h, w = shape
    out = np.full((R * (h + gap) - gap, n * (w + gap) - gap), np.nan)
    for r in range(R):
        for k in range(n):
            out[r * (h + gap):r * (h + gap) + h, k * (w + gap):k * (w + gap) + w] = x[r, k].reshape(h, w)
    return out


def decoded_images(ax, f: Callable, c, n: int = 10, shape: tuple[int, int] = (8, 8), *, cmap: str = "gray_r",
                   **imshow_kw) -> AxesImage:
    """What the decoder f gives along the curve(s) c, as a strip of n images per curve (a row per curve).

    c shape=[T, d] or [B, T, d]; f maps (..., d) to (..., h·w) with ``shape = (h, w)`` (8×8 for the digits).
    Images are taken at n points equally spaced in t; tiles are separated by a 1-pixel gap (NaN, blank).
    Returns the ``AxesImage`` (its ``get_array()`` is the mosaic). [Lecture 1]
    """
    c = _checks.curve(c)
    cs = c.reshape(-1, *c.shape[-2:])  # (B, T, d)
    x = decode_along(f, cs, n)  # (B, n, D)
    h, w = shape
    if x.shape[-1] != h * w:
        raise ValueError(f"the decoder gives D={x.shape[-1]} values per point, which is not shape {shape} = {h * w} pixels")
    kw = dict(cmap=cmap, interpolation="nearest")
    kw.update(imshow_kw)
    im = ax.imshow(_tiles(x.detach().cpu().double().numpy(), shape), **kw)
    ax.set_xticks([])
    ax.set_yticks([])
    return im
