#!/usr/bin/env python3
"""Execute the course's notebooks with nbclient and print how long each one takes.

    python binder/time_course.py                       every lectures/*.ipynb, in order
    python binder/time_course.py lectures/02_*.ipynb   only these
    python binder/time_course.py --timeout 900         per-cell timeout in seconds (default 600)

Each notebook runs top to bottom in a fresh kernel of this Python (the environment you call it with),
in its own folder, exactly as "Restart Kernel and Run All Cells" would; the files on disk are not
changed. The table gives wall-clock seconds per notebook, kernel start included, and the total; the exit
status is 1 when any notebook fails. The README's "Executing the whole course takes N s" comes from here.
The last line gives the largest resident memory any kernel reached (Binder restarts kernels above 2 GB).
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def execute(path: Path, timeout: int = 600, kernel_name: str | None = None):
    """Run one notebook in a fresh kernel. Returns (seconds, executed notebook, error message or None)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    name = kernel_name or nb.metadata.get("kernelspec", {}).get("name") or "python3"
    client = NotebookClient(nb, timeout=timeout, kernel_name=name,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    error = None
    try:
        client.execute()
    except Exception as err:  # noqa: BLE001 - a failing notebook is reported, not raised
        lines = re.sub(r"\x1b\[[0-9;]*m", "", str(err)).strip().splitlines()  # no terminal colours
        error = f"{type(err).__name__}: {lines[-1] if lines else ''}"
    return time.perf_counter() - start, nb, error


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="notebooks to run (default: lectures/*.ipynb)")
    parser.add_argument("--timeout", type=int, default=600, help="per-cell timeout in seconds")
    parser.add_argument("--kernel", default=None, help="kernel name (default: the notebook's, else python3)")
    args = parser.parse_args(argv)

    paths = args.notebooks or sorted((ROOT / "lectures").glob("*.ipynb"))
    paths = [p for p in paths if ".ipynb_checkpoints" not in p.parts]
    if not paths:
        print("no notebooks to run (lectures/ has no .ipynb yet)")
        return 0
    print(f"python {platform.python_version()} at {sys.prefix}; {os.cpu_count()} CPU cores")
    total, failed = 0.0, 0
    width = max(len(_show(p)) for p in paths)
    print(f"{'notebook':<{width}}  {'seconds':>8}  status", flush=True)
    for path in paths:
        seconds, _, error = execute(path, args.timeout, args.kernel)
        total += seconds
        failed += error is not None
        print(f"{_show(path):<{width}}  {seconds:8.1f}  {'ok' if error is None else 'FAILED ' + error}", flush=True)
    print(f"{'total':<{width}}  {total:8.1f}  {len(paths) - failed}/{len(paths)} ok")
    peak = _children_peak_mb()
    if peak is not None:
        print(f"largest kernel memory (max RSS): {peak:.0f} MB")
    return 1 if failed else 0


def _children_peak_mb() -> float | None:
    """Max resident set size over the finished child processes (the kernels), in MB; None off Unix."""
    try:
        import resource
    except ImportError:
        return None
    kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # kilobytes on Linux, bytes on macOS
    return kb / 1024 / (1024 if sys.platform == "darwin" else 1)


def _show(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


if __name__ == "__main__":
    sys.exit(main())
