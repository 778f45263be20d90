"""Benchmark: grading a generated class of submissions of one lecture, one notebook at a time and several at once.

    .venv/bin/python benchmarks/bench_grading.py [--students 100] [--lecture 03] [--jobs 1 2] [--timeout 60]
    .venv/bin/python benchmarks/bench_grading.py --collisions     # how often two students share an answer

The class is made from the lecture's exercise notebook with ``coursekit.generate.fill_in``: of every ten students six
hand in right code, two the blank notebook, one a notebook whose first exercise is wrong, and one a copy of a
neighbour's notebook with the neighbour's id (graded on its own numbers). Each ``--jobs`` value grades the whole class
with ``coursekit.grade.grade`` (each notebook in a fresh Python process); the table gives the wall time, the seconds
per submission, the median and slowest notebook, and the peak resident memory of the largest child process and of
the grading process itself, and the CPU seconds (children and grader) per submission, which depend little on what
else the machine runs. The last lines extrapolate to 300 submissions on 4 cores (the target is under 15 minutes):
linearly from the largest ``--jobs`` measured (which holds while every worker has a core of its own), from the CPU
time, and, as a bound that needs no free core, at the per-submission rate of the largest ``--jobs`` measured here.
"""
from __future__ import annotations

import argparse
import itertools
import os
import re
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat

from coursekit import catalog, grade
from coursekit.generate import ROOT, fill_in


def make_class(folder: Path, lecture: str, n: int) -> None:
    name = next((ROOT / "exercises").glob(f"{lecture}_*.ipynb")).name
    first = catalog.exercise(catalog.LECTURES[lecture][0])
    wrong = {first.id: "    return 0.0  # wrong on purpose"}
    for k in range(n):
        sid, kind = f"student{k:03d}", k % 10
        if kind in (6, 7):
            nb = nbformat.read(ROOT / "exercises" / name, as_version=4)
        elif kind == 8:
            nb = fill_in(name, sid, wrong)
        elif kind == 9:
            nb = fill_in(name, f"student{k - 1:03d}")  # a neighbour's notebook, handed in under another name
        else:
            nb = fill_in(name, sid)
        nbformat.write(nb, folder / f"{sid}.ipynb")


class ChildMemory(threading.Thread):
    """Samples the peak resident memory (VmHWM, Linux's /proc) of this process's children every 20 ms: the
    grader's notebook processes. (getrusage's ru_maxrss would count the copy of this process a child is before it
    execs the new interpreter.)"""

    def __init__(self):
        super().__init__(daemon=True)
        self.peaks: dict[int, int] = {}
        self.done = threading.Event()

    def run(self):
        me = str(os.getpid())
        while not self.done.wait(0.02):
            for pid in os.listdir("/proc"):
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except (OSError, ValueError):
                    continue
                if re.search(rf"^PPid:\s+{me}$", status, re.M) and "VmHWM" in status:
                    kb = int(re.search(r"^VmHWM:\s+(\d+)", status, re.M).group(1))
                    self.peaks[int(pid)] = max(kb, self.peaks.get(int(pid), 0))


