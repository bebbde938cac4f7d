"""Recording the annotated video and exporting the landmarks CSV from the GUI (sdfl_core sinks)."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from sdfl_core.sinks import CsvSink, VideoSink
from sdfl_core.types import FrameResult

log = logging.getLogger(__name__)


class Recorder:
    """Holds the open sinks; every method is called from the GUI thread on each shown frame."""

    def __init__(self) -> None:
        self.video: VideoSink | None = None
        self.csv: CsvSink | None = None
        self._video_path: Path | None = None
        self._fps = 25.0

    # --- video --------------------------------------------------------------------------------
    def start_video(self, path: str | Path, fps: float) -> None:
        """The sink opens on the first frame, so it takes that frame's size."""
        self._video_path, self._fps = Path(path), float(fps) if fps and fps > 0 else 25.0
        if not self._video_path.parent.is_dir():
            raise OSError(f"cannot write video to {self._video_path}: directory {self._video_path.parent} does not exist")

    @property
    def recording_video(self) -> bool:
        return self._video_path is not None

    def write_frame(self, image_bgr: np.ndarray) -> None:
        if self._video_path is None:
            return
        if self.video is None:
            self.video = VideoSink(self._video_path, self._fps, (image_bgr.shape[1], image_bgr.shape[0])).open()
        self.video.write(image_bgr)

    def stop_video(self) -> int:
        written = self.video.frames_written if self.video is not None else 0
        if self.video is not None:
            self.video.close()
        self.video, self._video_path = None, None
        return written

    # --- csv ----------------------------------------------------------------------------------
    def start_csv(self, path: str | Path, num_points: int, visibility: bool = False) -> None:
        self.stop_csv()
        self.csv = CsvSink(path, num_points, visibility=visibility).open()

    @property
    def exporting_csv(self) -> bool:
        return self.csv is not None

    def write_result(self, result: FrameResult, source: str = "") -> None:
        if self.csv is not None:
            self.csv.write(result, source)

    def stop_csv(self) -> int:
        rows = self.csv.rows_written if self.csv is not None else 0
        if self.csv is not None:
            self.csv.close()
        self.csv = None
        return rows

    def close(self) -> None:
        self.stop_video()
        self.stop_csv()
