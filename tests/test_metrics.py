import math
import re

import pytest
import torch

import geomlib as gl
from conftest import DEVICES, metric_zoo, polar, sphere

ZOO = list(metric_zoo())


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("device", DEVICES)
def test_every_metric_is_symmetric_positive_definite(name, device, rng):
    G, sample = metric_zoo(device=device)[name]
    z = sample(64, rng)
    Gz = gl.as_metric(G)(z)
    assert Gz.shape == (64, 2, 2) and Gz.device.type == device
    torch.testing.assert_close(Gz, Gz.transpose(-1, -2))
    assert bool((torch.linalg.eigvalsh(Gz) > 0).all())


@pytest.mark.parametrize("name", ZOO)
def test_sqnorm_and_step_agree_with_the_matrix(name, rng):
    G, sample = metric_zoo()[name]
    G = gl.as_metric(G)
    z, v = sample(32, rng), torch.randn(32, 2, generator=rng, dtype=torch.float64)
    torch.testing.assert_close(G.sqnorm(z, v), torch.einsum("ni,nij,nj->n", v, G(z), v))
    torch.testing.assert_close(gl.inner(G, z, v, v), gl.norm(G, z, v) ** 2)
    h = 1e-3  # a short step's squared length is vᵀGv h² up to O(h³)
    torch.testing.assert_close(G.step_sqlen(z, z + h * v) / h ** 2, G.sqnorm(z, v), rtol=1e-2, atol=1e-8)
    c = z[:4, None] + torch.linspace(0, 1, 5, dtype=z.dtype)[:, None] * v[:4, None]  # (4, 5, 2): whole curves
    torch.testing.assert_close(G.curve_sqlen(c), G.step_sqlen(c[:, :-1], c[:, 1:]))  # at once = step by step


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pullback_closed_forms(dtype):
    z = torch.tensor([[2.0, 0.3], [0.7, 1.2]], dtype=dtype)
    Gp = gl.pullback(polar)(z)
    torch.testing.assert_close(Gp, torch.diag_embed(torch.stack([torch.ones(2, dtype=dtype), z[:, 0] ** 2], -1)))
    Gs = gl.pullback(sphere)(z)
    torch.testing.assert_close(Gs, torch.diag_embed(torch.stack([torch.ones(2, dtype=dtype), torch.sin(z[:, 0]) ** 2], -1)))
    A = torch.tensor([[1.0, 2.0], [0.5, -1.0], [3.0, 0.2]], dtype=dtype)
    torch.testing.assert_close(gl.pullback(lambda z: z @ A.T)(z), (A.T @ A).expand(2, 2, 2))


def test_pullback_in_chunks_is_the_same_metric(monkeypatch, rng):
    z = torch.rand(4, 5, 2, generator=rng, dtype=torch.float64) + 0.5  # 20 points: chunks of 3, the last one short
    whole = gl.pullback(polar)(z)
    monkeypatch.setattr(gl.metrics, "_CHUNK", (3, 3))
    torch.testing.assert_close(gl.pullback(polar)(z), whole)
    torch.testing.assert_close(whole[..., 1, 1], z[..., 0] ** 2)  # diag(1, r²)
    assert gl.pullback(polar)(z[:0]).shape == (0, 5, 2, 2)


def test_volume_is_the_magnification_factor():
    z = torch.tensor([[2.0, 0.3], [0.7, 1.2]], dtype=torch.float64)
    torch.testing.assert_close(gl.volume(gl.pullback(polar), z), z[:, 0])  # area element r dr dθ
    torch.testing.assert_close(gl.magnification(gl.pullback(sphere), z), torch.sin(z[:, 0]))  # sin θ dθ dφ
    # oracle: the area of a decoded small square ≈ volume × latent area
    z0, h = torch.tensor([1.3, 0.4], dtype=torch.float64), 1e-4
    corners = polar(torch.stack([z0, z0 + torch.tensor([h, 0.0], dtype=torch.float64), z0 + torch.tensor([0.0, h], dtype=torch.float64)]))
    e1, e2 = corners[1] - corners[0], corners[2] - corners[0]
    area = abs(e1[0] * e2[1] - e1[1] * e2[0])
    assert abs(area / h ** 2 - gl.volume(gl.pullback(polar), z0[None])[0]) < 1e-3


