"""Small variational autoencoders with a choice of likelihood, their training loop, and shipped checkpoints.
[Lectures 1, 5, 6]

    vae = VAE("normal", D=64, d=2)            # encoder q(z|x) = N(q_mu, q_sigma²), decoder p(x|z)
    train_vae(vae, X, epochs=200)              # maximise the ELBO; returns the loss history
    vae.encode(x) -> (q_mu, q_sigma)           # shape=[..., d] each
    vae.decode(z) -> torch Distribution        # batch shape = z's batch + the data dims
    vae.mu(z), vae.sigma(z)                    # Normal likelihood only: shape=[..., D]
    load_pretrained("digits_normal")           # the models of geomlib/checkpoints/, made by scripts/make_checkpoints.py

Likelihoods, with the data each expects (N data points):

    "normal"       x shape=[N, D] real                 Normal(μ(z), σ(z)) per coordinate
    "bernoulli"    x shape=[N, D] in [0, 1]            Bernoulli(p(z)) per coordinate
    "categorical"  x shape=[N, L] long in [0, A)       Categorical(π_l(z)) per position, A = n_categories
    "beta"         x shape=[N, D] in (0, 1)            Beta(α(z), β(z)) per coordinate
    "dirichlet"    x shape=[N, K] on the simplex       Dirichlet(α(z)), one per point
    "exponential"  x shape=[N, D] ≥ 0                  Exponential(λ(z)) per coordinate
    "vmf"          x shape=[N, D] unit, D = 3 or 4     von Mises–Fisher(m(z), κ(z)) on S^{D−1}, one per point
    "von_mises"    x shape=[N, D] angles (radians)     VonMises(m_j(z), κ_j(z)) per angle: a product on the torus
    "pose"         x shape=[N, 7]: position ∈ R³,      Product([Independent(Normal(μ(z), σ(z)), 1), vMF(q(z), κ(z))]):
                   then a unit quaternion ∈ S³         a pose in R³ × S³ (lecture 8), D = 7

Decoded distributions are built with ``validate_args=False`` so that ``decode`` runs inside ``torch.func``
transforms (the Fisher–Rao metric differentiates through it); the data is checked once, by ``train_vae``.
"""
from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import distributions as td
from torch import nn

from . import _checks
from .stochastic import CalibratedSigma, calibrate_sigma

__all__ = ["LIKELIHOODS", "VAE", "train_vae", "save_vae", "load_vae", "load_pretrained", "pretrained_names"]

LIKELIHOODS = ("normal", "bernoulli", "categorical", "beta", "dirichlet", "exponential", "vmf", "von_mises", "pose")
CHECKPOINTS = Path(__file__).parent / "checkpoints"
_EPS = 1e-3  # floor for positive parameters (concentrations, rates), so the likelihood stays bounded


