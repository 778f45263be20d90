"""Benchmark: gl.geodesic against stochman's connecting_geodesic, its scaling, and metric evaluation cost.

    .venv/bin/python benchmarks/bench_geodesics.py [--device cuda] [--pairs 16] [--repeats 5] [--threads 1]
    .venv/bin/python benchmarks/bench_geodesics.py --scaling [--repeats 3]      # the scaling table only

One fixed decoder (seeded MLP 2→64→64→784, tanh, float32) and one fixed set of endpoint pairs for both libraries.
Both curves are scored the same way: the decoded curve on a fine grid of 512 points (piecewise linear in latent
space), giving its data-space length L and the energy L²/2 it has at constant speed; lower is better for both.
Times are min / median / max over ``--repeats`` runs in this process, and the speed-ups are ratios of medians
measured in the same run (so a busy machine slows both sides alike). stochman is optional
(``pip install -c requirements/constraints.txt stochman``); without it its rows are skipped with a message.

``--scaling`` times gl.geodesic on the MLP d→64→64→D (seeded, tanh) against T, the batch B of pairs, d and D,
one at a time around T = 32, B = 16, d = 2, D = 784, each configuration in a fresh process; it prints the times
(min / median / max), the peak memory of the solve (the process's peak resident memory above what it held before
the solve, from /proc/self/status; on a GPU torch.cuda.max_memory_allocated) and the exponent of time against each
parameter (the least-squares slope of log time on log parameter, and the local slopes between neighbours).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import torch

import geomlib as gl

SCALING = {"T": [16, 32, 64, 128], "B": [1, 4, 16, 64, 256, 1024], "d": [2, 4, 8, 16, 32],
           "D": [784, 2000, 5000, 10000]}
BASE = dict(T=32, B=16, d=2, D=784)


def decoder(device, dtype=torch.float32, d=2, D=784):
    torch.manual_seed(0)
    f = torch.nn.Sequential(torch.nn.Linear(d, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh(),
                            torch.nn.Linear(64, D)).to(device, dtype)
    for p in f.parameters():
        p.requires_grad_(False)
    return f


def endpoints(n, device, dtype=torch.float32, d=2):
    g = torch.Generator().manual_seed(1)
    s = 2 * math.sqrt(2 / d)  # |z| about the same for every d
    return ((torch.randn(n, d, generator=g, dtype=dtype) * s).to(device),
            (torch.randn(n, d, generator=g, dtype=dtype) * s).to(device))


def score(f, c_fine):
    """Data-space length of the decoded curve (B, S, d), and the energy L²/2 it has at constant speed."""
    with torch.no_grad():
        L = gl.data_length(c_fine, f)
    return L, 0.5 * L ** 2


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, repeats, device):
    """(min, median, max) wall time over repeats, and the last result."""
    ts, out = [], None
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        out = fn()
        sync(device)
        ts.append(time.perf_counter() - t)
    ts.sort()
    return (ts[0], ts[len(ts) // 2], ts[-1]), out


def run_geomlib(f, z0, z1, step, T=32):
    res = gl.geodesic(gl.pullback(f, step=step), z0, z1, T=T)
    fine = gl.interpolate(res.curve, torch.linspace(0, 1, 512, dtype=z0.dtype, device=z0.device))
    return res, fine


def _manifold(f):
    from stochman.manifold import EmbeddedManifold

    class Decoded(EmbeddedManifold):
        def embed(self, points, jacobian=False):
            return f(points)
    return Decoded()


def run_stochman(f, z0, z1):
    curve, success = _manifold(f).connecting_geodesic(z0, z1)
    with torch.no_grad():
        fine = curve(torch.linspace(0, 1, 512, dtype=z0.dtype, device=z0.device))
    return success, fine


def run_stochman_longer(f, z0, z1, max_iter):
    """stochman's own energy minimiser (the one connecting_geodesic calls with max_iter=150), run longer."""
    from stochman.curves import CubicSpline
    from stochman.geodesic import geodesic_minimizing_energy

    curve = CubicSpline(z0, z1)
    success = geodesic_minimizing_energy(curve, _manifold(f), max_iter=max_iter)
    with torch.no_grad():
        fine = curve(torch.linspace(0, 1, 512, dtype=z0.dtype, device=z0.device))
    return success, fine


