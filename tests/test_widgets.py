"""geomlib.widgets, headless: the frames are the solver's iterates, and the FigureWidget shows what gl.geodesic gives.

The polar chart (r, θ) -> (r cos θ, r sin θ) has straight Cartesian segments as geodesics, so lengths have a closed
form: the distance between the decoded endpoints.
"""
from __future__ import annotations

import base64
import json

import numpy as np
import pytest
import torch
from plotly.callbacks import Points

import geomlib as gl
import geomlib.widgets as gw
from geomlib.plot import magnification_grid
from conftest import polar

D64 = torch.float64
Z0 = torch.tensor([1.0, -0.6], dtype=D64)
Z1 = torch.tensor([1.5, 0.9], dtype=D64)
EXTENT = (0.5, 2.0, -1.0, 1.2)


def chord(z0, z1):
    return (polar(z0) - polar(z1)).norm().item()


def test_frames_are_solver_iterates():
    G = gl.pullback(polar)
    seen = []
    ref = gl.geodesic(G, Z0, Z1, 16, max_iter=200, callback=lambda it, c: seen.append(c[0].clone()))
    fr = gw.geodesic_frames(G, Z0, Z1, 16, max_iter=200, max_frames=1000)
    K = fr.curves.shape[0]
    assert K == len(seen) + 1 and fr.iterations.tolist() == list(range(K))
    torch.testing.assert_close(fr.curves[0], gl.straight_line(Z0, Z1, 16), rtol=0, atol=0)
    torch.testing.assert_close(fr.curves[1:], torch.stack(seen), rtol=0, atol=0)
    torch.testing.assert_close(fr.curves[-1], ref.curve[0], rtol=0, atol=0)
    torch.testing.assert_close(fr.lengths, gl.length(fr.curves, G), rtol=1e-14, atol=0)
    torch.testing.assert_close(fr.energies, gl.energy(fr.curves, G), rtol=1e-14, atol=0)
    assert fr.lengths[-1].item() == pytest.approx(ref.length.item(), rel=1e-14)
    assert fr.lengths[-1].item() == pytest.approx(chord(Z0, Z1), rel=2e-3)  # closed form, up to discretisation
    assert bool((fr.energies[1:] <= fr.energies[:-1] + 1e-12).all())  # descent: energy never rises
    assert fr.lengths[-1] < fr.lengths[0]


def test_frames_subsampled_and_checked():
    G = gl.pullback(polar)
    full = gw.geodesic_frames(G, Z0, Z1, 16, max_frames=1000)
    few = gw.geodesic_frames(G, Z0, Z1, 16, max_frames=3)
    assert few.curves.shape[0] == 3
    assert few.iterations[0] == 0 and few.iterations[-1] == full.iterations[-1]
    torch.testing.assert_close(few.curves[-1], full.curves[-1], rtol=0, atol=0)
    init = gl.straight_line(Z0, Z1, 16)[None] + torch.tensor([0.0, 0.2], dtype=D64) * torch.sin(
        torch.pi * gl.grid(16, Z0))[None, :, None]
    withinit = gw.geodesic_frames(G, Z0, Z1, 16, init=init)
    torch.testing.assert_close(withinit.curves[0], init[0], rtol=0, atol=0)
    with pytest.raises(ValueError, match="one pair"):
        gw.geodesic_frames(G, torch.stack([Z0, Z0]), torch.stack([Z1, Z1]))
    with pytest.raises(ValueError, match="max_frames"):
        gw.geodesic_frames(G, Z0, Z1, max_frames=1)