def test_angles_between_curves():
    G = gl.pullback(polar)
    z = torch.tensor([[1.5, 0.2]], dtype=torch.float64)
    er, eth = torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(gl.angle(G, z, er, eth), torch.tensor([math.pi / 2], dtype=torch.float64))
    # the diagonal (1, 1) at radius r makes angle atan(r) with the radial direction (data-space oracle)
    diag = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    torch.testing.assert_close(gl.angle(G, z, er, diag), torch.atan(z[:, 0]))
    # two curves crossing at z: angle between velocities equals the angle of the decoded curves in data space
    t = gl.grid(201, z)
    c1 = z + torch.stack([t - 0.5, 0.3 * (t - 0.5)], -1)
    c2 = z + torch.stack([-(t - 0.5), 0.8 * (t - 0.5)], -1)
    u, v = gl.velocity(c1)[100:101], gl.velocity(c2)[100:101]
    x1, x2 = gl.velocity(polar(c1))[100], gl.velocity(polar(c2))[100]
    data_angle = torch.arccos((x1 @ x2) / (x1.norm() * x2.norm()))
    torch.testing.assert_close(gl.angle(G, c1[100:101], u, v)[0], data_angle, rtol=1e-5, atol=0)
    with pytest.raises(ValueError, match="zero tangent"):
        gl.angle(G, z, er, torch.zeros_like(er))


def test_inner_of_a_linear_decoder_is_uT_AT_A_v(rng):
    A = torch.tensor([[1.0, 2.0], [0.5, -1.0], [3.0, 0.2]], dtype=torch.float64)
    z, u, v = (torch.randn(4, 3, 2, generator=rng, dtype=torch.float64) for _ in range(3))
    truth = ((u @ A.T) * (v @ A.T)).sum(-1)  # uᵀAᵀAv = (Au)ᵀ(Av)
    G = gl.pullback(lambda z: z @ A.T)
    torch.testing.assert_close(gl.inner(G, z, u, v), truth)
    torch.testing.assert_close(gl.inner(G, z, v, u), truth)
    torch.testing.assert_close(gl.angle(G, z, u, v), torch.arccos(truth / (gl.norm(G, z, u) * gl.norm(G, z, v))))


@pytest.mark.parametrize("G", [gl.euclidean, gl.pullback(polar)], ids=["euclidean", "pullback"])
def test_tangent_vectors_must_fit_the_points(G):
    """u, v need z's shape (..., d), or one that broadcasts to it; anything else is an error naming both shapes
    (it used to broadcast the other way silently, or fail deep inside einsum or forward-mode AD)."""
    z = torch.tensor([[1.0, 0.5]], dtype=torch.float64).expand(5, 2) + torch.arange(5.0, dtype=torch.float64)[:, None]
    ok = torch.ones(5, 2, dtype=torch.float64)
    for bad in (torch.ones(3, dtype=torch.float64), torch.ones(4, 2, dtype=torch.float64),
                torch.ones(5, 3, dtype=torch.float64), torch.ones(2, 5, 2, dtype=torch.float64)):
        shapes = rf"\(5, 2\).*got . shape {re.escape(str(tuple(bad.shape)))}"
        for call in (lambda: gl.norm(G, z, bad), lambda: gl.inner(G, z, bad, ok), lambda: gl.inner(G, z, ok, bad),
                     lambda: gl.angle(G, z, ok, bad)):
            with pytest.raises(ValueError, match=shapes):
                call()
    one = torch.tensor([0.3, -0.4], dtype=torch.float64)  # one vector at every point broadcasts
    torch.testing.assert_close(gl.norm(G, z, one), gl.norm(G, z, one.expand(5, 2)))
    torch.testing.assert_close(gl.inner(G, z, one[None], ok), gl.inner(G, z, one.expand(5, 2), ok))


