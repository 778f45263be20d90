"""The one convention: L = Σ s_n, E = ½ (T-1) Σ s_n², so L² ≤ 2E with equality at constant speed."""
import math

import pytest
import torch

import geomlib as gl
from conftest import DEVICES, mlp, polar, sphere


def circle_arc(T, speed_profile=lambda t: t):
    t = speed_profile(gl.grid(T, torch.zeros((), dtype=torch.float64)))
    return torch.stack([torch.cos(math.pi * t), torch.sin(math.pi * t)], -1)  # half circle, length π


def test_polygon_length_converges_to_the_arc_length_at_second_order():
    errs = [abs(gl.length(circle_arc(T)).item() - math.pi) for T in (10, 20, 40, 80)]
    for a, b in zip(errs, errs[1:]):
        assert 3.5 < a / b < 4.5  # halving the step quarters the error


def test_length_is_reparametrisation_invariant_energy_is_not():
    uniform, uneven = circle_arc(2001), circle_arc(2001, lambda t: t ** 2)
    assert abs(gl.length(uniform) - gl.length(uneven)) < 1e-5
    torch.testing.assert_close(gl.energy(uniform), torch.tensor(math.pi ** 2 / 2, dtype=torch.float64), rtol=1e-5, atol=0)
    assert gl.energy(uneven) > 1.2 * gl.energy(uniform)  # ∫(2πt)²/2 dt = 2π²/3 > π²/2


@pytest.mark.parametrize("device", DEVICES)
def test_cauchy_schwarz_and_equality_at_constant_speed(device, rng):
    G = gl.pullback(mlp(device=device), step="midpoint")
    c = torch.randn(5, 12, 2, generator=rng, dtype=torch.float64).to(device)
    L, E = gl.length(c, G), gl.energy(c, G)
    assert bool((L ** 2 <= 2 * E * (1 + 1e-12)).all())
    fine = gl.resample(gl.straight_line(c[:, 0], c[:, -1], 400), T=400, G=G)
    L, E = gl.length(fine, G), gl.energy(fine, G)
    torch.testing.assert_close(L ** 2, 2 * E, rtol=1e-3, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pullback_length_equals_data_space_length(dtype):
    """Oracle: the length of the decoded curve in data space (a polygon on a 100× finer grid) = the pullback length."""
    f = mlp(dtype=dtype)

    def curve(T):
        t = torch.linspace(0, 1, T, dtype=dtype)
        return torch.stack([-1 + 2.5 * t, torch.sin(3 * t)], -1)

    truth = gl.data_length(curve(50_000), f)
    tol = 1e-6 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(gl.length(curve(500), gl.pullback(f, step="midpoint")), truth, rtol=tol, atol=0)
    # energy: the same at constant data-space speed is not given here, so compare the two discretisations
    torch.testing.assert_close(gl.energy(curve(500), gl.pullback(f, step="midpoint")), gl.data_energy(curve(500), f), rtol=1e-4, atol=0)
    # step="data" measures the decoded polygon itself, exactly
    torch.testing.assert_close(gl.length(curve(50), gl.pullback(f, step="data")), gl.data_length(curve(50), f))


def test_closed_forms_polar_and_sphere():
    """With midpoint steps these are exact (G is constant along each curve); the default data steps measure the
    inscribed polygon, whose length is below the arc by the chord error ~ L (π/T)²/6."""
    # a circle of radius r in polar coordinates has length 2πr; a meridian arc on the sphere has length Δθ
    T = 101
    t = gl.grid(T, torch.zeros((), dtype=torch.float64))
    c = torch.stack([torch.full_like(t, 1.7), 2 * math.pi * t], -1)
    torch.testing.assert_close(gl.length(c, gl.pullback(polar, step="midpoint")), torch.tensor(2 * math.pi * 1.7, dtype=torch.float64))
    c = torch.stack([0.3 + 2 * t, torch.full_like(t, 0.4)], -1)
    torch.testing.assert_close(gl.length(c, gl.pullback(sphere, step="midpoint")), torch.tensor(2.0, dtype=torch.float64))
    # a parallel at colatitude θ has length 2π sin θ
    c = torch.stack([torch.full_like(t, 0.9), 2 * math.pi * t], -1)
    torch.testing.assert_close(gl.length(c, gl.pullback(sphere, step="midpoint")), torch.tensor(2 * math.pi * math.sin(0.9), dtype=torch.float64))


    polygon = gl.length(c, gl.pullback(sphere))
    arc = 2 * math.pi * math.sin(0.9)
    assert 0 < arc - polygon < arc * (math.pi / (T - 1)) ** 2 / 6 * 1.01


@pytest.mark.parametrize("G", [None, gl.pullback(polar), gl.pullback(polar, step="midpoint"),
                               lambda z: torch.diag_embed(1 + z ** 2)], ids=["euclidean", "data", "midpoint", "function"])
def test_length_gradient_at_a_repeated_point(G):
    """A zero-length step contributes gradient 0 (a subgradient of ‖·‖ at 0), not NaN: the gradient is the one of
    the curve without the repeated point, shared between its two copies."""
    c = torch.tensor([[1.0, 0.0], [2.0, 0.0], [2.0, 0.0], [2.0, 1.0]], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(gl.length(c, G), c)
    assert torch.isfinite(g).all()
    short = c.detach()[[0, 1, 3]].requires_grad_(True)
    (gs,) = torch.autograd.grad(gl.length(short, G), short)
    torch.testing.assert_close(torch.stack([g[0], g[1] + g[2], g[3]]), gs)
    if G is None:  # Euclidean: ∂L/∂c_n = u_{n−1} − u_n with u the unit step directions (0 for the empty step)
        torch.testing.assert_close(g, torch.tensor([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.0], [0.0, 1.0]],
                                                   dtype=torch.float64))
    (gd,) = torch.autograd.grad(gl.data_length(c, polar), c)
    assert torch.isfinite(gd).all()
    (gs,) = torch.autograd.grad(gl.segment_lengths(c, G)[1], c)
    assert (gs == 0).all()


def test_data_length_rejects_bad_decoders():
    c = gl.straight_line(torch.zeros(2), torch.ones(2), 5)
    with pytest.raises(TypeError, match="torch.Tensor"):
        gl.data_length(c, lambda z: z.tolist())
    with pytest.raises(ValueError, match=r"\(\.\.\., T, D\)"):
        gl.data_length(c, lambda z: z.sum())
