"""geomlib.vae: every likelihood decodes to a valid distribution, training lowers the loss and is seeded, and
the shipped checkpoints load and beat trivial baselines."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import geomlib as gl
from conftest import DEVICES


def dataset(likelihood: str):
    """(data, VAE keyword arguments) for each likelihood: small, in float64 (long for categorical)."""
    g = torch.Generator().manual_seed(0)
    f64 = torch.float64
    if likelihood == "normal":
        return gl.moons(n=64, dtype=f64)[0], dict(D=2)
    if likelihood == "bernoulli":
        return gl.digits(n=64, binarize=True, dtype=f64)[0], dict(D=64)
    if likelihood == "categorical":
        return gl.tree_sequences(n=64, length=12, n_letters=5).labels, dict(D=12, n_categories=5)
    if likelihood == "beta":
        return 0.01 + 0.98 * gl.digits(n=64, dtype=f64)[0], dict(D=64)
    if likelihood == "dirichlet":
        return torch.softmax(torch.randn(64, 4, generator=g, dtype=f64), -1), dict(D=4)
    if likelihood == "exponential":
        return -torch.rand(64, 3, generator=g, dtype=f64).log(), dict(D=3)
    if likelihood == "vmf":
        return gl.sphere_vectors(n=64, dim=4, dtype=f64)[0], dict(D=4)
    if likelihood == "pose":
        return gl.motion_demonstrations(n=16, dtype=f64).x, dict(D=7)
    return gl.torus_angles(n=64, dtype=f64)[0], dict(D=2)


def model(likelihood, seed=0, **kw):
    X, args = dataset(likelihood)
    return gl.VAE(likelihood, hidden=(16,), seed=seed, **args, **kw).double(), X


@pytest.mark.parametrize("likelihood", gl.LIKELIHOODS)
def test_decode_is_a_valid_distribution_with_finite_log_prob(likelihood):
    vae, X = model(likelihood)
    z = torch.randn(3, 5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    p = vae.decode(z)
    assert isinstance(p, torch.distributions.Distribution)
    assert tuple(p.batch_shape[:2]) == (3, 5)
    for name, constraint in p.arg_constraints.items():  # every parameter in its family's domain
        if name in ("probs", "logits") and name not in p.__dict__:
            continue  # lazily derived from the other one
        assert constraint.check(getattr(p, name)).all(), name
    x = X[:5]  # (5, D): broadcasts against z's batch (3, 5)
    assert p.support.check(x.to(torch.float64) if likelihood != "categorical" else x).all()
    lp = p.log_prob(x)
    assert torch.isfinite(lp).all()
    ll = vae.log_likelihood(x, z)  # log p(x|z) summed over the data dims
    assert ll.shape == (3, 5) and ll.dtype == torch.float64
    torch.testing.assert_close(ll, lp.reshape(3, 5, -1).sum(-1))


def test_normal_log_likelihood_closed_form_and_mu_sigma():
    vae, X = model("normal")
    z = torch.randn(7, 2, dtype=torch.float64)
    mu, sigma = vae.mu(z), vae.sigma(z)
    assert mu.shape == sigma.shape == (7, 2) and (sigma >= vae.min_sigma).all()
    x = X[:7]
    want = (-0.5 * ((x - mu) / sigma) ** 2 - sigma.log() - 0.5 * math.log(2 * math.pi)).sum(-1)
    torch.testing.assert_close(vae.log_likelihood(x, z), want)
    G = gl.expected_pullback(vae.mu, vae.sigma)(z)  # the decoder's mean and std are plain batched functions
    assert G.shape == (7, 2, 2) and (torch.linalg.eigvalsh(G) > 0).all()


@pytest.mark.parametrize("likelihood", gl.LIKELIHOODS)
def test_decode_is_differentiable_inside_torch_func(likelihood):
    """log p(x|z) through gl.jacobian (torch.func, what the Fisher–Rao metric needs) agrees with autograd."""
    vae, X = model(likelihood)
    x0 = X[:1]
    z = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2), requires_grad=True)
    J = gl.jacobian(lambda zz: vae.log_likelihood(x0, zz)[..., None], z.detach())  # (4, 1, 2)
    (grad,) = torch.autograd.grad(vae.log_likelihood(x0, z).sum(), z)
    torch.testing.assert_close(J[:, 0], grad)


def elbo(vae, X, samples=32):
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        return vae.elbo(X.expand(samples, *X.shape), generator=g).mean().item()


@pytest.mark.parametrize("likelihood", gl.LIKELIHOODS)
def test_one_epoch_of_training_lowers_the_loss(likelihood):
    vae, X = model(likelihood)
    before = -elbo(vae, X)
    history = gl.train_vae(vae, X, epochs=1, batch_size=8, lr=3e-3, seed=0, progress=False)
    assert len(history) == 1 and math.isfinite(history[0])
    assert -elbo(vae, X) < before
    assert not vae.training  # left in eval mode


def test_training_is_seeded_and_leaves_the_global_rng_alone():
    X, args = dataset("normal")
    torch.manual_seed(7)
    state = torch.get_rng_state()
    runs = []
    for seed in (0, 0, 1):
        vae = gl.VAE("normal", hidden=(16,), seed=seed, **args).double()
        gl.train_vae(vae, X, epochs=3, batch_size=16, seed=seed, progress=True)  # progress bar: no warnings
        runs.append(vae.state_dict())
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not torch.equal(runs[0]["decoder.0.weight"], runs[2]["decoder.0.weight"])


def test_encode_shapes():
    vae, X = model("categorical")
    q_mu, q_sigma = vae.encode(X[:6])
    assert q_mu.shape == q_sigma.shape == (6, 2) and (q_sigma > 0).all()
    q_mu, _ = vae.encode(X[:6].reshape(2, 3, 12))  # any batch shape
    assert q_mu.shape == (2, 3, 2)


def test_save_and_load_round_trip(tmp_path):
    vae, X = model("normal")
    gl.train_vae(vae, X, epochs=2, seed=0, progress=False)
    vae.calibrate(X, k=4, seed=0)
    path = tmp_path / "m.pt"
    gl.save_vae(vae, path, data="moons", epochs=2, version=torch.__version__)
    back = gl.load_vae(path)
    assert back.config == vae.config and back.meta["data"] == "moons" and isinstance(back.meta["version"], str)
    z = torch.randn(5, 2, dtype=torch.float64)
    back = back.double()
    for fn in ("mu", "sigma", "calibrated_sigma"):
        torch.testing.assert_close(getattr(back, fn)(z), getattr(vae, fn)(z))


CHECKPOINTS = ["digits_normal", "moons_normal", "digits_bernoulli", "torus_von_mises", "tree_categorical",
               "sphere_vmf", "motion_pose"]


def test_pretrained_names_and_sizes():
    assert set(CHECKPOINTS) <= set(gl.pretrained_names())
    for name in gl.pretrained_names():
        assert (gl.vae.CHECKPOINTS / f"{name}.pt").stat().st_size < 2e6


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_every_checkpoint_loads_and_decodes(name):
    vae = gl.load_pretrained(name)
    assert isinstance(vae, gl.VAE) and not vae.training and vae.meta["seed"] == 0
    assert vae.meta["final_loss"] < vae.meta["first_loss"]
    z = torch.randn(10, vae.d)
    G = gl.fisher_pullback(vae.decode)(z)  # what lecture 6 does with them
    assert G.shape == (10, 2, 2) and torch.isfinite(G).all()


def test_pretrained_digits_normal_beats_the_mean_image():
    vae = gl.load_pretrained("digits_normal")
    X, _ = gl.digits()
    with torch.no_grad():
        recon = vae.mu(vae.encode(X)[0])
    mse, baseline = (recon - X).pow(2).mean(), (X.mean(0) - X).pow(2).mean()
    assert mse < 0.7 * baseline
    # it ships its calibrated σ: near the codes ≈ the trained σ, far away 1/√ζ
    zeta = vae.config["calibration"]["zeta"]
    with torch.no_grad():
        Z = vae.encode(X)[0]
        ratio = vae.calibrated_sigma(Z) / vae.sigma(Z)
        far = vae.calibrated_sigma(torch.full((1, 2), 50.0))
    assert ratio.log().abs().median() < math.log(1.2)
    torch.testing.assert_close(far, torch.full_like(far, zeta ** -0.5))


def test_pretrained_bernoulli_and_categorical_beat_baselines():
    vae = gl.load_pretrained("digits_bernoulli")
    X, _ = gl.digits(binarize=True)
    with torch.no_grad():
        p = vae.decode(vae.encode(X)[0]).probs
    p0 = X.mean(0).clamp(1e-3, 1 - 1e-3).expand_as(X)
    assert F.binary_cross_entropy(p, X) < 0.7 * F.binary_cross_entropy(p0, X)
    vae = gl.load_pretrained("tree_categorical")
    t = gl.tree_sequences()
    with torch.no_grad():
        guess = vae.decode(vae.encode(t.labels)[0]).probs.argmax(-1)
    majority = torch.mode(t.labels, 0).values  # the most frequent letter at each position
    assert (guess == t.labels).double().mean() > (majority == t.labels).double().mean() + 0.1


@pytest.mark.parametrize("device", DEVICES)
def test_device_and_dtype_follow_the_model(device):
    vae, X = model("normal")
    vae = vae.to(device)
    gl.train_vae(vae, X.float(), epochs=1, progress=False)  # data moved to the model's device and dtype
    z = torch.zeros(3, 2, dtype=torch.float64, device=device)
    assert vae.mu(z).device.type == device and vae.decode(z).loc.dtype == torch.float64


def test_clear_errors():
    with pytest.raises(ValueError, match="unknown likelihood 'gaussian'.*normal, bernoulli"):
        gl.VAE("gaussian", D=4)
    with pytest.raises(ValueError, match="n_categories"):
        gl.VAE("categorical", D=4)
    with pytest.raises(ValueError, match="D must be 3 or 4"):
        gl.VAE("vmf", D=5)
    vae, X = model("normal")
    with pytest.raises(ValueError, match=r"D=2, got shape \(10, 3\)"):
        vae.encode(torch.zeros(10, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"d=2, got \(4, 3\)"):
        vae.decode(torch.zeros(4, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match="vae.calibrate"):
        vae.calibrated_sigma(torch.zeros(1, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="normal likelihood only"):
        model("bernoulli")[0].mu(torch.zeros(1, 2, dtype=torch.float64))
    cat, labels = model("categorical")
    with pytest.raises(TypeError, match="argmax"):
        cat.encode(F.one_hot(labels, 5).double().argmax(-1).double())
    with pytest.raises(ValueError, match="letter indices in"):
        gl.train_vae(cat, labels + 5, epochs=1, progress=False)
    bern, Xb = model("bernoulli")
    with pytest.raises(ValueError, match=r"values in \[0, 1\]"):
        gl.train_vae(bern, 2 * Xb, epochs=1, progress=False)
    with pytest.raises(ValueError, match="no pretrained VAE named 'mnist'.*digits_normal"):
        gl.load_pretrained("mnist")
    with pytest.raises(TypeError, match="must be a VAE"):
        gl.train_vae(torch.nn.Linear(2, 2), X)
    for kw, msg in ((dict(batch_size=0), "batch_size must be a positive integer, got 0"),
                    (dict(epochs=2.5), "epochs must be an integer ≥ 0, got 2.5"),
                    (dict(lr=-1.0), r"lr \(the learning rate\) must be a number > 0, got -1.0")):
        with pytest.raises(ValueError, match=msg):
            gl.train_vae(vae, X, progress=False, **kw)


def test_inputs_must_match_the_weights_and_be_finite():
    """A float64 z or x for a float32 model (or an integer z, or a NaN) is refused with the dtypes or the count,
    not with a matrix-product error from deep inside the network (or silently, for int and NaN)."""
    vae = gl.VAE("normal", D=4, d=2, hidden=(8,))  # float32
    z64 = torch.zeros(3, 2, dtype=torch.float64)
    for call in (lambda: vae.decode(z64), lambda: vae.mu(z64), lambda: vae.sigma(z64)):
        with pytest.raises(TypeError, match="z has dtype torch.float64 but this VAE's weights have dtype torch.float32"):
            call()
    with pytest.raises(TypeError, match="x has dtype torch.float64 but this VAE's weights have dtype torch.float32"):
        vae.encode(torch.zeros(3, 4, dtype=torch.float64))
    with pytest.raises(TypeError, match="floating-point.*torch.int64"):
        vae.mu(torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"z has 2 non-finite entries \(NaN or inf\) out of 6"):
        vae.decode(torch.tensor([[0.0, 1.0], [float("nan"), 0.0], [0.0, float("inf")]]))
    assert vae.mu(z64.float()).dtype == torch.float32 and vae.double().mu(z64).dtype == torch.float64
    cal = gl.calibrate_sigma(vae.sigma, torch.randn(20, 2, dtype=torch.float64), k=3)  # float64 buffers
    with pytest.raises(TypeError, match="z has dtype torch.float32 but this CalibratedSigma's buffers have dtype torch.float64"):
        cal(torch.zeros(1, 2))
    with pytest.raises(ValueError, match=r"d=2, got \(1, 3\)"):
        cal(torch.zeros(1, 3, dtype=torch.float64))


def test_checkpoint_recipe_is_deterministic_down_to_the_bytes(tmp_path):
    """scripts/make_checkpoints.py trains seeded and saves nothing that varies between runs (no timings), so two
    runs give the same file. (Whether they give the shipped file depends on the CPU's float32 rounding too:
    ``make_checkpoints.py --verify`` checks that on demand.)"""
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "make_checkpoints.py"
    spec = importlib.util.spec_from_file_location("make_checkpoints", script)
    mk = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mk)
    files = []
    for run in ("a", "b"):
        model, meta, _ = mk.train("moons_normal")
        (tmp_path / run).mkdir()
        gl.save_vae(model, tmp_path / run / "moons_normal.pt", **meta)
        files.append((tmp_path / run / "moons_normal.pt").read_bytes())
    assert files[0] == files[1]
    assert "seconds" not in gl.load_vae(tmp_path / "a" / "moons_normal.pt").meta


def test_pose_likelihood_is_a_normal_times_a_vmf_on_quaternions(tmp_path):
    """"pose": R³ × S³ as Product([Independent(Normal(μ, σ), 1), vMF(q, κ)]), log-likelihood the sum of the two
    parts; it trains, saves, loads, and its Fisher–Rao pullback is the sum of the two parts' pullbacks."""
    from torch.distributions import Independent, Normal

    vae, X = model("pose")
    z = torch.randn(4, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    p = vae.decode(z)
    assert isinstance(p, gl.Product) and p.batch_shape == (4,) and p.event_shape == (7,)
    pos, rot = p.parts
    assert isinstance(pos, Independent) and isinstance(pos.base_dist, Normal) and isinstance(rot, gl.VonMisesFisher)
    torch.testing.assert_close(rot.loc.norm(dim=-1), torch.ones(4, dtype=torch.float64))
    assert bool((pos.base_dist.scale >= vae.min_sigma).all())
    x = X[:4]
    torch.testing.assert_close(vae.log_likelihood(x, z), pos.log_prob(x[:, :3]) + rot.log_prob(x[:, 3:]))
    G = gl.fisher_pullback(vae.decode)(z)
    G_pos = gl.fisher_pullback(lambda zz: vae.decode(zz).parts[0])(z)
    G_rot = gl.fisher_pullback(lambda zz: vae.decode(zz).parts[1])(z)
    torch.testing.assert_close(G, G_pos + G_rot)
    history = gl.train_vae(vae, X, epochs=5, lr=5e-3, seed=0, progress=False)
    assert history[-1] < history[0]
    gl.save_vae(vae, tmp_path / "pose.pt")
    back = gl.load_vae(tmp_path / "pose.pt").double()
    torch.testing.assert_close(back.log_likelihood(x, z), vae.log_likelihood(x, z))
    with pytest.raises(ValueError, match="D must be 7"):
        gl.VAE("pose", D=6)
    bad = X.clone()
    bad[0, 3:] *= 2  # not a unit quaternion
    with pytest.raises(ValueError, match="unit quaternions"):
        gl.train_vae(vae, bad, epochs=1, progress=False)


def test_pretrained_motion_pose_reconstructs_the_demonstrations():
    """The pose VAE of lecture 8 decodes every demonstrated pose to within a few centimetres and a few degrees of
    its noise-free version (sign-free rotation angle 2 arccos|⟨q, q'⟩|), with confident orientations."""
    d = gl.motion_demonstrations()
    vae = gl.load_pretrained("motion_pose")
    assert vae.likelihood == "pose" and vae.meta["about"].startswith("lecture 8")
    with torch.no_grad():
        pos, rot = vae.decode(vae.encode(d.x)[0]).parts
    err = (pos.mean - d.clean[:, :3]).norm(dim=-1)
    ang = 2 * torch.arccos((rot.loc * d.clean[:, 3:]).sum(-1).abs().clamp(max=1))
    assert err.mean() < 0.03 and err.max() < 0.06, (err.mean(), err.max())
    assert ang.mean() < 0.06 and ang.max() < 0.2, (ang.mean(), ang.max())
    assert rot.concentration.median() > 100
