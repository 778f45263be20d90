"""Interactive geodesics: watch a curve relax from the straight line to a geodesic. [Lecture 7]

Import as ``import geomlib.widgets as gw`` (needs ipywidgets 8 and plotly; the core never imports this module).

The pure core computes everything a picture needs, so it can be tested and reused without a browser:

    geodesic_frames(G, z0, z1)      the solver's curves, one per iteration, with their lengths (the animation)
    static_figure(frames, ...)      a plotly Figure with those frames, a slider and play/pause: needs no kernel

``GeodesicExplorer`` is the interactive front end. It holds real UI state (endpoints, metric, frame shown),
so it is a class: a plotly ``FigureWidget`` of the latent space (background log √det G, the straight line,
the curve of the current frame), a second one with what the decoder gives along that curve, and ipywidgets
controls: play/pause with a frame scrubber, sliders for the endpoints (or click in the plot), a menu of metrics.
Every change recomputes the frames eagerly (small T, few iterations), so the animation itself never waits
for the solver. Displayed, the explorer's output carries both the widget and ``to_figure()`` as plotly JSON, so a
page read without a kernel (the course website) still plays the animation.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable, Mapping

import ipywidgets as widgets
import numpy as np
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots

from . import _checks
from .geodesics import GeodesicResult, geodesic
from .curves import straight_line
from .lengths import energy, length
from .metrics import as_metric
from .plot import _tiles, decode_along, magnification_grid

PLOTLY_MIME = "application/vnd.plotly.v1+json"  # plotly's own mime type: JupyterLab, nbconvert, the course website

__all__ = ["GeodesicFrames", "geodesic_frames", "decoded_frames", "static_figure", "GeodesicExplorer"]


@dataclass(frozen=True)
class GeodesicFrames:
    """The animation of one boundary-value problem: K curves from the straight line (frame 0) to the solver's
    answer (frame K-1)."""

    curves: torch.Tensor  # (K, T, d)
    lengths: torch.Tensor  # (K,) metric length of each frame's curve
    energies: torch.Tensor  # (K,)
    iterations: torch.Tensor  # (K,) long: the solver iteration each frame shows (0 = initial curve)
    result: GeodesicResult  # what gl.geodesic returned (batch of one)


def geodesic_frames(G, z0: torch.Tensor, z1: torch.Tensor, T: int = 24, *, max_iter: int = 100,
                    max_frames: int = 40, **geodesic_kw) -> GeodesicFrames:
    """Solve one boundary-value problem with ``gl.geodesic`` and keep the curve after every iteration.

    z0, z1 shape=[d] (or [1, d]). Frame 0 is the initial curve (the straight line unless ``init`` is given),
    the last frame is the solver's answer; when there were more iterations than ``max_frames`` an evenly spread
    subset is kept (first and last always). Lengths and energies are those of ``gl.length`` / ``gl.energy``
    under G, so the last length equals ``geodesic(G, z0, z1, T).length``. [Lecture 7]
    """
    z0, z1 = _checks.endpoints(z0, z1)
    if z0.reshape(-1, z0.shape[-1]).shape[0] != 1:
        raise ValueError(f"geodesic_frames animates one pair of endpoints; got z0 shape {tuple(z0.shape)}")
    if max_frames < 2:
        raise ValueError(f"an animation needs max_frames ≥ 2, got {max_frames}")
    metric = as_metric(G)
    seen: list[tuple[int, torch.Tensor]] = []
    res = geodesic(metric, z0, z1, T, max_iter=max_iter,
                   callback=lambda it, c: seen.append((it, c[0].clone())), **geodesic_kw)
    init = geodesic_kw.get("init")
    if init is None:
        its, cs = [0], [straight_line(z0.reshape(-1), z1.reshape(-1), T)]
    elif isinstance(init, torch.Tensor):
        its, cs = [0], [init.detach().reshape(T, -1)]
    else:  # e.g. init="graph": the solver's first iterate is the first frame we see
        its, cs = [], []
    its += [it for it, _ in seen]
    cs += [c for _, c in seen]
    if not cs or not torch.equal(cs[-1], res.curve[0]):  # the solver stopped without a final callback
        its.append(int(res.iterations[0]))
        cs.append(res.curve[0])
    keep = np.unique(np.round(np.linspace(0, len(cs) - 1, min(max_frames, len(cs)))).astype(int))
    curves = torch.stack([cs[k] for k in keep])  # (K, T, d)
    with torch.no_grad():
        L, E = length(curves, metric).detach(), energy(curves, metric).detach()
    return GeodesicFrames(curves=curves, lengths=L, energies=E,
                          iterations=torch.as_tensor([its[k] for k in keep], dtype=torch.long), result=res)


def decoded_frames(f: Callable, frames: GeodesicFrames, n: int = 10) -> torch.Tensor:
    """f at n points equally spaced in t along every frame's curve: shape=[K, n, D]. [Lecture 7]"""
    return decode_along(f, frames.curves, n).detach()


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().double().numpy()


