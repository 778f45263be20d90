"""geomlib.data: shapes, dtypes, determinism, and the structure each data set promises."""
from __future__ import annotations

import gzip
import hashlib
import io
import math
import urllib.error
import urllib.request

import numpy as np
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


# --- gl.mnist: optional, so every test writes tiny synthetic IDX files and none touches the network ---------

def _idx_bytes(a, gz: bool) -> bytes:
    """An IDX file of unsigned bytes holding a (magic 0 0 8 ndim, big-endian uint32 sizes, data)."""
    raw = bytes([0, 0, 8, a.ndim]) + np.asarray(a.shape, ">u4").tobytes() + a.astype(np.uint8).tobytes()
    return gzip.compress(raw) if gz else raw


@pytest.fixture
def mnist_files(tmp_path):
    """A 30-image training split (gzipped) and a 12-image test split (raw) with every pixel value from 0 to 255;
    returns the folder and the arrays."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, N, gz in (("train", 30, True), ("t10k", 12, False)):
        images = rng.integers(0, 256, (N, 28, 28), dtype=np.uint8)
        images.flat[:256] = np.arange(256)
        labels = np.arange(N, dtype=np.uint8) % 10
        for stem, a in ((f"{split}-images-idx3-ubyte", images), (f"{split}-labels-idx1-ubyte", labels)):
            (tmp_path / (stem + ".gz" * gz)).write_bytes(_idx_bytes(a, gz))
        arrays[split] = images, labels
    return tmp_path, arrays


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_mnist_reads_gzipped_and_raw_idx_files(mnist_files, train, dtype):
    root, arrays = mnist_files
    images, labels = arrays["train" if train else "t10k"]
    X, y = gl.mnist(train=train, root=root, dtype=dtype)
    assert X.shape == (len(labels), 784) and X.dtype == dtype and y.dtype == torch.long
    torch.testing.assert_close(X, torch.tensor(images.reshape(-1, 784), dtype=dtype) / 255, rtol=0, atol=0)
    assert torch.equal(y, torch.tensor(labels, dtype=torch.long))
    assert X.min() == 0 and X.max() == 1


def test_mnist_classes_n_seed_and_binarize_behave_as_for_digits(mnist_files):
    root, arrays = mnist_files
    X, y = gl.mnist(root=root, dtype=torch.float64)
    X2, y2 = gl.mnist(classes=(0, 7), root=root, dtype=torch.float64)
    keep = (y == 0) | (y == 7)
    assert torch.equal(X2, X[keep]) and torch.equal(y2, y[keep])
    a, b, c = (gl.mnist(n=10, root=root, seed=s) for s in (0, 0, 1))
    assert a[0].shape == (10, 784) and torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])
    idx = torch.randperm(30, generator=torch.Generator().manual_seed(0))[:10]  # the seeded subset of digits
    assert torch.equal(a[1], y[idx])
    Xb, _ = gl.mnist(binarize=True, root=root, dtype=torch.float64)
    assert torch.equal(Xb, (X > 0.5).double()) and set(Xb.unique().tolist()) == {0.0, 1.0}
    with pytest.raises(ValueError, match="digits 0..9"):
        gl.mnist(classes=(3, 12), root=root)
    with pytest.raises(ValueError, match="more than"):
        gl.mnist(n=31, root=root)
    with pytest.raises(TypeError, match="floating-point"):
        gl.mnist(root=root, dtype=torch.long)


def test_mnist_default_root_and_geomlib_data(mnist_files, tmp_path, monkeypatch):
    source, arrays = mnist_files
    (tmp_path / "data" / "mnist").mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (source / name).rename(tmp_path / "data" / "mnist" / name)
    monkeypatch.setenv("GEOMLIB_DATA", str(tmp_path / "data"))  # MNIST then lives in $GEOMLIB_DATA/mnist
    assert torch.equal(gl.mnist(train=False)[1], torch.tensor(arrays["t10k"][1], dtype=torch.long))
    monkeypatch.delenv("GEOMLIB_DATA")
    monkeypatch.setenv("HOME", str(tmp_path))  # the default, ~/.cache/geomlib/mnist, inside tmp_path
    with pytest.raises(FileNotFoundError, match=str(tmp_path / ".cache" / "geomlib" / "mnist")):
        gl.mnist()


def test_mnist_missing_files_say_where_and_how(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        gl.mnist(root=tmp_path / "nowhere")
    message = str(err.value)
    for words in (str(tmp_path / "nowhere"), "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "optional",
                  "download=True", "copy", "gl.digits()"):
        assert words in message
    assert not (tmp_path / "nowhere").exists()  # looking creates nothing


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_corrupt_files_are_named_with_what_is_wrong(tmp_path, gz):
    images = np.zeros((4, 28, 28), np.uint8)
    name, labels_name = "train-images-idx3-ubyte" + ".gz" * gz, "train-labels-idx1-ubyte" + ".gz" * gz
    (tmp_path / labels_name).write_bytes(_idx_bytes(np.arange(4), gz))
    raw = _idx_bytes(images, gz=False)
    cases = {  # what the error says -> the content of the images file
        "magic number 0x00000801 is not 0x00000803": b"\x00\x00\x08\x01" + raw[4:],
        "shorter than its 16-byte header": raw[:10],
        r"3135 data bytes, but its header's sizes \(4, 28, 28\) need 3136": raw[:-1],
        r"expected \(N, 28, 28\)": _idx_bytes(np.zeros((4, 27, 28)), gz=False),
    }
    for match, content in cases.items():
        (tmp_path / name).write_bytes(gzip.compress(content) if gz else content)
        with pytest.raises(ValueError, match=match) as err:
            gl.mnist(root=tmp_path)
        assert str(tmp_path / name) in str(err.value)
    if gz:  # a gzip stream cut short, and a file that is no gzip at all
        for content in (gzip.compress(raw)[:-20], raw):
            (tmp_path / name).write_bytes(content)
            with pytest.raises(ValueError, match="cannot be read"):
                gl.mnist(root=tmp_path)
    (tmp_path / name).write_bytes(_idx_bytes(images, gz))
    (tmp_path / labels_name).write_bytes(_idx_bytes(np.array([1, 2, 3, 10]), gz))
    with pytest.raises(ValueError, match="labels must be digits 0..9, found 10"):
        gl.mnist(root=tmp_path)
    (tmp_path / labels_name).write_bytes(_idx_bytes(np.arange(3), gz))
    with pytest.raises(ValueError, match="labels of shape \\(3,\\)"):
        gl.mnist(root=tmp_path)


class _FakeWeb:
    """Stands in for urllib.request.urlopen: serves bytes from memory, URLError for any other address."""

    def __init__(self, pages):
        self.pages, self.asked = pages, []

    def __call__(self, url, timeout=None):
        self.asked.append((url, timeout))
        if url not in self.pages:
            raise urllib.error.URLError(f"[Errno -3] no network for {url}")
        return io.BytesIO(self.pages[url])


@pytest.fixture
def fake_mnist_web(mnist_files, monkeypatch):
    """The synthetic training split as served by the second mirror (the first serves a wrong file), with the
    checksum table patched to the synthetic files' MD5s."""
    source, _ = mnist_files
    first, second = gl.data._MNIST_MIRRORS
    pages = {}
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        content = (source / name).read_bytes()
        monkeypatch.setitem(gl.data._MNIST_MD5, name, hashlib.md5(content).hexdigest())
        pages[first + name], pages[second + name] = content[:-1] + b"!", content
    web = _FakeWeb(pages)
    monkeypatch.setattr(urllib.request, "urlopen", web)
    return web