def run(folder: Path, jobs: int, timeout: float) -> dict:
    times = []
    sampler = ChildMemory()
    sampler.start()

    def progress(line):
        m = re.search(r" in ([0-9.]+) s$", line)
        if m:
            times.append(float(m.group(1)))

    def cpu(who):
        u = resource.getrusage(who)
        return u.ru_utime + u.ru_stime

    c0, s0, t0 = cpu(resource.RUSAGE_CHILDREN), cpu(resource.RUSAGE_SELF), time.perf_counter()
    rows = grade.grade(folder, timeout=timeout, jobs=jobs, progress=progress)
    wall = time.perf_counter() - t0
    child_cpu, self_cpu = cpu(resource.RUSAGE_CHILDREN) - c0, cpu(resource.RUSAGE_SELF) - s0
    sampler.done.set()
    sampler.join()
    peaks = sorted(sampler.peaks.values()) or [0]
    return {"jobs": jobs, "wall": wall, "n": len(times), "median": statistics.median(times), "max": max(times),
            "points": sum(t["points"] for t in grade.totals(rows).values()), "children": len(sampler.peaks),
            "cpu": (child_cpu + self_cpu) / max(1, len(times)),
            "child_mb": peaks[-1] / 1024, "child_median_mb": statistics.median(peaks) / 1024,
            "self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def collisions(n: int = 100) -> None:
    """For each per-student question: of all pairs among n ids, how many get the same numbers, and how many get answers
    within the question's tolerance of each other (a copied number that would pass)."""
    ids = [f"s{i:03d}" for i in range(n)]
    pairs = list(itertools.combinations(range(n), 2))
    print("| question | values a student can get | same numbers | answers within the tolerance |")
    print("| --- | --- | --- | --- |")
    for ex_id in catalog.PER_STUDENT:
        ex = catalog.exercise(ex_id)
        ans = [ex.reference(ex.cases_for(s)[0]).reshape(-1) for s in ids]
        same = sum(ex.values(ids[a]) == ex.values(ids[b]) for a, b in pairs)
        close = sum(bool(((ans[a] - ans[b]).abs() <= ex.atol).all()) for a, b in pairs)
        count = " × ".join(str(p.count) for p in ex.params)
        print(f"| {ex_id} (±{ex.atol:g}) | {count} | {same / len(pairs):.2%} | {close / len(pairs):.2%} |")
    print(f"({len(pairs)} pairs of {n} ids)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--students", type=int, default=100)
    ap.add_argument("--lecture", default="03", choices=sorted(catalog.LECTURES))
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--collisions", action="store_true", help="print the answer-collision table and stop")
    args = ap.parse_args()
    if args.collisions:
        collisions()
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        folder = Path(tmp)
        make_class(folder, args.lecture, args.students)
        print(f"{args.students} submissions of lecture {args.lecture}, timeout {args.timeout:g} s, {grade.cores()} "
              f"core(s) here")
        print("| --jobs | total | per submission | CPU per submission | median notebook | slowest | points | "
              "child memory: median, largest | grader |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
        results = []
        for jobs in args.jobs:
            r = run(folder, jobs, args.timeout)
            results.append(r)
            print(f"| {jobs} | {r['wall']:.1f} s | {r['wall'] / args.students:.2f} s | {r['cpu']:.2f} s | "
                  f"{r['median']:.2f} s | "
                  f"{r['max']:.2f} s | {r['points']} | {r['child_median_mb']:.0f} MB, {r['child_mb']:.0f} MB "
                  f"({r['children']} sampled) | {r['self_mb']:.0f} MB |", flush=True)
    best = max(results, key=lambda r: r["jobs"])
    if len(results) > 1:
        one = min(results, key=lambda r: r["jobs"])
        print(f"speed-up from --jobs {one['jobs']} to {best['jobs']}: {one['wall'] / best['wall']:.2f}×")
    est = 300 * best["wall"] / args.students * best["jobs"] / 4
    slow = 300 * best["wall"] / args.students
    cpu = 300 * statistics.mean(r["cpu"] for r in results) / 4
    verdict = lambda t: "met" if t < 900 else "NOT met"  # noqa: E731
    print(f"extrapolated to 300 submissions on 4 cores (target < 900 s):\n"
          f"  linear from --jobs {best['jobs']}: {est:.0f} s ({est / 60:.1f} min, {verdict(est)})\n"
          f"  from the CPU time, 4 free cores: {cpu:.0f} s ({cpu / 60:.1f} min, {verdict(cpu)})\n"
          f"  with no gain at all beyond --jobs {best['jobs']} here: {slow:.0f} s ({slow / 60:.1f} min, {verdict(slow)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