def _mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with tanh between them: smooth, so Jacobians and Christoffel symbols are smooth too."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """A VAE with an MLP encoder q(z|x) = N(q_mu(x), diag q_sigma(x)²), prior N(0, I), and an MLP decoder whose
    last layer gives the parameters of the chosen likelihood (see the module docstring). Final class.

    Args:
        likelihood: one of ``LIKELIHOODS``.
        D: data dimension (for "categorical": the sequence length L).
        d: latent dimension.
        hidden: widths of the hidden layers of encoder and decoder.
        n_categories: the alphabet size A ("categorical" only).
        min_sigma: floor of σ(z) ("normal", and the positions of "pose").
        seed: seeds the initial weights.
    The constructor's arguments are kept in ``config`` (a plain dict, saved with the weights).
    """

    def __init__(self, likelihood: str, D: int, d: int = 2, hidden: tuple[int, ...] = (128, 128),
                 n_categories: int | None = None, min_sigma: float = 0.01, seed: int = 0):
        super().__init__()
        if likelihood not in LIKELIHOODS:
            raise ValueError(f"unknown likelihood {likelihood!r}; choose one of {', '.join(LIKELIHOODS)}")
        if not (isinstance(D, int) and D >= 1 and isinstance(d, int) and d >= 1):
            raise ValueError(f"D and d must be positive ints, got D={D!r}, d={d!r}")
        if (likelihood == "categorical") != (n_categories is not None):
            raise ValueError("n_categories (the alphabet size) is needed for, and only for, the categorical "
                             f"likelihood; got likelihood={likelihood!r}, n_categories={n_categories!r}")
        if likelihood == "categorical" and n_categories < 2:
            raise ValueError(f"n_categories must be ≥ 2, got {n_categories}")
        if likelihood == "vmf" and D not in (3, 4):
            raise ValueError(f"the vmf likelihood lives on S² or S³: D must be 3 or 4, got {D}")
        if likelihood == "pose" and D != 7:
            raise ValueError(f"the pose likelihood is R³ × S³ (a position and a unit quaternion): D must be 7, got {D}")
        if likelihood == "dirichlet" and D < 2:
            raise ValueError(f"the dirichlet likelihood needs D ≥ 2 categories, got {D}")
        hidden = tuple(int(h) for h in hidden)
        self.config = dict(likelihood=likelihood, D=D, d=d, hidden=hidden, n_categories=n_categories,
                           min_sigma=float(min_sigma), seed=seed)
        self.likelihood, self.D, self.d, self.A, self.min_sigma = likelihood, D, d, n_categories, float(min_sigma)
        n_in = D * n_categories if likelihood == "categorical" else 2 * D if likelihood == "von_mises" else D
        n_out = {"normal": 2 * D, "bernoulli": D, "categorical": D * (n_categories or 0), "beta": 2 * D,
                 "dirichlet": D, "exponential": D, "vmf": D + 1, "von_mises": 3 * D, "pose": 11}[likelihood]
        with torch.random.fork_rng(devices=[]):  # seeded initial weights, global RNG left as it was
            torch.manual_seed(seed)
            self.encoder = _mlp([n_in, *hidden, 2 * d])
            self.decoder = _mlp([d, *hidden, n_out])
        self.calibration: CalibratedSigma | None = None
        self.meta: dict = {}  # how a loaded checkpoint was trained (see save_vae)

    def __init_subclass__(cls, **kw):
        raise TypeError("VAE is final: pick a likelihood instead of subclassing")

    def extra_repr(self) -> str:
        return f"likelihood={self.likelihood!r}, D={self.D}, d={self.d}"

    # --- encoder ---------------------------------------------------------------------------------------------
    def _features(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's input for data x shape=[..., D] -> shape=[..., n_in]."""
        dtype = self.encoder[0].weight.dtype
        if self.likelihood == "categorical":
            return F.one_hot(x.long(), self.A).to(dtype).flatten(-2)  # (..., L*A)
        if self.likelihood == "von_mises":
            return torch.cat([torch.cos(x), torch.sin(x)], -1)  # angles enter as points of circles
        if self.likelihood == "exponential":
            return torch.log1p(x)
        return x

    def check_data(self, x: torch.Tensor, support: bool = False) -> torch.Tensor:
        """Check the shape and dtype of data x (and, with ``support=True``, that it lies in the likelihood's
        support); return x. Raises with the offending shapes, dtypes or values."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"data must be a torch.Tensor, got {type(x).__name__}")
        want = "(..., L) of integer letter indices" if self.likelihood == "categorical" else "(..., D) floating"
        if x.dim() < 1 or x.shape[-1] != self.D:
            raise ValueError(f"VAE({self.likelihood!r}) expects data of shape {want} with "
                             f"{'L' if self.likelihood == 'categorical' else 'D'}={self.D}, got shape {tuple(x.shape)}")
        if self.likelihood == "categorical":
            if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool:
                raise TypeError(f"categorical data must be integer letter indices (torch.long), got dtype {x.dtype}; "
                                "for one-hot data pass x.argmax(-1)")
        elif not x.is_floating_point():
            raise TypeError(f"VAE({self.likelihood!r}) expects floating-point data, got dtype {x.dtype}")
        if support:
            self._check_support(x)
        return x

    def _check_support(self, x: torch.Tensor) -> None:
        lk = self.likelihood
        if lk == "categorical":
            bad = (x < 0) | (x >= self.A)
            what = f"letter indices in [0, {self.A})"
        elif not bool(torch.isfinite(x).all()):
            raise ValueError(f"data has {int((~torch.isfinite(x)).sum())} non-finite entries")
        elif lk == "bernoulli":
            bad, what = (x < 0) | (x > 1), "values in [0, 1]"
        elif lk == "beta":
            bad, what = (x <= 0) | (x >= 1), "values in the open interval (0, 1)"
        elif lk == "exponential":
            bad, what = x < 0, "values ≥ 0"
        elif lk == "dirichlet":
            bad = (x <= 0).any(-1) | ((x.sum(-1) - 1).abs() > 1e-4)
            what = "rows on the open simplex (positive, summing to 1)"
        elif lk == "vmf":
            bad, what = (x.norm(dim=-1) - 1).abs() > 1e-4, "unit vectors"
        elif lk == "pose":
            bad, what = (x[..., 3:].norm(dim=-1) - 1).abs() > 1e-4, "unit quaternions in x[..., 3:7]"
        else:
            return
        if bool(bad.any()):
            raise ValueError(f"VAE({lk!r}) needs {what}; {int(bad.sum())} of {bad.numel()} entries are not "
                             f"(data shape {tuple(x.shape)}, range [{x.min().item():g}, {x.max().item():g}])")

    def _same_dtype(self, t: torch.Tensor, name: str) -> None:
        w = self.encoder[0].weight.dtype
        if t.dtype != w:
            raise TypeError(f"{name} has dtype {t.dtype} but this VAE's weights have dtype {w}; convert one of them, "
                            f"e.g. {name}.to({w}) or vae.to({t.dtype})")

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x) = N(q_mu, diag q_sigma²): x shape=[..., D] -> (q_mu, q_sigma), shape=[..., d] each."""
        x = self.check_data(x)
        if self.likelihood != "categorical":  # letter indices become one-hot vectors of the weights' dtype
            self._same_dtype(x, "x")
        h = self.encoder(self._features(x))
        return h[..., :self.d], F.softplus(h[..., self.d:]) + 1e-4

    # --- decoder ---------------------------------------------------------------------------------------------
    def _z(self, z: torch.Tensor) -> torch.Tensor:
        """z, checked: a finite floating tensor (..., d) of the weights' dtype."""
        z = _checks.as_tensor(z, "z")
        if z.dim() < 1 or z.shape[-1] != self.d:
            raise ValueError(f"z must have shape (..., d) with d={self.d}, got {tuple(z.shape)}")
        self._same_dtype(z, "z")
        try:
            _checks.finite(z, "z")
        except RuntimeError:  # inside torch.func.vmap (Christoffel symbols) values cannot be inspected: skip
            pass
        return z

    def _normal_only(self, what: str) -> None:
        if self.likelihood != "normal":
            raise ValueError(f"{what} is defined for the normal likelihood only, this VAE has {self.likelihood!r}; "
                             "use decode(z) for its distribution")

    def mu(self, z: torch.Tensor) -> torch.Tensor:
        """The decoder's mean μ(z): z shape=[..., d] -> shape=[..., D] ("normal" only). [Lecture 1]"""
        self._normal_only("mu")
        return self.decoder(self._z(z))[..., :self.D]

    def sigma(self, z: torch.Tensor) -> torch.Tensor:
        """The trained decoder's standard deviation σ(z) = softplus(·) + min_sigma, shape=[..., D]. [Lecture 5]"""
        self._normal_only("sigma")
        return F.softplus(self.decoder(self._z(z))[..., self.D:]) + self.min_sigma

    def calibrated_sigma(self, z: torch.Tensor) -> torch.Tensor:
        """σ̃(z) of ``calibrate``: ≈ σ(z) near the training codes, → 1/√ζ far from them, shape=[..., D].
        [Lecture 5]"""
        self._normal_only("calibrated_sigma")
        if self.calibration is None:
            raise ValueError("this VAE has no calibrated sigma yet: call vae.calibrate(X) first")
        return self.calibration(self._z(z))

    def calibrate(self, X: torch.Tensor, k: int = 32, zeta: float = 1e-2, bandwidth: float = 1.0,
                  seed: int = 0) -> "VAE":
        """Fit ``calibrated_sigma`` on the codes q_mu(X) of the training data (``stochastic.calibrate_sigma``);
        stores it in ``self.calibration`` and returns self. [Lecture 5]"""
        self._normal_only("calibrate")
        with torch.no_grad():
            Z = self.encode(X)[0]
        self.calibration = calibrate_sigma(self.sigma, Z, k=k, zeta=zeta, bandwidth=bandwidth, seed=seed)
        self.config["calibration"] = dict(k=k, zeta=float(zeta), bandwidth=float(bandwidth), seed=seed)
        return self

    def decode(self, z: torch.Tensor, calibrated: bool = False) -> td.Distribution:
        """p(x|z): z shape=[..., d] -> a torch Distribution whose batch shape is z's batch followed by the data
        dims (event shape (D,) for "dirichlet", "vmf" and "pose"); ``log_likelihood`` sums its log_prob over the data.
        ``calibrated=True`` uses ``calibrated_sigma`` ("normal" only)."""
        h = self.decoder(self._z(z))  # (..., n_out)
        lk, D = self.likelihood, self.D
        if calibrated:
            return td.Normal(h[..., :D], self.calibrated_sigma(z), validate_args=False)
        if lk == "normal":
            return td.Normal(h[..., :D], F.softplus(h[..., D:]) + self.min_sigma, validate_args=False)
        if lk == "bernoulli":
            return td.Bernoulli(logits=h, validate_args=False)
        if lk == "categorical":
            return td.Categorical(logits=h.unflatten(-1, (D, self.A)), validate_args=False)  # batch (..., L)
        if lk == "beta":
            return td.Beta(F.softplus(h[..., :D]) + _EPS, F.softplus(h[..., D:]) + _EPS, validate_args=False)
        if lk == "dirichlet":
            return td.Dirichlet(F.softplus(h) + _EPS, validate_args=False)
        if lk == "exponential":
            return td.Exponential(F.softplus(h) + _EPS, validate_args=False)
        if lk in ("vmf", "pose"):
            from .distributions import Product, VonMisesFisher  # written alongside; imported late
            r = h[..., :D] if lk == "vmf" else h[..., 6:10]  # the direction: the unit vector (quaternion) along r
            vmf = VonMisesFisher(r / r.norm(dim=-1, keepdim=True).clamp_min(1e-12),
                                 F.softplus(h[..., D if lk == "vmf" else 10]) + _EPS, validate_args=False)
            if lk == "vmf":
                return vmf
            position = td.Normal(h[..., :3], F.softplus(h[..., 3:6]) + self.min_sigma, validate_args=False)
            return Product([td.Independent(position, 1, validate_args=False), vmf])
        # von_mises: the mean angle is the direction of a 2-vector, so it is smooth all around the circle
        loc = torch.atan2(h[..., D:2 * D], h[..., :D])
        return td.VonMises(loc, F.softplus(h[..., 2 * D:]) + _EPS, validate_args=False)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor, calibrated: bool = False) -> torch.Tensor:
        """log p(x|z) summed over the data dims: x shape=[..., D], z shape=[..., d] -> shape=[...]."""
        x, z = self.check_data(x), self._z(z)
        p = self.decode(z, calibrated=calibrated)
        lp = p.log_prob(x)  # (..., D), or (...) where the data is one event (Dirichlet, vMF)
        return lp.sum(-1) if len(p.event_shape) == 0 else lp

    def elbo(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One-sample ELBO: log p(x|z) − KL(q(z|x) ‖ N(0, I)) with z = q_mu + q_sigma ⊙ ε, shape=[...]."""
        q_mu, q_sigma = self.encode(x)
        eps = torch.randn(q_mu.shape, generator=generator, dtype=q_mu.dtype, device=q_mu.device)
        z = q_mu + q_sigma * eps
        kl = 0.5 * (q_mu.pow(2) + q_sigma.pow(2) - 1 - 2 * q_sigma.log()).sum(-1)
        return self.log_likelihood(x, z) - kl


def train_vae(model: VAE, X: torch.Tensor, epochs: int = 100, batch_size: int = 128, lr: float = 1e-3,
              seed: int = 0, progress: bool = True, beta: float = 1.0, warmup: int = 0) -> list[float]:
    """Fit a VAE (or a ``DecoderEnsemble``: the mean ELBO of its members) by maximising the ELBO with Adam over
    shuffled mini-batches (one-sample reparametrised estimates). X shape=[N, D] (long [N, L] for "categorical") is moved to the model's device and dtype.
    Seeded: the same model, data and seed give the same weights. Returns the loss history: −ELBO per data
    point, averaged over each epoch (a list of ``epochs`` floats). Shows a tqdm bar unless ``progress=False``.

    KL weight (optional; the defaults maximise the plain ELBO): epoch e = 0, 1, ... maximises
    log p(x|z) − β_e KL(q(z|x) ‖ N(0, I)) with β_e = beta · min(1, (e+1)/warmup) (β_e = beta when warmup = 0).
    A warm-up (KL annealing, Bowman et al. 2016) lets the decoder learn to use z before the KL term pulls
    q(z|x) onto the prior, which prevents posterior collapse onto fewer latent dimensions; beta < 1 keeps a
    weaker pull throughout (a β-VAE). The history always reports the plain −ELBO (β = 1). [Lecture 1]
    """
    from tqdm.auto import tqdm

    from .ensembles import DecoderEnsemble  # M decoders, one encoder: it trains like a VAE (its mean ELBO)

    if not isinstance(model, (VAE, DecoderEnsemble)):
        raise TypeError(f"model must be a VAE or a DecoderEnsemble, got {type(model).__name__}")
    if not (isinstance(beta, (int, float)) and not isinstance(beta, bool) and beta >= 0):
        raise ValueError(f"beta (the KL weight) must be a number ≥ 0, got {beta!r}")
    warmup = _checks.count(warmup, "warmup (epochs of KL warm-up)", minimum=0)
    epochs = _checks.count(epochs, "epochs", minimum=0)
    batch_size = _checks.count(batch_size, "batch_size")
    if not (isinstance(lr, (int, float)) and not isinstance(lr, bool) and lr > 0):
        raise ValueError(f"lr (the learning rate) must be a number > 0, got {lr!r}")
    p = next(model.parameters())
    X = model.check_data(X, support=True)
    X = X.to(p.device) if model.likelihood == "categorical" else X.to(device=p.device, dtype=p.dtype)
    if X.dim() != 2:
        raise ValueError(f"X must be a data set of shape (N, D), got shape {tuple(X.shape)}")
    N = X.shape[0]
    g = torch.Generator(device=p.device).manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    history: list[float] = []
    model.train()
    bar = tqdm(range(epochs), desc=f"VAE({model.likelihood})", disable=not progress)
    for epoch in bar:
        total = 0.0
        w = float(beta) * min(1.0, (epoch + 1) / warmup) if warmup else float(beta)  # this epoch's KL weight
        perm = torch.randperm(N, generator=g, device=p.device)
        for i in range(0, N, batch_size):
            xb = X[perm[i:i + batch_size]]
            if w == 1.0:  # the plain ELBO
                loss = -model.elbo(xb, generator=g).mean()
                elbo_loss = loss.item()
            else:  # the same one-sample estimate as VAE.elbo, with the KL term weighted by w
                q_mu, q_sigma = model.encode(xb)
                eps = torch.randn(q_mu.shape, generator=g, dtype=q_mu.dtype, device=q_mu.device)
                kl = 0.5 * (q_mu.pow(2) + q_sigma.pow(2) - 1 - 2 * q_sigma.log()).sum(-1)
                log_lik = model.log_likelihood(xb, q_mu + q_sigma * eps)
                loss = -(log_lik - w * kl).mean()
                elbo_loss = -(log_lik - kl).mean().item()
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += elbo_loss * len(xb)
        history.append(total / N)
        bar.set_postfix(loss=f"{history[-1]:.3f}")
    model.eval()
    return history


def save_vae(model: VAE, path, **meta) -> None:
    """Save a VAE as {"config", "state_dict", "meta"} (plain tensors, dicts and numbers: loadable with
    ``torch.load(..., weights_only=True)``). Extra keyword arguments go to ``meta`` (data set, epochs, ...)."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    meta = {k: v if type(v) in (int, float, str, bool, type(None)) else str(v) for k, v in meta.items()}  # plain types
    torch.save({"config": dict(model.config), "state_dict": state, "meta": meta}, path)


def load_vae(path, device="cpu") -> VAE:
    """Load a VAE saved by ``save_vae`` (safely: ``weights_only=True``), in eval mode, on ``device``."""
    ckpt = torch.load(path, map_location=device, weights_only=True)
    cfg = dict(ckpt["config"])
    calib = cfg.pop("calibration", None)
    model = VAE(**{k: cfg[k] for k in ("likelihood", "D", "d", "hidden", "n_categories", "min_sigma", "seed")})
    sd = ckpt["state_dict"]
    if calib is not None:
        model.calibration = CalibratedSigma(sd["calibration.centres"], sd["calibration.lam"], sd["calibration.W"],
                                            sd["calibration.zeta"])
        model.config["calibration"] = calib
    model.load_state_dict(sd)
    model.meta = dict(ckpt.get("meta", {}))
    return model.to(device).eval()


def pretrained_names() -> list[str]:
    """The names of the checkpoints shipped in geomlib/checkpoints/."""
    return sorted(p.stem for p in CHECKPOINTS.glob("*.pt"))


def load_pretrained(name: str, device="cpu") -> VAE:
    """A shipped VAE by name (see ``pretrained_names()``; ``scripts/make_checkpoints.py`` made them), with
    ``.meta`` telling how it was trained. [Lectures 1, 3, 5, 6]"""
    path = CHECKPOINTS / f"{name}.pt"
    if not isinstance(name, str) or "/" in name or not path.is_file():
        raise ValueError(f"no pretrained VAE named {name!r}; available: {', '.join(pretrained_names()) or 'none'}")
    return load_vae(path, device=device)
