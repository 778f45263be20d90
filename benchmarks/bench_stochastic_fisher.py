"""Benchmark: geodesics under the expected metric and the Fisher–Rao metric on the shipped digits VAEs.

    .venv/bin/python benchmarks/bench_stochastic_fisher.py [--device cuda] [--pairs 64] [--matrix 256]

Times one batch of ``--pairs`` endpoint pairs (encoded digits, seeded) for
  * the expected metric E[JᵀJ] = J_μᵀJ_μ + J_σᵀJ_σ of the Normal digits VAE with the calibrated σ,
  * the Fisher–Rao metric of the Bernoulli digits VAE with KL steps (E = (T−1) Σ KL(p_n ‖ p_{n+1})),
and, on a GPU, a ``--matrix``-point geodesic distance matrix under the expected metric (target < 10 s on one H100;
not yet run on GPU hardware). The CPU distance matrix has its own benchmark, benchmarks/bench_distance_matrix.py.
"""
from __future__ import annotations

import argparse
import time

import torch

import geomlib as gl


def sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timed(fn, dev):
    sync(dev)
    t = time.perf_counter()
    out = fn()
    sync(dev)
    return time.perf_counter() - t, out


def codes(vae, n, seed, binarize=False):
    X, _ = gl.digits(binarize=binarize)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randperm(X.shape[0], generator=g)[:n]
    with torch.no_grad():
        return vae.encode(X[idx])[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--pairs", type=int, default=64)
    ap.add_argument("--matrix", type=int, default=256)
    ap.add_argument("--T", type=int, default=24)
    args = ap.parse_args()
    dev = torch.device(args.device)
    rows = []

    normal = gl.load_pretrained("digits_normal").to(dev)
    Z = codes(normal.cpu(), 2 * args.pairs, seed=0).to(dev)
    normal = normal.to(dev)
    for calibrated in (False, True):
        sigma = normal.calibrated_sigma if calibrated else normal.sigma
        G = gl.expected_pullback(normal.mu, sigma)
        t, res = timed(lambda: gl.geodesic(G, Z[::2], Z[1::2], T=args.T), dev)
        rows.append((f"expected metric, {'calibrated' if calibrated else 'trained'} σ", t, res))

    bern = gl.load_pretrained("digits_bernoulli")
    Zb = codes(bern, 2 * args.pairs, seed=0, binarize=True).to(dev)
    bern = bern.to(dev)
    for step in ("kl", "midpoint"):
        G = gl.fisher_pullback(bern.decode, step=step)
        t, res = timed(lambda: gl.geodesic(G, Zb[::2], Zb[1::2], T=args.T), dev)
        rows.append((f"Fisher–Rao (Bernoulli), step={step}", t, res))

    print(f"\nGeodesics on the shipped digits VAEs: {args.pairs} pairs per batch, T={args.T}, device {dev}, "
          f"{torch.get_num_threads()} threads")
    print(f"{'metric':42s} {'time [s]':>9s} {'per pair [ms]':>14s} {'converged':>10s} {'max iters':>10s} {'mean length':>12s}")
    for name, t, res in rows:
        print(f"{name:42s} {t:9.2f} {1e3 * t / args.pairs:14.1f} {int(res.converged.sum()):>5d}/{args.pairs:<4d} "
              f"{int(res.iterations.max()):>10d} {res.length.mean().item():12.3f}")

    if dev.type == "cuda":
        Zm = codes(normal.cpu(), args.matrix, seed=1).to(dev)
        G = gl.expected_pullback(normal.mu, normal.calibrated_sigma)
        t, (D, C) = timed(lambda: gl.distance_matrix(G, Zm, T=args.T, chunk=8192, return_converged=True), dev)
        print(f"\n{args.matrix}-point distance matrix ({args.matrix * (args.matrix - 1) // 2} geodesics) on {dev}: "
              f"{t:.2f} s, {C.float().mean().item():.2%} converged (target < 10 s on one H100)")
    else:
        print("\n(distance-matrix row: run with --device cuda on a GPU)")


if __name__ == "__main__":
    main()
