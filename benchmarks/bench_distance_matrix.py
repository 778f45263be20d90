"""Benchmark: a class-scale geodesic distance matrix on the shipped digits VAE, and where its time goes.

    .venv/bin/python benchmarks/bench_distance_matrix.py [--points 256] [--T 24] [--threads 1] [--processes 1]
                                                         [--metric pullback] [--chunk 1024] [--device cpu] [--target 30]

256 encoded digits (a seeded sample of gl.digits(), encoder means) give 256·255/2 = 32,640 boundary-value problems,
solved by gl.distance_matrix under the pullback metric of the digits VAE's mean (``--metric expected``: the
expected metric with the calibrated σ). Prints the time (wall and process CPU), the share of pairs that converged and
the share whose length_error (the solver's own discretisation-error estimate) is at most 1%, the iteration counts,
and the breakdown of the time: the energy-and-gradient evaluations, the start-matrix blocks, their factorisation,
and the rest (the solver's own tensor operations and Python). The breakdown wraps geomlib's private solver parts
with timers, so it is a benchmark-only measurement; ``--no-breakdown`` times the plain call. The last line compares
the time with ``--target`` seconds. On a GPU pass ``--device cuda`` (and a larger ``--chunk``, e.g. 8192).

``--processes P`` splits the pairs into P contiguous parts, each solved by gl.geodesic in its own process with
``--threads`` torch threads (no breakdown then): the way to use several cores where torch's intra-op threads do not
pay (many small operations, or cores shared with other work).
"""
from __future__ import annotations

import argparse
import collections
import os
import subprocess
import sys
import tempfile
import time
import warnings

import torch

import geomlib as gl


def codes(n: int, seed: int = 1) -> torch.Tensor:
    vae = gl.load_pretrained("digits_normal")
    X, _ = gl.digits()
    idx = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(seed))[:n]
    with torch.no_grad():
        return vae.encode(X[idx])[0]


def instrument():
    """Wrap the solver's parts with (wall-clock) timers; returns the totals and counts."""
    from geomlib import _blocktri, geodesics as gg

    spent, calls = collections.Counter(), collections.Counter()

    def wrap(obj, name, key):
        fn = getattr(obj, name)

        def timed(*a, **k):
            t = time.perf_counter()
            out = fn(*a, **k)
            spent[key] += time.perf_counter() - t
            calls[key] += 1
            return out
        setattr(obj, name, timed)

    for cls in (gg._ChordEnergy, gg._MetricEnergy):
        wrap(cls, "grad", "energy and gradient")
        wrap(cls, "blocks", "start-matrix blocks")
        wrap(cls, "length_error", "length_error")
    wrap(_blocktri, "factor", "factorisation")
    wrap(_blocktri._Dense, "solve", "solves")
    wrap(_blocktri._Cyclic, "solve", "solves")
    return spent, calls


def metric(name, dev):
    vae = gl.load_pretrained("digits_normal").to(dev)
    return gl.pullback(vae.mu) if name == "pullback" else gl.expected_pullback(vae.mu, vae.calibrated_sigma)


def worker(args, dev, part: str, out: str) -> None:
    """Solve part k of P (contiguous) of the i < j pairs; save lengths, converged, length_error, iterations."""
    k, P = (int(v) for v in part.split("/"))
    Z = codes(args.points).to(dev)
    G = metric(args.metric, dev)
    i, j = torch.triu_indices(args.points, args.points, 1)
    lo, hi = k * i.numel() // P, (k + 1) * i.numel() // P
    parts = []
    for s in range(lo, hi, args.chunk):
        e = min(s + args.chunk, hi)
        res = gl.geodesic(G, Z[i[s:e]], Z[j[s:e]], T=args.T)
        parts.append((res.length, res.converged, res.length_error, res.iterations))
    torch.save([torch.cat(t) for t in zip(*parts)], out)


