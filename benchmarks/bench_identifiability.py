"""Benchmark: are distances between held-out images the same across independent trainings? [Lecture 4]

    .venv/bin/python benchmarks/bench_identifiability.py [--runs 5] [--held-out 20] [--d 2] [--hidden 128 128]
        [--epochs 300] [--M 1 2 4 8] [--init best] [--data digits|mnist] [--cache DIR] [--save FILE]

R = ``--runs`` VAEs are trained on the same images, each with its own seed (initial weights, mini-batches, noise),
and ``--held-out`` images (the same in every run, never trained on, two per class: the split of
scripts/make_checkpoints.py) are encoded by each. For every pair (i, j) of held-out images and every way of
measuring, d_r(i, j) is the distance in run r; over runs,

    CoV(i, j) = std_r d_r(i, j) / mean_r d_r(i, j)        (std with Bessel's correction)

is scale-free, so distances in latent units and in pixel units compare directly. A distance that is a property of
the data, not of the run, has CoV ≈ 0. The table gives its mean over the pairs with a jackknife standard error over
the runs, its median, the mean after scaling every run to mean distance 1, and Spearman's rank correlation of the
pairs' distances between two runs (mean and minimum over the R(R−1)/2 pairs of runs). The ways of measuring:

  * latent Euclidean  ‖z_i − z_j‖ (codes z = q_mu(x) of the single-decoder model; also of each ensemble's encoder),
  * decoded chord     ‖μ(z_i) − μ(z_j)‖, the data-space distance of the two reconstructions (a lower bound of the
                      pullback distance),
  * mean pullback     geodesic distance under G = J_μᵀJ_μ of the single-decoder model,
  * calibrated σ      under the expected metric J_μᵀJ_μ + J_σ̃ᵀJ_σ̃, σ̃ the RBF calibration of Lecture 5,
  * ensemble M        under (1/M) Σ_m J_mᵀJ_m of a ``DecoderEnsemble`` of M decoders trained in one call
                      (M = 1 is the single-decoder model itself: its row repeats the mean pullback's, a check),
  * first k of M      the expected metric of only the first k members of the largest ensemble, on its codes: what
                      the metric does with the training held fixed (k = 1: one member's plain pullback).

With the subsets (the default) it also reports how much two members of one run disagree, and compares the first-k
rows with √(CoV₁² − (1 − 1/k)·within²), the CoV if averaging k members removed only their within-run disagreement.

Geodesics: ``gl.geodesic`` on all pairs at once with T points, float32 (``--dtype``). ``--init best`` (default) solves
every pair twice, from the straight line and from the shortest path through a k-NN graph of training codes
(``gl.graph_geodesic``), and keeps the shorter curve, so a local minimum of one start does not count as a property
of the run; the table counts the pairs where the graph start won by more than 1%.

Defaults: the course's 8×8 digits (``gl.digits``), or MNIST with ``--data mnist`` (``gl.mnist()``, if on disk).
``--hidden 64 64 --M 1 4`` retrains exactly the runs shipped for lecture 4 (geomlib/checkpoints/identifiability/).
Trained models can be kept in ``--cache`` (one file per run and M) so that a second call only solves geodesics.
Timings are per run (min / median / max over the runs). The printout ends with the command that made it and
whether ensembles beat latent Euclidean distances.
"""
from __future__ import annotations

import argparse
import copy
import math
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

import geomlib as gl


