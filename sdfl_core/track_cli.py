"""`sdfl track SOURCE [--csv OUT] [--video OUT.mp4] ...`: headless tracking with progress and fps."""
from __future__ import annotations

import contextlib
import logging

from tqdm import tqdm

from .draw import DrawOptions, annotate
from .pipeline import Pipeline, PipelineOptions, streaming_options, to_bgr_uint8
from .sinks import CsvSink, VideoSink
from .sources import open_source

log = logging.getLogger(__name__)


def run(args) -> int:
    options = streaming_options(PipelineOptions(weights=args.weights, device=args.device, detector=args.detector,
                                                min_confidence=args.min_confidence, max_faces=args.max_faces,
                                                smoothing=args.smoothing, smooth=not args.no_smooth,
                                                redetect_every=args.redetect_every))
    with contextlib.ExitStack() as stack:
        source = stack.enter_context(open_source(args.source))
        pipeline = stack.enter_context(Pipeline(options))
        n_points = pipeline.info.config.num_points
        csv_sink = stack.enter_context(CsvSink(args.csv, n_points, include_raw=not args.no_raw)) if args.csv else None
        video_sink = None
        total = source.num_frames if not args.frames else min(args.frames, source.num_frames or args.frames)
        faces = frames = 0
        bar = tqdm(total=total or None, unit="frame", desc="tracking", dynamic_ncols=True)
        draw = DrawOptions(landmarks=True, boxes=True, ids=True, graph=False)
        for frame, result in pipeline.run_frames(source, args.frames):
            if csv_sink is not None:
                csv_sink.write(result)
            if args.video:
                image = to_bgr_uint8(frame.image)
                if video_sink is None:
                    video_sink = stack.enter_context(VideoSink(args.video, source.fps or 25.0, (image.shape[1], image.shape[0])))
                video_sink.write(annotate(image, result, pipeline.schema, pipeline.info.mask, draw))
            frames += 1
            faces += len(result.tracks)
            bar.update(1)
            bar.set_postfix(faces=len(result.tracks), ms=f"{result.timings_ms['total']:.1f}")
        rate = bar.format_dict.get("rate") or 0.0
        bar.close()
    print(f"{frames} frames, {faces} face detections, {rate:.1f} fps"
          + (f"; CSV: {args.csv}" if args.csv else "") + (f"; video: {args.video}" if args.video else ""))
    if frames == 0:
        raise ValueError(f"{args.source} yielded no frames")
    return 0