def test_mnist_download_checks_md5_and_falls_back_to_the_next_mirror(mnist_files, fake_mnist_web, tmp_path):
    source, arrays = mnist_files
    root = tmp_path / "cache" / "mnist"
    X, y = gl.mnist(root=root, download=True, dtype=torch.float64)
    assert torch.equal(y, torch.tensor(arrays["train"][1], dtype=torch.long))
    assert torch.equal(X, gl.mnist(root=source, dtype=torch.float64)[0])
    assert sorted(p.name for p in root.iterdir()) == ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    assert len(fake_mnist_web.asked) == 4 and all(t is not None and 0 < t < 600 for _, t in fake_mnist_web.asked)
    gl.mnist(root=root, download=True)  # files on disk are not fetched again
    assert len(fake_mnist_web.asked) == 4


def test_mnist_download_rejects_a_wrong_file_and_leaves_nothing(fake_mnist_web, tmp_path, monkeypatch):
    monkeypatch.setitem(gl.data._MNIST_MD5, "train-images-idx3-ubyte.gz", "0" * 32)  # no mirror has it right
    root = tmp_path / "cache"
    with pytest.raises(OSError, match="MD5") as err:
        gl.mnist(root=root, download=True)
    assert "optional" in str(err.value) and "gl.digits()" in str(err.value)
    assert not root.exists() or not any(root.iterdir())


