"""sdfl: real-time face landmark tracking.

    import sdfl_core as sdfl

    with sdfl.Pipeline(sdfl.PipelineOptions()) as pipeline, sdfl.open_source("video.mp4") as source:
        for result in pipeline.run(source):          # a FrameResult per frame; no face = no tracks
            for track in result.tracks:
                track.track_id, track.smoothed        # (N, 2) points in image pixels

``load_landmarker("sdfl" | "fc" | path)`` gives the landmark model alone (crops -> points). The names
load on first use: ``import sdfl_core`` imports nothing heavy, and tracking never imports torch.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "Pipeline": "pipeline", "PipelineOptions": "pipeline",
    "DetectorOptions": "detector", "TrackerOptions": "tracker", "RedetectOptions": "redetect",
    "open_source": "sources", "Frame": "sources", "Source": "sources",
    "Detection": "types", "Landmarks": "types", "Track": "types", "FrameResult": "types",
    "Landmarker": "landmarker", "load_landmarker": "landmarker",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
