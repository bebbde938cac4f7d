"""What the worker threads hand to the window: frozen, read-only snapshots (never ``None`` for 'nothing')."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sdfl_core.sources import Frame
from sdfl_core.types import Detection, FrameResult, Landmarks


@dataclass(frozen=True)
class SourceInfo:
    name: str
    num_frames: int
    fps: float
    seekable: bool
    is_camera: bool
    running_mode: str = "video"
    """"image": unrelated photos (an image, or a folder not opened as a sequence); "video": frames of one scene."""


@dataclass(frozen=True)
class ModelSummary:
    """The loaded model(s), enough for the window to draw: schema outlines and the adjacency mask M."""

    name: str
    path: str
    schema: object
    mask: np.ndarray
    has_graph: bool
    compare_name: str = ""
    has_visibility: bool = False
    """The model reports per-point visibility (the CSV gets ``vis_i`` columns, occluded points are drawn hollow)."""
    engine: str = ""
    """The runtime that runs it and its precision (``Landmarker.engine_label``)."""


@dataclass(frozen=True)
class Inspection:
    """A frozen frame run twice through the engine with the same boxes: clean and occluded.

    ``displacement[k]`` is the (N,) pixel distance of every landmark of face ``k`` from its clean
    prediction; ``dropped_edges[k]`` the (E, 2) point pairs whose edge weight fell under the occluder;
    ``covered[k]`` the (N,) true cover: the clean prediction's points that lie under an occluder (what
    the occluded prediction's visibility is judged against). Empty tuples when not inspecting.
    """

    detections: tuple[Detection, ...] = ()
    clean: tuple[Landmarks, ...] = ()
    occluded: tuple[Landmarks, ...] = ()
    displacement: tuple[np.ndarray, ...] = ()
    dropped_edges: tuple[np.ndarray, ...] = ()
    covered: tuple[np.ndarray, ...] = ()

    @property
    def active(self) -> bool:
        return bool(self.detections)


@dataclass(frozen=True)
class FrameBundle:
    """One processed frame: the clean frame, the (occluded) image the pipeline saw, and its results."""

    frame: Frame
    model_input: np.ndarray
    result: FrameResult
    compare: tuple[Landmarks, ...] = ()
    """The second engine's landmarks on the same detections (compare mode), in ``result.tracks`` order."""
    inspection: Inspection = field(default_factory=Inspection)
    dropped: int = 0
    """Frames dropped so far by the latest-frame-wins queue."""
    generation: int = 0
    """Playback run the frame belongs to (a new one starts on every open and seek)."""
    rerun: bool = False
    """A frame shown before, processed again (settings changed while paused, or inspection)."""
