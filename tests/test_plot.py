"""geomlib.plot on the Agg backend: the artists carry the numbers of closed forms (polar chart: √det G = r)."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import geomlib as gl  # noqa: E402
import geomlib.plot as gp  # noqa: E402
from conftest import polar  # noqa: E402

D64 = torch.float64
EXTENT = (0.5, 2.5, -1.0, 1.0)  # (r, θ) box for the polar chart


@pytest.fixture
def ax():
    fig, ax = plt.subplots()
    yield ax
    plt.close(fig)


def centres(extent, n):
    x0, x1, y0, y1 = extent
    u = (np.arange(n) + 0.5) / n
    return x0 + (x1 - x0) * u, y0 + (y1 - y0) * u


def test_magnification_grid_polar_is_r():
    xs, ys, M = gp.magnification_grid(gl.pullback(polar), EXTENT, 7, dtype=D64)
    ex, ey = centres(EXTENT, 7)
    np.testing.assert_allclose(xs, ex, rtol=0, atol=1e-14)
    np.testing.assert_allclose(ys, ey, rtol=0, atol=1e-14)
    np.testing.assert_allclose(M, np.broadcast_to(ex, (7, 7)), rtol=1e-12)  # rows run along θ, √det G = r
    _, _, logM = gp.magnification_grid(gl.pullback(polar), EXTENT, 7, log=True, dtype=D64)
    np.testing.assert_allclose(logM, np.log(M), rtol=1e-12)


def test_magnification_image(ax):
    im = gp.magnification(ax, gl.pullback(polar), EXTENT, 5, log=False, colorbar=True, dtype=D64, cmap="magma")
    ex, _ = centres(EXTENT, 5)
    np.testing.assert_allclose(np.asarray(im.get_array()), np.broadcast_to(ex, (5, 5)), rtol=1e-12)
    assert tuple(im.get_extent()) == EXTENT
    assert im.get_cmap().name == "magma"
    assert len(ax.figure.axes) == 2  # the colorbar


@pytest.mark.parametrize("extent", [(0, 1, 0), (1, 0, 0, 1), (0, 1, 2, 2)])
def test_bad_extent(extent):
    with pytest.raises(ValueError, match="extent"):
        gp.magnification_grid(gl.euclidean, extent, 4)


def test_ellipse_semi_axes_diagonal():
    a, b = 4.0, 0.25
    G = lambda z: torch.diag_embed(torch.tensor([a, b], dtype=z.dtype).expand(z.shape))  # noqa: E731
    z = torch.tensor([[0.3, -0.2]], dtype=D64)
    V = gp.ellipse_vertices(G, z, m=401)[0] - z[0]  # (m, 2)
    assert V[:, 0].abs().max().item() == pytest.approx(1 / math.sqrt(a), rel=1e-12)
    assert V[:, 1].abs().max().item() == pytest.approx(1 / math.sqrt(b), rel=1e-12)


def test_ellipse_vertices_on_unit_sphere_of_G(rng):
    A = torch.randn(5, 2, 2, generator=rng, dtype=D64)
    Gz = A @ A.transpose(-1, -2) + 0.1 * torch.eye(2, dtype=D64)  # random SPD, one per point
    z = torch.randn(5, 2, generator=rng, dtype=D64)
    V = gp.ellipse_vertices(lambda zz: Gz, z, scale=1.0, m=33) - z[:, None]  # (5, 33, 2)
    vGv = torch.einsum("bmi,bij,bmj->bm", V, Gz, V)
    torch.testing.assert_close(vGv, torch.ones_like(vGv), rtol=1e-12, atol=1e-12)
    V3 = gp.ellipse_vertices(lambda zz: Gz, z, scale=3.0, m=33) - z[:, None]
    torch.testing.assert_close(V3, 3 * V, rtol=1e-12, atol=1e-12)


def test_ellipses_collection(ax):
    G = gl.pullback(polar)  # diag(1, r²): semi-axes 1 along r, 1/r along θ
    lc = gp.ellipses(ax, G, EXTENT, 3, scale=1.0, dtype=D64)
    segs = lc.get_segments()
    assert len(segs) == 9
    ex, ey = centres(EXTENT, 3)
    Z = np.stack(np.meshgrid(ex, ey), -1).reshape(-1, 2)  # row-major over (θ, r) like the grid
    for s, z in zip(segs, Z):
        v = s - z
        np.testing.assert_allclose(v[:, 0] ** 2 + z[0] ** 2 * v[:, 1] ** 2, 1.0, rtol=1e-10)
    # automatic scale: the largest ellipse fits in 0.45 of a cell
    fig, ax2 = plt.subplots()
    lc2 = gp.ellipses(ax2, G, EXTENT, 4, dtype=D64)
    cx, cy = centres(EXTENT, 4)
    Z4 = np.stack(np.meshgrid(cx, cy), -1).reshape(-1, 2)
    radius = max(np.linalg.norm(s - z, axis=1).max() for s, z in zip(lc2.get_segments(), Z4))
    assert radius == pytest.approx(0.45 * 2.0 / 4, rel=1e-10)
    plt.close(fig)


def test_curves(ax):
    z0 = torch.tensor([[0.0, 0.0], [1.0, 2.0]], dtype=D64)
    c = gl.straight_line(z0, z0 + 1, 9)  # (2, 9, 2)
    lines = gp.curves(ax, c, labels=["a", "b"], color="red")
    assert len(lines) == 2
    for line, cb in zip(lines, c):
        np.testing.assert_array_equal(line.get_xydata(), cb.numpy())
        assert line.get_color() == "red"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    assert len(gp.curves(ax, c[0], endpoints=False)) == 1  # a single curve (T, 2)
    with pytest.raises(ValueError, match="2 curves"):
        gp.curves(ax, c, labels=["a"])
    with pytest.raises(ValueError, match="2-D"):
        gp.curves(ax, torch.zeros(4, 3, dtype=D64))


def test_scatter(ax, rng):
    z = torch.randn(20, 2, generator=rng, dtype=D64)
    y = torch.arange(20) % 3
    sc = gp.scatter(ax, z, y)
    np.testing.assert_array_equal(sc.get_offsets(), z.numpy())
    np.testing.assert_array_equal(sc.get_array(), y.numpy())
    assert len(ax.get_legend().get_texts()) == 3
    assert gp.scatter(ax, z).get_offsets().shape == (20, 2)
    with pytest.raises(ValueError, match="labels must have shape"):
        gp.scatter(ax, z, y[:5])


def test_decode_along_linear_decoder(rng):
    A = torch.randn(2, 64, generator=rng, dtype=D64)
    f = lambda z: z @ A  # noqa: E731
    z0, z1 = torch.tensor([0.0, 1.0], dtype=D64), torch.tensor([2.0, -1.0], dtype=D64)
    c = gl.straight_line(z0, z1, 7)
    x = gp.decode_along(f, c, 5)
    t = torch.linspace(0, 1, 5, dtype=D64)[:, None]
    torch.testing.assert_close(x, ((1 - t) * z0 + t * z1) @ A, rtol=1e-12, atol=1e-12)


def test_decoded_images(ax, rng):
    A = torch.rand(2, 64, generator=rng, dtype=D64)
    f = lambda z: z @ A  # noqa: E731
    c = gl.straight_line(torch.zeros(2, 2, dtype=D64), torch.ones(2, 2, dtype=D64), 6)  # (2, 6, 2)
    im = gp.decoded_images(ax, f, c, n=4)
    mosaic = np.asarray(im.get_array())
    assert mosaic.shape == (2 * 9 - 1, 4 * 9 - 1)  # 8×8 tiles, 1-pixel gaps
    x = gp.decode_along(f, c, 4).numpy()  # (2, 4, 64)
    for r in range(2):
        for k in range(4):
            np.testing.assert_allclose(mosaic[r * 9:r * 9 + 8, k * 9:k * 9 + 8], x[r, k].reshape(8, 8), rtol=1e-12)
    assert np.isnan(mosaic[8, 0]) and np.isnan(mosaic[0, 8])
    with pytest.raises(ValueError, match="not shape"):
        gp.decoded_images(ax, f, c, shape=(4, 4))
