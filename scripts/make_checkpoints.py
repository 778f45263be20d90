"""Train, seeded, the small VAEs shipped in geomlib/checkpoints/ and save them (each well under 2 MB).

    python scripts/make_checkpoints.py              # train and save all (about two minutes on 2 CPU cores)
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


# The independent trainings of lecture 4 (§6-7) and of the exercise 4.4: RUNS VAEs on the digits with seeds
# 0, 1, ..., each as a plain VAE and as a DecoderEnsemble of RUN_M decoders (one encoder) with d = 2, and as an
# ensemble with d = 8, all trained on the same images: the digits without HELD_OUT of them (2 per class), the images
# whose distances the lecture compares. Small networks (64, 64) keep the fifteen files at 2.9 MB;
# benchmarks/bench_identifiability.py --hidden 64 64 --M 1 4 [--d 8] retrains exactly these models.
RUNS, RUN_M, HELD_OUT = 5, 4, 20
RUN_ARCH = dict(likelihood="normal", D=64, d=2, hidden=(64, 64))
RUN_FIT = dict(epochs=300, lr=2e-3)


def held_out_split(y: torch.Tensor, n: int = HELD_OUT, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, held) into the data, with n held-out images spread evenly over the classes (seeded)."""
    g = torch.Generator().manual_seed(seed)
    classes = y.unique()
    per = [n // len(classes) + (k < n % len(classes)) for k in range(len(classes))]
    held = torch.cat([torch.nonzero(y == c).squeeze(1)[torch.randperm(int((y == c).sum()), generator=g)[:p]]
                      for c, p in zip(classes.tolist(), per)])
    keep = torch.ones(len(y), dtype=torch.bool)
    keep[held] = False
    return torch.nonzero(keep).squeeze(1), held


def _run_data():
    X, y = gl.digits()
    return X[held_out_split(y)[0]]


for _r in range(RUNS):  # the seed (training's and initial weights') is the run's number
    RECIPES[f"identifiability/digits_run{_r}_vae"] = (
        _run_data, RUN_ARCH, dict(RUN_FIT, seed=_r), None, f"lecture 4: independent training {_r} (seed {_r}), one decoder")
    RECIPES[f"identifiability/digits_run{_r}_ensemble{RUN_M}"] = (
        _run_data, dict(RUN_ARCH, M=RUN_M), dict(RUN_FIT, seed=_r), None,
        f"lecture 4: independent training {_r} (seed {_r}), {RUN_M} decoders sharing one encoder")
    RECIPES[f"identifiability/digits_d8_run{_r}_ensemble{RUN_M}"] = (
        _run_data, dict(RUN_ARCH, d=8, M=RUN_M), dict(RUN_FIT, seed=_r), None,
        f"lecture 4: independent training {_r} (seed {_r}), d = 8, {RUN_M} decoders sharing one encoder")


def train(name: str) -> tuple[gl.VAE | gl.DecoderEnsemble, dict, float]:
    data, arch, fit, calib, about = RECIPES[name]
    X = data()
    fit = dict(fit)
    seed = fit.pop("seed", 0)
    model = gl.DecoderEnsemble(**arch, seed=seed) if "M" in arch else gl.VAE(**arch, seed=seed)
    t = time.perf_counter()
    history = gl.train_vae(model, X, seed=seed, progress=False, **fit)
    if calib is not None:
        model.calibrate(X, seed=0, **calib)
    meta = dict(about=about, epochs=fit["epochs"], lr=fit["lr"], batch_size=fit.get("batch_size", 128), seed=seed,
                beta=fit.get("beta", 1.0), warmup=fit.get("warmup", 0),
                final_loss=history[-1], first_loss=history[0], n_data=len(X), torch=str(torch.__version__))
    if data is _run_data:  # which digits were held out: the same in every run
        meta["held_out"] = ",".join(map(str, held_out_split(gl.digits()[1])[1].tolist()))
    return model, meta, time.perf_counter() - t  # the time is printed, not saved: it would change every file


def load(path: Path) -> gl.VAE | gl.DecoderEnsemble:
    """A saved checkpoint, as the model it is (an ensemble's config has its number of decoders M)."""
    return gl.load_ensemble(path) if "M" in torch.load(path, weights_only=True)["config"] else gl.load_vae(path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="*", choices=sorted(RECIPES), help="train only these")
    ap.add_argument("--verify", action="store_true", help="retrain and compare with the saved checkpoints")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    failed = []
    for name in args.only or RECIPES:
        model, meta, seconds = train(name)
        path = CHECKPOINTS / f"{name}.pt"
        path.parent.mkdir(parents=True, exist_ok=True)
        if args.verify:
            with tempfile.TemporaryDirectory() as tmp:
                fresh = Path(tmp) / path.name  # same file name: torch.save puts it inside the archive
                gl.save_vae(model, fresh, **meta)
                same_bytes = fresh.read_bytes() == path.read_bytes()
            saved = load(path).state_dict()
            worst = max((a - saved[k]).abs().max().item() for k, a in model.state_dict().items())
            # another CPU may round float32 sums differently (vector widths): equal weights to 1e-4 still pass
            verdict = "same file" if same_bytes else "same weights to 1e-4, other bytes" if worst < 1e-4 else "DIFFERENT"
            failed += [] if verdict != "DIFFERENT" else [name]
            print(f"{name:38s} {verdict}, max |Δweight| = {worst:.2e}")
            continue
        gl.save_vae(model, path, **meta)
        print(f"{name:38s} {seconds:6.1f} s  loss {meta['first_loss']:9.3f} -> {meta['final_loss']:9.3f}  "
              f"{path.stat().st_size / 1e6:.2f} MB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