def decoder_floor(f, z0, z1, repeats, device):
    """(min, median, max) time of the decoder work alone in one gl.geodesic solve (T=32, data steps): the decoder
    calls the solver makes, recorded (inputs, and whether a vector-Jacobian product followed) and replayed
    without the solver, so the solver's time minus this is its own overhead."""
    calls = []

    class Recorder(torch.nn.Module):
        def forward(self, z):
            calls.append((z.detach().clone(), z.requires_grad))
            return f(z)

    gl.geodesic(gl.pullback(Recorder()), z0, z1, T=32)

    def replay():
        for z, vjp in calls:
            if vjp:
                zr = z.requires_grad_(True)
                with torch.enable_grad():
                    x = f(zr)
                torch.autograd.grad(x, zr, torch.ones_like(x))
            else:
                with torch.no_grad():
                    f(z)

    replay()
    return timed(replay, repeats, device)[0]


def fmt(t):
    return f"{t[0]:.4f} / {t[1]:.4f} / {t[2]:.4f}"


def comparison(args, dev):
    f = decoder(dev)
    z0, z1 = endpoints(args.pairs, dev)
    rows = []  # (name, (min, median, max), energy, length, converged, iterations, all converged)
    for T, step in ((32, "data"), (32, "midpoint"), (24, "data"), (16, "data"), (12, "data"), (8, "data")):
        run_geomlib(f, z0, z1, step, T)  # warm-up (first-call costs of torch's kernels)
        t, (res, fine) = timed(lambda: run_geomlib(f, z0, z1, step, T), args.repeats, dev)
        L, E = score(f, fine)
        rows.append((f"geomlib geodesic (T={T}, step={step})", t, E.mean().item(), L.mean().item(),
                     f"{int(res.converged.sum())}/{args.pairs}", f"{int(res.iterations.max())}", bool(res.converged.all())))
    floor = decoder_floor(f, z0, z1, args.repeats, dev)
    have_stochman = True
    try:
        import stochman  # noqa: F401
    except ImportError:
        have_stochman = False
        print("stochman is not installed (pip install -c requirements/constraints.txt stochman): its rows are skipped")
    if have_stochman:
        run_stochman(f, z0, z1)
        t, (success, fine) = timed(lambda: run_stochman(f, z0, z1), args.repeats, dev)
        L, E = score(f, fine)
        rows.append(("stochman connecting_geodesic", t, E.mean().item(), L.mean().item(),
                     "yes" if bool(success) else "no (1 flag)", "150", bool(success)))
        for n_iter in (600, 2400):  # how long stochman needs to get down to geomlib's energy
            t, (success, fine) = timed(lambda: run_stochman_longer(f, z0, z1, n_iter), 1, dev)
            L, E = score(f, fine)
            rows.append((f"stochman minimiser, max_iter={n_iter}", t, E.mean().item(), L.mean().item(),
                         "yes" if bool(success) else "no (1 flag)", str(n_iter), bool(success)))
    with torch.no_grad():
        L, E = score(f, gl.interpolate(gl.straight_line(z0, z1, 2), torch.linspace(0, 1, 512, device=dev)))
    rows.append(("straight line (reference)", (0.0, 0.0, 0.0), E.mean().item(), L.mean().item(), "-", "-", False))

    print(f"\nGeodesics: {args.pairs} pairs, decoder 2→64→64→784 tanh, float32, device {dev}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}; energy = L²/2 of the decoded curve on 512 "
          f"points (mean over pairs); time min / median / max over {args.repeats} runs (stochman's longer runs: 1)")
    print(f"decoder work alone in geomlib's T=32 solve (its decoder calls replayed, forward passes and VJPs, "
          f"without the solver): {fmt(floor)} s")
    print(f"{'method':40s} {'time [s]':>26s} {'energy':>9s} {'length':>8s} {'converged':>11s} {'iters':>6s}")
    for name, t, E, L, conv, it, _ in rows:
        print(f"{name:40s} {fmt(t):>26s} {E:9.4f} {L:8.4f} {conv:>11s} {it:>6s}")
    if have_stochman:
        ref = next(r for r in rows if r[0] == "stochman connecting_geodesic")
        print(f"\nspeed-up over stochman's connecting_geodesic (ratio of medians, this run; only geomlib rows that "
              f"converged at an energy ≤ stochman's {ref[2]:.4f}):")
        for name, t, E, L, conv, it, ok in rows:
            if name.startswith("geomlib") and ok and E <= ref[2]:
                print(f"  {name:40s} {ref[1][1] / t[1]:6.1f}×  (min/min {ref[1][0] / t[0]:.1f}×)")
        print(f"  {'decoder work alone (T=32, step=data)':40s} {ref[1][1] / floor[1]:6.1f}×  (min/min "
              f"{ref[1][0] / floor[0]:.1f}×): the bound for this algorithm (the solver at zero overhead)")
        base = rows[0]
        close = [r for r in rows if r[0].startswith("stochman") and r[2] <= base[2] * (1 + 1e-4)]
        print(f"  the first stochman run within 0.01% of geomlib's T=32 energy: "
              + (f"{close[0][0]}, {close[0][1][1] / base[1][1]:.0f}× geomlib's time" if close else "none within 2400 steps"))

    # metric evaluation at 10,000 points against d plain forward passes
    Z = torch.randn(10_000, 2, device=dev)
    G = gl.pullback(f)
    t_metric, _ = timed(lambda: G(Z), args.repeats + 2, dev)
    t_fwd, _ = timed(lambda: [f(Z) for _ in range(Z.shape[-1])], args.repeats + 2, dev)
    print(f"\nMetric G = JᵀJ at 10,000 points: {t_metric[1] * 1e3:.1f} ms; d = 2 forward passes: {t_fwd[1] * 1e3:.1f} ms; "
          f"ratio {t_metric[1] / t_fwd[1]:.2f}× (medians; target ≤ 3×)")


