"""The applications of lecture 6: ``train_vae``'s KL weight (β and warm-up), and the shipped tree-sequence VAE whose
latent codes must use both latent directions (no posterior collapse) and sort the leaves by clade."""
from __future__ import annotations

import pytest
import torch
from torch import distributions as td

import geomlib as gl


def _data(likelihood: str):
    g = torch.Generator().manual_seed(0)
    if likelihood == "categorical":
        return torch.randint(0, 5, (40, 6), generator=g), dict(D=6, n_categories=5)
    return torch.randn(40, 3, generator=g, dtype=torch.float64), dict(D=3)


def _reference_fit(model, X, epochs, batch_size, lr, seed, beta, warmup):
    """An independent implementation of the documented objective: epoch e maximises
    log p(x|z) − β_e KL(q(z|x) ‖ N(0, I)), β_e = beta·min(1, (e+1)/warmup), with the KL from torch.distributions.
    Returns the history of the plain −ELBO."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history = []
    model.train()
    for e in range(epochs):
        w = beta * min(1.0, (e + 1) / warmup) if warmup else beta
        perm, total = torch.randperm(len(X), generator=g), 0.0
        for i in range(0, len(X), batch_size):
            xb = X[perm[i:i + batch_size]]
            q_mu, q_sigma = model.encode(xb)
            z = q_mu + q_sigma * torch.randn(q_mu.shape, generator=g, dtype=q_mu.dtype)
            kl = td.kl_divergence(td.Normal(q_mu, q_sigma), td.Normal(torch.zeros_like(q_mu), 1.0)).sum(-1)
            log_lik = model.log_likelihood(xb, z)
            opt.zero_grad()
            (-(log_lik - w * kl).mean()).backward()
            opt.step()
            total += -(log_lik - kl).sum().item()
        history.append(total / len(X))
    model.eval()
    return history


@pytest.mark.parametrize("likelihood", ["normal", "categorical"])
@pytest.mark.parametrize("beta,warmup", [(1.0, 0), (1.0, 3), (0.3, 0), (0.5, 2)])
def test_kl_weight_follows_the_documented_schedule(likelihood, beta, warmup):
    X, args = _data(likelihood)
    fit = dict(epochs=4, batch_size=16, lr=3e-3, seed=1)
    ours = gl.VAE(likelihood, hidden=(8,), seed=0, **args).double()
    ref = gl.VAE(likelihood, hidden=(8,), seed=0, **args).double()
    history = gl.train_vae(ours, X, progress=False, beta=beta, warmup=warmup, **fit)
    ref_history = _reference_fit(ref, X, beta=beta, warmup=warmup, **fit)
    for k, v in ref.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[k], v, rtol=1e-9, atol=1e-11, msg=k)
    torch.testing.assert_close(torch.tensor(history), torch.tensor(ref_history), rtol=1e-9, atol=1e-9)


def test_the_defaults_are_the_plain_elbo():
    X, args = _data("normal")
    runs = []
    for kw in ({}, dict(beta=1.0, warmup=0), dict(beta=1, warmup=1)):  # a warm-up of one epoch is no warm-up
        vae = gl.VAE("normal", hidden=(8,), seed=0, **args).double()
        runs.append((gl.train_vae(vae, X, epochs=3, batch_size=16, seed=0, progress=False, **kw), vae.state_dict()))
    for hist, sd in runs[1:]:
        assert hist == runs[0][0] and all(torch.equal(sd[k], runs[0][1][k]) for k in sd)


@pytest.mark.parametrize("kw", [dict(beta=-0.1), dict(beta=float("nan")), dict(beta="1"), dict(warmup=-1),
                                dict(warmup=2.5), dict(warmup=True)])
def test_bad_kl_weights_are_refused(kw):
    X, args = _data("normal")
    vae = gl.VAE("normal", hidden=(8,), seed=0, **args).double()
    with pytest.raises(ValueError, match="beta|warmup"):
        gl.train_vae(vae, X, epochs=1, progress=False, **kw)


def test_tree_checkpoint_uses_both_latent_directions_and_sorts_the_clades():
    tree = gl.tree_sequences()
    vae = gl.load_pretrained("tree_categorical")
    assert vae.meta["warmup"] > 0
    with torch.no_grad():
        Z = vae.encode(tree.labels)[0].double()  # (256, 2)
    var = torch.linalg.eigvalsh(torch.cov(Z.T))  # principal variances, ascending
    assert var[0] > 0.5 * var[1], f"the codes are nearly a line (posterior collapse): variances {var.tolist()}"
    D = torch.cdist(Z, Z).fill_diagonal_(float("inf"))
    votes = tree.clade[D.topk(5, largest=False).indices].mode(-1).values  # leave-one-out 5-NN vote
    acc = (votes == tree.clade).double().mean().item()
    chance = torch.bincount(tree.clade).max().item() / len(tree.clade)
    assert acc > 0.9 > 2 * chance, f"5-NN clade accuracy {acc:.2f} (largest clade {chance:.2f})"


def test_shipped_torus_model_decodes_both_angles():
    """Without the KL warm-up this model ignored θ₁ (concentration at its floor); the shipped one decodes both
    angles of the pose loop to within a small circular error and spreads the loop over both latent directions."""
    import math

    vae = gl.load_pretrained("torus_von_mises")
    X, _ = gl.torus_angles(n=1000)
    with torch.no_grad():
        Z = vae.encode(X)[0]
        p = vae.decode(Z)
    err = torch.remainder(p.loc - X + math.pi, 2 * math.pi) - math.pi  # circular error, (N, 2)
    assert bool((err.pow(2).mean(0).sqrt() < 0.2).all())
    assert bool((p.concentration.median(0).values > 5).all())
    var = torch.linalg.eigvalsh(torch.cov(Z.T))
    assert var[0] > 0.3 * var[1]