def _info(frames: GeodesicFrames, k: int, metric_name: str) -> str:
    it, K = int(frames.iterations[k]), int(frames.iterations[-1])
    conv = "converged" if bool(frames.result.converged[0]) else "not converged"
    return (f"<b>{metric_name}</b> metric &nbsp;|&nbsp; iteration {it} of {K} ({conv}) &nbsp;|&nbsp; "
            f"length now <b>{float(frames.lengths[k]):.4g}</b> &nbsp;|&nbsp; "
            f"straight line {float(frames.lengths[0]):.4g} &nbsp;|&nbsp; geodesic {float(frames.lengths[-1]):.4g}")


def _decoded_kind(decoded: torch.Tensor | None, image_shape) -> str | None:
    if decoded is None:
        return None
    if image_shape is not None:
        if decoded.shape[-1] != image_shape[0] * image_shape[1]:
            raise ValueError(f"the decoder gives D={decoded.shape[-1]} values, not image_shape {tuple(image_shape)}")
        return "images"
    return "points" if decoded.shape[-1] == 2 else "vectors"


def _decoded_traces(kind: str, xk: np.ndarray, image_shape, x_data: np.ndarray | None) -> list:
    """Plotly traces for one frame's decoded points xk shape=[n, D] (the data cloud first, if any)."""
    if kind == "images":
        tiles = _tiles(xk[None], image_shape)[::-1]
        # the gaps between tiles are NaN; a widget sends strict JSON, where a gap must be None (null)
        return [go.Heatmap(z=np.where(np.isnan(tiles), None, tiles).tolist(), colorscale="Greys", showscale=False,
                           hoverinfo="skip", name="decoded")]
    if kind == "points":
        out = []
        if x_data is not None:
            out.append(go.Scatter(x=x_data[:, 0], y=x_data[:, 1], mode="markers", name="data",
                                  marker=dict(size=3, color="lightgray")))
        out.append(go.Scatter(x=xk[:, 0], y=xk[:, 1], mode="lines+markers", name="f(curve)",
                              line=dict(color="crimson", width=3), marker=dict(size=5)))
        return out
    return [go.Heatmap(z=xk.T, colorscale="RdBu", showscale=False, name="decoded")]  # (D, n): one column per point


