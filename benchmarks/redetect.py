"""Detect every frame vs every K-th frame (``RedetectOptions.every``): speed, jitter, drift.

    python benchmarks/redetect.py [--weights W] [--video ../shared/data/video/franck.mp4] [--frames 600]

For K in --ks (default 1, 3, 5, 10) and, for K > 1, each crop dead band in --deadbands
(``RedetectOptions.crop_deadband``), all in one run so the ratios are comparable on a shared machine:
fps and median detect / landmark ms on franck.mp4 (first --frames frames) and on the synthetic 640x480
one-face scene of benchmarks/speed.py; detector calls per frame; jitter of the raw and smoothed points
(benchmarks/jitter.py's Savitzky-Golay residual / inter-ocular distance); and, as an accuracy proxy
without ground truth, the mean distance of the raw points from the K = 1 run's raw points on the same
frame, / inter-ocular distance; and real accuracy: NME (inter-ocular) against ground truth on clips
made from 300W faces (--truth, default AFW: the dev test set) moved and zoomed along a known path.
Not a test.
"""
from __future__ import annotations

from preamble import AFW, add_video_args, parse_video_args, resolved_engine  # isort: skip  (first: paths, logs, native import order)

import argparse
import logging
import os
import sys
import time
from pathlib import Path

# Run as a script, this folder is sys.path[0], so the sibling benchmarks import directly.
import cv2
import numpy as np
from jitter import jitter
from speed import scene

from sdfl_core import crops
from sdfl_core.datasets import load_image, load_samples
from sdfl_core.pipeline import Pipeline, PipelineOptions
from sdfl_core.redetect import RedetectOptions
from sdfl_core.sources import open_source

log = logging.getLogger("benchmarks.redetect")
DEFAULT_TRUTH = AFW


def truth_clips(path: Path, faces: int, length: int, face_px: float = 200.0):
    """Clips of ``length`` 640x480 frames, one per face of the first ``faces`` 300W samples: the face
    (landmark box scaled to ``face_px``) slides +-60 px across and +-30 px down and zooms +-12 % along
    sinusoids. Yields (clip, [(timestamp_ms, frame, truth (N, 2))])."""
    samples = sorted(load_samples(path, "300w"), key=lambda s: (str(s.image_path), s.points[0, 0]))[:faces]
    for c, sample in enumerate(samples):
        image = load_image(sample)
        box = crops.landmark_box(sample.points)
        centre = box[:2] + box[2:] / 2
        base = face_px / max(box[2], box[3])
        clip = []
        for i in range(length):
            t = 2 * np.pi * i / length
            scale = base * (1 + 0.12 * np.sin(t))
            offset = np.array([320 + 60 * np.sin(t), 240 + 30 * np.sin(2 * t)])
            m = np.float64([[scale, 0, 0], [0, scale, 0]])
            m[:, 2] = offset - scale * centre
            frame = cv2.warpAffine(image, m, (640, 480), flags=cv2.INTER_LINEAR, borderValue=(40, 40, 40))
            clip.append((i * 1000.0 / 30.0, frame, crops.transform_points(sample.points, m)))
        yield c, clip


