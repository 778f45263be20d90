import math

import pytest
import torch

import geomlib as gl
from conftest import DEVICES


@pytest.mark.parametrize("device", DEVICES)
def test_straight_line_endpoints_and_uniform_steps(device, rng):
    z0 = torch.randn(4, 3, generator=rng, dtype=torch.float64).to(device)
    z1 = torch.randn(4, 3, generator=rng, dtype=torch.float64).to(device)
    c = gl.straight_line(z0, z1, T=11)
    assert c.shape == (4, 11, 3) and c.device.type == device
    torch.testing.assert_close(c[:, 0], z0)
    torch.testing.assert_close(c[:, -1], z1)
    steps = (c[:, 1:] - c[:, :-1]).norm(dim=-1)
    torch.testing.assert_close(steps, ((z1 - z0).norm(dim=-1) / 10)[:, None].expand_as(steps))


def test_no_squeezing_of_a_batch_of_one():
    c = gl.straight_line(torch.zeros(1, 2), torch.ones(1, 2), T=5)
    assert c.shape == (1, 5, 2)
    assert gl.length(c).shape == (1,)


def test_interpolate_reproduces_a_line_at_any_time():
    z0, z1 = torch.tensor([0.0, 1.0], dtype=torch.float64), torch.tensor([2.0, -1.0], dtype=torch.float64)
    c = gl.straight_line(z0, z1, T=7)
    t = torch.tensor([0.0, 0.13, 0.5, 0.999, 1.0], dtype=torch.float64)
    torch.testing.assert_close(gl.interpolate(c, t), z0 + t[:, None] * (z1 - z0))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        gl.interpolate(c, torch.tensor([1.5]))


def test_velocity_of_a_circle_is_tangent_with_constant_speed():
    t = gl.grid(201, torch.zeros((), dtype=torch.float64))
    c = torch.stack([torch.cos(2 * math.pi * t), torch.sin(2 * math.pi * t)], -1)
    v = gl.velocity(c)[1:-1]
    torch.testing.assert_close(v.norm(dim=-1), torch.full_like(v[:, 0], 2 * math.pi), rtol=1e-3, atol=0)
    torch.testing.assert_close((v * c[1:-1]).sum(-1), torch.zeros_like(v[:, 0]), atol=1e-10, rtol=0)


def test_resample_gives_constant_speed_and_keeps_the_trace():
    t = gl.grid(400, torch.zeros((), dtype=torch.float64)) ** 3  # a very uneven parametrisation of a parabola
    c = torch.stack([t, t ** 2], -1)
    r = gl.resample(c, T=50)
    steps = (r[1:] - r[:-1]).norm(dim=-1)
    assert steps.std() / steps.mean() < 1e-3
    # still on y = x², up to the sag of the input polygon's chords: h²/4 with h ≈ 3/400 near x = 1
    torch.testing.assert_close(r[:, 1], r[:, 0] ** 2, atol=2e-5, rtol=0)
    torch.testing.assert_close(r[[0, -1]], c[[0, -1]])


def test_resample_under_a_metric_equalises_metric_steps():
    G = lambda z: torch.diag_embed(torch.stack([1 + z[..., 0] ** 2, torch.ones_like(z[..., 0])], -1))
    c = gl.straight_line(torch.tensor([[0.0, 0.0]], dtype=torch.float64), torch.tensor([[3.0, 0.0]], dtype=torch.float64), 300)
    r = gl.resample(c, T=30, G=G)
    s = gl.segment_lengths(r, G)
    assert (s.std() / s.mean()).item() < 1e-2


def test_cubic_spline_interpolates_nodes_fixed_endpoints_and_exact_on_lines(rng):
    z0 = torch.randn(3, 2, generator=rng, dtype=torch.float64)
    z1 = torch.randn(3, 2, generator=rng, dtype=torch.float64)
    s = gl.CubicSpline(z0, z1, K=6)
    t = torch.linspace(0, 1, 17, dtype=torch.float64)
    torch.testing.assert_close(s(t), gl.straight_line(z0, z1, 17))  # initialised on the straight line
    with torch.no_grad():
        s.interior.add_(torch.randn(s.interior.shape, generator=rng, dtype=torch.float64))
    knots = torch.linspace(0, 1, 6, dtype=torch.float64)
    torch.testing.assert_close(s(knots), s.nodes)  # passes through its nodes
    p = s.points(9)
    torch.testing.assert_close(p[:, 0], z0)
    torch.testing.assert_close(p[:, -1], z1)


