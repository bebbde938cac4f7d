"""Landmark jitter, raw vs Kalman-smoothed, and the lag the smoother costs.

    python benchmarks/jitter.py [--weights W] [--video ../shared/data/video/franck.mp4] [--frames 600]

Jitter (franck.mp4, one talking face): the high-frequency part of each point's trajectory, i.e. the
residual after a Savitzky-Golay fit (scipy.signal.savgol_filter, window 9, order 2, per continuous
run of one track id), as the mean Euclidean residual over points and frames divided by the
inter-ocular distance (the schema's outer eye corners). Raw and smoothed points come from the same
run (every Track carries both). Also the frame-to-frame displacement on near-static frames.

Lag: the astronaut portrait moved along a known sinusoidal path over a 640x480 frame; the lag of the
mean landmark trajectory behind the true motion, from the peak of their cross-correlation at
fractional lags, for raw and smoothed points; the filter's cost is smoothed lag - raw lag.
Not a test; goals are printed beside the numbers (jitter ratio <= 0.5, lag <= 1 frame).
"""
from __future__ import annotations

from preamble import ASTRONAUT, add_video_args, parse_video_args, resolved_engine  # isort: skip  (first: paths, logs, native import order)

import argparse
import logging
import sys

import cv2
import numpy as np
from scipy.signal import correlate, correlation_lags, savgol_filter

from sdfl_core.pipeline import Pipeline, PipelineOptions
from sdfl_core.sources import open_source
from sdfl_core.tracker import TrackerOptions

log = logging.getLogger("benchmarks.jitter")

SAVGOL_WINDOW, SAVGOL_ORDER = 9, 2
JITTER_GOAL, LAG_GOAL = 0.5, 1.0


def collect(pipeline: Pipeline, frames) -> list[tuple[int, int, np.ndarray, np.ndarray]]:
    """(frame, track id, raw (N, 2), smoothed (N, 2)) of the first track of every frame that has one."""
    out = []
    for index, ts, image in frames:
        result = pipeline.process(image, index, ts)
        if result.tracks:
            t = result.tracks[0]
            out.append((index, t.track_id, t.raw.points.astype(np.float64), t.smoothed.astype(np.float64)))
    return out


def runs(samples) -> list[list[int]]:
    """Positions of samples split into runs of consecutive frames with the same track id."""
    groups, current = [], []
    for i, (frame, tid, _, _) in enumerate(samples):
        if current and (frame != samples[current[-1]][0] + 1 or tid != samples[current[-1]][1]):
            groups.append(current)
            current = []
        current.append(i)
    if current:
        groups.append(current)
    return [g for g in groups if len(g) >= 2 * SAVGOL_WINDOW]


def jitter(samples, ocular: tuple[int, int], which: int, static_px: float) -> tuple[float, float, int]:
    """(Savitzky-Golay residual / IOD, frame-to-frame motion / IOD on near-static frames, frames used)."""
    residuals, steps = [], []
    for group in runs(samples):
        pts = np.stack([samples[i][2 + which] for i in group])  # (T, N, 2)
        raw = np.stack([samples[i][2] for i in group])
        iod = np.linalg.norm(raw[:, ocular[0]] - raw[:, ocular[1]], axis=1)  # from raw: same for both
        fit = savgol_filter(pts, SAVGOL_WINDOW, SAVGOL_ORDER, axis=0)
        residuals.append((np.linalg.norm(pts - fit, axis=2).mean(axis=1) / iod)[SAVGOL_WINDOW:-SAVGOL_WINDOW])
        # Near-static: the face's smoothed centre moves less than static_px x IOD between frames.
        centre = savgol_filter(raw.mean(axis=1), SAVGOL_WINDOW, SAVGOL_ORDER, axis=0)
        still = np.linalg.norm(np.diff(centre, axis=0), axis=1) < static_px * iod[1:]
        step = np.linalg.norm(np.diff(pts, axis=0), axis=2).mean(axis=1) / iod[1:]
        steps.append(step[still])
    if not residuals:
        return float("nan"), float("nan"), 0
    residuals, steps = np.concatenate(residuals), np.concatenate(steps)
    return float(residuals.mean()), float(steps.mean()) if steps.size else float("nan"), int(residuals.size)


def moving_frames(n: int, period: float, amplitude: float):
    """The portrait's head (360 px) on a 640x480 frame, offset x(t) = A sin(2 pi t / T), y = A/2 sin(...)."""
    portrait = cv2.resize(cv2.imread(str(ASTRONAUT))[0:180, 20:200], (360, 360))
    truth = []
    for i in range(n):
        dx = amplitude * np.sin(2 * np.pi * i / period)
        dy = 0.5 * amplitude * np.sin(2 * np.pi * i / (1.7 * period))
        m = np.float64([[1, 0, 140 + dx], [0, 1, 60 + dy]])
        frame = cv2.warpAffine(portrait, m, (640, 480), flags=cv2.INTER_LINEAR, borderValue=(40, 40, 40))
        truth.append((dx, dy))
        yield i, i * 1000.0 / 30.0, frame, np.array(truth[-1])


