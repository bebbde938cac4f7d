"""`sdfl track SOURCE [--csv OUT] [--video OUT.mp4] [--images DIR] ...`: headless tracking with progress and fps.

Outputs are never lost: every argument is checked and the source opened before any output is touched;
outputs are written beside their targets and moved into place at the end, on success and on Ctrl-C or
SIGTERM (rows flushed, MP4 finished, summary printed, exit code 130); a failed run leaves existing files
as they were. ``--images`` moves each annotated image into place as soon as it is complete.
"""
from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from pathlib import Path

from tqdm import tqdm

from ..detector import DetectorOptions, default_detector, default_max_faces
from ..images import is_image_path
from ..pipeline import Pipeline, PipelineOptions, streaming_options
from ..redetect import RedetectOptions
from ..sinks import CsvSink, ImageFolderSink, check_folder_writable, check_writable
from ..smoothing import smoothing_knob
from ..sources import open_source
from ..tracker import TrackerOptions
from ..tracking import TrackProgress, track_source
from ..types import FrameResult

log = logging.getLogger(__name__)


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C: the run stops and keeps what it wrote."""


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Turn SIGTERM into ``Terminated`` in the main thread while the block runs."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def check_outputs(args) -> None:
    """Distinct outputs that are not the source, and writable (before any work)."""
    outputs = {"--csv": args.csv, "--video": args.video, "--images": args.images}
    seen: dict[str, str] = {}
    source = Path(args.source)
    for flag, path in outputs.items():
        if not path:
            continue
        key = os.path.realpath(path)
        if key in seen:
            raise ValueError(f"{seen[key]} and {flag} name the same file {path}; give each output its own path")
        if source.exists() and key == os.path.realpath(source):
            raise ValueError(f"{flag} {path} is the source itself; it would be overwritten")
        seen[key] = flag
    if args.video and Path(args.video).suffix.lower() != ".mp4":
        raise ValueError(f"--video must be an .mp4 path, got {args.video}")
    if args.images and (source.is_dir() or (source.is_file() and is_image_path(source))):
        # A photo's annotated copy keeps its file name: never in the folder the photos come from.
        photos = source if source.is_dir() else source.parent
        if os.path.realpath(args.images) == os.path.realpath(photos):
            raise ValueError(f"--images {args.images} is the folder of the source's images; they would be overwritten")
    if args.csv:
        check_writable(args.csv, "CSV")
    if args.video:
        check_writable(args.video, "video")
    if args.images:
        check_folder_writable(args.images, "images")


def run(args) -> int:
    if args.frames < 0:
        raise ValueError(f"--frames must be 0 (all) or a positive count, got {args.frames}")
    check_outputs(args)
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(open_source(args.source, sequence=args.sequence))
        if args.sequence and source.running_mode != "video":
            log.warning("--sequence applies to a folder of images; %s runs as it is", args.source)
        options = streaming_options(PipelineOptions(
            weights=args.weights, device=args.device, engine=args.engine, crops_per_face=args.crops_per_face, passes=args.passes,
            mirror=args.mirror, upright=args.upright,
            detector=DetectorOptions(model=args.detector or default_detector(source.running_mode),
                                     min_confidence=args.min_confidence,
                                     max_faces=default_max_faces(source.running_mode) if args.max_faces is None else args.max_faces,
                                     running_mode=source.running_mode),
            tracker=TrackerOptions(smoothing=smoothing_knob(args.smoothing, args.no_smooth)),
            redetect=RedetectOptions(every=args.redetect_every)))
        pipeline = stack.enter_context(Pipeline(options))
        n_points = pipeline.info.config.num_points
        # Entered last, so they close first: the outputs are in place before the model and source go.
        csv_sink = stack.enter_context(CsvSink(args.csv, n_points, include_raw=not args.no_raw,
                                               visibility=pipeline.landmarker.has_visibility)) if args.csv else None
        images = ImageFolderSink(args.images) if args.images else None
        total = source.num_frames if not args.frames else min(args.frames, source.num_frames or args.frames)
        progress = TrackProgress()
        interrupted = False
        bar = tqdm(total=total or None, unit="frame", desc="tracking", dynamic_ncols=True)

        def show(result: FrameResult) -> None:
            bar.update(1)
            bar.set_postfix(faces=len(result.tracks), ms=f"{result.timings_ms['total']:.1f}")

        try:
            with sigterm_as_interrupt():
                track_source(pipeline, source, csv_sink, args.video, stack, progress, args.frames, show, images)
        except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM: keep what was written, say so
            interrupted = True
            log.warning("%s: stopping after %d frames, keeping the outputs",
                        "terminated" if isinstance(exc, Terminated) else "interrupted", progress.frames)
        frames, faces, video_sink = progress.frames, progress.faces, progress.video_sink
        elapsed = bar.format_dict.get("elapsed") or 0.0
        bar.close()
        if frames == 0 and not interrupted:
            raise ValueError(f"{args.source} yielded no frames")  # the sinks discard their empty outputs
        # An interrupt before the first frame leaves nothing worth replacing an existing file with.
        for sink in (video_sink, csv_sink):
            if sink is not None:
                sink.close(keep=frames > 0)
    # One photo takes far less than a second: give its time, not a rate.
    rate = f"{frames / elapsed:.1f} fps" if frames > 1 and elapsed > 0 else f"{elapsed * 1000:.0f} ms"
    print(f"{frames} frames, {faces} face detections, {rate}"
          + (f"; CSV: {args.csv}" if args.csv and frames else "")
          + (f"; video: {args.video}" if args.video and frames else "")
          + (f"; images: {args.images} ({images.images_written})" if images is not None and images.images_written else "")
          + ("; interrupted" if interrupted else ""))
    return 130 if interrupted else 0
