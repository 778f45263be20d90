"""Shared fixtures: decoders with closed-form geometry, and the device list (CUDA only when present)."""
from __future__ import annotations

import math

import pytest
import torch

import geomlib as gl

DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device on this machine")])]


def polar(z):
    """(r, θ) -> (r cos θ, r sin θ): metric diag(1, r²)."""
    r, th = z[..., 0], z[..., 1]
    return torch.stack([r * torch.cos(th), r * torch.sin(th)], -1)


def sphere(z):
    """(θ, φ) -> unit sphere in R³: metric diag(1, sin²θ); geodesic distance = great-circle distance."""
    th, ph = z[..., 0], z[..., 1]
    return torch.stack([torch.sin(th) * torch.cos(ph), torch.sin(th) * torch.sin(ph), torch.cos(th)], -1)


def great_circle(z0, z1):
    return torch.arccos((sphere(z0) * sphere(z1)).sum(-1).clamp(-1, 1))


def mlp(d=2, D=5, seed=0, dtype=torch.float64, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    W1 = torch.randn(d, 16, generator=g, dtype=dtype).to(device)
    W2 = torch.randn(16, D, generator=g, dtype=dtype).to(device) / 4
    return lambda z: torch.tanh(z @ W1) @ W2 + z.sum(-1, keepdim=True) * 0.1


@pytest.fixture
def rng():
    return torch.Generator().manual_seed(1234)


def metric_zoo(dtype=torch.float64, device="cpu"):
    """name -> (metric, a sampler of points in its domain). Every metric in geomlib's core appears here;
    the invariant tests in test_metrics.py run over all of them."""
    A = torch.tensor([[1.0, 2.0], [0.5, -1.0], [3.0, 0.2]], dtype=dtype, device=device)
    box = lambda lo, hi: (lambda n, g: (torch.rand(n, 2, generator=g, dtype=dtype) * (hi - lo) + lo).to(device))
    return {
        "euclidean": (gl.euclidean, box(-2.0, 2.0)),
        "linear": (gl.pullback(lambda z: z @ A.T), box(-2.0, 2.0)),
        "polar": (gl.pullback(polar), box(0.5, 2.5)),
        "sphere": (gl.pullback(sphere), lambda n, g: box(0.4, 2.7)(n, g) * torch.tensor([1.0, 2.0], dtype=dtype, device=device)),
        "mlp": (gl.pullback(mlp(dtype=dtype, device=device)), box(-2.0, 2.0)),
        "function": (lambda z: torch.diag_embed(1 + z ** 2), box(-2.0, 2.0)),
        "expected": (gl.expected_pullback(mlp(dtype=dtype, device=device),
                                          lambda z: 0.1 + torch.nn.functional.softplus(mlp(D=5, seed=7, dtype=dtype, device=device)(z))),
                     box(-2.0, 2.0)),
        "ensemble": (gl.ensemble_pullback([mlp(seed=s, dtype=dtype, device=device) for s in (0, 1, 2)]), box(-2.0, 2.0)),
        "fisher_kl": (gl.fisher_pullback(bernoulli_decoder(dtype, device)), box(-2.0, 2.0)),
        "fisher_midpoint": (gl.fisher_pullback(bernoulli_decoder(dtype, device), step="midpoint"), box(-2.0, 2.0)),
    }


def bernoulli_decoder(dtype=torch.float64, device="cpu", D=6):
    """z -> D independent Bernoullis with probabilities sigmoid(MLP(z))."""
    f = mlp(D=D, seed=3, dtype=dtype, device=device)
    return lambda z: torch.distributions.Bernoulli(probs=torch.sigmoid(2 * f(z)))


PI = math.pi