def static_figure(frames: GeodesicFrames, background: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                  decoded: torch.Tensor | None = None, *, image_shape: tuple[int, int] | None = None,
                  x_data: torch.Tensor | None = None, z_data: torch.Tensor | None = None,
                  title: str = "", frame_ms: int = 150) -> go.Figure:
    """A self-contained plotly animation of ``frames`` (no kernel needed): play/pause buttons and a slider.

    background: ``magnification_grid(G, extent, n, log=True)``; decoded: ``decoded_frames(f, frames)`` (K, n, D),
    drawn as 8×8-style images when ``image_shape`` is given, as a curve among ``x_data`` when D = 2.
    Export with ``fig.write_html(path)`` or ``fig.to_html()``. [Lecture 7]
    """
    kind = _decoded_kind(decoded, image_shape)
    if kind is None:
        fig = go.Figure()
        row_col = dict()
    elif kind == "points":
        fig = make_subplots(rows=1, cols=2, subplot_titles=("latent space", "data space"))
        row_col = dict(row=1, col=1)
    else:
        fig = make_subplots(rows=2, cols=1, row_heights=[0.8, 0.2], vertical_spacing=0.08,
                            subplot_titles=("latent space (z₁ across, z₂ up)", "decoded along the curve"))
        row_col = dict(row=1, col=1)
    if background is not None:
        xs, ys, M = background
        fig.add_trace(go.Heatmap(x=xs, y=ys, z=M, colorscale="Viridis", colorbar=dict(title="log √det G", len=0.6, y=0.65),
                                 zsmooth="best", hoverinfo="skip", name="log √det G"), **row_col)
    if z_data is not None:
        zd = _np(z_data)
        fig.add_trace(go.Scatter(x=zd[:, 0], y=zd[:, 1], mode="markers", name="codes",
                                 marker=dict(size=3, color="white", opacity=0.5)), **row_col)
    c0, cK = _np(frames.curves[0]), _np(frames.curves[-1])
    fig.add_trace(go.Scatter(x=c0[:, 0], y=c0[:, 1], mode="lines", name=f"straight line (L={float(frames.lengths[0]):.3g})",
                             line=dict(color="white", dash="dash", width=2)), **row_col)
    moving = [len(fig.data)]
    fig.add_trace(go.Scatter(x=cK[:, 0], y=cK[:, 1], mode="lines+markers", name="curve",
                             line=dict(color="crimson", width=3), marker=dict(size=4)), **row_col)
    xd = None if x_data is None else _np(x_data)
    if kind is not None:
        dec = [_decoded_traces(kind, _np(decoded[k]), image_shape, xd) for k in range(decoded.shape[0])]
        for tr in dec[-1]:  # the data cloud (if any) stays; the last trace moves
            fig.add_trace(tr, row=1, col=2) if kind == "points" else fig.add_trace(tr, row=2, col=1)
        moving.append(len(fig.data) - 1)
    anim = []
    K = frames.curves.shape[0]
    for k in range(K):
        ck = _np(frames.curves[k])
        data = [go.Scatter(x=ck[:, 0], y=ck[:, 1])] + ([] if kind is None else dec[k][-1:])
        anim.append(go.Frame(data=data, traces=moving, name=str(k),
                             layout=dict(title_text=f"{title} iteration {int(frames.iterations[k])}: "
                                                    f"length {float(frames.lengths[k]):.4g}")))
    fig.frames = anim
    play = dict(frame=dict(duration=frame_ms, redraw=True), fromcurrent=True, transition=dict(duration=0))
    fig.update_layout(
        title_text=f"{title} iteration {int(frames.iterations[-1])}: length {float(frames.lengths[-1]):.4g}",
        height=600, width=720 if kind != "points" else 1000,
        updatemenus=[dict(type="buttons", showactive=False, x=0.0, y=-0.14, xanchor="left", yanchor="top",  # below the ticks
                          direction="left",
                          buttons=[dict(label="▶ play", method="animate", args=[None, play]),
                                   dict(label="❚❚ pause", method="animate",
                                        args=[[None], dict(frame=dict(duration=0, redraw=False), mode="immediate")])])],
        sliders=[dict(active=K - 1, x=0.3, y=-0.1, len=0.7, currentvalue=dict(prefix="frame "),  # right of the buttons
                      steps=[dict(label=str(int(frames.iterations[k])), method="animate",
                                  args=[[str(k)], dict(mode="immediate", frame=dict(duration=0, redraw=True))])
                             for k in range(K)])],
        legend=dict(orientation="h", y=1.16), margin=dict(t=120, b=130))
    fig.update_yaxes(scaleanchor="x", scaleratio=1, title_text="z₂", **row_col)
    if kind != "images":  # there the title of the image row sits where an x-axis title would go
        fig.update_xaxes(title_text="z₁", **row_col)
    if kind == "images":
        fig.update_xaxes(showticklabels=False, row=2, col=1)
        fig.update_yaxes(showticklabels=False, scaleanchor="x2", row=2, col=1)
    return fig