def test_decoded_frames():
    fr = gw.geodesic_frames(gl.pullback(polar), Z0, Z1, 16)
    x = gw.decoded_frames(polar, fr, 5)
    assert x.shape == (fr.curves.shape[0], 5, 2)
    torch.testing.assert_close(x[:, 0], polar(Z0).expand(x.shape[0], 2), rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(x[:, -1], polar(Z1).expand(x.shape[0], 2), rtol=1e-14, atol=1e-14)


def test_static_figure_frames():
    G = gl.pullback(polar)
    fr = gw.geodesic_frames(G, Z0, Z1, 16)
    dec = gw.decoded_frames(polar, fr, 6)
    fig = gw.static_figure(fr, magnification_grid(G, EXTENT, 8, log=True), dec, x_data=polar(fr.curves[-1]))
    K = fr.curves.shape[0]
    assert len(fig.frames) == K and len(fig.layout.sliders[0].steps) == K
    for k in (0, K - 1):
        np.testing.assert_array_equal(fig.frames[k].data[0].x, fr.curves[k, :, 0].numpy())
        np.testing.assert_array_equal(fig.frames[k].data[1].y, dec[k, :, 1].numpy())  # decoded curve, data space
    html = fig.to_html(include_plotlyjs=False)
    assert "Plotly.addFrames" in html or '"frames"' in html


def test_static_figure_images():
    A = torch.linspace(0, 1, 128, dtype=D64).reshape(2, 64)
    fr = gw.geodesic_frames(gl.euclidean, Z0, Z1, 8)
    dec = gw.decoded_frames(lambda z: z @ A, fr, 4)
    fig = gw.static_figure(fr, decoded=dec, image_shape=(8, 8))
    tiles = np.asarray(fig.frames[-1].data[1].z, dtype=float)[::-1]  # rows stored bottom-up for plotly
    np.testing.assert_allclose(tiles[:8, :8], dec[-1, 0].reshape(8, 8).numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="image_shape"):
        gw.static_figure(fr, decoded=dec, image_shape=(4, 4))


@pytest.fixture
def explorer():
    metrics = {"Euclidean": gl.euclidean, "polar": gl.pullback(polar)}
    return gw.GeodesicExplorer(metrics, Z0, Z1, decoder=polar, extent=EXTENT, T=16, n_grid=6)


def curve_in(fig, i=3):
    tr = fig.data[i]
    return np.stack([np.asarray(tr.x, dtype=float), np.asarray(tr.y, dtype=float)], -1)


def test_explorer_slider_updates_figure(explorer):
    explorer.set_metric("polar")
    explorer.sliders["z1_1"].value = 1.8
    z1 = torch.tensor([1.8, Z1[1].item()], dtype=D64)
    ref = gl.geodesic(gl.pullback(polar), Z0, z1, 16, max_iter=80)
    np.testing.assert_allclose(curve_in(explorer.figure), ref.curve[0].numpy(), rtol=0, atol=1e-12)
    assert explorer.frames.lengths[-1].item() == pytest.approx(ref.length.item(), rel=1e-12)
    assert explorer.frames.lengths[-1].item() == pytest.approx(chord(Z0, z1), rel=2e-3)
    assert f"{ref.length.item():.4g}" in explorer.info.value
    np.testing.assert_allclose(curve_in(explorer.figure, 2), gl.straight_line(Z0, z1, 16).numpy(), atol=1e-12)
    assert list(explorer.figure.data[4].x) == [Z0[0].item(), 1.8]  # endpoint markers moved
    dec = explorer.decoded_figure.data[-1]  # f along the curve, in data space
    np.testing.assert_allclose([dec.x[-1], dec.y[-1]], polar(z1).numpy(), atol=1e-12)


def test_explorer_frame_scrubber(explorer):
    explorer.set_metric("polar")
    K = explorer.frames.curves.shape[0]
    assert explorer.frame.max == explorer.play.max == K - 1 and explorer.frame.value == K - 1
    explorer.frame.value = 0
    np.testing.assert_allclose(curve_in(explorer.figure), gl.straight_line(Z0, Z1, 16).numpy(), atol=1e-12)
    assert "iteration 0 of" in explorer.info.value


def test_explorer_metric_switch(explorer):
    np.testing.assert_allclose(curve_in(explorer.figure), gl.straight_line(Z0, Z1, 16).numpy(), atol=1e-12)
    assert np.ptp(np.asarray(explorer.figure.data[0].z)) == 0  # Euclidean: log √det G = 0 everywhere
    explorer.metric_menu.value = "polar"
    _, _, M = magnification_grid(gl.pullback(polar), EXTENT, 6, log=True, dtype=D64)
    np.testing.assert_allclose(np.asarray(explorer.figure.data[0].z), M, rtol=1e-12)
    ref = gl.geodesic(gl.pullback(polar), Z0, Z1, 16, max_iter=80)
    np.testing.assert_allclose(curve_in(explorer.figure), ref.curve[0].numpy(), atol=1e-12)
    with pytest.raises(KeyError, match="polar"):
        explorer.set_metric("nope")


def test_explorer_click_moves_endpoint(explorer):
    explorer.click_moves.value = "z0"
    heat = explorer.figure.data[0]
    heat._dispatch_on_click(Points(point_inds=[3], xs=[0.9], ys=[0.1], trace_name="h", trace_index=0), None)
    z0 = torch.tensor([0.9, 0.1], dtype=D64)
    torch.testing.assert_close(explorer.z0, z0)
    assert explorer.sliders["z0_1"].value == pytest.approx(0.9) and explorer.sliders["z0_2"].value == pytest.approx(0.1)
    np.testing.assert_allclose(curve_in(explorer.figure)[0], z0.numpy())
    heat._dispatch_on_click(Points(point_inds=[], xs=[], ys=[], trace_name="h", trace_index=0), None)  # no-op
    torch.testing.assert_close(explorer.z0, z0)


def test_explorer_static_export(explorer, tmp_path):
    path = tmp_path / "anim.html"
    html = explorer.to_static_html(path, include_plotlyjs=False)
    assert path.exists() and "plotly" in html.lower()
    assert len(explorer.to_figure().frames) == explorer.frames.curves.shape[0]


def test_explorer_images_and_errors():
    A = torch.linspace(0, 1, 128, dtype=D64).reshape(2, 64)
    ex = gw.GeodesicExplorer(gl.euclidean, Z0, Z1, decoder=lambda z: z @ A, image_shape=(8, 8), T=8, n_grid=4)
    tiles = np.asarray(ex.decoded_figure.data[0].z, dtype=float)[::-1]
    np.testing.assert_allclose(tiles[:8, :8], (Z0 @ A).reshape(8, 8).numpy(), rtol=1e-12)
    import json  # the widget's data travels as strict JSON: NaN gaps between tiles must be null
    json.dumps(ex.decoded_figure.to_plotly_json()["data"], allow_nan=False, default=str)
    assert ex._repr_mimebundle_()["application/vnd.jupyter.widget-view+json"]["model_id"] == ex.widget.model_id
    with pytest.raises(ValueError, match="shape \\(2,\\)"):
        gw.GeodesicExplorer(gl.euclidean, torch.zeros(3, dtype=D64), torch.ones(3, dtype=D64))
    with pytest.raises(ValueError, match="at least one"):
        gw.GeodesicExplorer({}, Z0, Z1)


def _plotly_array(v) -> np.ndarray:
    """An array as plotly's JSON writes it: a list, or a typed array {"dtype", "bdata" (base64)[, "shape"]}."""
    if isinstance(v, dict):
        a = np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
        return a.reshape([int(s) for s in str(v["shape"]).split(",")]) if "shape" in v else a
    return np.asarray(v, dtype=float)


def test_explorer_output_carries_its_static_animation(explorer):
    """Displayed, the explorer gives the widget view and, beside it, the kernel-free animation as plotly JSON:
    what the course website (no kernel) shows. The JSON is the solver's frames, with play and a slider."""
    explorer.set_metric("polar")
    bundle = explorer._repr_mimebundle_()
    view = bundle["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == explorer.widget.model_id and "text/plain" in bundle
    fig = bundle[gw.PLOTLY_MIME]
    json.dumps(fig, allow_nan=False)  # strict JSON, as a notebook file and a web page carry it
    K = explorer.frames.curves.shape[0]
    assert K >= 3 and len(fig["frames"]) == K and len(fig["layout"]["sliders"][0]["steps"]) == K
    for k in (0, K // 2, K - 1):  # frame k draws the k-th kept iterate of the solver
        frame = fig["frames"][k]["data"][0]
        np.testing.assert_array_equal(_plotly_array(frame["x"]), explorer.frames.curves[k, :, 0].numpy())
        np.testing.assert_array_equal(_plotly_array(frame["y"]), explorer.frames.curves[k, :, 1].numpy())
    torch.testing.assert_close(explorer.frames.curves[0], gl.straight_line(Z0, Z1, 16), rtol=0, atol=0)
    ref = gl.geodesic(gl.pullback(polar), Z0, Z1, 16, max_iter=80)
    np.testing.assert_allclose(_plotly_array(fig["frames"][-1]["data"][0]["x"]), ref.curve[0, :, 0].numpy(), atol=1e-12)
    play = fig["layout"]["updatemenus"][0]["buttons"][0]
    assert play["method"] == "animate" and play["args"][0] is None  # play runs through all the frames
    # the bundle is a snapshot of the moment of display: a new endpoint gives a new animation when shown again
    explorer.set_endpoints(Z0, torch.tensor([1.8, 0.9], dtype=D64))
    moved = explorer._repr_mimebundle_()[gw.PLOTLY_MIME]
    np.testing.assert_allclose(_plotly_array(moved["frames"][-1]["data"][0]["x"])[-1], 1.8)
    assert moved["layout"]["title"]["text"].startswith("polar metric:")
