"""Visibility-weighted smoothing against a known moving occluder: error on the covered points and jitter.

    python benchmarks/visibility.py [--weights W] [--video ../shared/data/video/franck.mp4] [--frames 300] [--skip 0]

``--skip N`` starts the window N frames into the clip: choose settings on other windows of the clip than
the reported one (the first 300 frames).

A flat grey box, 40 % of the face box wide and taller than the landmark box, sweeps across the face from
image-left to image-right during the middle half of the frames (its position follows the face's landmark
box, so it is a known occluder on a moving face). Every frame is run twice with the same detector box (the
detector sees the clean frame): clean, and with the box drawn over it. The occluded run's landmarks are
smoothed in the same run, at the same smoothing, by the plain Kalman smoother (no visibility: every point on
its own), by the visibility-weighted one (the face model), and by that face model told every point is
visible (visibility 1), which separates what the weighting does from what the face model does.

Error: on the points under the box (the clean prediction's points inside it), the distance of each
smoothed track from the model's own points on the clean frame, over the inter-ocular distance (outer eye
corners of the clean points); the mean over covered (frame, point) pairs. The unsmoothed occluded
prediction's error is printed for scale.

Visible error: the same distance on the points not under the box, which shows the lag a smoother adds to
points it can see.

Jitter: on the points not under the box, the residual after a Savitzky-Golay fit (window 9, order 2) of
each smoothed trajectory, over the inter-ocular distance, as ``benchmarks/jitter.py`` measures it; the
mean over the visible (frame, point) pairs away from the clip's ends.

Not a test. The goal (issue 16): the weighting lowers the covered points' error and leaves the visible
points' jitter no worse (ratio <= 1).
"""
from __future__ import annotations

from preamble import FRANCK, add_engine_arg, setup_logging  # isort: skip  (first: paths, logs, native import order)

import argparse
import logging
import sys
from pathlib import Path

import numpy as np
from scipy.signal import savgol_filter

from sdfl_core import crops
from sdfl_core.detector import DetectorOptions, FaceDetector

# Before anything imports mediapipe: triton (via timm) segfaults when it loads after mediapipe.
from sdfl_core.images import to_bgr_uint8
from sdfl_core.landmarker import Landmarker, load_landmarker
from sdfl_core.metrics import auroc
from sdfl_core.occluders import point_visibility
from sdfl_core.smoothing import KalmanSmoother
from sdfl_core.sources import open_source
from sdfl_core.tracker import TrackerOptions

log = logging.getLogger("benchmarks.visibility")

DEFAULT_VIDEO = FRANCK
SAVGOL_WINDOW, SAVGOL_ORDER = 9, 2
BOX_WIDTH, BOX_PAD = 0.4, 0.15
GREY = (90, 90, 90)


def sweep_mask(shape_hw: tuple[int, int], landmark_box: np.ndarray, progress: float) -> np.ndarray:
    """The occluder at ``progress`` in [0, 1] of its sweep: a box of BOX_WIDTH x the landmark box's width,
    BOX_PAD taller on each side, its centre moving from one box width left of the face to one right of it."""
    x, y, w, h = (float(v) for v in landmark_box)
    bw = BOX_WIDTH * w
    cx = x - bw / 2 + progress * (w + bw)
    mask = np.zeros(shape_hw, bool)
    r0, r1 = int(max(round(y - BOX_PAD * h), 0)), int(round(y + h + BOX_PAD * h))
    c0, c1 = int(max(round(cx - bw / 2), 0)), int(round(cx + bw / 2))
    mask[r0:r1, c0:c1] = True
    return mask


def collect(engine: Landmarker, video: Path, frames: int, skip: int = 0) -> dict[str, np.ndarray]:
    """Per frame with a face: clean points, occluded points and visibility, and which points are covered,
    over ``frames`` frames after the first ``skip``."""
    clean, occluded, visibility, covered, scales = [], [], [], [], []
    with open_source(video) as source, FaceDetector(DetectorOptions(model="short", running_mode="video")) as detector:
        total = min(frames, (source.num_frames or frames + skip) - skip)
        start, stop = total // 4, 3 * total // 4
        box = None
        for n, frame in enumerate(source, start=-skip):
            if n < 0:
                continue
            if n >= total:
                break
            image = to_bgr_uint8(frame.image)
            found = detector.detect(image, int(round(frame.timestamp_ms)) + n + skip)
            if found:
                box = max(found, key=lambda d: d.box[2] * d.box[3])
            if box is None:
                continue
            [lm] = engine.predict_boxes(image, [box])
            mask = np.zeros(image.shape[:2], bool)
            if start <= n < stop:
                mask = sweep_mask(image.shape[:2], crops.landmark_box(lm.points), (n - start) / max(stop - start - 1, 1))
            shown = image.copy()
            shown[mask] = GREY
            [occ] = engine.predict_boxes(shown, [box])
            clean.append(lm.points)
            occluded.append(occ.points)
            visibility.append(occ.visibility)
            covered.append(~point_visibility(lm.points, mask))
            scales.append(float(np.sqrt(box.box[2] * box.box[3])))
    return {k: np.asarray(v) for k, v in dict(clean=clean, occluded=occluded, visibility=visibility,
                                               covered=covered, scales=scales).items()}