class GeodesicExplorer:
    """Geodesics you can move: endpoints, metric and solver iteration are under the user's control.

    Args:
        metrics: name -> metric (e.g. ``{"Euclidean": gl.euclidean, "pullback": gl.pullback(mu), ...}``), or one metric.
        z0, z1: the initial endpoints, shape=[2]; their dtype and device are used throughout.
        decoder: optional f: z (..., 2) -> x (..., D), shown along the curve: as images when ``image_shape``
            is given (8×8 digits), as a curve in data space (with ``x_data`` behind it) when D = 2.
        z_data: optional latent codes (N, 2) drawn over the background; x_data: data points (N, 2).
        extent: (z1_min, z1_max, z2_min, z2_max); default: the box around z_data (or the endpoints), padded.
        T, max_iter, max_frames: solver and animation size; n_grid: cells per side of the background;
        n_decoded: points decoded along the curve (default 10 images, or T points of a 2-D curve).

    Attributes: ``figure`` (latent FigureWidget), ``decoded_figure``, ``play``, ``frame`` (IntSlider),
    ``sliders`` (dict "z0_1", "z0_2", "z1_1", "z1_2" of FloatSliders), ``metric_menu``, ``click_moves``,
    ``info`` (HTML), ``widget`` (the whole layout; displaying the explorer displays it), ``frames``.
    """

    def __init__(self, metrics, z0: torch.Tensor, z1: torch.Tensor, *, decoder: Callable | None = None,
                 image_shape: tuple[int, int] | None = None, z_data: torch.Tensor | None = None,
                 x_data: torch.Tensor | None = None, extent=None, T: int = 24, max_iter: int = 80,
                 max_frames: int = 40, n_grid: int = 40, n_decoded: int | None = None, frame_ms: int = 150):
        if not isinstance(metrics, Mapping):
            metrics = {getattr(metrics, "name", "metric"): metrics}
        if len(metrics) == 0:
            raise ValueError("metrics must name at least one metric")
        self.metrics = {name: as_metric(G) for name, G in metrics.items()}
        z0, z1 = _checks.endpoints(z0, z1)
        if z0.shape != (2,):
            raise ValueError(f"the explorer draws 2-D latent spaces: z0, z1 must have shape (2,), got {tuple(z0.shape)}")
        self._like = z0
        # images: a strip of 10; a 2-D decoded curve: as many points as the latent curve has
        self.n_decoded = n_decoded if n_decoded is not None else (10 if image_shape is not None else T)
        self.decoder, self.image_shape = decoder, image_shape
        self.T, self.max_iter, self.max_frames, self.n_grid = T, max_iter, max_frames, n_grid
        self.z_data = None if z_data is None else _checks.points(z_data, "z_data", d=2).detach()
        self.x_data = None if x_data is None else _checks.points(x_data, "x_data").detach()
        self.extent = self._default_extent(z0, z1) if extent is None else tuple(float(e) for e in extent)
        self._backgrounds: dict[str, tuple] = {}
        self._hold = False
        self.metric_name = next(iter(self.metrics))
        self.z0, self.z1 = z0.detach().clone(), z1.detach().clone()
        self.frames = self._solve()
        self.decoded = None if decoder is None else decoded_frames(decoder, self.frames, self.n_decoded)
        self._kind = _decoded_kind(self.decoded, image_shape)
        self._build(frame_ms)

    # ---- state -> numbers (pure parts live in the module functions) ----
    def _default_extent(self, z0, z1):
        pts = torch.stack([z0, z1]) if self.z_data is None else torch.cat([self.z_data.reshape(-1, 2), z0[None], z1[None]])
        lo, hi = pts.amin(0), pts.amax(0)
        pad = 0.15 * (hi - lo).clamp_min(1e-3)
        return (float(lo[0] - pad[0]), float(hi[0] + pad[0]), float(lo[1] - pad[1]), float(hi[1] + pad[1]))

    @property
    def metric(self):
        return self.metrics[self.metric_name]

    def _solve(self) -> GeodesicFrames:
        return geodesic_frames(self.metric, self.z0, self.z1, self.T, max_iter=self.max_iter, max_frames=self.max_frames)

    def background(self, name: str | None = None):
        """log √det G on the explorer's grid for metric ``name`` (cached): (z1s, z2s, M)."""
        name = self.metric_name if name is None else name
        if name not in self._backgrounds:
            self._backgrounds[name] = magnification_grid(self.metrics[name], self.extent, self.n_grid, log=True,
                                                         dtype=self._like.dtype, device=self._like.device)
        return self._backgrounds[name]

    # ---- building the interface ----
    def _build(self, frame_ms: int) -> None:
        xs, ys, M = self.background()
        c = _np(self.frames.curves[-1])
        traces = [go.Heatmap(x=xs, y=ys, z=M, colorscale="Viridis", colorbar=dict(title="log √det G"),
                             zsmooth="best", hoverinfo="x+y", name="log √det G")]
        zd = np.zeros((0, 2)) if self.z_data is None else _np(self.z_data)
        traces.append(go.Scatter(x=zd[:, 0], y=zd[:, 1], mode="markers", name="codes", hoverinfo="skip",
                                 marker=dict(size=3, color="white", opacity=0.45)))
        c0 = _np(self.frames.curves[0])
        traces.append(go.Scatter(x=c0[:, 0], y=c0[:, 1], mode="lines", name="straight line",
                                 line=dict(color="white", dash="dash", width=2)))
        traces.append(go.Scatter(x=c[:, 0], y=c[:, 1], mode="lines+markers", name="curve",
                                 line=dict(color="crimson", width=3), marker=dict(size=4)))
        traces.append(go.Scatter(x=[c[0, 0], c[-1, 0]], y=[c[0, 1], c[-1, 1]], mode="markers+text", name="endpoints",
                                 text=["z0", "z1"], textposition="top center", textfont=dict(color="white"),
                                 marker=dict(size=11, color="orange", line=dict(color="black", width=1))))
        x0, x1, y0, y1 = self.extent
        self.figure = go.FigureWidget(data=traces, layout=dict(
            width=560, height=500, margin=dict(l=40, r=10, t=30, b=40), showlegend=False,
            xaxis=dict(range=[x0, x1], title="z₁"), yaxis=dict(range=[y0, y1], title="z₂", scaleanchor="x"),
            title=dict(text="click to move an endpoint", font=dict(size=12))))
        self.figure.data[0].on_click(self._on_click)
        self.figure.data[1].on_click(self._on_click)

        self.decoded_figure = None
        if self._kind is not None:
            xd = None if self.x_data is None else _np(self.x_data)
            dec = _decoded_traces(self._kind, _np(self.decoded[-1]), self.image_shape, xd)
            layout = dict(margin=dict(l=10, r=10, t=30, b=10), showlegend=False,
                          title=dict(text="decoded along the curve", font=dict(size=12)))
            if self._kind == "points":
                layout.update(width=420, height=420, yaxis=dict(scaleanchor="x"))
            else:
                layout.update(width=560 + 420 * 0, height=150, xaxis=dict(visible=False),
                              yaxis=dict(visible=False, scaleanchor="x"))
            self.decoded_figure = go.FigureWidget(data=dec, layout=layout)

        K = self.frames.curves.shape[0]
        self.play = widgets.Play(value=K - 1, min=0, max=K - 1, interval=frame_ms, description="play")
        self.frame = widgets.IntSlider(value=K - 1, min=0, max=K - 1, description="frame", continuous_update=True)
        self._link = widgets.jslink((self.play, "value"), (self.frame, "value"))
        self.frame.observe(lambda ch: self.show_frame(ch["new"]), names="value")

        def slider(desc, value, lo, hi):
            return widgets.FloatSlider(value=float(value), min=lo, max=hi, step=(hi - lo) / 200, description=desc,
                                       continuous_update=False, readout_format=".2f")

        self.sliders = {"z0_1": slider("z0 (z₁)", self.z0[0], x0, x1), "z0_2": slider("z0 (z₂)", self.z0[1], y0, y1),
                        "z1_1": slider("z1 (z₁)", self.z1[0], x0, x1), "z1_2": slider("z1 (z₂)", self.z1[1], y0, y1)}
        for s in self.sliders.values():
            s.observe(self._on_slider, names="value")
        self.metric_menu = widgets.Dropdown(options=list(self.metrics), value=self.metric_name, description="metric")
        self.metric_menu.observe(lambda ch: self.set_metric(ch["new"]), names="value")
        self.click_moves = widgets.ToggleButtons(options=["z0", "z1"], value="z1", description="click moves")
        self.info = widgets.HTML()
        self._update_info()
        s = list(self.sliders.values())
        controls = [widgets.HBox([self.play, self.frame, self.metric_menu]), widgets.HBox([self.click_moves]),
                    widgets.HBox(s[:2]), widgets.HBox(s[2:])]
        top = [self.figure] + ([self.decoded_figure] if self._kind == "points" else [])
        rows = [widgets.HBox(top)]
        if self._kind in ("images", "vectors"):
            rows.append(self.decoded_figure)
        self.widget = widgets.VBox([self.info] + rows + controls)

    def _repr_mimebundle_(self, **kw):
        """The live widget view, and beside it the kernel-free animation (``to_figure()``) as plotly JSON.

        A front end with a kernel (JupyterLab, Binder) shows the widget: its widget renderer ranks above plotly's.
        A page without one (the course website, an exported notebook) has no widget state to draw, and shows the
        plotly figure instead: the same frames, with play/pause and a slider, as at the moment of display.
        """
        bundle = dict(self.widget._repr_mimebundle_(**kw) or {})
        bundle[PLOTLY_MIME] = json.loads(self.to_figure().to_json())  # numpy and NaN made strict JSON by plotly
        return bundle

    # ---- reacting to the user ----
    def _on_slider(self, change) -> None:
        if self._hold:
            return
        z0 = torch.tensor([self.sliders["z0_1"].value, self.sliders["z0_2"].value], dtype=self._like.dtype, device=self._like.device)
        z1 = torch.tensor([self.sliders["z1_1"].value, self.sliders["z1_2"].value], dtype=self._like.dtype, device=self._like.device)
        self._recompute(z0, z1)

    def _on_click(self, trace, points, state) -> None:
        if not points.xs:
            return
        key = self.click_moves.value
        z = torch.tensor([points.xs[0], points.ys[0]], dtype=self._like.dtype, device=self._like.device)
        self.set_endpoints(z if key == "z0" else self.z0, z if key == "z1" else self.z1)

    def set_endpoints(self, z0: torch.Tensor, z1: torch.Tensor) -> None:
        """Move both endpoints (shape [2] each) and recompute the animation once."""
        z0, z1 = _checks.endpoints(z0, z1)
        if z0.shape != (2,):
            raise ValueError(f"z0, z1 must have shape (2,), got {tuple(z0.shape)}")
        self._hold = True
        try:  # move the sliders too (clamped to their range) without one solve per slider
            for key, v in zip(("z0_1", "z0_2", "z1_1", "z1_2"), (*z0.tolist(), *z1.tolist())):
                self.sliders[key].value = v
        finally:
            self._hold = False
        self._recompute(z0.to(self._like), z1.to(self._like))

    def set_metric(self, name: str) -> None:
        """Show the geodesic and the background of metric ``name`` (a key of ``metrics``)."""
        if name not in self.metrics:
            raise KeyError(f"no metric named {name!r}; the explorer knows {list(self.metrics)}")
        self.metric_name = name
        if self.metric_menu.value != name:
            self.metric_menu.value = name  # observer calls back here; the second call changes nothing
            return
        xs, ys, M = self.background()
        with self.figure.batch_update():
            self.figure.data[0].z = M
        self._recompute(self.z0, self.z1)

    def _recompute(self, z0: torch.Tensor, z1: torch.Tensor) -> None:
        self.z0, self.z1 = z0.detach().clone(), z1.detach().clone()
        self.frames = self._solve()
        if self.decoder is not None:
            self.decoded = decoded_frames(self.decoder, self.frames, self.n_decoded)
        K = self.frames.curves.shape[0]
        c0 = _np(self.frames.curves[0])
        with self.figure.batch_update():
            self.figure.data[2].x, self.figure.data[2].y = c0[:, 0], c0[:, 1]
            self.figure.data[4].x = [float(z0[0]), float(z1[0])]
            self.figure.data[4].y = [float(z0[1]), float(z1[1])]
        # show the answer; press play to watch it form
        self.frame.max, self.play.max = K - 1, K - 1
        if self.frame.value == K - 1:
            self.show_frame(K - 1)
        else:
            self.frame.value = K - 1  # the observer draws it
        self.play.value = K - 1

    def show_frame(self, k: int) -> None:
        """Draw frame k of the animation (0 = straight line, last = geodesic)."""
        K = self.frames.curves.shape[0]
        k = min(max(int(k), 0), K - 1)
        c = _np(self.frames.curves[k])
        with self.figure.batch_update():
            self.figure.data[3].x, self.figure.data[3].y = c[:, 0], c[:, 1]
        if self.decoded_figure is not None:
            xd = None if self.x_data is None else _np(self.x_data)
            new = _decoded_traces(self._kind, _np(self.decoded[k]), self.image_shape, xd)
            with self.decoded_figure.batch_update():
                tr = self.decoded_figure.data[-1]
                if self._kind == "points":
                    tr.x, tr.y = new[-1].x, new[-1].y
                else:
                    tr.z = new[-1].z
        self._update_info(k)

    def _update_info(self, k: int | None = None) -> None:
        k = self.frames.curves.shape[0] - 1 if k is None else k
        self.info.value = _info(self.frames, k, self.metric_name)

    # ---- no kernel: a static animation ----
    def to_figure(self) -> go.Figure:
        """The current animation as a plain plotly Figure with frames, slider and play/pause (no kernel needed)."""
        return static_figure(self.frames, self.background(), self.decoded, image_shape=self.image_shape,
                             x_data=self.x_data, z_data=self.z_data, title=f"{self.metric_name} metric:")

    def to_static_html(self, path=None, include_plotlyjs=True) -> str:
        """HTML of ``to_figure()`` (plotly.js embedded by default, so it works offline); written to ``path`` if given."""
        fig = self.to_figure()
        if path is not None:
            fig.write_html(path, include_plotlyjs=include_plotlyjs, auto_play=False)
        return fig.to_html(include_plotlyjs=include_plotlyjs, auto_play=False, full_html=True)
