"""geomlib.ensembles: the ensemble expected metric against closed forms and oracles, and the DecoderEnsemble model."""
from __future__ import annotations

import pytest
import torch

import geomlib as gl
from conftest import DEVICES, mlp

f64 = torch.float64


def linear(A, b):
    return lambda z: z @ A.T + b


def linear_ensemble(M=3, d=2, D=5, seed=0, dtype=f64, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    As = [torch.randn(D, d, generator=g, dtype=dtype).to(device) for _ in range(M)]
    bs = [torch.randn(D, generator=g, dtype=dtype).to(device) for _ in range(M)]
    return [linear(A, b) for A, b in zip(As, bs)], As


def points(*shape, seed=1, dtype=f64, device="cpu", scale=1.0):
    return (scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)).to(device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_linear_decoders_give_the_closed_form(device, dtype):
    """f_m(z) = A_m z + b_m: G = (1/M) Σ A_mᵀA_m everywhere, each discrete step is exactly ΔzᵀGΔz, and the geodesic
    distance is √(ΔzᵀGΔz) (G is constant: geodesics are straight lines)."""
    fs, As = linear_ensemble(M=3, dtype=dtype, device=device)
    G_true = sum(A.T @ A for A in As) / len(As)  # (d, d)
    G = gl.ensemble_pullback(fs)
    z = points(4, 3, 2, dtype=dtype, device=device)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(G(z), G_true.expand(4, 3, 2, 2), **tol)
    c = gl.straight_line(z[0, 0], z[1, 1], 7)  # (7, 2)
    dc = c[1:] - c[:-1]
    torch.testing.assert_close(G.curve_sqlen(c), torch.einsum("ni,ij,nj->n", dc, G_true, dc), **tol)
    z0, z1 = z[0], z[1] + torch.tensor([0.5, -2.0], dtype=dtype, device=device)  # (3, 2) each
    res = gl.geodesic(G, z0, z1, T=9, init=gl.straight_line(z0, z1, 9) + 0.3 * torch.sin(  # start off the line
        torch.linspace(0, 3.14159, 9, dtype=dtype, device=device))[:, None])
    dz = z1 - z0
    exact = torch.einsum("bi,ij,bj->b", dz, G_true, dz).sqrt()
    assert bool(res.converged.all())
    torch.testing.assert_close(res.length, exact, rtol=1e-4 if dtype == torch.float32 else 1e-8, atol=0.0)
    D = gl.distance_matrix(G, z[0], T=9)
    dd = z[0][:, None] - z[0][None]
    torch.testing.assert_close(D, torch.einsum("abi,ij,abj->ab", dd, G_true, dd).clamp_min(0).sqrt(),
                               rtol=1e-4 if dtype == torch.float32 else 1e-8, atol=1e-6)


def test_one_decoder_is_the_pullback():
    f = mlp()
    z, v = points(5, 2), points(5, 2, seed=2)
    c = points(3, 8, 2, seed=3)
    for step in ("data", "midpoint"):
        E, P = gl.ensemble_pullback([f], step=step), gl.pullback(f, step=step)
        torch.testing.assert_close(E(z), P(z), rtol=0, atol=0)
        torch.testing.assert_close(E.sqnorm(z, v), P.sqnorm(z, v), rtol=0, atol=0)
        torch.testing.assert_close(E.curve_sqlen(c), P.curve_sqlen(c), rtol=0, atol=0)
        torch.testing.assert_close(E.acceleration(z, v), P.acceleration(z, v), rtol=0, atol=0)
    E, P = gl.ensemble_pullback([f]), gl.pullback(f)
    torch.testing.assert_close(gl.geodesic(E, z[:3], z[3:5].repeat(2, 1)[:3]).length,
                               gl.geodesic(P, z[:3], z[3:5].repeat(2, 1)[:3]).length, rtol=0, atol=0)


def test_identical_decoders_give_the_single_metric():
    f = mlp(seed=4)
    z, v = points(6, 2), points(6, 2, seed=2)
    c = points(2, 10, 2, seed=5)
    E, P = gl.ensemble_pullback([f] * 4), gl.pullback(f)
    torch.testing.assert_close(E(z), P(z))
    torch.testing.assert_close(E.sqnorm(z, v), P.sqnorm(z, v))
    torch.testing.assert_close(E.curve_sqlen(c), P.curve_sqlen(c))
    torch.testing.assert_close(E.acceleration(z, v), P.acceleration(z, v))
    a, b = gl.geodesic(E, z[:3], z[3:]), gl.geodesic(P, z[:3], z[3:])
    torch.testing.assert_close(a.length, b.length, rtol=1e-8, atol=0)


def test_metric_is_the_mean_of_the_members_and_mean_plus_spread():
    """Oracles from the members' own Jacobians: G = (1/M) Σ J_mᵀJ_m = J̄ᵀJ̄ + (1/M) Σ (J_m − J̄)ᵀ(J_m − J̄), and it is
    not the pullback of the mean decoder (the spread term is what an ensemble adds)."""
    fs = [mlp(seed=s) for s in range(5)]
    z = points(7, 2, scale=2.0)
    Js = torch.stack([gl.jacobian(f, z) for f in fs])  # (M, N, D, d)
    G = gl.ensemble_pullback(fs)(z)
    torch.testing.assert_close(G, (Js.mT @ Js).mean(0))
    Jbar = Js.mean(0)
    spread = ((Js - Jbar).mT @ (Js - Jbar)).mean(0)
    torch.testing.assert_close(G, Jbar.mT @ Jbar + spread)
    mean_decoder = gl.pullback(lambda zz: torch.stack([f(zz) for f in fs]).mean(0))(z)
    assert bool((torch.linalg.eigvalsh(G - mean_decoder) > 1e-6).all())  # strictly larger: the members differ


def test_data_steps_are_the_mean_decoded_chord_with_each_point_decoded_once_per_member():
    calls = []

    def counting(f, m):
        def g(z):
            calls.append((m, z.shape[:-1].numel()))
            return f(z)
        return g

    base = [mlp(seed=s) for s in range(3)]
    G = gl.ensemble_pullback([counting(f, m) for m, f in enumerate(base)])
    c = points(4, 11, 2, seed=6)  # (B, T, d)
    calls.clear()
    s2 = G.curve_sqlen(c)  # (4, 10)
    assert sorted(calls) == [(m, 4 * 11) for m in range(3)]  # one pass per member over the B·T points
    want = torch.stack([(f(c[:, 1:]) - f(c[:, :-1])).pow(2).sum(-1) for f in base]).mean(0)
    torch.testing.assert_close(s2, want)
    torch.testing.assert_close(G.step_sqlen(c[:, :-1], c[:, 1:]), want)
    # L² ≤ 2E with equality at constant speed, as for every metric (the one convention)
    L = gl.length(c, G)
    E = gl.energy(c, G)
    assert bool((L ** 2 <= 2 * E * (1 + 1e-12)).all())


def test_metric_invariants_spd_and_sqnorm():
    fs = [mlp(seed=s) for s in range(3)]
    G = gl.ensemble_pullback(fs)
    z, v = points(20, 2, scale=2.0), points(20, 2, seed=9)
    Gz = G(z)
    torch.testing.assert_close(Gz, Gz.mT)
    assert bool((torch.linalg.eigvalsh(Gz) > 0).all())
    torch.testing.assert_close(G.sqnorm(z, v), torch.einsum("ni,nij,nj->n", v, Gz, v))


def test_clear_errors():
    f = mlp()
    with pytest.raises(TypeError, match="list of functions"):
        gl.ensemble_pullback(f)
    with pytest.raises(ValueError, match="at least one decoder"):
        gl.ensemble_pullback([])
    with pytest.raises(TypeError, match=r"entries \[1\]"):
        gl.ensemble_pullback([f, 3])
    G = gl.ensemble_pullback([mlp(D=5), mlp(D=4)])
    with pytest.raises(ValueError, match=r"same shape.*\(3, 5\), \(3, 4\)"):
        G(points(3, 2))
    with pytest.raises(ValueError, match="must be a positive integer"):
        gl.DecoderEnsemble("normal", D=4, M=0)
    ens = gl.DecoderEnsemble("bernoulli", D=4, M=2)
    with pytest.raises(ValueError, match="normal likelihood only"):
        ens.metric()
    with pytest.raises(ValueError, match="at most M=2"):
        gl.DecoderEnsemble("normal", D=4, M=2).metric(first=3)
    with pytest.raises(TypeError, match="VAE or a DecoderEnsemble"):
        gl.train_vae(torch.nn.Linear(2, 2), torch.zeros(3, 2))


def small_data(n=64, D=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.rand(n, 1, generator=g)
    return torch.cat([torch.sin(3 * t + k) for k in range(D)], -1) + 0.05 * torch.randn(n, D, generator=g)


def test_an_ensemble_of_one_trains_exactly_like_the_vae():
    X = small_data()
    vae = gl.VAE("normal", D=6, d=2, hidden=(16,), seed=5)
    ens = gl.DecoderEnsemble("normal", D=6, d=2, M=1, hidden=(16,), seed=5)
    h1 = gl.train_vae(vae, X, epochs=3, batch_size=16, progress=False, seed=2)
    h2 = gl.train_vae(ens, X, epochs=3, batch_size=16, progress=False, seed=2)
    assert h1 == h2
    for (k, a), b in zip(vae.state_dict().items(), ens.members[0].state_dict().values()):
        assert torch.equal(a, b), k


def test_members_share_one_encoder_and_start_from_different_decoders():
    ens = gl.DecoderEnsemble("normal", D=6, d=2, M=3, hidden=(16,), seed=0)
    assert all(m.encoder is ens.encoder for m in ens.members)
    n_enc = sum(p.numel() for p in ens.encoder.parameters())
    n_dec = sum(p.numel() for p in ens.members[0].decoder.parameters())
    assert sum(p.numel() for p in ens.parameters()) == n_enc + 3 * n_dec  # the encoder is counted once
    w = [m.decoder[0].weight for m in ens.members]
    assert not torch.equal(w[0], w[1]) and not torch.equal(w[1], w[2])
    # member 0 is the VAE of the same seed; the first members do not depend on M
    assert torch.equal(w[0], gl.VAE("normal", D=6, d=2, hidden=(16,), seed=0).decoder[0].weight)
    assert torch.equal(w[1], gl.DecoderEnsemble("normal", D=6, d=2, M=2, hidden=(16,), seed=0).members[1].decoder[0].weight)


def test_elbo_is_the_mean_member_log_likelihood_minus_kl():
    X = small_data(n=8)
    ens = gl.DecoderEnsemble("normal", D=6, d=2, M=3, hidden=(16,), seed=1).double()
    X = X.double()
    elbo = ens.elbo(X, generator=torch.Generator().manual_seed(4))
    q_mu, q_sigma = ens.encode(X)
    z = q_mu + q_sigma * torch.randn(q_mu.shape, generator=torch.Generator().manual_seed(4), dtype=f64)
    ll = torch.stack([m.log_likelihood(X, z) for m in ens.members]).mean(0)
    kl = torch.distributions.kl_divergence(torch.distributions.Normal(q_mu, q_sigma),
                                           torch.distributions.Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(elbo, ll - kl)


def test_training_lowers_the_loss_and_metric_matches_the_members(tmp_path):
    X = small_data(n=128)
    ens = gl.DecoderEnsemble("normal", D=6, d=2, M=3, hidden=(32,), seed=0)
    h = gl.train_vae(ens, X, epochs=40, batch_size=32, lr=3e-3, progress=False)
    assert h[-1] < h[0] - 1.0
    z = points(5, 2, dtype=torch.float32)
    G = ens.metric()(z)
    want = torch.stack([gl.pullback(m.mu)(z) for m in ens.members]).mean(0)
    torch.testing.assert_close(G, want)
    torch.testing.assert_close(ens.metric(first=2)(z), torch.stack([gl.pullback(m.mu)(z) for m in ens.members[:2]]).mean(0))
    # save with save_vae, load with load_ensemble: the same model, the encoder still shared
    assert {k.split(".")[0] for k in ens.state_dict()} == {"encoder", "decoders"}  # the encoder is saved once
    path = tmp_path / "ens.pt"
    gl.save_vae(ens, path, note="test")
    back = gl.load_ensemble(path)
    assert back.meta["note"] == "test" and back.M == 3
    assert all(m.encoder is back.encoder for m in back.members)
    torch.testing.assert_close(back.metric()(z), G)
    torch.testing.assert_close(back.encode(X[:4])[0], ens.encode(X[:4])[0])
    gl.save_vae(gl.VAE("normal", D=6, d=2, hidden=(16,)), tmp_path / "vae.pt")
    with pytest.raises(ValueError, match="single VAE"):
        gl.load_ensemble(tmp_path / "vae.pt")


@pytest.mark.parametrize("device", DEVICES)
def test_device_and_dtype_follow_the_model(device):
    ens = gl.DecoderEnsemble("normal", D=6, d=2, M=2, hidden=(16,), seed=0).to(device).double()
    z = points(4, 2, device=device)
    for vae in ens.members:  # the members are views onto the ensemble's modules: they moved with it
        assert vae.encoder is ens.encoder and vae.mu(z).dtype == f64 and vae.mu(z).device == z.device
    G = ens.metric()(z)
    assert G.dtype == f64 and G.device == z.device and G.shape == (4, 2, 2)
    res = gl.geodesic(ens.metric(), z[:2], z[2:], T=8)
    assert res.curve.device == z.device and bool(res.converged.all())
