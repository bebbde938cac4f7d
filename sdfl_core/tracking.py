"""The one loop of ``sdfl track`` and of each ``sdfl batch`` worker: a pipeline over a source into an
open CSV sink, an annotated MP4 and / or a folder of annotated images, so both write the same CSV for the
same video."""
from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .draw import DrawOptions, annotate
from .images import to_bgr_uint8
from .pipeline import Pipeline
from .sinks import CsvSink, ImageFolderSink, VideoSink
from .sources import Source
from .types import FrameResult


@dataclass
class TrackProgress:
    """What :func:`track_source` has done so far; kept up to date frame by frame, so it is right after an interrupt too."""
    frames: int = 0
    faces: int = 0
    """Face detections summed over frames."""
    video_sink: VideoSink | None = None


def track_source(pipeline: Pipeline, source: Source, csv_sink: CsvSink | None, video: str | Path | None,
                 stack: contextlib.ExitStack, progress: TrackProgress, max_frames: int = 0,
                 on_frame: Callable[[FrameResult], None] | None = None,
                 images: ImageFolderSink | None = None) -> None:
    """Run ``pipeline`` over ``source`` into an open CSV sink, an annotated MP4 (opened on the first frame,
    in ``stack``) and / or a folder of annotated images (``images``, each photo at its own size): the one loop
    of ``sdfl track`` and of each ``sdfl batch`` worker, so both write the same CSV for the same video."""
    draw = DrawOptions(landmarks=True, boxes=True, ids=True, graph=False)
    for frame, result in pipeline.run_frames(source, max_frames):
        if csv_sink is not None:
            csv_sink.write(result, frame.source)
        if video or images is not None:
            image = to_bgr_uint8(frame.image)
            annotated = annotate(image, result, pipeline.schema, pipeline.info.mask, draw)
            if video:
                if progress.video_sink is None:
                    progress.video_sink = stack.enter_context(VideoSink(video, source.fps or 25.0,
                                                                        (image.shape[1], image.shape[0])))
                progress.video_sink.write(annotated)
            if images is not None:
                images.write(annotated, frame.index, frame.source)
        progress.frames += 1
        progress.faces += len(result.tracks)
        if on_frame is not None:
            on_frame(result)
