"""geomlib.data: shapes, dtypes, determinism, and the structure each data set promises."""
from __future__ import annotations

import math

import pytest
import torch

import geomlib as gl

GENERATED = {  # name -> call with a seed; the first output is the data
    "moons": lambda seed, dtype: gl.moons(n=101, seed=seed, dtype=dtype),
    "circle": lambda seed, dtype: gl.circle(n=50, seed=seed, dtype=dtype),
    "spiral": lambda seed, dtype: gl.spiral(n=60, seed=seed, dtype=dtype),
    "digits": lambda seed, dtype: gl.digits(n=100, seed=seed, dtype=dtype),
    "tree": lambda seed, dtype: gl.tree_sequences(n=40, seed=seed, dtype=dtype),
    "torus": lambda seed, dtype: gl.torus_angles(n=70, seed=seed, dtype=dtype),
    "sphere": lambda seed, dtype: gl.sphere_vectors(n=30, dim=4, seed=seed, dtype=dtype),
}
SHAPES = {"moons": (101, 2), "circle": (50, 2), "spiral": (60, 2), "digits": (100, 64), "tree": (40, 30, 20),
          "torus": (70, 2), "sphere": (30, 4)}


@pytest.mark.parametrize("name", sorted(GENERATED))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shapes_dtypes_and_determinism(name, dtype):
    a, b, c = (GENERATED[name](s, dtype) for s in (0, 0, 1))
    assert a[0].shape == SHAPES[name] and a[0].dtype == dtype
    assert torch.isfinite(a[0]).all()
    for u, v in zip(a, b):  # the same seed gives the same tensors, every output
        assert torch.equal(u, v)
    assert not torch.equal(a[0], c[0])  # another seed gives other data


def test_moons_two_half_circles():
    X, y = gl.moons(n=400, noise=0.0, seed=3, dtype=torch.float64)
    assert y.dtype == torch.long and torch.equal(y.bincount(), torch.tensor([200, 200]))
    upper, lower = X[y == 0], X[y == 1]
    torch.testing.assert_close(upper.norm(dim=-1), torch.ones(200, dtype=torch.float64))
    torch.testing.assert_close((lower - torch.tensor([1.0, 0.5], dtype=torch.float64)).norm(dim=-1),
                               torch.ones(200, dtype=torch.float64))
    assert (upper[:, 1] >= 0).all() and (lower[:, 1] <= 0.5).all()


def test_circle_and_spiral_without_noise():
    X, t = gl.circle(n=64, radius=2.0, noise=0.0, dtype=torch.float64)
    torch.testing.assert_close(X, 2 * torch.stack([t.cos(), t.sin()], -1))
    assert gl.ring is gl.circle
    X, s = gl.spiral(n=64, turns=2.0, noise=0.0, dtype=torch.float64)
    torch.testing.assert_close(X.norm(dim=-1), s)  # r = s on an Archimedean spiral
    assert ((s >= 0) & (s <= 1)).all()


def test_digits():
    X, y = gl.digits(dtype=torch.float64)
    assert X.shape == (1797, 64) and y.shape == (1797,) and y.dtype == torch.long
    assert X.min() == 0 and X.max() == 1 and set(y.tolist()) == set(range(10))
    X2, y2 = gl.digits(classes=(0, 7))
    assert set(y2.tolist()) == {0, 7} and len(y2) == int(((y == 0) | (y == 7)).sum())
    Xb, _ = gl.digits(binarize=True)
    assert set(Xb.unique().tolist()) == {0.0, 1.0}
    with pytest.raises(ValueError, match="digits 0..9"):
        gl.digits(classes=(3, 12))
    with pytest.raises(ValueError, match="more than"):
        gl.digits(n=5000)


def test_tree_sequences_structure():
    n, L, A = 128, 25, 7
    t = gl.tree_sequences(n=n, length=L, n_letters=A, n_clades=4, seed=2, dtype=torch.float64)
    M = 2 * n - 1  # a binary tree with n leaves has 2n − 1 nodes
    assert t.x.shape == (n, L, A) and t.labels.shape == (n, L) and t.clade.shape == (n,)
    assert t.parent.shape == (M,) and t.nodes.shape == (M, L) and t.depth.shape == (M,)
    torch.testing.assert_close(t.x.sum(-1), torch.ones(n, L, dtype=torch.float64))  # one-hot
    assert torch.equal(t.x.argmax(-1), t.labels) and torch.equal(t.nodes[t.leaf], t.labels)
    assert t.labels.min() >= 0 and t.labels.max() < A
    assert t.parent[0] == -1 and (t.parent[1:] >= 0).all()
    assert torch.equal(t.depth[1:], t.depth[t.parent[1:]] + 1)
    children = torch.bincount(t.parent[1:], minlength=M)
    assert set(children.tolist()) == {0, 2} and torch.equal(torch.nonzero(children == 0)[:, 0], t.leaf)
    assert set(t.clade.tolist()) == {0, 1, 2, 3}


def test_tree_sequences_clades_differ_more_between_than_within():
    for seed in range(3):
        t = gl.tree_sequences(n=200, seed=seed)
        h = (t.labels[:, None] != t.labels[None]).double().mean(-1)  # Hamming distance, (n, n)
        same = t.clade[:, None] == t.clade[None]
        off = ~torch.eye(len(h), dtype=torch.bool)
        assert h[same & off].mean() + 0.05 < h[~same].mean()


def test_tree_sequences_mutation_rate_zero_copies_the_root():
    t = gl.tree_sequences(n=16, mutation_rate=0.0, seed=1)
    assert (t.labels == t.nodes[0]).all()


def test_torus_angles_wrapped_and_on_the_loop():
    theta, t = gl.torus_angles(n=500, noise=0.0, seed=0, dtype=torch.float64)
    assert ((theta >= -math.pi) & (theta < math.pi)).all()
    # without noise, the angles are the loop (t, 1.2 sin 2t + 0.8) up to multiples of 2π
    loop = torch.stack([t, 1.2 * torch.sin(2 * t) + 0.8], -1)
    torch.testing.assert_close(torch.cos(theta - loop), torch.ones_like(theta))


@pytest.mark.parametrize("dim", [3, 4])
def test_sphere_vectors_on_great_circle_arcs(dim):
    X, path, s = gl.sphere_vectors(n=90, dim=dim, n_paths=3, noise=0.0, seed=5, dtype=torch.float64)
    torch.testing.assert_close(X.norm(dim=-1), torch.ones(90, dtype=torch.float64))
    assert set(path.tolist()) == {0, 1, 2}
    for p in range(3):  # points of one noise-free path span a plane through the origin (a great circle)
        sv = torch.linalg.svdvals(X[path == p])
        assert sv[2] < 1e-10 * sv[0]
    with pytest.raises(ValueError, match="dim must be 3"):
        gl.sphere_vectors(dim=5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="n must be"):
        gl.moons(n=0)
    with pytest.raises(TypeError, match="seed"):
        gl.circle(seed=1.5)
    with pytest.raises(TypeError, match="floating-point"):
        gl.moons(dtype=torch.long)
    with pytest.raises(ValueError, match="n_clades"):
        gl.tree_sequences(n=3, n_clades=5)
