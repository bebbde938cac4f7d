"""The desktop app, offscreen: playback, overlays, occluders, recording, CSV export, smoke mode, bad input."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("PyQt6")
pytest.importorskip("pytestqt")

from app.window import MainWindow
from sdfl_core.pipeline import Pipeline

pytestmark = pytest.mark.gui

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "astronaut.jpg"
NUM_FRAMES = 8
WAIT_MS = 90_000


@pytest.fixture(scope="module")
def face_video(tmp_path_factory) -> Path:
    """A short mp4v clip of the astronaut portrait drifting over a grey canvas (the detector finds her)."""
    portrait = cv2.imread(str(FIXTURE))
    path = tmp_path_factory.mktemp("video") / "face.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (360, 300))
    for i in range(NUM_FRAMES):
        canvas = np.full((300, 360, 3), 120, np.uint8)
        x, y = 20 + 8 * i, 20 + 3 * i
        canvas[y:y + 256, x:x + 256] = portrait[: 300 - y, : 360 - x][:256, :256]
        writer.write(canvas)
    writer.release()
    return path


@pytest.fixture
def window(qtbot, tiny_checkpoint):
    win = MainWindow(weights=str(tiny_checkpoint), device="cpu", interactive=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.model is not None or bool(win.errors), timeout=WAIT_MS)
    assert win.model is not None, win.errors
    yield win
    win.shutdown()


def play_all(qtbot, win: MainWindow, source, frames: int = 0) -> None:
    """Open ``source`` and play it to the end (or ``frames`` frames), every frame processed."""
    win.set_lossless(True)
    win.set_max_frames(frames)
    with qtbot.waitSignal(win.source_finished, timeout=WAIT_MS):
        win.open_source(str(source))


def test_window_opens_and_plays_frames(qtbot, window, face_video):
    play_all(qtbot, window, face_video)
    assert window.frames_shown == NUM_FRAMES
    assert window.last_bundle.frame.index == NUM_FRAMES - 1
    assert window.view.image is not None and window.view.image.shape[:2] == (300, 360)
    assert window.last_bundle.result.tracks, "the detector should find the astronaut's face"
    assert "fps" in window.status_fps.text() and "0 dropped" == window.status_dropped.text()
    assert window.transport.position.text() == f"{NUM_FRAMES} / {NUM_FRAMES}"


@pytest.fixture(scope="module")
def photo_folder(tmp_path_factory) -> Path:
    """Three photos of the astronaut a few pixels apart on a grey canvas: one face each."""
    portrait = cv2.imread(str(FIXTURE))
    folder = tmp_path_factory.mktemp("photos")
    for i, (x, y) in enumerate([(10, 10), (18, 13), (26, 16)]):  # close: video mode would track it
        canvas = np.full((300, 360, 3), 120, np.uint8)
        canvas[y:y + 256, x:x + 256] = portrait
        cv2.imwrite(str(folder / f"photo_{i}.png"), canvas)
    return folder


def _results_of(qtbot, win: MainWindow, folder: Path, sequence: bool) -> list:
    results = []
    win.inference.result_ready.connect(lambda bundle: results.append(bundle.result))
    win.set_lossless(True)
    win.set_max_frames(0)
    with qtbot.waitSignal(win.source_finished, timeout=WAIT_MS):
        win.open_source(str(folder), sequence=sequence)
    return results


def test_folder_of_photos_runs_in_image_mode(qtbot, window, photo_folder):
    results = _results_of(qtbot, window, photo_folder, sequence=False)
    assert window.source_info.running_mode == "image"
    assert [len(r.tracks) for r in results] == [1, 1, 1]
    # Every photo on its own: ids number the faces of one photo, nothing is smoothed across photos.
    assert [r.tracks[0].track_id for r in results] == [results[0].tracks[0].track_id] * 3
    assert all(t.hits == 1 for r in results for t in r.tracks)
    for r in results:
        np.testing.assert_array_equal(r.tracks[0].smoothed, r.tracks[0].raw.points)


def test_folder_as_a_sequence_tracks_across_its_images(qtbot, window, photo_folder):
    results = _results_of(qtbot, window, photo_folder, sequence=True)
    assert window.source_info.running_mode == "video"
    hits = [t.hits for r in results for t in r.tracks]
    assert max(hits) > 1  # a track carried from one image to the next
    assert window.sequence_action.isCheckable()


def test_overlays_toggle_changes_pixels(qtbot, window, face_video):
    play_all(qtbot, window, face_video, frames=3)
    checks = window.controls.overlay_checks()
    for name in ("boxes", "landmarks", "indices"):
        before = window.last_image.copy()
        checks[name].toggle()
        assert not np.array_equal(before, window.last_image), f"toggling {name} must change the picture"
        checks[name].toggle()
        assert np.array_equal(before, window.last_image), f"toggling {name} back must restore the picture"
    for check in checks.values():
        check.setChecked(False)
    assert np.array_equal(window.last_image, window.last_bundle.model_input), "no overlays: the plain frame"


def test_occluder_changes_the_frame_the_pipeline_sees(qtbot, window, face_video, monkeypatch):
    seen = []
    original = Pipeline.process

    def spy(self, image, index=0, timestamp_ms=None):
        seen.append(np.array(image, copy=True))
        return original(self, image, index, timestamp_ms)

    monkeypatch.setattr(Pipeline, "process", spy)
    play_all(qtbot, window, face_video, frames=1)
    clean = seen[-1]
    from sdfl_core.occluders import OCCLUDER_COLOR, Occluder

    with qtbot.waitSignal(window.frame_shown, timeout=WAIT_MS):
        window.view.set_occluders([Occluder(100, 80, 60, 40)])  # paused: the last frame is processed again
    occluded = seen[-1]
    assert (occluded[80:120, 100:160] == OCCLUDER_COLOR).all()
    assert not np.array_equal(clean[80:120, 100:160], occluded[80:120, 100:160])
    outside = np.ones(clean.shape[:2], bool)
    outside[80:120, 100:160] = False
    assert np.array_equal(clean[outside], occluded[outside]), "only the rectangle may change"


def test_cover_slider_and_freeze_show_displacement(qtbot, window, face_video):
    play_all(qtbot, window, face_video, frames=2)
    assert window.last_bundle.result.tracks
    with qtbot.waitSignal(window.frame_shown, timeout=WAIT_MS, check_params_cb=lambda b: b.inspection.active):
        window.controls.freeze.setChecked(True)
    with qtbot.waitSignal(window.frame_shown, timeout=WAIT_MS, check_params_cb=lambda b: b.inspection.active):
        window.controls.cover.setValue(60)
    inspection = window.last_bundle.inspection
    shift = inspection.displacement[0]
    assert shift.shape == (68,) and np.isfinite(shift).all()
    assert shift.max() > 0, "covering 60 % of the face must move some landmark"
    box = inspection.detections[0].box
    covered = window.last_bundle.model_input[int(box[1]) + 2:int(box[1] + box[3]) - 2, int(box[0]) + 2:int(box[0] + 0.55 * box[2])]
    assert (covered == 90).all(), "the left 60 % of the face box is covered"
    assert "mean shift" in window.view.caption


def test_compare_mode_runs_the_fc_twin_on_the_same_detections(qtbot, window, face_video, tiny_fc_checkpoint):
    play_all(qtbot, window, face_video, frames=2)
    window.set_compare_model(str(tiny_fc_checkpoint))
    qtbot.waitUntil(lambda: window.model.compare_name != "", timeout=WAIT_MS)
    with qtbot.waitSignal(window.frame_shown, timeout=WAIT_MS, check_params_cb=lambda b: bool(b.compare)):
        window.controls.compare.setChecked(True)
    bundle = window.last_bundle
    assert len(bundle.compare) == len(bundle.result.tracks) >= 1
    assert bundle.compare[0].edge_weights.shape == (68, 0), "the FC twin has no graph"
    assert window.last_image.shape[1] == 2 * 360 + 4, "two panes side by side"


@pytest.mark.parametrize("setting, count", [("crops_per_face", 5), ("passes", 2)])
def test_per_face_setting_reruns_the_paused_frame(qtbot, window, face_video, tiny_checkpoint, setting, count):
    """Choosing 5 crops per face (or 2 passes) re-runs the paused frame through the model on 5 shifted crops
    per face (or on each face cut again from its first-pass landmarks): its raw points are those of a
    landmarker with that setting on the same detection, not the default's."""
    from sdfl_core.landmarker import load_landmarker

    play_all(qtbot, window, face_video, frames=1)
    single = window.last_bundle.result.tracks[0].raw.points.copy()
    combo = getattr(window.controls, setting)
    index = combo.findData(count)
    assert index >= 0 and combo.currentIndex() == 0, "the default"
    assert getattr(window.inference.pipeline.landmarker, setting) == 1, "video starts at 1"
    with qtbot.waitSignal(window.frame_shown, timeout=WAIT_MS, check_params_cb=lambda b: b.rerun):
        combo.setCurrentIndex(index)
        combo.activated.emit(index)
    assert getattr(window.inference.pipeline.landmarker, setting) == count
    bundle = window.last_bundle
    track = bundle.result.tracks[0]
    expected = load_landmarker(tiny_checkpoint, "cpu", **{setting: count}).predict_boxes(bundle.model_input, [track.detection])
    np.testing.assert_allclose(track.raw.points, expected[0].points, atol=1e-3)
    assert not np.allclose(track.raw.points, single, atol=1e-3), f"{setting} {count} must move the points"


