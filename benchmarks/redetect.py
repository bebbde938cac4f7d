"""Detect every frame vs every K-th frame (``PipelineOptions.redetect_every``): speed, jitter, drift.

    python benchmarks/redetect.py [--weights W] [--video ../shared/data/video/franck.mp4] [--frames 600]

For K in --ks (default 1, 3, 5, 10), all in one run so the ratios are comparable on a shared machine:
fps and median detect / landmark ms on franck.mp4 (first --frames frames) and on the synthetic 640x480
one-face scene of benchmarks/speed.py; detector calls per frame; jitter of the raw and smoothed points
(benchmarks/jitter.py's Savitzky-Golay residual / inter-ocular distance); and, as an accuracy proxy
without ground truth, the mean distance of the raw points from the K = 1 run's raw points on the same
frame, / inter-ocular distance. Not a test.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("GLOG_minloglevel", "2")

import numpy as np  # noqa: E402

# Before anything imports mediapipe: triton (via timm) segfaults when it loads after mediapipe.
from sdfl_core.pipeline import Pipeline, PipelineOptions  # noqa: E402  isort: skip
from sdfl_core.sources import open_source  # noqa: E402

# Run as a script, this folder is sys.path[0], so the sibling benchmarks import directly.
from jitter import jitter  # noqa: E402
from speed import scene  # noqa: E402

log = logging.getLogger("benchmarks.redetect")
DEFAULT_VIDEO = Path(__file__).resolve().parents[2] / "shared" / "data" / "video" / "franck.mp4"


def run(options: PipelineOptions, frames) -> tuple[float, list, dict]:
    """(fps, [(index, id, raw, smoothed)] of the first track, {stage: [ms]}) plus detector calls in stages."""
    samples, stages, calls = [], {"detect": [], "landmarks": []}, [0]
    with Pipeline(options) as pipeline:
        detect = pipeline.detector.detect

        def counted(*a, **k):
            calls[0] += 1
            return detect(*a, **k)

        pipeline.detector.detect = counted
        warm = scene("one")
        for i in range(3):
            pipeline.process(warm, i, i * 33.0)
        pipeline.reset()
        calls[0] = 0
        n = 0
        start = time.perf_counter()
        for index, ts, image in frames:
            result = pipeline.process(image, index, ts + 1000.0)
            n += 1
            for s in stages:
                stages[s].append(result.timings_ms[s])
            if result.tracks:
                t = result.tracks[0]
                samples.append((index, t.track_id, t.raw.points.astype(np.float64), t.smoothed.astype(np.float64)))
        wall = time.perf_counter() - start
    stages["calls_per_frame"] = calls[0] / max(n, 1)
    return n / wall, samples, stages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="sdfl checkpoint or ONNX; default: the shipped model")
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--frames", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=150, help="frames of the synthetic 640x480 scene")
    parser.add_argument("--ks", default="1,3,5,10")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu", choices=("auto", "cpu", "cuda"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.weights is None:
        from sdfl_core.predictor import default_weights

        args.weights = default_weights("sdfl")
    ks = [int(k) for k in args.ks.split(",")]
    if ks[0] != 1:
        ks = [1] + ks
    with open_source(args.video) as source:
        video = [(f.index, f.timestamp_ms, f.image) for f, _ in zip(source, range(args.frames))]
    one = scene("one")
    synthetic = [(i, i * 33.0, one) for i in range(args.repeats)]

    rows, reference, ocular = [], None, None
    for k in ks:
        options = PipelineOptions(weights=args.weights, device=args.device, num_threads=args.threads, redetect_every=k)
        fps_v, samples, stages = run(options, video)
        fps_s, _, _ = run(options, synthetic)
        if ocular is None:
            with Pipeline(options) as p:
                ocular = p.schema.ocular
        (hf_raw, _, _), (hf_s, _, _) = (jitter(samples, ocular, w, 0.01) for w in (0, 1))
        by_frame = {s[0]: s[2] for s in samples}
        if reference is None:
            reference, drift = by_frame, (0.0, 0.0)
        else:
            common = sorted(set(by_frame) & set(reference))
            d = [np.linalg.norm(by_frame[i] - reference[i], axis=1).mean()
                 / np.linalg.norm(reference[i][ocular[0]] - reference[i][ocular[1]]) for i in common]
            drift = (float(np.mean(d)), float(np.percentile(d, 95)))
        rows.append((k, fps_v, fps_s, np.median(stages["detect"]), np.median(stages["landmarks"]),
                     stages["calls_per_frame"], len(samples) / len(video), hf_raw, hf_s, *drift))
    base = rows[0]
    print(f"weights: {args.weights}   franck: {len(video)} frames   640x480 1 face: {len(synthetic)} frames   "
          f"cpu cores: {os.cpu_count()}; jitter and drift / inter-ocular distance")
    print(f"{'K':>3} {'fps video':>9} {'x K=1':>6} {'fps 1face':>9} {'x K=1':>6} {'det ms':>7} {'lm ms':>6} "
          f"{'det/fr':>6} {'tracked':>7} {'jit raw':>8} {'jit smooth':>10} {'drift mean':>10} {'drift p95':>9}")
    for k, fv, fs, dm, lm, cpf, tracked, hr, hs, dmean, dp95 in rows:
        print(f"{k:>3} {fv:>9.1f} {fv / base[1]:>6.2f} {fs:>9.1f} {fs / base[2]:>6.2f} {dm:>7.2f} {lm:>6.2f} "
              f"{cpf:>6.2f} {tracked:>7.3f} {hr:>8.5f} {hs:>10.5f} {dmean:>10.4f} {dp95:>9.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
