"""Decoder ensembles: M decoders that share one encoder, and their expected metric. [Lecture 4]

Two trainings of the same VAE on the same data give two different decoders, and far from the data, where nothing
pins a decoder down, they disagree most. An ensemble keeps M decoders f_1, ..., f_M (one encoder) as samples of
that model uncertainty, and measures curves with the expected metric (Syrota, Moreno-Muñoz & Hauberg, "Decoder
ensembling for learned latent geometries", 2024):

    G(z) = E_θ[J_θᵀ J_θ] = (1/M) Σ_m J_m(z)ᵀ J_m(z),        vᵀ G v = (1/M) Σ_m ‖J_m v‖².

Writing J_m = J̄ + (J_m − J̄) gives G = J̄ᵀJ̄ + (1/M) Σ_m (J_m − J̄)ᵀ(J_m − J̄): the pullback of the mean decoder plus
the spread of the decoders' Jacobians, which is large exactly where the members disagree about how the decoded
image changes, so geodesics avoid the regions no member was trained on.

    ens = DecoderEnsemble("normal", D=64, d=2, M=4, seed=0)   # M VAEs, one encoder
    train_vae(ens, X, epochs=300)                             # one call: the mean ELBO over the members
    G = ens.metric()                                          # ensemble_pullback(ens.mus)
    distance_matrix(G, ens.encode(X[:20])[0])                 # geodesic distances, (20, 20)
    save_vae(ens, path); load_ensemble(path)                  # plain tensors, loadable with weights_only=True
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from . import _checks
from .jacobians import _call
from .metrics import Metric, pullback
from .vae import VAE

__all__ = ["ensemble_pullback", "DecoderEnsemble", "load_ensemble"]


def ensemble_pullback(decoders: Sequence[Callable[[torch.Tensor], torch.Tensor]], step: str = "data") -> Metric:
    """The expected metric of an ensemble of decoders f_1, ..., f_M, each z shape=[..., d] -> shape=[..., D]:

        G(z) = (1/M) Σ_m J_m(z)ᵀ J_m(z),     shape=[..., d, d].

    step: "data" (default): a step of a discrete curve has s_n² = (1/M) Σ_m ‖f_m(c_{n+1}) − f_m(c_n)‖², the
    mean over the members of their decoded chords (each point decoded once per member); "midpoint": the
    metric's own quadrature Δcᵀ G(c̄) Δc (see ``pullback``).
    Returns a ``Metric``; with M = 1 it is ``pullback(f_1, step)``. [Lecture 4]

    Algorithmic note: G is the plain pullback through the stacked map z ↦ (f_1(z), ..., f_M(z)) / √M ∈ R^{MD},
    so every piece of ``pullback`` (chunked Jacobians, Jacobian-vector products, the decoded-polygon steps, the
    geodesic equation) serves the ensemble unchanged: one Jacobian costs M decoder passes per tangent direction.
    """
    if callable(decoders) or isinstance(decoders, (str, bytes, torch.Tensor)) or not hasattr(decoders, "__iter__"):
        raise TypeError(f"decoders must be a list of functions z -> x (e.g. [f] for one), got "
                        f"{type(decoders).__name__}")
    fs = list(decoders)
    if not fs:
        raise ValueError("an ensemble needs at least one decoder, got an empty list")
    bad = [i for i, f in enumerate(fs) if not callable(f)]
    if bad:
        raise TypeError(f"every decoder must be a function z -> x; entries {bad} are not callable "
                        f"(the first is a {type(fs[bad[0]]).__name__})")
    M = len(fs)
    if M == 1:
        G = pullback(fs[0], step=step)
        G.name = "ensemble_pullback(M=1)"
        return G

    def stacked(z: torch.Tensor) -> torch.Tensor:
        xs = [_call(f, z, f"decoder {m}") for m, f in enumerate(fs)]  # M tensors (..., D)
        shapes = {tuple(x.shape) for x in xs}
        if len(shapes) > 1:
            raise ValueError(f"the {M} decoders must return the same shape (..., D) for z of shape "
                             f"{tuple(z.shape)}; they gave {[tuple(x.shape) for x in xs]}")
        return torch.cat(xs, dim=-1) * M ** -0.5  # (..., M·D): its JᵀJ is the mean of the members' J_mᵀJ_m

    G = pullback(stacked, step=step)
    G.name = f"ensemble_pullback(M={M})"
    return G


def _member_seeds(seed: int, M: int) -> list[int]:
    """Member 0 gets ``seed`` itself (so an ensemble of one is the VAE of that seed), the others seeds drawn from
    a generator seeded with it: distinct initial decoders, the same for the first k members whatever M is."""
    g = torch.Generator().manual_seed(seed)
    return [seed] + torch.randint(0, 2 ** 31 - 1, (M - 1,), generator=g).tolist()


class DecoderEnsemble(nn.Module):
    """M VAEs with one shared encoder q(z|x) and M decoders p_m(x|z), initialised with different seeds. Final class.

    Trained by ``train_vae`` (one call, one progress bar), which maximises the members' mean ELBO

        E_q(z|x)[ (1/M) Σ_m log p_m(x|z) ] − KL(q(z|x) ‖ N(0, I)),

    one reparametrised code sample shared by all members per data point: the expected ELBO when the decoder's
    parameters θ are uniform over the M members. Each decoder gets the gradient of its own term only, so the
    members differ by their initial weights and agree where the data constrains them.

    Args: likelihood, D, d, hidden, n_categories, min_sigma as for ``VAE``; M, the number of decoders; seed,
    the encoder's and member 0's initial weights (the other members' seeds are drawn from it).
    ``members[m]`` is the m-th VAE (it shares the encoder); ``mus`` their decoder means ("normal" only).
    Members carry no calibrated σ of their own through ``save_vae``/``load_ensemble`` (call ``calibrate`` again).
    [Lecture 4]
    """

    def __init__(self, likelihood: str, D: int, d: int = 2, M: int = 4, hidden: tuple[int, ...] = (128, 128),
                 n_categories: int | None = None, min_sigma: float = 0.01, seed: int = 0):
        super().__init__()
        M = _checks.count(M, "M (the number of decoders)")
        members = [VAE(likelihood, D, d, hidden, n_categories, min_sigma, seed=s) for s in _member_seeds(seed, M)]
        for vae in members[1:]:
            vae.encoder = members[0].encoder  # one encoder: the same module (and parameters) in every member
        # The modules are registered once each (state_dict: encoder.*, decoders.m.*); the member VAEs are a plain
        # list of views onto them, so .to(), .double() and load_state_dict reach them through these modules.
        self.encoder = members[0].encoder
        self.decoders = nn.ModuleList(vae.decoder for vae in members)
        self._members = tuple(members)
        self.config = dict(members[0].config, M=M)
        self.likelihood, self.D, self.d, self.M = likelihood, D, d, M
        self.meta: dict = {}

    @property
    def members(self) -> tuple[VAE, ...]:
        """The M member VAEs; member m decodes with ``decoders[m]``, all encode with the one ``encoder``."""
        return self._members

    def __init_subclass__(cls, **kw):
        raise TypeError("DecoderEnsemble is final")

    def extra_repr(self) -> str:
        return f"M={self.M}, likelihood={self.likelihood!r}, D={self.D}, d={self.d}"

    def check_data(self, x: torch.Tensor, support: bool = False) -> torch.Tensor:
        """As ``VAE.check_data``."""
        return self.members[0].check_data(x, support=support)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The shared q(z|x): x shape=[..., D] -> (q_mu, q_sigma), shape=[..., d] each."""
        return self.members[0].encode(x)

    def log_likelihood(self, x: torch.Tensor, z: torch.Tensor, calibrated: bool = False) -> torch.Tensor:
        """(1/M) Σ_m log p_m(x|z), each summed over the data dims: x shape=[..., D], z shape=[..., d] -> shape=[...]."""
        return torch.stack([vae.log_likelihood(x, z, calibrated=calibrated) for vae in self.members]).mean(0)

    elbo = VAE.elbo  # the same one-sample ELBO, with this class's encode and (mean) log_likelihood

    @property
    def mus(self) -> list[Callable[[torch.Tensor], torch.Tensor]]:
        """The members' decoder means μ_m, each z shape=[..., d] -> shape=[..., D] ("normal" only)."""
        self.members[0]._normal_only("mus")
        return [vae.mu for vae in self.members]

    def metric(self, step: str = "data", first: int | None = None) -> Metric:
        """``ensemble_pullback`` of the decoder means μ_m (of the ``first`` members only, if given)."""
        mus = self.mus
        if first is not None:
            first = _checks.count(first, "first (the number of members)")
            if first > self.M:
                raise ValueError(f"first must be at most M={self.M}, got {first}")
            mus = mus[:first]
        return ensemble_pullback(mus, step=step)


def load_ensemble(path, device="cpu") -> DecoderEnsemble:
    """Load a DecoderEnsemble saved by ``save_vae`` (safely: ``weights_only=True``), in eval mode, on ``device``."""
    ckpt = torch.load(path, map_location=device, weights_only=True)
    cfg = dict(ckpt["config"])
    if "M" not in cfg:
        raise ValueError(f"{path} holds a single VAE (its config has no M); load it with gl.load_vae")
    keys = ("likelihood", "D", "d", "M", "hidden", "n_categories", "min_sigma", "seed")
    model = DecoderEnsemble(**{k: cfg[k] for k in keys})
    model.load_state_dict(ckpt["state_dict"])
    model.meta = dict(ckpt.get("meta", {}))
    return model.to(device).eval()
