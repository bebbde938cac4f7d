"""A Ray worker set-up hook for the batch tests: a video whose name starts with ``crash`` kills its worker
process (``os._exit``) after three frames, once per video (a marker file in $SDFL_CRASH_DIR remembers)."""
from __future__ import annotations

import os
from pathlib import Path

CRASH_AFTER = 3


def install() -> None:
    from sdfl_core.pipeline import Pipeline

    run_frames = Pipeline.run_frames

    def crashing(self, source, *args, **kwargs):
        marker = Path(os.environ["SDFL_CRASH_DIR"]) / f"{Path(source.name).stem}.crashed"
        crash = Path(source.name).stem.startswith("crash") and not marker.exists()
        for n, item in enumerate(run_frames(self, source, *args, **kwargs)):
            if crash and n == CRASH_AFTER:
                marker.touch()
                os._exit(1)
            yield item

    Pipeline.run_frames = crashing