def _recipes():
    """scripts/make_checkpoints.py, the recipe of the shipped runs: its held-out split is the one used here, so that
    ``--hidden 64 64 --M 1 4`` retrains exactly the models of geomlib/checkpoints/identifiability/."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "make_checkpoints.py"
    spec = importlib.util.spec_from_file_location("make_checkpoints", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


held_out_split = _recipes().held_out_split


def load_data(name: str, n_train: int | None, classes):
    if name == "digits":
        return gl.digits(classes=classes)
    if name == "mnist":
        return gl.mnist(n=n_train, classes=classes)
    raise ValueError(f"--data must be digits or mnist, got {name!r}")


def trained(X, r: int, M: int, args, cache: Path | None) -> tuple[gl.DecoderEnsemble, float]:
    """The ensemble of run r with M decoders (seed r), from the cache if it is there; and its training time [s]."""
    path = None
    if cache is not None:
        key = (f"{args.data}_c{''.join(map(str, args.classes or []))}_d{args.d}_h{'x'.join(map(str, args.hidden))}"
               f"_e{args.epochs}_lr{args.lr}_b{args.beta}_w{args.warmup}_n{args.held_out}{'_seen' * args.seen}_r{r}_M{M}")
        path = cache / f"{key}.pt"
        if path.is_file():
            return gl.load_ensemble(path), float("nan")
    ens = gl.DecoderEnsemble("normal", D=X.shape[1], d=args.d, M=M, hidden=tuple(args.hidden), seed=r)
    t = time.perf_counter()
    gl.train_vae(ens, X, epochs=args.epochs, lr=args.lr, seed=r, beta=args.beta, warmup=args.warmup,
                 progress=args.progress)
    t = time.perf_counter() - t
    if path is not None:
        cache.mkdir(parents=True, exist_ok=True)
        gl.save_vae(ens, path)
    return ens, t


def geodesic_distances(G, Z, graph_points, args) -> tuple[torch.Tensor, int, int]:
    """The (N, N) geodesic distance matrix under G (best of the starts ``--init`` asks for), the number of
    pairs whose kept solve did not converge, and the number of pairs where the graph start won by > 1%."""
    kw = dict(T=args.T)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gl.GeodesicWarning)  # counted below, from the results themselves
        mats = []
        if args.init in ("line", "best"):
            mats.append(_solve(G, Z, None, kw))
        if args.init in ("graph", "best"):
            mats.append(_solve(G, Z, graph_points, kw))
    if len(mats) == 1:
        (D, ok), won = mats[0], 0
    else:
        (D0, ok0), (D1, ok1) = mats
        won = int((D1 < 0.99 * D0).triu(1).sum())
        D, ok = torch.minimum(D0, D1), torch.where(D1 < D0, ok1, ok0)
    return D, int((~ok).triu(1).sum()), won


def _solve(G, Z, graph_points, kw):
    """gl.geodesic on all pairs i < j at once: (N, N) lengths and converged flags (symmetric). With graph_points,
    each pair starts from its shortest path through their k-NN graph (``gl.graph_geodesic``, k = 12)."""
    N = Z.shape[0]
    i, j = torch.triu_indices(N, N, 1)
    extra = {}
    if graph_points is not None:
        extra = dict(init=graph_starts(G, graph_points, Z, i, j, kw["T"]))
    res = gl.geodesic(G, Z[i], Z[j], **kw, **extra)
    D = torch.zeros(N, N, dtype=Z.dtype)
    ok = torch.ones(N, N, dtype=torch.bool)
    D[i, j], D[j, i] = res.length, res.length
    ok[i, j], ok[j, i] = res.converged, res.converged
    return D, ok


def graph_nodes(Zc: torch.Tensor, n: int = 16) -> torch.Tensor:
    """The nodes of the k-NN graph for ``init="graph"``: training codes Zc (k, d) and, for d = 2, an n × n grid
    over their bounding box (10% margin), so that the graph is connected even when the codes form separate
    clusters; the metric then decides whether a path through empty latent space is cheap or dear."""
    if Zc.shape[1] != 2:
        return Zc
    lo, hi = Zc.min(0).values, Zc.max(0).values
    lo, hi = lo - 0.1 * (hi - lo), hi + 0.1 * (hi - lo)
    u, v = (torch.linspace(0, 1, n, dtype=Zc.dtype) for _ in range(2))
    grid = torch.stack(torch.meshgrid(u, v, indexing="ij"), -1).reshape(-1, 2) * (hi - lo) + lo  # (n², 2)
    return torch.cat([Zc, grid])


def graph_starts(G, nodes, Z, i, j, T: int, k: int = 12) -> torch.Tensor:
    """Initial curves (P, T, d) for the pairs (i, j): shortest paths through the k-NN graph of ``nodes``.

    ``gl.graph_geodesic`` adds every endpoint to the graph, once per pair; a point that ends more than k pairs would
    be joined only to its own copies (an island), so the pairs go in rounds in which every point appears once
    (the circle method of a round-robin tournament: N − 1 rounds of N/2 disjoint pairs), k/2 rounds per call."""
    N = Z.shape[0]
    slot = {(int(a), int(b)): n for n, (a, b) in enumerate(zip(i.tolist(), j.tolist()))}
    out = torch.empty(len(slot), T, Z.shape[1], dtype=Z.dtype)
    ring = list(range(N)) + ([None] if N % 2 else [])  # None: a bye
    rounds = []
    for _ in range(len(ring) - 1):
        rounds.append([(min(a, b), max(a, b)) for a, b in zip(ring[:len(ring) // 2], ring[::-1][:len(ring) // 2])
                       if None not in (a, b)])
        ring = [ring[0], ring[-1], *ring[1:-1]]  # keep the first, rotate the others
    per_call = max(1, k // 2)  # rounds per call: a point then has at most k/2 copies, so k/2 real neighbours
    for start in range(0, len(rounds), per_call):
        pairs = [p for rnd in rounds[start:start + per_call] for p in rnd]
        a, b = torch.tensor([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs])
        out[[slot[p] for p in pairs]] = gl.graph_geodesic(G, nodes, Z[a], Z[b], T=T, k=k)
    return out


def cov(D: torch.Tensor) -> torch.Tensor:
    """CoV over runs of each pair's distance: D shape=[R, P] -> shape=[P]."""
    return D.std(0) / D.mean(0)


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rank correlation of two vectors of distinct values."""
    ra, rb = a.argsort().argsort().double(), b.argsort().argsort().double()
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


def jackknife_se(stat, *Ds: torch.Tensor) -> float:
    """The jackknife standard error over runs of stat(D_1, ..., D_k), each D shape=[R, P] with the same runs:
    √((R−1)/R · Σ_r (θ_(−r) − θ̄)²), θ_(−r) the statistic without run r."""
    R = Ds[0].shape[0]
    loo = torch.tensor([stat(*(D[torch.arange(R) != r] for D in Ds)) for r in range(R)])
    return float(((R - 1) / R * (loo - loo.mean()).pow(2).sum()).sqrt())


def mean_cov(D: torch.Tensor) -> float:
    return cov(D).mean().item()


def summarise(D: torch.Tensor) -> dict:
    """D shape=[R, P]: per-pair CoV (mean with its jackknife error over runs, median; mean after scaling each run
    to mean distance 1) and Spearman between runs (mean, min)."""
    c = cov(D)
    R = D.shape[0]
    scaled = cov(D / D.mean(1, keepdim=True))
    rho = [spearman(D[r], D[s]) for r in range(R) for s in range(r + 1, R)]
    return dict(cov_mean=c.mean().item(), cov_se=jackknife_se(mean_cov, D), cov_median=c.median().item(),
                cov_scaled=scaled.mean().item(), rho_mean=statistics.fmean(rho), rho_min=min(rho))


def spread(ts: list[float]) -> str:
    ts = [t for t in ts if t == t]  # NaN: loaded from the cache, not timed
    if not ts:
        return "cached"
    return f"{min(ts):.2f} / {statistics.median(ts):.2f} / {max(ts):.2f}"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=5, help="independent trainings R (seeds 0..R-1)")
    ap.add_argument("--held-out", type=int, default=20, help="held-out images (all their pairs are measured)")
    ap.add_argument("--seen", action="store_true", help="train on the measured images too (not held out)")
    ap.add_argument("--data", default="digits", choices=["digits", "mnist"])
    ap.add_argument("--classes", type=int, nargs="*", default=None, help="digit classes to keep (default all)")
    ap.add_argument("--n-train", type=int, default=None, help="MNIST only: a random subset of this many images")
    ap.add_argument("--d", type=int, default=2, help="latent dimension")
    ap.add_argument("--hidden", type=int, nargs="+", default=[128, 128])
    ap.add_argument("--epochs", type=int, default=300)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--beta", type=float, default=1.0, help="KL weight (train_vae's beta)")
    ap.add_argument("--warmup", type=int, default=0, help="epochs of KL warm-up")
    ap.add_argument("--M", type=int, nargs="+", default=[1, 2, 4, 8], help="ensemble sizes")
    ap.add_argument("--no-subsets", dest="subsets", action="store_false",
                    help="skip the first k members of the largest ensemble (k = each smaller M) and its members 1, 2")
    ap.add_argument("--T", type=int, default=32, help="points per geodesic")
    ap.add_argument("--init", default="best", choices=["line", "graph", "best"])
    ap.add_argument("--graph-points", type=int, default=600, help="training codes in the k-NN graph")
    ap.add_argument("--no-calibrated", action="store_true", help="skip the calibrated-σ expected metric")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"], help="of the geodesic solves")
    ap.add_argument("--cache", type=Path, default=None, help="folder to keep trained models in")
    ap.add_argument("--save", type=Path, default=None, help="save every run's distances (a dict of (R, P) tensors)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--progress", action="store_true", help="show the training progress bars")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    dt = getattr(torch, args.dtype)
    if 1 not in args.M:
        args.M = [1, *args.M]  # the single-decoder model carries the Euclidean, pullback and calibrated rows
    args.M = sorted(set(args.M))

    X, y = load_data(args.data, args.n_train, args.classes)
    train_idx, held_idx = held_out_split(y, args.held_out)
    if args.seen:
        train_idx = torch.arange(len(y))
    Xtr, Xho = X[train_idx].to(dt), X[held_idx].to(dt)
    R, N = args.runs, len(held_idx)
    iu = torch.triu_indices(N, N, 1)
    rows: dict[str, list[torch.Tensor]] = {}
    fails: dict[str, int] = {}
    graph_wins: dict[str, int] = {}
    t_train: dict[int, list[float]] = {M: [] for M in args.M}
    t_geo: dict[str, list[float]] = {}
    sub = torch.randperm(len(Xtr), generator=torch.Generator().manual_seed(0))[:args.graph_points]

    def record(name, D, t=float("nan"), bad=0, won=0):
        rows.setdefault(name, []).append(D[iu[0], iu[1]])
        t_geo.setdefault(name, []).append(t)
        fails[name] = fails.get(name, 0) + bad
        graph_wins[name] = graph_wins.get(name, 0) + won

    for r in range(R):
        for M in args.M:
            ens, t = trained(X[train_idx], r, M, args, args.cache)
            t_train[M].append(t)
            ens = ens.to(dt)
            with torch.no_grad():
                Z = ens.encode(Xho)[0]  # (N, d)
                Zg = graph_nodes(ens.encode(Xtr[sub])[0])
            metrics = []
            if M == 1:
                record("latent Euclidean", torch.cdist(Z, Z))
                vae = ens.members[0]
                with torch.no_grad():
                    record("decoded chord ‖μ(z_i) − μ(z_j)‖", torch.cdist(vae.mu(Z), vae.mu(Z)))
                metrics.append(("mean pullback", gl.pullback(vae.mu)))
                if not args.no_calibrated:  # in float64 whatever --dtype: its walls make float32 solves stall
                    v64 = copy.deepcopy(vae).double().calibrate(Xtr.double(), seed=0)
                    t = time.perf_counter()
                    D, bad, won = geodesic_distances(gl.expected_pullback(v64.mu, v64.calibrated_sigma), Z.double(),
                                                     Zg.double(), args)
                    record("expected metric, calibrated σ (float64)", D.to(dt), time.perf_counter() - t, bad, won)
            else:
                record(f"latent Euclidean, encoder of M={M}", torch.cdist(Z, Z))
            metrics.append((f"ensemble M={M}", ens.metric()))
            if args.subsets and M == args.M[-1] and M > 1:
                metrics += [(f"first {k} of the M={M} ensemble", ens.metric(first=k)) for k in args.M[:-1]]
                metrics.append((f"member 2 of the M={M} ensemble alone", gl.pullback(ens.members[1].mu)))
            for name, G in metrics:
                t = time.perf_counter()
                D, bad, won = geodesic_distances(G, Z, Zg, args)
                record(name, D, time.perf_counter() - t, bad, won)
        print(f"run {r + 1}/{R} done", file=sys.stderr, flush=True)

    P = iu.shape[1]
    if args.save is not None:
        torch.save({name: torch.stack(Ds) for name, Ds in rows.items()} | {"pairs": iu, "held_out": held_idx,
                                                                         "args": vars(args) | {"cache": str(args.cache), "save": str(args.save)}},
                   args.save)
    stats = {name: summarise(torch.stack(Ds)) for name, Ds in rows.items()}
    print(f"\nIdentifiability across {R} independent trainings: {args.data}"
          f"{' classes ' + ','.join(map(str, args.classes)) if args.classes else ''}, {len(train_idx)} training images, "
          f"{N} {'(seen) ' if args.seen else 'held-out '}images ({P} pairs), d={args.d}, hidden={tuple(args.hidden)}, "
          f"{args.epochs} epochs, lr={args.lr}, beta={args.beta}, warm-up={args.warmup}; geodesics T={args.T}, "
          f"init={args.init}, {args.dtype}; {torch.get_num_threads()} thread(s)\n")
    head = (f"| {'distance':40s} | CoV mean ± SE | CoV median | CoV mean, runs scaled | Spearman mean | Spearman min | "
            f"unconverged | graph start won | geodesic time per run [s] min / median / max |")
    print(head)
    print("|" + "|".join("-" * (len(c)) for c in head.split("|")[1:-1]) + "|")
    for name, s in stats.items():
        geo = not name.startswith(("latent", "decoded"))
        print(f"| {name:40s} | {s['cov_mean']:.3f} ± {s['cov_se']:.3f} | {s['cov_median']:10.3f} | {s['cov_scaled']:20.3f} | "
              f"{s['rho_mean']:13.3f} | {s['rho_min']:12.3f} | {(f'{fails[name]}/{R * P}' if geo else '—'):>11s} | "
              f"{(f'{graph_wins[name]}/{R * P}' if geo and args.init == 'best' else '—'):>15s} | "
              f"{(spread(t_geo[name]) if geo else '—'):>44s} |")
    print("\n(SE: jackknife standard error over the runs. CoV mean, runs scaled: the same after dividing each run's "
          "distances by their mean over the pairs, which removes any overall scale a run may have.)")
    top = args.M[-1]
    if args.subsets and top > 1:
        one, two = torch.stack(rows[f"first 1 of the M={top} ensemble"]), torch.stack(rows[f"member 2 of the M={top} ensemble alone"])
        within = torch.stack([cov(torch.stack([one[r], two[r]])) for r in range(R)]).mean().item()
        c1 = mean_cov(one)
        print(f"Within one run, members 1 and 2 of the M={top} ensemble differ by a mean CoV of {within:.3f} (across runs, "
              f"member 1: {c1:.3f}). If averaging k members removed only that within-run part, the CoV of the first k "
              "would be √(CoV₁² − (1 − 1/k)·within²): "
              + ", ".join(f"k={k}: {math.sqrt(max(c1 ** 2 - (1 - 1 / k) * within ** 2, 0)):.3f} predicted, "
                          f"{stats[f'first {k} of the M={top} ensemble' if k < top else f'ensemble M={top}']['cov_mean']:.3f} measured"
                          for k in args.M[1:]) + ".")
    print("Training time per model [s], min / median / max over the runs: "
          + "; ".join(f"M={M}: {spread(ts)}" for M, ts in t_train.items()))
    print()
    eu = torch.stack(rows["latent Euclidean"])
    for M in args.M[1:]:
        en = torch.stack(rows[f"ensemble M={M}"])
        diff = mean_cov(en) - mean_cov(eu)
        se = jackknife_se(lambda a, b: mean_cov(a) - mean_cov(b), en, eu)
        verdict = "beats" if diff < -2 * se else "does NOT beat" if diff > 2 * se else "is not distinguishable from"
        print(f"Ensemble M={M} {verdict} latent Euclidean distances: mean CoV {mean_cov(en):.3f} against "
              f"{mean_cov(eu):.3f} (difference {diff:+.3f} ± {se:.3f}, jackknife over runs).")
    ens_rows = [(M, stats[f"ensemble M={M}"]["cov_mean"]) for M in args.M]
    falling = all(b[1] <= a[1] for a, b in zip(ens_rows, ens_rows[1:]))
    print(f"Mean CoV {'falls' if falling else 'does not fall steadily'} with M (separately trained ensembles: "
          + ", ".join(f"M={M}: {c:.3f}" for M, c in ens_rows) + ")"
          + ("; with the first k members of the M={0} ensemble: ".format(args.M[-1])
             + ", ".join(f"k={k}: {stats[f'first {k} of the M={args.M[-1]} ensemble']['cov_mean']:.3f}"
                         for k in args.M[:-1]) + f", k={args.M[-1]}: {ens_rows[-1][1]:.3f}" if args.subsets else "")
          + ".")
    print("Command: .venv/bin/python benchmarks/bench_identifiability.py "
          + " ".join(argv if argv is not None else sys.argv[1:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