# ------------------------------------------------------------------------------------------------ scaling

def _memory_kib(field):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def one(cfg, repeats, dev):
    """Time one configuration in this (fresh) process; print a JSON line."""
    f = decoder(dev, d=cfg["d"], D=cfg["D"])
    z0, z1 = endpoints(cfg["B"], dev, d=cfg["d"])
    G = gl.pullback(f)
    gl.geodesic(G, z0[:1], z1[:1], T=cfg["T"])  # warm-up on one pair
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        try:  # reset the peak resident memory to the current one (Linux ≥ 4.0)
            with open("/proc/self/clear_refs", "w") as fh:
                fh.write("5")
        except OSError:
            pass
        before = _memory_kib("VmRSS") * 1024
    t, res = timed(lambda: gl.geodesic(G, z0, z1, T=cfg["T"]), repeats, dev)
    peak = (torch.cuda.max_memory_allocated() if dev.type == "cuda" else _memory_kib("VmHWM") * 1024) - before
    print(json.dumps(dict(cfg, t=t, peak_mb=peak / 2 ** 20, iters=int(res.iterations.max()),
                          converged=float(res.converged.float().mean()))))


def scaling(args, dev):
    results = {}
    for name, values in SCALING.items():
        for v in values:
            cfg = dict(BASE, **{name: v})
            key = tuple(sorted(cfg.items()))
            if key not in results:
                out = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", json.dumps(cfg),
                                      "--repeats", str(args.repeats), "--device", args.device, "--threads",
                                      str(args.threads)], capture_output=True, text=True, check=True)
                results[key] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"\nScaling of gl.geodesic (MLP d→64→64→D tanh, float32, device {dev}, {args.threads} thread(s), "
          f"torch {torch.__version__}); one parameter varied at a time around {BASE}, each configuration in a fresh "
          f"process; time min / median / max over {args.repeats} runs; peak memory of the solve")
    print(f"{'param':>5s} {'value':>6s} {'time [s]':>26s} {'per pair [ms]':>13s} {'peak [MB]':>10s} "
          f"{'iters':>6s} {'converged':>9s}")
    for name, values in SCALING.items():
        med = []
        for v in values:
            r = results[tuple(sorted(dict(BASE, **{name: v}).items()))]
            med.append(r["t"][1])
            print(f"{name:>5s} {v:6d} {fmt(r['t']):>26s} {1e3 * r['t'][1] / r['B']:13.3f} {r['peak_mb']:10.1f} "
                  f"{r['iters']:6d} {r['converged']:9.0%}")
        x, y = [math.log(v) for v in values], [math.log(t) for t in med]
        mx, my = sum(x) / len(x), sum(y) / len(y)
        slope = sum((a - mx) * (b - my) for a, b in zip(x, y)) / sum((a - mx) ** 2 for a in x)
        local = [(y[i + 1] - y[i]) / (x[i + 1] - x[i]) for i in range(len(x) - 1)]
        print(f"{'':5s} time ∝ {name}^{slope:.2f} over {values[0]}–{values[-1]}; local exponents "
              + ", ".join(f"{values[i]}→{values[i + 1]}: {s:.2f}" for i, s in enumerate(local)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--pairs", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--scaling", action="store_true", help="print the scaling table only")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: one scaling configuration, as JSON
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.set_num_threads(args.threads)
    if args.one:
        one(json.loads(args.one), args.repeats, dev)
    elif args.scaling:
        scaling(args, dev)
    else:
        comparison(args, dev)


if __name__ == "__main__":
    main()
