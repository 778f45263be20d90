"""Small data sets for the course, generated or shipped: nothing is downloaded (except by the optional ``mnist``,
and only when asked), and the same seed gives the same tensors. [Lectures 1, 3, 5, 6, 8]

Every function returns torch tensors of the dtype asked for (default: torch's default dtype) on the CPU;
labels are ``torch.long``. Shapes are stated in each docstring: N points of dimension D.

    moons, circle (= ring), spiral   2-D toy sets, X shape=[N, 2]
    digits                           scikit-learn's 8x8 digits scaled to [0, 1], X shape=[N, 64]
    mnist                            optional, never needed by the course: MNIST's 28x28 digits, X shape=[N, 784]
    tree_sequences                   categorical sequences evolved along a random binary tree
    torus_angles                     pairs of angles along a closed loop on the torus, shape=[N, 2]
    sphere_vectors                   unit vectors in S² or S³ along a few smooth paths, shape=[N, 3 or 4]
    motion_demonstrations            poses in R³ × S³ (position, unit quaternion) along a few demonstrated motions
"""
from __future__ import annotations

import gzip
import hashlib
import math
import os
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

__all__ = ["moons", "circle", "ring", "spiral", "digits", "TreeSequences", "tree_sequences", "torus_angles",
           "sphere_vectors", "Demonstrations", "motion_demonstrations", "mnist"]

_MNIST_MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/",
                  "https://storage.googleapis.com/cvdf-datasets/mnist/")