def test_norm_gradient_at_a_zero_vector_is_zero():
    """‖v‖ has subgradient 0 at v = 0 (not NaN, which would poison a whole batch's gradient); elsewhere Gv/‖v‖."""
    z = torch.tensor([[1.5, 0.2], [2.0, 0.3]], dtype=torch.float64)
    v = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64, requires_grad=True)
    for G in (gl.euclidean, gl.pullback(polar)):
        (g,) = torch.autograd.grad(gl.norm(G, z, v).sum(), v)
        Gv = (G(z[1:]) @ v.detach()[1, :, None])[..., 0]
        torch.testing.assert_close(g, torch.cat([torch.zeros(1, 2, dtype=torch.float64),
                                                 Gv / gl.norm(G, z[1:], v.detach()[1:])[:, None]]))


def test_christoffel_symbols_closed_forms():
    z = torch.tensor([[2.0, 0.3], [0.9, 1.1]], dtype=torch.float64)
    P = gl.christoffel(gl.pullback(polar), z)  # Γ^r_θθ = -r, Γ^θ_rθ = Γ^θ_θr = 1/r
    ref = torch.zeros(2, 2, 2, 2, dtype=torch.float64)
    ref[:, 0, 1, 1] = -z[:, 0]
    ref[:, 1, 0, 1] = ref[:, 1, 1, 0] = 1 / z[:, 0]
    torch.testing.assert_close(P, ref)
    S = gl.christoffel(gl.pullback(sphere), z)  # Γ^θ_φφ = -sinθ cosθ, Γ^φ_θφ = cot θ
    ref = torch.zeros(2, 2, 2, 2, dtype=torch.float64)
    ref[:, 0, 1, 1] = -torch.sin(z[:, 0]) * torch.cos(z[:, 0])
    ref[:, 1, 0, 1] = ref[:, 1, 1, 0] = 1 / torch.tan(z[:, 0])
    torch.testing.assert_close(S, ref)
    A = torch.randn(4, 2, dtype=torch.float64)
    torch.testing.assert_close(gl.christoffel(gl.pullback(lambda z: z @ A.T), z), torch.zeros(2, 2, 2, 2, dtype=torch.float64))


def test_metric_errors():
    with pytest.raises(ValueError, match=r"G shape \(\.\.\., d, d\)"):
        gl.as_metric(lambda z: z)(torch.zeros(3, 2))
    with pytest.raises(TypeError, match="expected a metric"):
        gl.as_metric(3)
    with pytest.raises(TypeError, match="final"):
        class Mine(gl.Metric):  # noqa: F841
            pass
    with pytest.raises(ValueError, match="step must be"):
        gl.pullback(polar, step="trapezoid")


def test_a_metric_must_return_the_dtype_of_its_points():
    c = gl.straight_line(torch.zeros(2), torch.ones(2), 5)  # float32
    G64 = lambda z: torch.diag_embed(1 + z.double() ** 2)
    for call in (lambda: gl.energy(c, G64), lambda: gl.length(c, G64), lambda: gl.as_metric(G64)(c),
                 lambda: gl.norm(G64, c, c)):
        with pytest.raises(TypeError, match="returned G of dtype torch.float64 for z of dtype torch.float32"):
            call()


def test_a_decoder_that_returns_no_tensor_gets_a_clear_error():
    z0, z1 = torch.zeros(2, 2), torch.ones(2, 2)
    with pytest.raises(TypeError, match="the decoder must return a torch.Tensor, got list"):
        gl.geodesic(gl.pullback(lambda z: z.tolist()), z0, z1)
    with pytest.raises(ValueError, match="point by point"):
        gl.pullback(lambda z: z.sum())(z0)
    with pytest.raises(TypeError, match="function"):
        gl.pullback("not a decoder")