@pytest.mark.parametrize("setting, photo, chosen", [("passes", "PHOTO_PASSES", 3), ("crops_per_face", "PHOTO_CROPS", 9)])
def test_auto_counts_follow_the_source_and_a_chosen_count_stays(qtbot, window, photo_folder, face_video, setting,
                                                                photo, chosen):
    """By default ("auto") photos get the photo passes and crops, video one of each; a count the user picks holds
    for both."""
    from sdfl_core import crops

    photo = getattr(crops, photo)
    combo = getattr(window.controls, setting)
    assert combo.currentIndex() == 0 and combo.itemData(0) == 0, "auto is the default"
    engine = window.inference.pipeline.landmarker
    _results_of(qtbot, window, photo_folder, sequence=False)
    assert getattr(engine, setting) == photo > 1
    play_all(qtbot, window, face_video, frames=1)
    assert getattr(engine, setting) == 1
    index = combo.findData(chosen)
    combo.setCurrentIndex(index)
    combo.activated.emit(index)
    qtbot.waitUntil(lambda: getattr(engine, setting) == chosen, timeout=WAIT_MS)
    _results_of(qtbot, window, photo_folder, sequence=False)
    assert getattr(engine, setting) == chosen


def test_recording_writes_a_playable_video(qtbot, window, face_video, tmp_path):
    out = tmp_path / "rec.mp4"
    window.start_recording(out)
    play_all(qtbot, window, face_video)
    assert window.stop_recording() == NUM_FRAMES
    cap = cv2.VideoCapture(str(out))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    assert len(frames) == NUM_FRAMES and frames[0].shape == (300, 360, 3)


