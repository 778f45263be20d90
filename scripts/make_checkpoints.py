"""Train, seeded, the small VAEs shipped in geomlib/checkpoints/ and save them (each well under 2 MB).

    python scripts/make_checkpoints.py              # train and save all (about a minute on 2 CPU cores)
    python scripts/make_checkpoints.py --only digits_normal
    python scripts/make_checkpoints.py --verify     # retrain and compare with the saved files, byte for byte

Training is deterministic on the CPU: the same torch version and seed give the same weights, and the files
hold nothing else that varies (no timings), so on the same CPU and torch a retrained checkpoint is the same file
byte for byte. ``--verify`` says so, or how far the weights moved (another CPU may round float32 sums
differently; within 1e-4 counts as the same model). One thread, because these models are tiny and thread
hand-offs cost more than they save.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

import geomlib as gl
from geomlib.vae import CHECKPOINTS

# name -> (data, VAE arguments, training arguments, calibration arguments or None, what the lectures use it for)
#
# tree_categorical trains with a KL warm-up (β rises from 1/100 to 1 over the first 100 epochs, then the plain
# ELBO): with β = 1 from the start the posterior collapses onto one latent direction (principal variances of
# the codes 0.003 and 1.2), a line on which lecture 6 cannot show geodesics following the tree's branches.
# With the warm-up both directions are used (variances ≈ 1.0 and 1.4) and the final ELBO is better, not worse.
# torus_von_mises collapses the same way without it: the decoder ignores θ₁ (its concentration sits at the floor
# 1e-3, circular error 1.8 rad); with the warm-up both angles are decoded (errors ≈ 0.07 rad, κ ≈ 35) and the codes
# of the closed loop of poses spread over both latent directions.
# motion_pose trains 1000 epochs: its 400 poses make 4 mini-batches an epoch, and after 300 epochs the decoder is
# still far from the data (position error 2.6 cm, κ ≈ 70, against 1.4 cm and κ ≈ 220 after 1000).
RECIPES = {
    "digits_normal": (lambda: gl.digits()[0], dict(likelihood="normal", D=64, d=2),
                      dict(epochs=300, lr=2e-3), dict(k=32, zeta=1e-2), "lectures 1, 3, 5: digits, Gaussian decoder"),
    "moons_normal": (lambda: gl.moons(n=1000)[0], dict(likelihood="normal", D=2, d=2, hidden=(64, 64)),
                     dict(epochs=200, lr=2e-3), dict(k=16, zeta=1e-2), "toy: two moons, Gaussian decoder"),
    "digits_bernoulli": (lambda: gl.digits(binarize=True)[0], dict(likelihood="bernoulli", D=64, d=2),
                         dict(epochs=300, lr=2e-3), None, "lecture 6: binarised digits, Bernoulli decoder"),
    "torus_von_mises": (lambda: gl.torus_angles(n=1000)[0], dict(likelihood="von_mises", D=2, d=2, hidden=(64, 64)),
                        dict(epochs=200, lr=2e-3, warmup=100), None, "lecture 8: angle pairs, product of von Mises"),
    "tree_categorical": (lambda: gl.tree_sequences().labels, dict(likelihood="categorical", D=30, d=2,
                                                                  n_categories=20),
                         dict(epochs=300, lr=2e-3, batch_size=64, warmup=100), None,
                         "lecture 6: sequences on a tree, Categorical decoder"),
    "sphere_vmf": (lambda: gl.sphere_vectors(n=600, dim=3)[0], dict(likelihood="vmf", D=3, d=2, hidden=(64, 64)),
                   dict(epochs=200, lr=2e-3), None, "tests only (no lecture): directions on S², von Mises-Fisher decoder"),
    "motion_pose": (lambda: gl.motion_demonstrations().x, dict(likelihood="pose", D=7, d=2, hidden=(64, 64),
                                                                min_sigma=1e-3),
                    dict(epochs=1000, lr=2e-3), None,
                    "lecture 8: demonstrated motions in R³ × S³, Normal × von Mises-Fisher decoder"),
}


def train(name: str) -> tuple[gl.VAE, dict, float]:
    data, arch, fit, calib, about = RECIPES[name]
    X = data()
    model = gl.VAE(**arch, seed=0)
    t = time.perf_counter()
    history = gl.train_vae(model, X, seed=0, progress=False, **fit)
    if calib is not None:
        model.calibrate(X, seed=0, **calib)
    meta = dict(about=about, epochs=fit["epochs"], lr=fit["lr"], batch_size=fit.get("batch_size", 128), seed=0,
                beta=fit.get("beta", 1.0), warmup=fit.get("warmup", 0),
                final_loss=history[-1], first_loss=history[0], n_data=len(X), torch=str(torch.__version__))
    return model, meta, time.perf_counter() - t  # the time is printed, not saved: it would change every file


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", choices=sorted(RECIPES), help="train only these")
    ap.add_argument("--verify", action="store_true", help="retrain and compare with the saved checkpoints")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    CHECKPOINTS.mkdir(exist_ok=True)
    failed = []
    for name in args.only or RECIPES:
        model, meta, seconds = train(name)
        path = CHECKPOINTS / f"{name}.pt"
        if args.verify:
            with tempfile.TemporaryDirectory() as tmp:
                fresh = Path(tmp) / path.name  # same file name: torch.save puts it inside the archive
                gl.save_vae(model, fresh, **meta)
                same_bytes = fresh.read_bytes() == path.read_bytes()
            saved = gl.load_vae(path).state_dict()
            worst = max((a - saved[k]).abs().max().item() for k, a in model.state_dict().items())
            # another CPU may round float32 sums differently (vector widths): equal weights to 1e-4 still pass
            verdict = "same file" if same_bytes else "same weights to 1e-4, other bytes" if worst < 1e-4 else "DIFFERENT"
            failed += [] if verdict != "DIFFERENT" else [name]
            print(f"{name:18s} {verdict}, max |Δweight| = {worst:.2e}")
            continue
        gl.save_vae(model, path, **meta)
        print(f"{name:18s} {seconds:6.1f} s  loss {meta['first_loss']:9.3f} -> {meta['final_loss']:9.3f}  "
              f"{path.stat().st_size / 1e6:.2f} MB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
