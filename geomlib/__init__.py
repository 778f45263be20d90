"""geomlib: the geometry of latent spaces of deep generative models, in PyTorch.

Notation (the same as in the lectures, see lectures/01_*.ipynb):

    z ∈ R^d        a latent point, shape (..., d)          x ∈ R^D     a data point, shape (..., D)
    f : z ↦ x      a decoder (deterministic)              mu, sigma   mean and std of a stochastic decoder
    J = ∂f/∂z      Jacobian, shape (..., D, d)            G = JᵀJ     metric, shape (..., d, d), always full
    c(t)           a curve, t ∈ [0, 1]; discrete curves have shape (..., T, d) on t_n = n/(T-1)
    dc = ċ         its velocity, shape (..., T, d)        B           a batch of curves or endpoint pairs

Conventions, stated once (and tested in tests/test_lengths.py):

    length  L[c] = ∫₀¹ √(ċᵀ G(c) ċ) dt
    energy  E[c] = ½ ∫₀¹ ċᵀ G(c) ċ dt
    discretised on T points with Δt = 1/(T-1): with s_n² the squared metric length of step n,
    L ≈ Σ s_n and E ≈ ½ (T-1) Σ s_n², so L² ≤ 2E with equality exactly at constant speed.
    For a Fisher–Rao metric with KL steps (s_n² = 2 KL(p_n ‖ p_{n+1})): E ≈ (T-1) Σ KL(p_n ‖ p_{n+1}).

The module list is the table of contents, in lecture order:
jacobians, curves, lengths, metrics, geodesics, stochastic, fisher, distributions, vae, ensembles, data, statistics,
plot, widgets.
Plotting and widgets are not imported here: ``import geomlib.plot`` / ``import geomlib.widgets``.
"""
from .jacobians import *  # noqa: F401,F403
from .curves import *  # noqa: F401,F403
from .lengths import *  # noqa: F401,F403
from .metrics import *  # noqa: F401,F403
from .geodesics import *  # noqa: F401,F403
from .stochastic import *  # noqa: F401,F403
from .distributions import *  # noqa: F401,F403
from .fisher import *  # noqa: F401,F403
from .vae import *  # noqa: F401,F403
from .ensembles import *  # noqa: F401,F403
from .data import *  # noqa: F401,F403
from .statistics import *  # noqa: F401,F403

from . import (jacobians, curves, lengths, metrics, geodesics, stochastic, distributions, fisher, vae,  # noqa: E402
               ensembles, data, statistics)

__version__ = "0.1.0"
__all__ = [name for m in (jacobians, curves, lengths, metrics, geodesics, stochastic, distributions, fisher, vae, ensembles,
                          data, statistics)
           for name in m.__all__]
