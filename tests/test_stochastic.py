"""geomlib.stochastic: the expected metric against a Monte-Carlo oracle, and the calibrated variance."""
from __future__ import annotations

import pytest
import torch

import geomlib as gl
from conftest import DEVICES


def gaussian_decoder(d=2, D=4, seed=0, dtype=torch.float64, device="cpu"):
    """A small random μ(z) and a positive σ(z) that both vary with z."""
    g = torch.Generator().manual_seed(seed)
    W1, W2 = (torch.randn(d, 8, generator=g, dtype=dtype).to(device),
              torch.randn(8, D, generator=g, dtype=dtype).to(device) / 2)
    V1, V2 = (torch.randn(d, 8, generator=g, dtype=dtype).to(device),
              torch.randn(8, D, generator=g, dtype=dtype).to(device) / 2)
    mu = lambda z: torch.tanh(z @ W1) @ W2
    sigma = lambda z: torch.nn.functional.softplus(torch.sin(z @ V1) @ V2) + 0.1
    return mu, sigma


def test_expected_metric_matches_monte_carlo():
    """E[J_fᵀJ_f] over random decoders f(z) = μ(z) + σ(z)⊙ε, each Jacobian from gl.jacobian, agrees with
    J_μᵀJ_μ + J_σᵀJ_σ within 4 standard errors; dropping J_σᵀJ_σ is many standard errors off."""
    mu, sigma = gaussian_decoder()
    d, D, B, S = 2, 4, 3, 2000
    g = torch.Generator().manual_seed(0)
    z = torch.randn(B, d, generator=g, dtype=torch.float64)
    eps = torch.randn(S, B, D, generator=g, dtype=torch.float64)

    def f(w):  # w = (z, ε): one sampled decoder per point, so gl.jacobian sees a pointwise map
        zz, e = w[..., :d], w[..., d:]
        return mu(zz) + sigma(zz) * e

    w = torch.cat([z.expand(S, B, d), eps], -1)  # (S, B, d + D)
    J = gl.jacobian(f, w)[..., :d]  # (S, B, D, d): ∂f/∂z for each sampled decoder
    JtJ = J.transpose(-1, -2) @ J  # (S, B, d, d)
    mean, se = JtJ.mean(0), JtJ.std(0) / S ** 0.5
    G = gl.expected_pullback(mu, sigma)(z)
    assert ((mean - G).abs() <= 4 * se + 1e-12).all()
    Jmu = gl.jacobian(mu, z)
    assert ((mean - Jmu.transpose(-1, -2) @ Jmu).abs() > 10 * se).any()