def processes(args, dev):
    N, P = args.points, args.processes
    pairs = N * (N - 1) // 2
    with tempfile.TemporaryDirectory() as tmp:
        outs = [os.path.join(tmp, f"part{k}.pt") for k in range(P)]
        base = [sys.executable, os.path.abspath(__file__), "--points", str(N), "--T", str(args.T), "--threads",
                str(args.threads), "--metric", args.metric, "--chunk", str(args.chunk), "--device", args.device]
        t = time.perf_counter()
        procs = [subprocess.Popen(base + ["--part", f"{k}/{P}", "--out", outs[k]]) for k in range(P)]
        if any(p.wait() != 0 for p in procs):
            raise SystemExit("a worker failed")
        wall = time.perf_counter() - t
        L, conv, err, iters = (torch.cat(t) for t in zip(*[torch.load(o) for o in outs]))
    print(f"\nDistance matrix: {N} encoded digits ({pairs:,} geodesics), {args.metric} metric of the digits VAE, "
          f"T={args.T}, chunk={args.chunk}, device {dev}, {P} processes × {args.threads} thread(s), torch "
          f"{torch.__version__}")
    print(f"  time: {wall:.1f} s wall, including starting the processes ({1e3 * wall / pairs:.2f} ms per geodesic)")
    print(f"  converged: {conv.float().mean().item():.2%}; length_error ≤ 1%: {(err <= 1e-2).float().mean().item():.2%} "
          f"(max {err.max().item():.3g}); iterations mean {iters.float().mean().item():.1f}, max {int(iters.max())}")
    print(f"  mean distance {L.mean().item():.4f}")
    print(f"  target: < {args.target:g} s: {'met' if wall < args.target else 'NOT met'} ({wall:.1f} s)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=256)
    ap.add_argument("--T", type=int, default=24)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--processes", type=int, default=1)
    ap.add_argument("--part", help=argparse.SUPPRESS)  # internal: "k/P", solve part k of P
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--metric", choices=("pullback", "expected"), default="pullback")
    ap.add_argument("--chunk", type=int, default=1024)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--target", type=float, default=12.0, help="seconds")
    ap.add_argument("--no-breakdown", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    if args.part:
        return worker(args, dev, args.part, args.out)
    if args.processes > 1:
        return processes(args, dev)
    Z = codes(args.points).to(dev)
    G = metric(args.metric, dev)
    spent, calls = (collections.Counter(), collections.Counter()) if args.no_breakdown else instrument()
    N = args.points
    pairs = N * (N - 1) // 2
    res_iters, res_err = [], []
    from geomlib import geodesics as gg
    solve = gg.geodesic

    def recording(*a, **k):  # keep each chunk's iterations and length_error for the summary
        res = solve(*a, **k)
        res_iters.append(res.iterations)
        res_err.append(res.length_error)
        return res
    gg.geodesic = recording
    if dev.type == "cuda":
        torch.cuda.synchronize()
    t, c = time.perf_counter(), time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        D, C = gl.distance_matrix(G, Z, T=args.T, chunk=args.chunk, return_converged=True)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    gg.geodesic = solve
    iters, err = torch.cat(res_iters).float(), torch.cat(res_err)
    i, j = torch.triu_indices(N, N, 1)
    conv = C[i, j].float().mean().item()
    print(f"\nDistance matrix: {N} encoded digits ({pairs:,} geodesics), {args.metric} metric of the digits VAE, "
          f"T={args.T}, chunk={args.chunk}, device {dev}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"  time: {wall:.1f} s wall, {cpu:.1f} s process CPU ({1e3 * wall / pairs:.2f} ms per geodesic)")
    print(f"  converged: {conv:.2%}; length_error ≤ 1%: {(err <= 1e-2).float().mean().item():.2%} "
          f"(max {err.max().item():.3g}); iterations mean {iters.mean().item():.1f}, max {int(iters.max())}")
    print(f"  mean distance {D[i, j].mean().item():.4f}; warnings: {len(caught)}"
          + "".join(f"\n    {str(w.message)[:160]}" for w in caught))
    if spent:
        total = sum(spent.values())
        print("  where the time goes (wall):")
        for key, s in spent.most_common():
            print(f"    {key:22s} {s:7.2f} s  {s / wall:6.1%}  ({calls[key]} calls)")
        print(f"    {'the rest':22s} {wall - total:7.2f} s  {(wall - total) / wall:6.1%}  (the solver's own tensor "
              f"operations and Python)")
    print(f"  target: < {args.target:g} s: {'met' if wall < args.target else 'NOT met'} ({wall:.1f} s)")


if __name__ == "__main__":
    main()