def test_mnist_interrupted_download_leaves_no_file(fake_mnist_web, tmp_path, monkeypatch):
    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(gl.data.os, "replace", interrupted)  # interrupted just before the rename
    root = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        gl.mnist(root=root, download=True)
    assert not any(root.iterdir())  # neither the temporary file nor a partial one


def test_mnist_offline_download_fails_clearly(tmp_path, monkeypatch):
    web = _FakeWeb({})
    monkeypatch.setattr(urllib.request, "urlopen", web)
    with pytest.raises(OSError, match="could not download MNIST's train-images-idx3-ubyte.gz") as err:
        gl.mnist(root=tmp_path, download=True)
    for mirror in gl.data._MNIST_MIRRORS:
        assert mirror in str(err.value)
    assert "no network" in str(err.value) and "gl.digits()" in str(err.value)
    assert len(web.asked) == 2 and all(t is not None for _, t in web.asked)  # every attempt has a timeout
    assert not any(tmp_path.iterdir())


def test_motion_demonstrations_follow_their_formulas():
    d = gl.motion_demonstrations(n_demos=4, n=50, dtype=torch.float64)
    assert d.x.shape == (200, 7) and d.clean.shape == (200, 7) and d.demo.dtype == torch.long
    assert torch.equal(d.demo.bincount(), torch.full((4,), 50)) and d.t.min() == 0 and d.t.max() == 1
    q0 = torch.tensor([0.0, 1.0, 0.0, 0.0], dtype=torch.float64)
    for x in (d.x, d.clean):  # unit quaternions, all in the hemisphere of the start orientation q₀
        torch.testing.assert_close(x[:, 3:].norm(dim=-1), torch.ones(200, dtype=torch.float64))
        assert bool(((x[:, 3:] * q0).sum(-1) > 0).all())
    start, end = d.clean[d.t == 0], d.clean[d.t == 1]  # (4, 7) each
    torch.testing.assert_close(start, torch.tensor([0.45, 0.0, 0.30, 0, 1, 0, 0], dtype=torch.float64).expand(4, 7))
    phi = torch.tensor([-0.5, -1 / 6, 1 / 6, 0.5], dtype=torch.float64) * math.pi
    goal = torch.stack([0.45 + 0.25 * phi.cos(), 0.25 * phi.sin(), torch.full_like(phi, 0.15)], -1)
    torch.testing.assert_close(end[:, :3], goal)
    # the end orientation is turned from q₀ by the angle ‖ω_k‖ = √(0.6² + φ_k²): cos(angle/2) = ⟨q, q₀⟩
    torch.testing.assert_close(2 * torch.arccos((end[:, 3:] * q0).sum(-1)), (0.36 + phi ** 2).sqrt())
    # halfway, b(½) = ½ and the lift is at its highest, 8 cm
    d2 = gl.motion_demonstrations(n_demos=4, n=3, noise=0.0, angle_noise=0.0, dtype=torch.float64)
    half = d2.x[d2.t == 0.5]
    want = 0.5 * (torch.tensor([0.45, 0.0, 0.30], dtype=torch.float64) + goal) + torch.tensor([0, 0, 0.08], dtype=torch.float64)
    torch.testing.assert_close(half[:, :3], want)
    torch.testing.assert_close(d2.x, d2.clean)
    # noise of the stated sizes: positions in metres, orientations as rotation angles in radians
    big = gl.motion_demonstrations(n=2000, noise=0.01, angle_noise=0.05, dtype=torch.float64)
    dp = big.x[:, :3] - big.clean[:, :3]
    assert abs(dp.std().item() - 0.01) < 5e-4
    ang = 2 * torch.arccos((big.x[:, 3:] * big.clean[:, 3:]).sum(-1).abs().clamp(max=1))  # sign-free angle
    assert abs(ang.pow(2).mean().sqrt().item() - 0.05 * math.sqrt(3)) < 3e-3  # ‖ε‖ for ε ~ N(0, 0.05² I₃)


def test_motion_demonstrations_seeded_and_checked():
    a, b, c = (gl.motion_demonstrations(n=10, seed=s) for s in (0, 0, 1))
    assert all(torch.equal(u, v) for u, v in zip(a, b)) and not torch.equal(a.x, c.x)
    assert torch.equal(a.clean, c.clean)
    one = gl.motion_demonstrations(n_demos=1, n=5, dtype=torch.float64)
    assert one.x.shape == (5, 7) and torch.allclose(one.clean[-1, 1], torch.tensor(0.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="noise"):
        gl.motion_demonstrations(noise=-1.0)
    with pytest.raises(ValueError, match="n must be an int"):
        gl.motion_demonstrations(n=1)