def test_expected_metric_closed_form_and_sqnorm():
    mu, sigma = gaussian_decoder(seed=1)
    z = torch.randn(5, 7, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    v = torch.randn(5, 7, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    Jm, Js = gl.jacobian(mu, z), gl.jacobian(sigma, z)
    G = gl.expected_pullback(mu, sigma)
    torch.testing.assert_close(G(z), Jm.mT @ Jm + Js.mT @ Js)
    torch.testing.assert_close(G.sqnorm(z, v), gl.jvp(mu, z, v)[1].pow(2).sum(-1) + gl.jvp(sigma, z, v)[1].pow(2).sum(-1))
    # with a constant σ it is the ordinary pullback of μ
    const = lambda z: torch.ones(*z.shape[:-1], 4, dtype=z.dtype) * 0.3
    torch.testing.assert_close(gl.expected_pullback(mu, const)(z), gl.pullback(mu)(z))
    # the "data" step is ‖Δμ‖² + ‖Δσ‖², the decoded polygon of (μ, σ)
    c = gl.straight_line(z[0, :1], z[1, :1], 9)  # (1, 9, 2)
    step = gl.expected_pullback(mu, sigma, step="data").step_sqlen(c[:, :-1], c[:, 1:])
    torch.testing.assert_close(step, (mu(c[:, 1:]) - mu(c[:, :-1])).pow(2).sum(-1)
                               + (sigma(c[:, 1:]) - sigma(c[:, :-1])).pow(2).sum(-1))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_expected_metric_is_spd_and_dominates_the_mean_metric(device, dtype):
    mu, sigma = gaussian_decoder(seed=2, dtype=dtype, device=device)
    z = torch.randn(50, 2, dtype=dtype, generator=torch.Generator().manual_seed(3)).to(device)
    G = gl.expected_pullback(mu, sigma)(z)
    assert G.dtype == dtype and G.device.type == device and G.shape == (50, 2, 2)
    torch.testing.assert_close(G, G.mT)
    assert (torch.linalg.eigvalsh(G) > 0).all()
    assert (torch.linalg.eigvalsh(G - gl.pullback(mu)(z)) > -1e-5).all()  # + J_σᵀJ_σ ⪰ 0


def test_expected_pullback_errors():
    mu, sigma = gaussian_decoder()
    with pytest.raises(TypeError, match="functions"):
        gl.expected_pullback(mu, 3.0)
    z = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="same shape"):
        gl.expected_pullback(mu, lambda z: sigma(z)[..., :2])(z)
    # each output is checked on its own, and the error names the one at fault
    for G in (lambda G, z: G(z), lambda G, z: G.sqnorm(z, z), lambda G, z: gl.energy(z[None], G)):
        with pytest.raises(TypeError, match="mu must return a torch.Tensor, got list"):
            G(gl.expected_pullback(lambda z: mu(z).tolist(), sigma), z)
        with pytest.raises(ValueError, match=r"sigma must map \(\.\.\., d\) to \(\.\.\., D\) point by point"):
            G(gl.expected_pullback(mu, lambda z: sigma(z).sum(-1)), z)


def clusters(seed=0, n=300):
    """Codes in three tight clusters, and a smooth positive σ(z) shape=[..., 3]."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[-3.0, 0.0], [3.0, 0.0], [0.0, 4.0]], dtype=torch.float64)
    Z = centres[torch.arange(n) % 3] + 0.4 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    sigma = lambda z: 0.05 + 0.02 * torch.stack([z[..., 0].sin() ** 2, z[..., 1].cos() ** 2, z.pow(2).sum(-1) / 20], -1)
    return Z, sigma


def test_calibrated_sigma_fits_near_data_and_grows_away():
    Z, sigma = clusters()
    zeta = 1e-2
    cal = gl.calibrate_sigma(sigma, Z, k=9, zeta=zeta, seed=0)
    assert cal.centres.shape == (9, 2) and cal.W.shape == (9, 3) and cal.lam.shape == (9,)
    assert (cal.W >= 0).all() and float(cal.zeta) == zeta
    # near the data (at the k-means centres and at the codes) σ̃ ≈ the trained σ
    torch.testing.assert_close(cal(cal.centres), sigma(cal.centres), rtol=0.15, atol=0)
    assert ((cal(Z) - sigma(Z)).abs() / sigma(Z)).median() < 0.1
    # far away σ̃ = 1/√ζ, and it grows along a ray leaving the data
    far = torch.tensor([[40.0, -50.0], [1e3, 1e3]], dtype=torch.float64)
    torch.testing.assert_close(cal(far), torch.full((2, 3), zeta ** -0.5, dtype=torch.float64), rtol=1e-6, atol=0)
    ray = torch.tensor([3.0, 0.0], dtype=torch.float64) + torch.linspace(0, 8, 30, dtype=torch.float64)[:, None] * \
        torch.tensor([1.0, -1.0], dtype=torch.float64) / 2 ** 0.5
    s = cal(ray).mean(-1)
    assert (s[1:] >= s[:-1] * (1 - 1e-6))[5:].all() and s[-1] > 0.9 * zeta ** -0.5 and s[0] < 0.1
    # the bandwidths follow the stated formula λ_k = ½ (a · mean ‖z − c_k‖)⁻², with the nearest-centre clusters
    lab = torch.cdist(Z, cal.centres).argmin(-1)
    spread = torch.stack([(Z[lab == k] - cal.centres[k]).norm(dim=-1).mean() for k in range(9)])
    torch.testing.assert_close(cal.lam, 0.5 / spread ** 2)
    # β is W φ + ζ, and σ̃ = β^{-1/2}
    torch.testing.assert_close(cal.precision(Z), torch.exp(-cal.lam * torch.cdist(Z, cal.centres) ** 2) @ cal.W + zeta)
    torch.testing.assert_close(cal(Z), cal.precision(Z).rsqrt())


def test_calibrated_metric_is_large_at_the_border_of_the_data():
    """The magnification √det G of the expected metric, before and after calibration: calibration raises it
    where the data ends (J_σ̃ is large there) and leaves it nearly unchanged at the data."""
    Z, sigma = clusters()
    mu = lambda z: torch.cat([z, torch.tanh(z[..., :1])], -1)  # (..., 3)
    cal = gl.calibrate_sigma(sigma, Z, k=9, seed=0)
    G0, G1 = gl.expected_pullback(mu, sigma), gl.expected_pullback(mu, cal)
    at = torch.tensor([[-3.0, 0.0], [3.0, 0.0]], dtype=torch.float64)
    border = torch.tensor([[-3.0, 1.5], [4.5, 0.0]], dtype=torch.float64)
    ratio_at, ratio_border = gl.volume(G1, at) / gl.volume(G0, at), gl.volume(G1, border) / gl.volume(G0, border)
    assert (ratio_at < 3).all() and (ratio_border > 10).all()


def test_calibrate_sigma_batched_dtype_and_determinism():
    Z, sigma = clusters(n=90)
    a, b = (gl.calibrate_sigma(sigma, Z, k=4, seed=1) for _ in range(2))
    for name in ("centres", "lam", "W"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), rtol=1e-12, atol=1e-12)
    z = torch.randn(2, 5, 2, dtype=torch.float64)
    assert a(z).shape == (2, 5, 3) and a(z).dtype == torch.float64
    a32 = gl.calibrate_sigma(lambda z: sigma(z.double()).float(), Z.float(), k=4, seed=1)
    assert a32.W.dtype == torch.float32 and a32(z.float()).dtype == torch.float32
    assert "K=4" in repr(a)


def test_calibrate_sigma_errors():
    Z, sigma = clusters(n=30)
    with pytest.raises(ValueError, match="k must be"):
        gl.calibrate_sigma(sigma, Z, k=31)
    with pytest.raises(ValueError, match="zeta"):
        gl.calibrate_sigma(sigma, Z, k=3, zeta=0.0)
    with pytest.raises(ValueError, match=r"shape \(N, d\)"):
        gl.calibrate_sigma(sigma, Z[None], k=3)
    with pytest.raises(ValueError, match="positive"):
        gl.calibrate_sigma(lambda z: -sigma(z), Z, k=3)
    with pytest.raises(ValueError, match="lam of shape"):
        gl.CalibratedSigma(torch.zeros(3, 2), torch.zeros(2), torch.zeros(3, 4), 0.1)