def test_csv_export_equals_sdfl_track(qtbot, window, face_video, tiny_checkpoint, tmp_path):
    import pandas as pd

    from sdfl_core.cli import main as cli_main

    play_all(qtbot, window, face_video, frames=3)  # tracks exist already: the export must start afresh
    gui_csv, cli_csv = tmp_path / "gui.csv", tmp_path / "cli.csv"
    with qtbot.waitSignal(window.source_finished, timeout=WAIT_MS):
        window.export_csv(gui_csv)
    assert not window.recorder.exporting_csv, "the export closes at the end of the file"
    assert cli_main(["track", str(face_video), "--csv", str(cli_csv), "--weights", str(tiny_checkpoint), "--device", "cpu"]) == 0
    gui, cli = pd.read_csv(gui_csv), pd.read_csv(cli_csv)
    assert len(cli) >= NUM_FRAMES - 2, "the detector should find the face in (almost) every frame"
    pd.testing.assert_frame_equal(gui, cli)


def _open_window(qtbot, weights):
    win = MainWindow(weights=str(weights) if weights else None, device="cpu", interactive=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: win.model is not None or bool(win.errors), timeout=WAIT_MS)
    assert win.model is not None, win.errors
    return win


def test_visibility_model_csv_and_threshold_slider(qtbot, face_video, tiny_vis_checkpoint, tmp_path):
    import pandas as pd

    win = _open_window(qtbot, tiny_vis_checkpoint)
    try:
        assert win.model.has_visibility
        play_all(qtbot, win, face_video, frames=2)
        assert win.last_bundle.result.tracks[0].raw.visibility.shape == (68,)
        win.controls.visibility_threshold.setValue(0)
        filled = win.last_image.copy()
        win.controls.visibility_threshold.setValue(100)  # every point below 1.0: all hollow
        assert not np.array_equal(filled, win.last_image), "the threshold slider must redraw the points"
        out = tmp_path / "gui_vis.csv"
        with qtbot.waitSignal(win.source_finished, timeout=WAIT_MS):
            win.export_csv(out)
        vis = pd.read_csv(out)[[f"vis_{i}" for i in range(68)]].to_numpy()
        assert len(vis) and ((vis >= 0) & (vis <= 1)).all()
    finally:
        win.shutdown()