_MNIST_MD5 = {  # the well-known checksums of the four gzipped IDX files (the same as torchvision's)
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


def _gen(seed: int) -> torch.Generator:
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    return torch.Generator().manual_seed(seed)


def _n(n, name: str = "n", least: int = 1) -> int:
    if not isinstance(n, int) or isinstance(n, bool) or n < least:
        raise ValueError(f"{name} must be an int ≥ {least}, got {n!r}")
    return n


def _dtype(dtype):
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point dtype, got {dtype}")
    return dtype


def moons(n: int = 500, noise: float = 0.08, seed: int = 0, dtype=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaving half circles ("moons") with Gaussian noise of std ``noise``.

    Returns X shape=[n, 2] and y shape=[n] (long, 0 for the upper moon, 1 for the lower one).
    """
    n, g, dtype = _n(n, least=2), _gen(seed), _dtype(dtype)
    y = torch.arange(n) % 2  # alternate, so both moons get n/2 points
    t = torch.rand(n, generator=g, dtype=torch.float64) * math.pi
    upper = torch.stack([torch.cos(t), torch.sin(t)], -1)
    lower = torch.stack([1 - torch.cos(t), 0.5 - torch.sin(t)], -1)
    X = torch.where(y[:, None] == 0, upper, lower) + noise * torch.randn(n, 2, generator=g, dtype=torch.float64)
    return X.to(dtype), y


def circle(n: int = 500, radius: float = 1.0, noise: float = 0.05, seed: int = 0, dtype=None):
    """Points on a circle of the given radius, with Gaussian noise of std ``noise`` in the plane.

    Returns X shape=[n, 2] and the angle t shape=[n] in [0, 2π) of each point before the noise.
    """
    n, g, dtype = _n(n), _gen(seed), _dtype(dtype)
    t = torch.rand(n, generator=g, dtype=torch.float64) * 2 * math.pi
    X = radius * torch.stack([torch.cos(t), torch.sin(t)], -1) + noise * torch.randn(n, 2, generator=g,
                                                                                     dtype=torch.float64)
    return X.to(dtype), t.to(dtype)


ring = circle


def spiral(n: int = 500, turns: float = 1.5, noise: float = 0.03, seed: int = 0, dtype=None):
    """An Archimedean spiral r = t/(2π·turns), t ∈ [0, 2π·turns], with Gaussian noise of std ``noise``.

    Returns X shape=[n, 2] (inside the unit disc, up to the noise) and the position s shape=[n] in [0, 1].
    """
    n, g, dtype = _n(n), _gen(seed), _dtype(dtype)
    s = torch.rand(n, generator=g, dtype=torch.float64)
    t = s * 2 * math.pi * turns
    X = s[:, None] * torch.stack([torch.cos(t), torch.sin(t)], -1)
    X = X + noise * torch.randn(n, 2, generator=g, dtype=torch.float64)
    return X.to(dtype), s.to(dtype)


def digits(n: int | None = None, classes=None, binarize: bool = False, seed: int = 0, dtype=None):
    """The 8x8 handwritten digits shipped with scikit-learn (1797 images), pixels scaled to [0, 1].

    Args: n, keep a random subset of n images (None: all, in the shipped order); classes, keep only these
    digit labels (e.g. ``(0, 1, 7)``); binarize, threshold at 0.5 to {0, 1} (for a Bernoulli decoder).
    Returns X shape=[N, 64] (row-major 8x8 images) and y shape=[N] (long, the digit).
    """
    from sklearn.datasets import load_digits  # ships with scikit-learn: no download

    dtype = _dtype(dtype)
    data = load_digits()
    X = torch.as_tensor(data.data, dtype=torch.float64) / 16.0
    X, y = _subset(X, torch.as_tensor(data.target, dtype=torch.long), n, classes, seed)
    if binarize:
        X = (X > 0.5).to(X.dtype)
    return X.to(dtype), y


def _subset(X: torch.Tensor, y: torch.Tensor, n, classes, seed: int):
    """The images whose digit is in ``classes`` (None: all), then a random subset of n of them (None: all)."""
    if classes is not None:
        classes = torch.as_tensor(list(classes), dtype=torch.long)
        bad = classes[(classes < 0) | (classes > 9)]
        if len(bad):
            raise ValueError(f"classes must be digits 0..9, got {bad.tolist()}")
        keep = torch.isin(y, classes)
        X, y = X[keep], y[keep]
    if n is not None:
        if _n(n) > len(y):
            raise ValueError(f"n={n} is more than the {len(y)} images available")
        idx = torch.randperm(len(y), generator=_gen(seed))[:n]
        X, y = X[idx], y[idx]
    return X, y


def mnist(n: int | None = None, classes=None, train: bool = True, binarize: bool = False, root=None,
          download: bool = False, seed: int = 0, dtype=None):
    """MNIST's 28x28 handwritten digits (60,000 training and 10,000 test images), pixels scaled to [0, 1].

    Optional: the course never needs it (``digits`` is shipped); it is read from the four IDX files if they are
    on disk, and downloaded only when asked. Args: n, classes, binarize, seed, as for ``digits``; train, the
    training set (else the test set); root, the folder with ``{train,t10k}-{images-idx3,labels-idx1}-ubyte``,
    gzipped (``.gz``) or not (None: ``$GEOMLIB_DATA/mnist`` if that variable is set, else
    ``~/.cache/geomlib/mnist``); download, fetch the split's missing files from the mirrors, check their
    MD5 and write them atomically. Returns X shape=[N, 784] (row-major 28x28 images) and y shape=[N] (long).
    """
    dtype = _dtype(dtype)
    if root is None:
        root = Path(os.environ.get("GEOMLIB_DATA", "~/.cache/geomlib")) / "mnist"
    root, split = Path(root).expanduser(), "train" if train else "t10k"
    stems = (f"{split}-images-idx3-ubyte", f"{split}-labels-idx1-ubyte")
    paths = [next((p for p in (root / f"{s}.gz", root / s) if p.is_file()), None) for s in stems]
    if download:
        paths = [p or _download(f"{s}.gz", root) for p, s in zip(paths, stems)]
    if None in paths:
        missing = ", ".join(f"{s}(.gz)" for p, s in zip(paths, stems) if p is None)
        raise FileNotFoundError(
            f"MNIST not found: looked in {root} for {missing}. MNIST is optional and the course never needs it. "
            "To get it, call gl.mnist(download=True) when online, or copy the IDX files (gzipped or not) there "
            "(root=... or $GEOMLIB_DATA choose another folder). gl.digits() is the shipped alternative.")
    X, y = torch.from_numpy(_read_idx(paths[0], 3)), torch.from_numpy(_read_idx(paths[1], 1)).long()
    if X.shape[1:] != (28, 28) or len(X) != len(y):
        raise ValueError(f"{paths[0]} holds images of shape {tuple(X.shape)} and {paths[1]} labels of shape "
                         f"{tuple(y.shape)}: expected (N, 28, 28) and (N,)")
    if len(y) and y.max() > 9:
        raise ValueError(f"{paths[1]}: labels must be digits 0..9, found {int(y.max())}")
    X, y = _subset(X.reshape(len(X), 784), y, n, classes, seed)  # (N, 784) uint8: select before converting
    X = (X > 127).to(dtype) if binarize else X.to(dtype) / 255  # p/255 > 0.5 iff p > 127
    return X, y


def _read_idx(path: Path, ndim: int) -> np.ndarray:
    """An IDX file of unsigned bytes (MNIST's format): magic bytes 0 0 8 ndim, ndim big-endian uint32 sizes,
    then the data in row-major order. Returns an array of those sizes, uint8."""
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as f:
            raw = bytearray(f.read())  # writable, so torch.from_numpy shares it without a warning
    except (OSError, EOFError, zlib.error) as err:  # not gzip, or a truncated or corrupt gzip stream
        raise ValueError(f"{path}: cannot be read ({err})") from err
    head = 4 + 4 * ndim
    if raw[:4] != bytes([0, 0, 8, ndim]):
        raise ValueError(f"{path}: magic number 0x{raw[:4].hex()} is not 0x000008{ndim:02x} (an IDX file of "
                         f"unsigned bytes with {ndim} dimension(s))")
    if len(raw) < head:
        raise ValueError(f"{path}: {len(raw)} bytes, shorter than its {head}-byte header (truncated)")
    sizes = tuple(int(s) for s in np.frombuffer(raw, ">u4", ndim, 4))
    if len(raw) - head != math.prod(sizes):
        raise ValueError(f"{path}: {len(raw) - head} data bytes, but its header's sizes {sizes} need "
                         f"{math.prod(sizes)} (truncated or corrupt)")
    return np.frombuffer(raw, np.uint8, offset=head).reshape(sizes)


def _download(name: str, root: Path, timeout: float = 30.0) -> Path:
    """Fetch ``name`` from the first mirror that serves it with the right MD5, into ``root``. The bytes are
    checked in memory and written to a temporary file that is then renamed, so an interrupted download leaves
    no partial file; ``timeout`` (seconds) bounds every network wait, so offline it fails instead of hanging."""
    import http.client
    import urllib.request

    errors = []
    for url in (mirror + name for mirror in _MNIST_MIRRORS):
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                data = response.read()
        except (OSError, http.client.HTTPException) as err:  # URLError, HTTPError, timeouts; a cut-off body
            errors.append(f"{url}: {err}")
            continue
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        if md5 != _MNIST_MD5[name]:
            errors.append(f"{url}: MD5 {md5} is not the expected {_MNIST_MD5[name]}")
            continue
        root.mkdir(parents=True, exist_ok=True)
        tmp = root / f".{name}.{os.getpid()}.part"
        try:
            tmp.write_bytes(data)
            os.replace(tmp, root / name)  # atomic: the file appears whole or not at all
        except BaseException:  # an interrupt too: leave nothing behind
            tmp.unlink(missing_ok=True)
            raise
        return root / name
    raise OSError(f"could not download MNIST's {name}: " + "; ".join(errors) + ". MNIST is optional and the "
                  "course never needs it; gl.digits() is the shipped alternative.")


class TreeSequences(NamedTuple):
    """What ``tree_sequences`` returns (N sequences of length L over A letters, M nodes in the tree)."""

    x: torch.Tensor  # (N, L, A) one-hot float: the observed sequences (the leaves of the tree)
    labels: torch.Tensor  # (N, L) long: the same sequences as letter indices in [0, A)
    clade: torch.Tensor  # (N,) long in [0, n_clades): which of the first n_clades lineages a leaf descends from
    parent: torch.Tensor  # (M,) long: the parent node of every node; −1 for the root (node 0)
    nodes: torch.Tensor  # (M, L) long: the sequence at every node (ancestors included)
    leaf: torch.Tensor  # (N,) long: the node index of each leaf
    depth: torch.Tensor  # (M,) long: the number of branches from the root to each node


def tree_sequences(n: int = 256, length: int = 30, n_letters: int = 20, n_clades: int = 4,
                   mutation_rate: float = 0.05, seed: int = 0, dtype=None) -> TreeSequences:
    """A family of sequences related by a random binary tree, like proteins of one family.

    The tree is a Yule process in continuous time: each of the k current lineages splits at rate 1 (the waiting
    time to the next split is Exp(k)), until there are n lineages; the tree is ultrametric and its early
    branches are long. Along a branch of length τ every position of the sequence mutates, independently, with
    probability 1 − exp(−mutation_rate·τ), to a uniformly chosen other letter. The root sequence is uniform.
    The first ``n_clades`` lineages define the clades: sequences of one clade share more history, so they
    differ less from each other than from sequences of other clades.

    Returns a ``TreeSequences`` (see its fields): x shape=[n, length, n_letters], labels shape=[n, length],
    clade shape=[n], and the whole tree (parent, nodes, leaf, depth) to check that geodesics follow branches.
    """
    n, length, n_letters = _n(n), _n(length, "length"), _n(n_letters, "n_letters", least=2)
    n_clades = _n(n_clades, "n_clades")
    if n_clades > n:
        raise ValueError(f"n_clades={n_clades} must be at most n={n}")
    if not mutation_rate >= 0.0:
        raise ValueError(f"mutation_rate must be ≥ 0, got {mutation_rate}")
    g, dtype = _gen(seed), _dtype(dtype)

    def mutate(s: torch.Tensor, tau: float) -> torch.Tensor:
        hit = torch.rand(length, generator=g, dtype=torch.float64) < -math.expm1(-mutation_rate * tau)
        shift = torch.randint(1, n_letters, (length,), generator=g)  # a different letter, uniformly
        return torch.where(hit, (s + shift) % n_letters, s)

    # nodes[i] is the sequence at the *end* of node i's branch (where it splits, or at the final time)
    nodes = [torch.randint(0, n_letters, (length,), generator=g)]
    parent, depth, clade_of, born = [-1], [0], [0], [0.0]
    alive, t = [0], 0.0  # the current lineages, the current time
    while len(alive) < n:
        t += float(-torch.rand(1, generator=g, dtype=torch.float64).log()) / len(alive)  # Exp(k) waiting time
        p = alive.pop(int(torch.randint(0, len(alive), (1,), generator=g)))
        if p != 0:
            nodes[p] = mutate(nodes[parent[p]], t - born[p])
        for _ in range(2):
            nodes.append(nodes[p])  # placeholder until the branch ends
            parent.append(p)
            depth.append(depth[p] + 1)
            clade_of.append(clade_of[p])
            born.append(t)
            alive.append(len(nodes) - 1)
        if len(alive) == n_clades:  # the lineages alive now found the clades
            for c, node in enumerate(alive):
                clade_of[node] = c
    t += float(-torch.rand(1, generator=g, dtype=torch.float64).log()) / len(alive)  # the leaves' last stretch
    for i in alive:
        if i != 0:
            nodes[i] = mutate(nodes[parent[i]], t - born[i])
    # keep leaves in the order of the tree's nodes, so neighbours in the list are often close relatives
    leaf = torch.tensor(sorted(alive), dtype=torch.long)
    nodes = torch.stack(nodes)  # (M, L)
    labels = nodes[leaf]  # (N, L)
    x = torch.nn.functional.one_hot(labels, n_letters).to(dtype)  # (N, L, A)
    clade = torch.tensor(clade_of, dtype=torch.long)[leaf]
    return TreeSequences(x, labels, clade, torch.tensor(parent), nodes, leaf, torch.tensor(depth))


def torus_angles(n: int = 500, noise: float = 0.1, seed: int = 0, dtype=None):
    """Pose-like pairs of joint angles along a closed loop on the torus (like hip and knee through a stride).

    The loop is θ₁ = t, θ₂ = 1.2 sin(2t) + 0.8 for t ∈ [0, 2π): it winds once around the first circle and
    oscillates on the second. Gaussian noise of std ``noise`` is added to both angles, and they are wrapped to
    [−π, π). Returns angles shape=[n, 2] and the loop parameter t shape=[n].
    """
    n, g, dtype = _n(n), _gen(seed), _dtype(dtype)
    t = torch.rand(n, generator=g, dtype=torch.float64) * 2 * math.pi
    theta = torch.stack([t, 1.2 * torch.sin(2 * t) + 0.8], -1)
    theta = theta + noise * torch.randn(n, 2, generator=g, dtype=torch.float64)
    theta = torch.remainder(theta + math.pi, 2 * math.pi) - math.pi
    return theta.to(dtype), t.to(dtype)


def sphere_vectors(n: int = 300, dim: int = 3, n_paths: int = 3, arc: float = 2.0, noise: float = 0.05,
                   seed: int = 0, dtype=None):
    """Orientation-like unit vectors in S^{dim−1} (dim = 3: directions; dim = 4: unit quaternions) along
    ``n_paths`` great-circle arcs of angle ``arc`` through random points in random directions.

    Gaussian noise of std ``noise`` is added in R^dim and the vectors are normalised back onto the sphere.
    Returns X shape=[n, dim] (unit rows), the path label shape=[n] (long) and the arc position s shape=[n]
    in [0, 1].
    """
    n, g, dtype = _n(n), _gen(seed), _dtype(dtype)
    if dim not in (3, 4):
        raise ValueError(f"dim must be 3 (S²) or 4 (S³), got {dim}")
    n_paths = _n(n_paths, "n_paths")
    start = torch.randn(n_paths, dim, generator=g, dtype=torch.float64)
    start = start / start.norm(dim=-1, keepdim=True)
    direction = torch.randn(n_paths, dim, generator=g, dtype=torch.float64)
    direction = direction - (direction * start).sum(-1, keepdim=True) * start  # tangent at start
    direction = direction / direction.norm(dim=-1, keepdim=True)
    path = torch.arange(n) % n_paths
    s = torch.rand(n, generator=g, dtype=torch.float64)
    angle = (s * arc)[:, None]
    X = torch.cos(angle) * start[path] + torch.sin(angle) * direction[path]  # on the great circle
    X = X + noise * torch.randn(n, dim, generator=g, dtype=torch.float64)
    X = X / X.norm(dim=-1, keepdim=True)
    return X.to(dtype), path, s.to(dtype)


class Demonstrations(NamedTuple):
    """What ``motion_demonstrations`` returns (N = n_demos · n poses)."""

    x: torch.Tensor  # (N, 7): position p ∈ R³ (metres), then the unit quaternion q = (w, x, y, z) of the orientation
    demo: torch.Tensor  # (N,) long in [0, n_demos): which demonstration a pose belongs to
    t: torch.Tensor  # (N,) the phase of the motion in [0, 1], uniform within a demonstration
    clean: torch.Tensor  # (N, 7): the same poses without noise


def _qmul(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The Hamilton product a ⊗ b of quaternions (w, x, y, z), shape=[..., 4]."""
    aw, av, bw, bv = a[..., :1], a[..., 1:], b[..., :1], b[..., 1:]
    return torch.cat([aw * bw - (av * bv).sum(-1, keepdim=True),
                      aw * bv + bw * av + torch.linalg.cross(av, bv, dim=-1)], -1)


def _qexp(omega: torch.Tensor) -> torch.Tensor:
    """The unit quaternion of the rotation vector ω (angle ‖ω‖ about ω/‖ω‖), shape=[..., 3] -> [..., 4]."""
    angle = omega.norm(dim=-1, keepdim=True)
    half = 0.5 * angle
    sinc = torch.where(angle > 1e-12, torch.sin(half) / angle.clamp_min(1e-300), 0.5 - angle ** 2 / 48)
    return torch.cat([torch.cos(half), sinc * omega], -1)


def motion_demonstrations(n_demos: int = 4, n: int = 100, noise: float = 0.003, angle_noise: float = 0.02,
                          seed: int = 0, dtype=None) -> Demonstrations:
    """Demonstrations of a reach-and-turn skill of a robot's end-effector, as poses in R³ × S³.

    Every demonstration starts at the same pose, above the middle of a table with the gripper pointing down
    (q₀ = (0, 1, 0, 0), a half-turn about the x-axis), and ends at its own goal on a half circle of radius 0.25 m,
    15 cm lower, facing it. Demonstration k (of K = n_demos), at phase t ∈ [0, 1] with b(t) = 3t² − 2t³:

        φ_k   = (k/(K−1) − ½)·π                                 the direction of its goal (φ_0 = 0 when K = 1)
        p_k(t) = p₀ + b(t)(g_k − p₀) + 0.08·sin(πt)·e_z,        p₀ = (0.45, 0, 0.30), g_k = (0.45 + 0.25 cos φ_k,
                                                                0.25 sin φ_k, 0.15)
        q_k(t) = q₀ ⊗ exp(b(t)·ω_k/2),                          ω_k = (0, 0.6, φ_k): turn about the tool's z-axis
                                                                to face the goal, and tilt by 0.6 rad

    The whole turn is less than half a revolution, so every q_k(t) has ⟨q_k(t), q₀⟩ = cos(b‖ω_k‖/2) > 0: the
    quaternions lie in one hemisphere of S³, and the sign of each (q and −q are the same rotation) is chosen so.
    Noise: Gaussian of std ``noise`` (metres) on the positions, and a random rotation q ← q ⊗ exp(ε/2) with
    ε ~ N(0, angle_noise² I₃) (radians) on the orientations; the sign is kept in the same hemisphere.

    Returns ``Demonstrations(x, demo, t, clean)``: x shape=[n_demos·n, 7] (position, then the quaternion
    (w, x, y, z) with unit norm), demo and t shape=[n_demos·n], clean the noise-free poses. [Lecture 8]
    """
    n_demos, n, dtype = _n(n_demos, "n_demos"), _n(n, least=2), _dtype(dtype)
    if not (noise >= 0 and angle_noise >= 0):
        raise ValueError(f"noise and angle_noise must be ≥ 0, got {noise} and {angle_noise}")
    g = _gen(seed)
    f64 = dict(dtype=torch.float64)
    t = torch.linspace(0, 1, n, **f64).repeat(n_demos)  # (N,)
    demo = torch.arange(n_demos).repeat_interleave(n)  # (N,)
    phi = (demo.to(torch.float64) / max(n_demos - 1, 1) - 0.5) * math.pi if n_demos > 1 else torch.zeros(n, **f64)
    b = (3 * t ** 2 - 2 * t ** 3)[:, None]  # (N, 1) smooth start and stop
    p0 = torch.tensor([0.45, 0.0, 0.30], **f64)
    goal = torch.stack([0.45 + 0.25 * phi.cos(), 0.25 * phi.sin(), torch.full_like(phi, 0.15)], -1)  # (N, 3)
    lift = 0.08 * torch.sin(math.pi * t)[:, None] * torch.tensor([0.0, 0.0, 1.0], **f64)
    p = p0 + b * (goal - p0) + lift  # (N, 3)
    q0 = torch.tensor([0.0, 1.0, 0.0, 0.0], **f64).expand(len(t), 4)
    omega = torch.stack([torch.zeros_like(phi), torch.full_like(phi, 0.6), phi], -1)  # (N, 3)
    q = _qmul(q0, _qexp(b * omega))  # (N, 4)
    clean = torch.cat([p, q], -1)
    p_noisy = p + noise * torch.randn(p.shape, generator=g, **f64)
    q_noisy = _qmul(q, _qexp(angle_noise * torch.randn(len(t), 3, generator=g, **f64)))
    q_noisy = q_noisy / q_noisy.norm(dim=-1, keepdim=True)
    q_noisy = torch.where((q_noisy * q0).sum(-1, keepdim=True) < 0, -q_noisy, q_noisy)  # the hemisphere of q₀
    x = torch.cat([p_noisy, q_noisy], -1)
    return Demonstrations(x.to(dtype), demo, t.to(dtype), clean.to(dtype))
