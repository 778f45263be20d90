import math

import pytest
import torch

import geomlib as gl
from conftest import DEVICES, great_circle, metric_zoo, mlp, polar, sphere


def sphere_pairs(n, rng, dtype=torch.float64):
    lo, span = torch.tensor([0.4, 0.0]), torch.tensor([2.3, 3.0])
    z0 = torch.rand(n, 2, generator=rng) * span + lo
    z1 = torch.rand(n, 2, generator=rng) * span + lo
    return z0.to(dtype), z1.to(dtype)


@pytest.mark.parametrize("device", DEVICES)
def test_linear_decoder_geodesic_is_the_line(device, rng):
    A = torch.tensor([[1.0, 2.0], [0.5, -1.0], [3.0, 0.2]], dtype=torch.float64, device=device)
    G = gl.pullback(lambda z: z @ A.T)
    z0 = torch.randn(8, 2, generator=rng, dtype=torch.float64).to(device)
    z1 = torch.randn(8, 2, generator=rng, dtype=torch.float64).to(device)
    # start from a bent curve so the solver has work to do
    init = gl.straight_line(z0, z1, 24) + torch.sin(math.pi * gl.grid(24, z0))[:, None] * 0.5
    res = gl.geodesic(G, z0, z1, T=24, init=init)
    assert res.curve.shape == (8, 24, 2) and res.curve.device.type == device
    assert bool(res.converged.all()) and bool((res.iterations > 0).all())
    torch.testing.assert_close(res.curve, gl.straight_line(z0, z1, 24), atol=1e-5, rtol=0)
    torch.testing.assert_close(res.length, ((z1 - z0) @ A.T).norm(dim=-1))
    torch.testing.assert_close(gl.distance(G, z0, z1), ((z1 - z0) @ A.T).norm(dim=-1))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 3e-4), (torch.float32, 1e-3)])
def test_sphere_geodesic_distance_is_the_great_circle_distance(dtype, tol, rng):
    z0, z1 = sphere_pairs(12, rng, dtype)
    res = gl.geodesic(gl.pullback(sphere), z0, z1, T=48)
    assert res.curve.dtype == dtype and bool(res.converged.all())
    torch.testing.assert_close(res.length, great_circle(z0, z1), rtol=0, atol=tol)
    # the decoded curve lies on the great circle: its points are in the plane of x0, x1 and the origin
    x = sphere(res.curve)
    n = torch.linalg.cross(sphere(z0), sphere(z1))
    assert (x @ n[..., None]).abs().max() < 10 * tol


def test_discretisation_error_shrinks_at_second_order(rng):
    z0, z1 = sphere_pairs(6, rng)
    errs = [(gl.distance(gl.pullback(sphere), z0, z1, T=T) - great_circle(z0, z1)).abs().max().item() for T in (16, 32, 64)]
    assert 3.5 < errs[0] / errs[1] < 4.5 and 3.5 < errs[1] / errs[2] < 4.5


def test_polar_chart_geodesic_is_a_straight_segment_in_the_plane():
    z0 = torch.tensor([[1.0, 0.1], [2.0, 0.0]], dtype=torch.float64)
    z1 = torch.tensor([[1.5, 1.2], [1.0, 1.4]], dtype=torch.float64)
    res = gl.geodesic(gl.pullback(polar), z0, z1, T=40)
    torch.testing.assert_close(res.length, (polar(z0) - polar(z1)).norm(dim=-1), rtol=1e-3, atol=0)
    x = polar(res.curve)
    straight = gl.straight_line(polar(z0), polar(z1), 40)
    # same trace (points equally spaced in data space along the segment: constant speed)
    torch.testing.assert_close(x, straight, atol=2e-3, rtol=0)


