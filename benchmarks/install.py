"""Install size, start-up time and memory of `sdfl track IMAGE`: the base install against the full dev one.

Not a test: it prints what it measures. Both installs are measured in the same run, so the ratios hold
even on a machine whose speed varies. It builds the base install itself (a non-editable `pip install .`
with constraints.txt into a fresh venv, unless --base-venv names an existing one); the dev venv is
passed with --dev-venv (default: the `.venv` of the checkout).

    python benchmarks/install.py [--base-venv DIR] [--dev-venv DIR] [--image PATH] [--runs N]
"""
from __future__ import annotations

from preamble import ASTRONAUT, REPO  # isort: skip  (first: paths, logs, native import order)

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HEAVY = ("torch", "timm", "torchvision", "onnx", "triton", "matplotlib")


def folder_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            file = Path(root) / name
            if not file.is_symlink():
                total += file.stat().st_size
    return total


def build_base(venv: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "-c", str(REPO / "constraints.txt"), str(REPO)], check=True)


def _env(pythonpath: str) -> dict:
    return {**os.environ, "PYTHONPATH": pythonpath}


def track_once(venv: Path, image: Path, workdir: Path, pythonpath: str = "") -> float:
    """Wall seconds of one `sdfl track IMAGE --csv out.csv` process, run from a folder outside the
    checkout so that the installed package, not the source tree, is what runs."""
    start = time.perf_counter()
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "sdfl_core.cli", "track", str(image), "--csv", "out.csv"],
                          cwd=workdir, capture_output=True, text=True, env=_env(pythonpath))
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"sdfl track failed in {venv}: {done.stderr.strip().splitlines()[-1:]}")
    return wall


def measure_in_child(venv: Path, image: Path, runs: int, pythonpath: str) -> tuple[list[float], float]:
    """Wall times and peak RSS (MB) of ``runs`` runs. They run under a bare child process of their own
    (no preamble, no torch: nothing else it starts counts), whose RUSAGE_CHILDREN peak is then the
    runs' alone."""
    import json

    command = [str(venv / "bin" / "python"), "-m", "sdfl_core.cli", "track", str(image), "--csv", "out.csv"]
    code = ("import json, os, resource, subprocess, sys, tempfile, time\n"
            "command, runs, env = json.loads(sys.argv[1]), int(sys.argv[2]), {**os.environ, 'PYTHONPATH': sys.argv[3]}\n"
            "work, walls = tempfile.mkdtemp(), []\n"
            "for _ in range(runs):\n"
            "    start = time.perf_counter()\n"
            "    done = subprocess.run(command, cwd=work, capture_output=True, text=True, env=env)\n"
            "    walls.append(time.perf_counter() - start)\n"
            "    if done.returncode:\n"
            "        sys.exit('sdfl track failed: ' + (done.stderr.strip().splitlines() or ['?'])[-1])\n"
            "print(json.dumps([walls, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0]))\n")
    done = subprocess.run([sys.executable, "-S", "-c", code, json.dumps(command), str(runs), pythonpath],
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"measuring {venv} failed: {done.stderr.strip().splitlines()[-1:]}")
    walls, peak = json.loads(done.stdout.strip().splitlines()[-1])
    return walls, peak


def imported_heavy(venv: Path, image: Path, pythonpath: str) -> str:
    code = ("import sys\nfrom sdfl_core.cli import main\nmain(['track', sys.argv[1]])\n"
            f"print('HEAVY', ','.join(m for m in {HEAVY!r} if m in sys.modules) or '-')")
    with tempfile.TemporaryDirectory() as work:
        done = subprocess.run([str(venv / "bin" / "python"), "-c", code, str(image)], cwd=work, capture_output=True,
                              text=True, env=_env(pythonpath))
    lines = [line for line in done.stdout.splitlines() if line.startswith("HEAVY")]
    return lines[-1].split(" ", 1)[1] if lines else "?"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-venv", type=Path, help="an existing base venv (default: build one in a temp folder)")
    parser.add_argument("--dev-venv", type=Path, default=REPO / ".venv", help="the full dev venv (torch and all)")
    parser.add_argument("--image", type=Path, default=ASTRONAUT)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dev-pythonpath", default="",
                        help="PYTHONPATH for the dev venv, for one whose editable install points at another checkout")
    args = parser.parse_args()

    tmp = None
    base = args.base_venv
    if base is None:
        tmp = tempfile.TemporaryDirectory()
        base = Path(tmp.name) / "base"
        print(f"building the base install in {base} ...", flush=True)
        build_base(base)
    rows = {}
    installs = (("base", base, ""), ("dev", args.dev_venv, args.dev_pythonpath))
    for _, venv, path in installs:
        track_once(venv, args.image, Path(tempfile.mkdtemp()), path)  # warm the file cache for both alike
    for name, venv, path in installs:
        walls, peak = measure_in_child(venv, args.image, args.runs, path)
        rows[name] = (folder_bytes(venv) / 1e9, statistics.median(walls), min(walls), max(walls), peak,
                      imported_heavy(venv, args.image, path))
    print(f"`sdfl track {args.image.name}` ({args.runs} runs each, from a folder outside the checkout)")
    print(f"{'install':<8} {'venv GB':>8} {'wall s (median, min-max)':>26} {'peak RSS MB':>12}  heavy modules imported")
    for name, (size, median, low, high, peak, heavy) in rows.items():
        print(f"{name:<8} {size:8.2f} {median:12.2f} ({low:.2f}-{high:.2f}) {peak:12.0f}  {heavy}")
    b, d = rows["base"], rows["dev"]
    print(f"base / dev: venv {b[0] / d[0]:.2f}x, wall {b[1] / d[1]:.2f}x, peak RSS {b[4] / d[4]:.2f}x")
    print("goals: base venv <= 1.2 GB, wall <= 1.5 s, peak RSS <= 400 MB")
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    main()