def test_cubic_spline_is_c2_and_natural():
    # second derivative is continuous across knots and zero at the ends (natural spline)
    z0, z1 = torch.zeros(1, 1, dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64)
    s = gl.CubicSpline(z0, z1, K=5)
    with torch.no_grad():
        s.interior.copy_(torch.tensor([[[1.0], [-2.0], [0.5]]], dtype=torch.float64))
    h = 1e-3
    for knot in [0.25, 0.5, 0.75]:
        t = torch.tensor([knot - 2 * h, knot - h, knot, knot + h, knot + 2 * h], dtype=torch.float64)
        y = s(t)[0, :, 0]
        left = (y[0] - 2 * y[1] + y[2]) / h ** 2
        right = (y[2] - 2 * y[3] + y[4]) / h ** 2
        assert abs(left - right) < 1e-1 * max(1.0, abs(left))
    h = 1e-4
    y = s(torch.tensor([0.0, h, 2 * h, 0.25 - h, 0.25, 0.25 + h], dtype=torch.float64))[0, :, 0]
    end, knot = (y[0] - 2 * y[1] + y[2]) / h ** 2, (y[3] - 2 * y[4] + y[5]) / h ** 2
    assert abs(end) < 1e-2 * abs(knot)  # c'' ≈ 0 at t = 0 (it is O(h) at t = h), while c'' ≈ 10² at a knot


def test_discrete_curve_roundtrip_and_gradients(rng):
    c = torch.randn(2, 6, 3, generator=rng, dtype=torch.float64)
    dc = gl.DiscreteCurve.from_points(c)
    torch.testing.assert_close(dc.nodes, c)
    torch.testing.assert_close(dc(gl.grid(6, c)), c)
    gl.energy(dc.points(11)).sum().backward()
    assert dc.interior.grad is not None and dc.interior.grad.shape == (2, 4, 3)


def test_curve_errors_name_the_shapes():
    with pytest.raises(ValueError, match="T ≥ 2"):
        gl.length(torch.zeros(3, 1, 2))
    with pytest.raises(ValueError, match=r"z0 has shape \(3, 2\), z1 has shape \(3, 4\)"):
        gl.straight_line(torch.zeros(3, 2), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="do not match"):
        gl.straight_line(torch.zeros(3, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="cuda|device"):
        if torch.cuda.is_available():
            gl.straight_line(torch.zeros(3, 2), torch.zeros(3, 2, device="cuda"))
        else:
            raise ValueError("device check needs CUDA")
    with pytest.raises(TypeError, match="dtype"):
        gl.straight_line(torch.zeros(3, 2), torch.zeros(3, 2, dtype=torch.float64))


def test_curve_parameters_are_checked():
    z0, z1 = torch.zeros(1, 2), torch.ones(1, 2)
    with pytest.raises(ValueError, match="T must be a positive integer, got 3.0"):
        gl.straight_line(z0, z1, 3.0)
    with pytest.raises(TypeError, match="like must be a floating-point tensor.*torch.int64"):
        gl.grid(3, like=torch.tensor([1]))
    with pytest.raises(ValueError, match="K must be a positive integer, got 4.5"):
        gl.CubicSpline(z0, z1, K=4.5)
    assert gl.straight_line(z0, z1, torch.tensor(3)).shape == (1, 3, 2)  # an integer tensor is a count


@pytest.mark.parametrize("curve", [lambda z0, z1: gl.DiscreteCurve(z0, z1, T=5), lambda z0, z1: gl.CubicSpline(z0, z1, K=5),
                                   lambda z0, z1: (lambda t: gl.interpolate(gl.straight_line(z0, z1, 5), t))],
                         ids=["DiscreteCurve", "CubicSpline", "interpolate"])
def test_curves_are_not_extrapolated(curve):
    """Every curve lives on [0, 1]: times outside are an error that shows them (the spline used to extrapolate)."""
    c = curve(torch.zeros(1, 2, dtype=torch.float64), torch.ones(1, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"t must lie in \[0, 1\]; 2 of 3 values do not: \[1\.5, -0\.25\]"):
        c(torch.tensor([1.5, 0.5, -0.25], dtype=torch.float64))
    assert c(torch.tensor([0.0, 1.0], dtype=torch.float64)).shape == (1, 2, 2)