def truth_nme(options: PipelineOptions, clips, ocular: tuple[int, int]) -> tuple[float, float]:
    """(mean NME io of the raw points of the track nearest the truth, fraction of frames with such a track)."""
    errors, frames = [], 0
    with Pipeline(options) as pipeline:
        ts0 = 0.0
        for _, clip in clips:
            pipeline.reset()
            for i, (ts, frame, truth) in enumerate(clip):
                frames += 1
                result = pipeline.process(frame, i, ts0 + ts)
                centre = truth.mean(axis=0)
                near = [t for t in result.tracks if np.linalg.norm(t.raw.points.mean(axis=0) - centre)
                        < 0.5 * np.linalg.norm(truth[ocular[0]] - truth[ocular[1]]) * 3]
                if not near:
                    continue
                track = min(near, key=lambda t: np.linalg.norm(t.raw.points.mean(axis=0) - centre))
                iod = np.linalg.norm(truth[ocular[0]] - truth[ocular[1]])
                errors.append(np.linalg.norm(track.raw.points - truth, axis=1).mean() / iod)
            ts0 += len(clip) * 1000.0 / 30.0 + 1000.0
    return (float(np.mean(errors)) if errors else float("nan")), len(errors) / max(frames, 1)


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
    add_video_args(parser, frames=600)
    parser.add_argument("--repeats", type=int, default=150, help="frames of the synthetic 640x480 scene")
    parser.add_argument("--ks", default="1,3,5,10")
    parser.add_argument("--deadbands", default="0,0.04",
                        help="RedetectOptions.crop_deadband values tried for each K > 1")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--truth", type=Path, default=DEFAULT_TRUTH, help="300W folder for the known-motion clips")
    parser.add_argument("--truth-faces", type=int, default=40)
    parser.add_argument("--truth-length", type=int, default=30, help="frames per known-motion clip")
    args = parse_video_args(parser, argv)
    ks = [int(k) for k in args.ks.split(",")]
    if ks[0] != 1:
        ks = [1] + ks
    deadbands = [float(d) for d in args.deadbands.split(",")]
    settings = [(1, 0.0)] + [(k, d) for k in ks[1:] for d in deadbands]
    with open_source(args.video) as source:
        video = [(f.index, f.timestamp_ms, f.image) for f, _ in zip(source, range(args.frames))]
    clips = list(truth_clips(args.truth, args.truth_faces, args.truth_length)) if args.truth.is_dir() else []
    one = scene("one")
    synthetic = [(i, i * 33.0, one) for i in range(args.repeats)]

    rows, reference, ocular = [], None, None
    for k, deadband in settings:
        options = PipelineOptions(weights=args.weights, device=args.device, engine=args.engine, num_threads=args.threads,
                                  redetect=RedetectOptions(every=k, crop_deadband=deadband))
        fps_v, samples, stages = run(options, video)
        fps_s, _, _ = run(options, synthetic)
        if ocular is None:
            with Pipeline(options) as p:
                ocular = p.schema.ocular
        (hf_raw, _, _), (hf_s, _, _) = (jitter(samples, ocular, w, 0.01) for w in (0, 1))
        nme, found = truth_nme(options, clips, ocular) if clips else (float("nan"), float("nan"))
        by_frame = {s[0]: s[2] for s in samples}
        if reference is None:
            reference, drift = by_frame, (0.0, 0.0)
        else:
            common = sorted(set(by_frame) & set(reference))
            d = [np.linalg.norm(by_frame[i] - reference[i], axis=1).mean()
                 / np.linalg.norm(reference[i][ocular[0]] - reference[i][ocular[1]]) for i in common]
            drift = (float(np.mean(d)), float(np.percentile(d, 95)))
        rows.append((k, deadband, fps_v, fps_s, np.median(stages["detect"]), np.median(stages["landmarks"]),
                     stages["calls_per_frame"], len(samples) / len(video), hf_raw, hf_s, *drift, nme, found))
    base = rows[0]
    print(f"weights: {args.weights}   engine: {resolved_engine(args)}   franck: {len(video)} frames   "
          f"640x480 1 face: {len(synthetic)} frames   "
          f"cpu cores: {os.cpu_count()}; jitter and drift / inter-ocular distance")
    if clips:
        print(f"truth: {len(clips)} faces of {args.truth} x {args.truth_length} frames moving along a known path; "
              f"NME io of the raw points")
    print(f"{'K':>3} {'deadband':>8} {'fps video':>9} {'x K=1':>6} {'fps 1face':>9} {'x K=1':>6} {'det ms':>7} {'lm ms':>6} "
          f"{'det/fr':>6} {'tracked':>7} {'jit raw':>8} {'jit smooth':>10} {'drift mean':>10} {'drift p95':>9} "
          f"{'truth NME':>9} {'found':>6}")
    for k, db, fv, fs, dm, lm, cpf, tracked, hr, hs, dmean, dp95, nme, found in rows:
        print(f"{k:>3} {db:>8.2f} {fv:>9.1f} {fv / base[2]:>6.2f} {fs:>9.1f} {fs / base[3]:>6.2f} {dm:>7.2f} {lm:>6.2f} "
              f"{cpf:>6.2f} {tracked:>7.3f} {hr:>8.5f} {hs:>10.5f} {dmean:>10.4f} {dp95:>9.4f} {nme:>9.4f} {found:>6.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