def _shipped_model_has_visibility() -> bool:
    from sdfl_core.landmarker import load_landmarker

    return load_landmarker("sdfl").has_visibility


@pytest.mark.skipif(not _shipped_model_has_visibility(),
                    reason="the shipped sdfl_68.onnx has no visibility output yet (exported before it existed); "
                           "this test runs once a model with visibility is shipped")
def test_occluder_over_the_eyes_turns_the_eye_points_hollow_with_the_shipped_model(qtbot, face_video):
    from sdfl_core.occluders import Occluder, part_groups

    win = _open_window(qtbot, None)
    try:
        play_all(qtbot, win, face_video, frames=2)
        [track] = win.last_bundle.result.tracks
        eyes = np.array(part_groups(win.model.schema)["eyes"])
        lo, hi = track.raw.points[eyes].min(axis=0), track.raw.points[eyes].max(axis=0)
        margin = 0.15 * (hi[0] - lo[0])
        with qtbot.waitSignal(win.frame_shown, timeout=WAIT_MS, check_params_cb=lambda b: b.inspection.active):
            win.controls.freeze.setChecked(True)
        with qtbot.waitSignal(win.frame_shown, timeout=WAIT_MS,
                              check_params_cb=lambda b: b.inspection.active and bool(b.inspection.covered[0].any())):
            win.view.set_occluders([Occluder.from_corners(lo[0] - margin, lo[1] - margin, hi[0] + margin, hi[1] + margin)])
        inspection = win.last_bundle.inspection
        hollow = inspection.occluded[0].occluded(win.controls.draw_options().visibility_threshold)
        assert inspection.covered[0][eyes].all()
        assert hollow[eyes].all(), f"eye points drawn filled: {eyes[~hollow[eyes]].tolist()}"
        uncovered = ~inspection.covered[0]
        assert hollow[uncovered].mean() < 0.2, "most points away from the occluder stay filled"
        assert "judged covered" in win.view.caption
    finally:
        win.shutdown()


def test_unreadable_file_and_wrong_model_show_a_message_and_keep_running(qtbot, window, face_video, tmp_path):
    bad_video = tmp_path / "broken.mp4"
    bad_video.write_bytes(b"not a video at all" * 100)
    with qtbot.waitSignal(window.capture.source_failed, timeout=WAIT_MS):
        window.open_source(str(bad_video))
    assert window.banner.isVisible() and "broken.mp4" in window.banner.text
    assert "broken.mp4" in window.statusBar().currentMessage()

    bad_model = tmp_path / "garbage.pt"
    bad_model.write_bytes(b"\x00garbage")
    model_before = window.model
    with qtbot.waitSignal(window.inference.model_failed, timeout=WAIT_MS):
        window.load_model(str(bad_model))
    assert "garbage.pt" in window.banner.text and window.banner.level == "error"
    assert window.model is model_before, "the previous model stays in use"
    play_all(qtbot, window, face_video, frames=2)
    assert window.last_bundle.result.tracks, "still tracking with the previous model"