def independent_minimum(G, z0, z1, T, max_iter=1500, tolerance_grad=1e-12, tolerance_change=1e-16):
    """The discrete energy minimised by torch.optim.LBFGS (strong Wolfe) from the straight line: an oracle."""
    x = gl.straight_line(z0, z1, T)[:, 1:-1].clone().requires_grad_()
    opt = torch.optim.LBFGS([x], max_iter=max_iter, tolerance_grad=tolerance_grad, tolerance_change=tolerance_change,
                            history_size=30, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        e = gl.energy(torch.cat([z0[:, None], x, z1[:, None]], 1), G).sum()
        e.backward()
        return e

    opt.step(closure)
    return gl.energy(torch.cat([z0[:, None], x, z1[:, None]], 1), G).detach()


def test_minimiser_beats_an_independent_optimiser_and_is_constant_speed(rng):
    G = gl.pullback(mlp(D=6))
    z0 = torch.randn(3, 2, generator=rng, dtype=torch.float64) * 2
    z1 = torch.randn(3, 2, generator=rng, dtype=torch.float64) * 2
    res = gl.geodesic(G, z0, z1, T=16)
    ref = independent_minimum(G, z0, z1, 16)
    assert bool((res.energy <= ref * (1 + 1e-8)).all())
    # the discrete minimiser has constant speed up to the discretisation error, which falls as 1/T²
    spread = []
    for T in (40, 80):
        r = gl.geodesic(G, z0, z1, T=T)
        s = gl.segment_lengths(r.curve, G)
        spread.append((s.std(-1) / s.mean(-1)).max().item())
    assert spread[1] < 5e-3 and 3.0 < spread[0] / spread[1] < 5.5
    torch.testing.assert_close(r.length ** 2, 2 * r.energy, rtol=1e-5, atol=0)


def test_shooting_and_boundary_solver_agree(rng):
    """Oracle: shoot from z0 with the BVP's initial velocity; the endpoint and the curve come back."""
    z0, z1 = sphere_pairs(5, rng)
    G = gl.pullback(sphere)
    res = gl.geodesic(G, z0, z1, T=65)
    v0 = gl.log_map(G, z0, z1, T=65)
    c = gl.shoot(G, z0, v0, T=65)
    # the generic Christoffel route gives the same right-hand side as the pullback's nested JVPs
    generic = gl.Metric(G)
    torch.testing.assert_close(generic.acceleration(z0, v0), G.acceleration(z0, v0))
    torch.testing.assert_close(c[:, -1], z1, atol=5e-3, rtol=0)
    torch.testing.assert_close(c, res.curve, atol=5e-3, rtol=0)
    torch.testing.assert_close(gl.exp_map(G, z0, v0), c[:, -1])


def test_shooting_conserves_speed_and_follows_great_circles():
    G = gl.pullback(sphere)
    z0 = torch.tensor([[1.0, 0.0], [0.7, 2.0]], dtype=torch.float64)
    v0 = torch.tensor([[0.3, 1.1], [-0.4, 0.5]], dtype=torch.float64)
    c = gl.shoot(G, z0, v0, T=50)
    speed = gl.norm(G, c, gl.velocity(c))[:, 1:-1]
    torch.testing.assert_close(speed, gl.norm(G, z0, v0)[:, None].expand_as(speed), rtol=1e-3, atol=0)
    x, n = sphere(c), torch.linalg.cross(sphere(c[:, 0]), sphere(c[:, 1]))
    assert (x @ n[..., None]).abs().max() < 1e-6
    # Euclidean: exp is z0 + v0
    torch.testing.assert_close(gl.exp_map(gl.euclidean, z0, v0), z0 + v0)


@pytest.mark.parametrize("name", ["linear", "polar", "sphere", "mlp", "function", "expected", "fisher_midpoint"])
def test_distance_is_symmetric_and_satisfies_the_triangle_inequality(name, rng):
    G, sample = metric_zoo()[name]
    a, b, c = sample(6, rng), sample(6, rng), sample(6, rng)
    dab, dba = gl.distance(G, a, b), gl.distance(G, b, a)
    torch.testing.assert_close(dab, dba, rtol=1e-6, atol=1e-9)
    dbc = gl.distance(G, b, c)
    if name == "sphere":  # a → c passes over the pole θ = 0, where G = diag(1, sin²θ) is singular: the latent
        with pytest.warns(gl.GeodesicWarning, match=r"pairs \[5\]\).*pole"):  # polyline jumps in φ there
            dac = gl.distance(G, a, c)  # and distance says so (the length, on the sphere, is still right)
        torch.testing.assert_close(dac, great_circle(a, c), rtol=1e-3, atol=0)
    else:
        dac = gl.distance(G, a, c)
    assert bool((dac <= dab + dbc + 1e-6).all())


def test_distance_matrix_matches_pairwise_distances(rng):
    A = torch.tensor([[1.0, 2.0], [0.5, -1.0], [3.0, 0.2]], dtype=torch.float64)
    Z = torch.randn(7, 2, generator=rng, dtype=torch.float64)
    Dm = gl.distance_matrix(gl.pullback(lambda z: z @ A.T), Z, T=8, chunk=5)
    torch.testing.assert_close(Dm, torch.cdist(Z @ A.T, Z @ A.T))
    D2 = gl.distance_matrix(gl.pullback(sphere), torch.rand(5, 2, generator=rng, dtype=torch.float64) + 0.5, T=24)
    torch.testing.assert_close(D2, D2.T)
    assert bool((D2.diagonal() == 0).all())


def test_graph_geodesic_goes_around_a_hole():
    """Points on a ring; the graph path between opposite points follows the ring (length ≈ π r), the solver then
    finds the Euclidean straight line only when allowed; with a metric that is huge in the hole it stays outside."""
    th = torch.linspace(0, 2 * math.pi, 121, dtype=torch.float64)[:-1]
    Z = torch.stack([torch.cos(th), torch.sin(th)], -1) * 2
    z0, z1 = torch.tensor([[2.0, 0.0]], dtype=torch.float64), torch.tensor([[-2.0, 0.0]], dtype=torch.float64)
    c = gl.graph_geodesic(gl.euclidean, Z, z0, z1, T=64, k=4)
    assert c.shape == (1, 64, 2)
    torch.testing.assert_close(gl.length(c), torch.tensor([2 * math.pi], dtype=torch.float64), rtol=2e-3, atol=0)
    wall = lambda z: torch.diag_embed((1 + 1e3 * torch.exp(-(z ** 2).sum(-1, keepdim=True) * 2)).expand(*z.shape))
    res = gl.geodesic(wall, z0, z1, T=64, init="graph", graph_points=Z, max_iter=2000)
    assert bool(res.converged.all())
    assert res.curve.norm(dim=-1).min() > 1.0  # stayed out of the wall
    straight = gl.geodesic(wall, z0, z1, T=64)  # from the straight line it is trapped in a worse local minimum
    assert res.energy < straight.energy
    with pytest.raises(ValueError, match="not reachable"):
        far = torch.cat([Z, Z + 100])
        gl.graph_geodesic(gl.euclidean, far, z0, z1 + 100, k=3)


def test_graph_start_with_shared_endpoints(rng):
    """Many pairs share an endpoint (as in distance_matrix), and the endpoints are graph points themselves: each
    point is one node of the graph, not one copy per pair (copies at distance 0 would be each other's only
    neighbours, cut off from the rest)."""
    A = torch.tensor([[1.0, 2.0], [0.5, -1.0], [3.0, 0.2]], dtype=torch.float64)
    G = gl.pullback(lambda z: z @ A.T)
    Z = torch.randn(12, 2, generator=rng, dtype=torch.float64)
    z0, z1 = Z[:1].expand(11, 2), Z[1:]
    c = gl.graph_geodesic(G, Z, z0, z1, T=10, k=4)
    assert c.shape == (11, 10, 2)
    torch.testing.assert_close(c[:, 0], z0, rtol=0, atol=0)
    torch.testing.assert_close(c[:, -1], z1, rtol=0, atol=0)
    Dm = gl.distance_matrix(G, Z, T=8, init="graph", graph_points=Z)
    torch.testing.assert_close(Dm, torch.cdist(Z @ A.T, Z @ A.T))


def test_non_convergence_is_reported_not_hidden(rng):
    z0, z1 = sphere_pairs(4, rng)
    res = gl.geodesic(gl.pullback(sphere), z0, z1, T=32, max_iter=1)
    assert not bool(res.converged.all())
    assert bool((res.iterations <= 1).all())
    with pytest.warns(gl.GeodesicWarning, match="did not converge"):
        gl.distance(gl.pullback(sphere), z0, z1, T=32, max_iter=1)


def test_callback_sees_every_iteration(rng):
    z0, z1 = sphere_pairs(2, rng)
    seen = []
    res = gl.geodesic(gl.pullback(sphere), z0, z1, T=16, callback=lambda it, c: seen.append((it, c.shape)))
    assert [s[0] for s in seen] == list(range(1, len(seen) + 1))
    assert len(seen) == int(res.iterations.max()) and all(s[1] == (2, 16, 2) for s in seen)


def test_geodesic_errors():
    G = gl.pullback(sphere)
    with pytest.raises(ValueError, match="T ≥ 3"):
        gl.geodesic(G, torch.ones(2), torch.ones(2) * 2, T=2)
    with pytest.raises(ValueError, match="non-finite"):
        gl.geodesic(G, torch.tensor([1.0, float("inf")]), torch.ones(2))
    with pytest.raises(ValueError, match="init must have shape"):
        gl.geodesic(G, torch.ones(3, 2), torch.ones(3, 2) * 2, T=8, init=torch.zeros(3, 9, 2))
    with pytest.raises(ValueError, match="endpoints differ"):
        gl.geodesic(G, torch.ones(1, 2), torch.ones(1, 2) * 2, T=4, init=torch.zeros(1, 4, 2))
    with pytest.raises(ValueError, match="graph_points"):
        gl.geodesic(G, torch.ones(1, 2), torch.ones(1, 2) * 2, init="graph")
    with pytest.raises(ValueError, match="non-finite energy"):
        gl.geodesic(lambda z: torch.diag_embed(torch.sqrt(z - 1)), torch.zeros(1, 2, dtype=torch.float64),
                    torch.full((1, 2), 2.0, dtype=torch.float64), T=3)
    z0, z1 = torch.zeros(1, 2), torch.ones(1, 2)
    for kw, name in [(dict(memory=0), "memory"), (dict(refresh=0), "refresh"), (dict(T=7.0), "T"),
                     (dict(max_iter=-1), "max_iter")]:
        with pytest.raises(ValueError, match=name):
            gl.geodesic(G, z0, z1, **kw)
    with pytest.raises(ValueError, match="substeps must be a positive integer, got 0"):
        gl.shoot(G, z0, z1, substeps=0)
    with pytest.raises(ValueError, match="chunk must be a positive integer"):
        gl.distance_matrix(G, torch.rand(3, 2), chunk=0)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        gl.graph_geodesic(G, torch.rand(5, 2), z0, z1, k=0)


def test_shooting_errors_name_the_velocity():
    G, z0 = gl.pullback(sphere), torch.ones(2)
    with pytest.raises(TypeError, match="v0 must be a floating-point tensor"):
        gl.shoot(G, z0, torch.ones(2, dtype=torch.long))
    with pytest.raises(ValueError, match="v0 has 1 non-finite"):
        gl.exp_map(G, z0, torch.tensor([0.1, float("nan")]))
    with pytest.raises(ValueError, match=r"z0 and v0 must have the same dimension d: z0 has shape \(2,\), v0 has shape \(2, 3\)"):
        gl.shoot(G, z0, torch.ones(2, 3))


def test_max_iter_steps_are_checked_after_the_last_one():
    """converged says whether the criterion holds for the curve returned, also when max_iter stopped the solver."""
    G, z0, z1 = gl.pullback(polar), torch.tensor([[1.0, 0.1]], dtype=torch.float64), torch.tensor([[1.5, 1.2]], dtype=torch.float64)
    full = gl.geodesic(G, z0, z1, T=40)
    n = int(full.iterations)
    assert bool(full.converged) and n > 1
    short = gl.geodesic(G, z0, z1, T=40, max_iter=n - 1)
    assert not bool(short.converged) and int(short.iterations) == n - 1
    exact = gl.geodesic(G, z0, z1, T=40, max_iter=n)
    assert bool(exact.converged) and torch.equal(exact.curve, full.curve)
    line = gl.geodesic(gl.pullback(lambda z: 2 * z), z0, z1, T=8, max_iter=0)  # the straight line is the answer
    assert bool(line.converged) and int(line.iterations) == 0


@pytest.mark.parametrize("precondition", ["metric", "euclidean"])
def test_singular_metric_more_latent_than_data_dimensions(precondition):
    """d > D: G = JᵀJ has rank D everywhere, geodesics are not unique, but the distance is the data-space distance
    (the decoders below are submersions onto R^D, so the data-space segment lifts to a latent curve)."""
    f1 = lambda z: z[..., :1] ** 2 + z[..., 1:]  # R² -> R¹
    z0 = torch.tensor([[0.0, 0.0], [0.3, -0.2]], dtype=torch.float64)
    z1 = torch.tensor([[1.0, 1.0], [0.8, 0.5]], dtype=torch.float64)
    res = gl.geodesic(gl.pullback(f1), z0, z1, T=10, precondition=precondition)
    assert bool(res.converged.all())
    torch.testing.assert_close(res.length, (f1(z1) - f1(z0)).norm(dim=-1), rtol=1e-6, atol=0)
    f2 = lambda z: torch.stack([z[..., 0] + torch.sin(z[..., 1]), z[..., 2] + 0.5 * z[..., 1] ** 2], -1)  # R³ -> R²
    g = torch.Generator().manual_seed(5)
    a, b = torch.randn(6, 3, generator=g, dtype=torch.float64), torch.randn(6, 3, generator=g, dtype=torch.float64)
    res = gl.geodesic(gl.pullback(f2), a, b, T=16, precondition=precondition, max_iter=2000)
    assert bool(res.converged.all()), res.iterations
    torch.testing.assert_close(res.length, (f2(b) - f2(a)).norm(dim=-1), rtol=1e-5, atol=0)
    torch.testing.assert_close(res.length, gl.data_length(res.curve, f2), rtol=1e-12, atol=0)


def test_graph_start_with_coinciding_endpoints_is_the_constant_curve(rng):
    Z = torch.rand(30, 2, generator=rng, dtype=torch.float64) * 2 + 0.5
    z0 = torch.tensor([[1.0, 1.0], [1.2, 0.7]], dtype=torch.float64)
    z1 = torch.tensor([[1.0, 1.0], [2.0, 2.0]], dtype=torch.float64)
    res = gl.geodesic(gl.pullback(polar), z0, z1, T=12, init="graph", graph_points=Z)
    assert bool(res.converged.all()) and float(res.length[0]) == 0.0
    assert torch.equal(res.curve[0], z0[0].expand(12, 2))


def test_a_saturating_decoder_cannot_fool_the_default_step():
    """A decoder flat far from the data: with midpoint steps, a huge step whose midpoint lands where G ≈ 0 is
    almost free. The default (decoded-polygon) steps measure the real data-space displacement, so the geodesic
    stays near the data and its length is at least the chord ‖f(z1) − f(z0)‖."""
    f = lambda z: torch.tanh(3 * z) * torch.exp(-(z ** 2).sum(-1, keepdim=True) / 8)  # → 0 far away
    z0 = torch.tensor([[-0.3, 0.2]], dtype=torch.float64)
    z1 = torch.tensor([[0.4, -0.1]], dtype=torch.float64)
    chord = (f(z1) - f(z0)).norm(dim=-1)
    res = gl.geodesic(gl.pullback(f), z0, z1, T=16)
    assert bool(res.converged.all()) and bool((res.length >= chord * (1 - 1e-9)).all())
    assert res.curve.norm(dim=-1).max() < 2.0
    # the exploit itself: a far-away excursion has almost no midpoint energy, yet real data-space length
    excursion = torch.tensor([[[-0.3, 0.2], [50.0, 50.0], [0.4, -0.1]]], dtype=torch.float64)
    assert gl.length(excursion, gl.pullback(f, step="midpoint")) < 1e-6
    assert gl.length(excursion, gl.pullback(f)) >= chord


def test_metric_preconditioner_is_newton_for_a_constant_metric(rng):
    """For a linear decoder the energy is quadratic and the Gauss–Newton matrix is its Hessian: the first step is
    the Newton step and lands on the minimiser (to ~1e-6 here: H0 carries a ridge of relative size ε^⅔, the accuracy
    of its finite-difference Jacobians, and cond(G) = 2e4). The Euclidean start matrix reaches the same curve, slower."""
    A = torch.tensor([[30.0, 1.0], [0.0, 0.2]], dtype=torch.float64)  # strongly anisotropic
    G = gl.pullback(lambda z: z @ A.T)
    z0 = torch.randn(5, 2, generator=rng, dtype=torch.float64)
    z1 = torch.randn(5, 2, generator=rng, dtype=torch.float64)
    init = gl.straight_line(z0, z1, 20) + torch.sin(math.pi * gl.grid(20, z0))[:, None] * torch.tensor([0.3, -0.7], dtype=torch.float64)
    fast = gl.geodesic(G, z0, z1, T=20, init=init)
    slow = gl.geodesic(G, z0, z1, T=20, init=init, precondition="euclidean")
    assert bool(fast.converged.all()) and bool(slow.converged.all())
    one = gl.geodesic(G, z0, z1, T=20, init=init, max_iter=1)  # a single step is already on the line
    torch.testing.assert_close(one.curve, gl.straight_line(z0, z1, 20), atol=1e-6, rtol=0)
    assert int(fast.iterations.max()) <= 3 < int(slow.iterations.max())
    torch.testing.assert_close(fast.curve, gl.straight_line(z0, z1, 20), atol=1e-6, rtol=0)
    torch.testing.assert_close(slow.curve, fast.curve, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="precondition"):
        gl.geodesic(G, z0, z1, precondition="newton")


def test_shot_endpoint_fed_to_the_boundary_solver_gives_back_the_shot_curve(rng):
    """Oracle, the other way round: shoot from z0 with v0 (short enough that the geodesic is minimising), hand the
    endpoint to the boundary-value solver, and the same curve comes back."""
    f = mlp(D=6)
    G = gl.pullback(lambda z: torch.cat([f(z), z], -1))  # G = J_fᵀJ_f + I stays non-degenerate where tanh saturates
    z0 = torch.randn(4, 2, generator=rng, dtype=torch.float64)
    v0 = torch.randn(4, 2, generator=rng, dtype=torch.float64) * 0.6
    shot = gl.shoot(G, z0, v0, T=49)
    res = gl.geodesic(G, z0, shot[:, -1], T=49)
    assert bool(res.converged.all())
    torch.testing.assert_close(res.curve, shot, atol=2e-3, rtol=0)
    # and the lengths agree with the speed the geodesic started with: L = ‖v0‖_G(z0)
    torch.testing.assert_close(res.length, gl.norm(G, z0, v0), rtol=2e-3, atol=0)


def test_shooting_into_a_singular_region_says_so():
    """This decoder sees only z₁ + z₂: its Jacobian has rank 1, so G is singular and the equation has no solution."""
    G = gl.pullback(lambda z: torch.tanh(z * 3).sum(-1, keepdim=True).expand(*z.shape[:-1], 3) * torch.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="G is singular"):
        gl.shoot(G, torch.zeros(1, 2), torch.tensor([[1.0, 0.5]]), T=4)