def lag_frames(signal: np.ndarray, reference: np.ndarray, max_lag: float = 6.0) -> float:
    """How many frames ``signal`` trails ``reference``: the peak of their normalised cross-correlation
    over fractional lags (the reference linearly interpolated), found coarsely by scipy's integer-lag
    correlation and then refined on a 0.01-frame grid."""
    a = signal - signal.mean()
    b = reference - reference.mean()
    xc = correlate(a, b, mode="full")
    lags = correlation_lags(a.size, b.size, mode="full")
    window = np.abs(lags) <= max_lag
    coarse = float(lags[window][np.argmax(xc[window])])
    t = np.arange(signal.size, dtype=np.float64)
    best, best_corr = coarse, -np.inf
    margin = int(np.ceil(max_lag)) + 1
    for tau in np.arange(coarse - 1.0, coarse + 1.0 + 1e-9, 0.01):
        shifted = np.interp(t - tau, t, reference)[margin:-margin]
        corr = np.corrcoef(signal[margin:-margin], shifted)[0, 1]
        if corr > best_corr:
            best, best_corr = float(tau), corr
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_video_args(parser, frames=600)
    parser.add_argument("--smoothing", type=float, default=TrackerOptions.smoothing, help="default: the CLI's")
    parser.add_argument("--lag-frames", type=int, default=240, help="length of the synthetic moving sequence")
    parser.add_argument("--period", type=float, default=60.0, help="period of the synthetic motion, frames")
    parser.add_argument("--amplitude", type=float, default=60.0, help="amplitude of the synthetic motion, px")
    parser.add_argument("--static", type=float, default=0.01, help="near-static: centre moves < this x IOD per frame")
    parser.add_argument("--no-upright", dest="upright", action="store_false",
                        help="axis-aligned crops (as sdfl --no-upright) instead of tilted faces cut upright")
    args = parse_video_args(parser, argv)
    options = PipelineOptions(weights=args.weights, device=args.device, engine=args.engine,
                              tracker=TrackerOptions(smoothing=args.smoothing), upright=args.upright)

    print(f"weights: {args.weights}   engine: {resolved_engine(args)}   crops: {'upright' if args.upright else 'axis-aligned'}   "
          f"smoothing: {args.smoothing}   "
          f"Savitzky-Golay window {SAVGOL_WINDOW}, "
          f"order {SAVGOL_ORDER}; all values / inter-ocular distance")
    lines = [f"{'measure':<44} {'raw':>9} {'smoothed':>9} {'ratio':>7} {'goal':>8}", "-" * 82]
    with Pipeline(options) as pipeline:
        ocular = pipeline.schema.ocular
        if args.video.is_file():
            with open_source(args.video) as source:
                frames = ((f.index, f.timestamp_ms, f.image) for f, _ in zip(source, range(args.frames)))
                samples = collect(pipeline, frames)
            (hf_raw, step_raw, n), (hf_s, step_s, _) = (jitter(samples, ocular, w, args.static) for w in (0, 1))
            ratio = hf_s / hf_raw
            lines.append(f"{'franck HF residual (' + str(n) + ' frames)':<44} {hf_raw:>9.5f} {hf_s:>9.5f} "
                         f"{ratio:>7.2f} {'<= ' + str(JITTER_GOAL):>8} {'ok' if ratio <= JITTER_GOAL else 'MISS'}")
            lines.append(f"{'franck frame-to-frame, near-static frames':<44} {step_raw:>9.5f} {step_s:>9.5f} "
                         f"{step_s / step_raw:>7.2f}")
        else:
            lines.append(f"franck.mp4 not found at {args.video}: jitter skipped")

        pipeline.reset()
        truth, raw_c, smooth_c = [], [], []
        for index, ts, frame, gt in moving_frames(args.lag_frames, args.period, args.amplitude):
            result = pipeline.process(frame, index, ts + 1e6)
            if len(result.tracks) != 1:
                continue
            t = result.tracks[0]
            truth.append(gt)
            raw_c.append(t.raw.points.mean(axis=0))
            smooth_c.append(t.smoothed.mean(axis=0))
    if len(truth) < args.lag_frames * 0.9:
        lines.append(f"lag: face tracked in only {len(truth)} of {args.lag_frames} frames; lag skipped")
    else:
        truth, raw_c, smooth_c = map(np.asarray, (truth, raw_c, smooth_c))
        lag_raw = lag_frames(raw_c[:, 0], truth[:, 0])
        lag_s = lag_frames(smooth_c[:, 0], truth[:, 0])
        cost = lag_s - lag_raw
        lines.append(f"{'lag behind true motion, frames (x)':<44} {lag_raw:>9.2f} {lag_s:>9.2f} {'':>7} ")
        lines.append(f"{'lag the smoother costs, frames':<44} {'':>9} {cost:>9.2f} {'':>7} "
                     f"{'<= ' + str(LAG_GOAL):>8} {'ok' if cost <= LAG_GOAL else 'MISS'}")
        err_raw = np.abs(raw_c[:, 0] - raw_c[:, 0].mean() - (truth[:, 0] - truth[:, 0].mean())).mean()
        err_s = np.abs(smooth_c[:, 0] - smooth_c[:, 0].mean() - (truth[:, 0] - truth[:, 0].mean())).mean()
        lines.append(f"{'mean |centre - truth| on the path, px':<44} {err_raw:>9.2f} {err_s:>9.2f}")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