def test_camera_unplugged_mid_run(qtbot, window, monkeypatch):
    from sdfl_core.sources import Frame, Source

    class FlakyCamera(Source):
        name, fps = "camera:7", 30.0

        def __iter__(self):
            for i in range(3):
                yield Frame(i, i * 33.0, np.full((120, 160, 3), 80, np.uint8))
            raise ValueError("camera:7 stopped delivering frames (unplugged?)")

    monkeypatch.setattr("app.capture.open_source", lambda spec, sequence=False: FlakyCamera())
    with qtbot.waitSignal(window.capture.source_failed, timeout=WAIT_MS):
        window.open_source("camera:7")
    assert "unplugged" in window.banner.text
    qtbot.waitUntil(lambda: window.frames_shown >= 3, timeout=WAIT_MS)
    assert window.isVisible()


def test_no_camera_falls_back_to_the_demo_and_says_how_to_open(qtbot, window, monkeypatch):
    from sdfl_core import sources

    def no_camera(spec, sequence=False):
        if str(spec).startswith("camera:"):
            raise ValueError("camera 0 is not available (no such device, or it is in use)")
        return sources.DemoSource(num_frames=3)

    monkeypatch.setattr("app.capture.open_source", no_camera)
    with qtbot.waitSignal(window.capture.source_opened, timeout=WAIT_MS):
        window.start(None)
    qtbot.waitUntil(lambda: window.source_info is not None and window.source_info.name == "demo", timeout=WAIT_MS)
    assert "Ctrl+O" in window.banner.text and "camera" in window.banner.text
    assert window.controls.current_source.text() == "playing: demo"
    assert not window.errors, "a missing camera is not an error"


def test_missing_shipped_model_is_reported_in_the_window(qtbot, monkeypatch):

    def missing(kind="sdfl"):
        raise FileNotFoundError(f"shipped model missing: assets/models/{kind}_68.pt (reinstall, or pass --weights)")

    monkeypatch.setattr("sdfl_core.registry.default_weights", missing)
    win = MainWindow(weights=None, device="cpu", interactive=False)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitUntil(lambda: bool(win.errors), timeout=WAIT_MS)
    assert "shipped model missing" in win.banner.text and "Model menu" in win.banner.text
    assert win.model is None
    win.shutdown()


def test_smoke_mode_through_the_cli(qapp, face_video, tiny_checkpoint, tmp_path):
    from sdfl_core.cli import main as cli_main

    shot = tmp_path / "shot.png"
    code = cli_main(["gui", "--source", str(face_video), "--frames", "3", "--screenshot", str(shot),
                     "--weights", str(tiny_checkpoint), "--device", "cpu"])
    assert code == 0
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[0] > 300 and image.shape[1] > 600


def test_gui_without_a_display_says_so(monkeypatch, capsys):
    from sdfl_core.cli import main

    monkeypatch.delenv("QT_QPA_PLATFORM", raising=False)
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert main(["gui"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no display" in err[0]


def test_the_model_panel_names_the_engine(qtbot, tiny_checkpoint):
    """The engine asked for is the one that runs the model, and the model panel says which, with its precision."""
    win = MainWindow(weights=str(tiny_checkpoint), device="cpu", interactive=False, engine="onnxruntime")
    qtbot.addWidget(win)
    win.show()
    try:
        qtbot.waitUntil(lambda: win.model is not None or bool(win.errors), timeout=WAIT_MS)
        assert win.model is not None, win.errors
        assert win.inference.pipeline.landmarker.engine == "onnxruntime"
        assert win.model.engine == "onnxruntime f32"
        assert "points, onnxruntime f32)" in win.controls.model_label.text()
    finally:
        win.shutdown()