def smooth(points: np.ndarray, scales: np.ndarray, smoothing: float, visibility: np.ndarray | None) -> np.ndarray:
    smoother = KalmanSmoother(smoothing)
    return np.stack([smoother.update(p, s, None if visibility is None else v)
                     for p, s, v in zip(points, scales, visibility if visibility is not None else points)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", help="sdfl checkpoint or ONNX with a visibility output; default: the shipped model")
    parser.add_argument("--video", type=Path, default=DEFAULT_VIDEO)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--skip", type=int, default=0, help="frames to skip before the window")
    parser.add_argument("--smoothing", type=float, default=TrackerOptions.smoothing, help="default: the CLI's")
    add_engine_arg(parser)
    args = parser.parse_args(argv)
    setup_logging()
    if args.frames <= 0 or args.skip < 0:
        print("benchmarks/visibility.py: --frames must be positive and --skip not negative", file=sys.stderr)
        return 2
    if not args.video.is_file():
        print(f"benchmarks/visibility.py: video not found: {args.video}", file=sys.stderr)
        return 2
    engine = load_landmarker(args.weights, device="cpu", engine=args.engine)
    if not engine.has_visibility:
        print(f"benchmarks/visibility.py: {args.weights or 'the shipped model'} has no visibility output "
              f"(pass --weights a model trained with model.visibility: true)", file=sys.stderr)
        return 2
    data = collect(engine, args.video, args.frames, args.skip)
    if len(data["clean"]) < 4 * SAVGOL_WINDOW:
        print(f"benchmarks/visibility.py: only {len(data['clean'])} frames with a face in {args.video}", file=sys.stderr)
        return 2
    ocular = engine.schema.ocular
    clean, covered = data["clean"], data["covered"]
    iod = np.linalg.norm(clean[:, ocular[0]] - clean[:, ocular[1]], axis=1)[:, None]
    tracks = {"plain": smooth(data["occluded"], data["scales"], args.smoothing, None),
              "weighted": smooth(data["occluded"], data["scales"], args.smoothing, data["visibility"]),
              "face, v=1": smooth(data["occluded"], data["scales"], args.smoothing, np.ones_like(data["visibility"]))}

    def error(points: np.ndarray, where: np.ndarray = covered) -> float:
        """Mean distance from the clean points over the inter-ocular distance, on the (frame, point) pairs
        ``where`` is set (default: the covered ones)."""
        return float((np.linalg.norm(points - clean, axis=2) / iod)[where].mean())

    def visible_jitter(points: np.ndarray) -> float:
        residual = np.linalg.norm(points - savgol_filter(points, SAVGOL_WINDOW, SAVGOL_ORDER, axis=0), axis=2) / iod
        keep = ~covered
        keep[:SAVGOL_WINDOW], keep[-SAVGOL_WINDOW:] = False, False
        return float(residual[keep].mean())

    vis = data["visibility"]
    print(f"weights: {args.weights or 'shipped'}   engine: {engine.engine_label}   video: {args.video.name}   "
          f"frames with a face: {len(clean)}   "
          f"smoothing: {args.smoothing}   window: frames {args.skip}-{args.skip + args.frames - 1}")
    print(f"covered (frame, point) pairs: {int(covered.sum())} in {int(covered.any(axis=1).sum())} frames; "
          f"visibility AUROC (visible = positive) {auroc(vis, ~covered):.3f}; mean visibility covered "
          f"{vis[covered].mean():.3f}, visible {vis[~covered].mean():.3f}")
    raw_error = error(data["occluded"])
    rows = {"covered points error (%IOD)": ({k: error(v) for k, v in tracks.items()}, 2),
            "visible points error (%IOD)": ({k: error(v, ~covered) for k, v in tracks.items()}, 2),
            "visible points jitter (%IOD)": ({k: visible_jitter(v) for k, v in tracks.items()}, 3)}
    print(f"{'':<28} {'plain':>8} {'weighted':>9} {'ratio':>7} {'face, v=1':>10} {'ratio':>7}")
    for name, (values, digits) in rows.items():
        plain, weighted, unweighted = values["plain"], values["weighted"], values["face, v=1"]
        print(f"{name:<28} {100 * plain:8.{digits}f} {100 * weighted:9.{digits}f} {weighted / plain:7.3f} "
              f"{100 * unweighted:10.{digits}f} {weighted / unweighted:7.3f}")
    print(f"(ratios: weighted over plain, and weighted over the face model without weighting; the unsmoothed "
          f"occluded prediction's covered error: {100 * raw_error:.2f})")
    errors, jitter = rows["covered points error (%IOD)"][0], rows["visible points jitter (%IOD)"][0]
    print(f"goal: error ratio < 1: {'met' if errors['weighted'] < min(errors['plain'], errors['face, v=1']) else 'NOT met'}; "
          f"jitter ratio <= 1: {'met' if jitter['weighted'] <= jitter['plain'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
