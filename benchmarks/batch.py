"""Aggregate throughput of `sdfl batch --workers N` against one `sdfl track`, measured in the same run.

    python benchmarks/batch.py [--video ../shared/data/video/franck.mp4] [--copies 8] [--workers 2]
                               [--seconds 0] [--weights W] [--out DIR]

Makes --copies copies of --video (symlinks; with --seconds S > 0, the first S seconds re-encoded instead,
for a shorter run), then times, as separate processes of the CLI so both pay their start-up:
- `sdfl track COPY --csv` on one copy: its fps is frames / wall time;
- `sdfl batch COPIES --workers N --out` on all copies (a fresh output folder, a local Ray cluster):
  aggregate fps is all frames / wall time, Ray and model start-up included.
Prints both and their ratio, and the same for processing alone (start-up excluded): the fps `sdfl track`
reports (its progress bar's rate) against all frames / (the workers' summed per-video seconds / N).
With short clips start-up dominates the first ratio; run the full video for the figure that matters.
Not a test: it never fails on timing.
"""
from __future__ import annotations

from preamble import FRANCK, setup_logging  # isort: skip  (first: paths, logs, native import order)

import argparse
import csv
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2

log = logging.getLogger("benchmarks.batch")
DEFAULT_VIDEO = FRANCK


def make_copies(video: Path, folder: Path, copies: int, seconds: float) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    source = video
    if seconds > 0:
        cap = cv2.VideoCapture(str(video))
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        source = folder / "cut.mp4"
        writer = cv2.VideoWriter(str(source), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        for _ in range(int(round(seconds * fps))):
            ok, frame = cap.read()
            if not ok:
                break
            writer.write(frame)
        writer.release()
        cap.release()
    paths = []
    for i in range(copies):
        path = folder / "copies" / f"copy{i:02d}.mp4"
        path.parent.mkdir(exist_ok=True)
        path.unlink(missing_ok=True)
        path.symlink_to(source.resolve())
        paths.append(path)
    return paths


def cli(*args: str) -> tuple[float, str]:
    """Wall seconds and stdout of one `sdfl` command in its own process."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "sdfl_core.cli", *args], capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"sdfl {args[0]} failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    return seconds, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--copies", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=0.0, help="use only the first S seconds of the video (0 = all)")
    parser.add_argument("--weights", help="model (default: the shipped SDFL model)")
    parser.add_argument("--out", type=Path, help="work folder (default: a temporary one)")
    args = parser.parse_args()
    setup_logging(logging.INFO)
    if not args.video.is_file():
        raise SystemExit(f"video not found: {args.video}")
    work = args.out or Path(tempfile.mkdtemp(prefix="sdfl-batch-bench-"))
    copies = make_copies(args.video, work, args.copies, args.seconds)
    weights = ["--weights", args.weights] if args.weights else []

    track_s, track_out = cli("track", str(copies[0]), "--csv", str(work / "track.csv"), *weights)
    with open(work / "track.csv", newline="") as fh:
        track_frames = len({row["frame"] for row in csv.DictReader(fh)})  # frames with a face
    cap = cv2.VideoCapture(str(copies[0]))
    frames_per_copy = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
    cap.release()
    out = work / "batch-out"
    batch_s, _ = cli("batch", str(copies[0].parent), "--out", str(out), "--workers", str(args.workers), *weights)
    with open(out / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    done = [r for r in rows if r["status"] == "done"]
    batch_frames = sum(int(r["frames"]) for r in done)
    per_video = sorted(float(r["fps"]) for r in done)

    track_fps, batch_fps = frames_per_copy / track_s, batch_frames / batch_s
    track_steady = float(track_out.split(" fps")[0].rsplit(" ", 1)[-1])  # "N frames, M face detections, X fps"
    batch_steady = batch_frames / (sum(float(r["seconds"]) for r in done) / args.workers)
    print(f"video: {args.video} ({frames_per_copy} frames per copy, {track_frames} with a face)   copies: {args.copies}"
          f"   cpu cores: {os.cpu_count()}   workers: {args.workers}")
    print(f"sdfl track, 1 copy:          {frames_per_copy:7d} frames {track_s:8.1f} s {track_fps:8.1f} fps")
    print(f"sdfl batch, {len(done)}/{len(rows)} copies done: {batch_frames:7d} frames {batch_s:8.1f} s {batch_fps:8.1f} fps"
          f"   (per video, worker time: {per_video[0]:.1f}-{per_video[-1]:.1f} fps)")
    print(f"ratio batch / track, wall clock with start-up: {batch_fps / track_fps:.2f}")
    print(f"processing only: track {track_steady:.1f} fps, batch {batch_steady:.1f} fps; "
          f"ratio {batch_steady / track_steady:.2f}")


if __name__ == "__main__":
    main()
