"""Entry points of the desktop app: ``sdfl gui`` (``run(args)``) and ``python main.py`` (``main()``).

Smoke mode (``--frames N`` and/or ``--screenshot PNG``) plays N frames without any modal dialog, saves
the window and returns an exit code: 0 when the frames were shown without errors, 1 otherwise.
"""
from __future__ import annotations

import logging
import sys

log = logging.getLogger(__name__)

SMOKE_TIMEOUT_S = 600


def _application():
    from PyQt6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        app = QApplication(sys.argv[:1])
        app.setApplicationName("sdfl")
        app.setStyle("Fusion")
    return app


def run_smoke(window, source: str | None, frames: int, screenshot: str | None,
              timeout_s: float = SMOKE_TIMEOUT_S) -> int:
    """Play ``frames`` frames of ``source`` (every frame processed), save ``screenshot``, return 0 / 1."""
    from PyQt6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    state = {"code": None}

    def finish(code: int) -> None:
        if state["code"] is None:
            state["code"] = code
            QTimer.singleShot(50, loop.quit)  # let the last frame paint first

    window.source_finished.connect(lambda *_: finish(1 if window.errors else 0))
    window.capture.source_failed.connect(lambda *_: finish(1))
    QTimer.singleShot(int(timeout_s * 1000), lambda: finish(1))
    window.set_lossless(True)
    window.set_max_frames(max(frames, 1))
    window.start(source or "demo")
    loop.exec()
    code = state["code"] if state["code"] is not None else 1
    if window.frames_shown == 0:
        code = 1
    if screenshot and not window.save_screenshot(screenshot):
        code = 1
    log.info("smoke run: %d frames shown, exit code %d%s", window.frames_shown, code,
             f" ({window.errors[-1]})" if window.errors else "")
    return code


def _check_display(smoke: bool) -> None:
    """Without a screen Qt aborts the process; say why instead. Smoke mode runs offscreen by itself."""
    import os

    if os.environ.get("QT_QPA_PLATFORM") or not sys.platform.startswith("linux"):
        return
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return
    if smoke:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        return
    raise OSError("no display to open a window on (DISPLAY is not set); run it under a desktop or xvfb-run, "
                  "or use `sdfl track` for headless work")


def run(args) -> int:
    """``sdfl gui``: the arguments are defined in ``sdfl_core.cli``."""
    smoke = bool(args.frames or args.screenshot)
    _check_display(smoke)
    app = _application()
    from .window import MainWindow

    window = MainWindow(weights=args.weights, device=args.device, interactive=not smoke, engine=args.engine)
    window.show()
    try:
        if smoke:
            return run_smoke(window, args.source, args.frames, args.screenshot)
        window.start(args.source)
        return int(app.exec())
    finally:
        window.shutdown()
        window.close()
        window.deleteLater()


def main() -> None:
    from sdfl_core.cli import main as cli_main

    sys.exit(cli_main(["gui", *sys.argv[1:]]))
