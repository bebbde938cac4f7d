from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from slide_video import FIXTURE, write_slide
from slide_video import synthetic_frame as slide_frame

from sdfl_core import crops
from sdfl_core.detector import DetectorOptions
from sdfl_core.images import to_bgr_uint8
from sdfl_core.landmarker import Landmarker, detection_to_crop, load_landmarker
from sdfl_core.pipeline import Pipeline, PipelineOptions, streaming_options
from sdfl_core.redetect import RedetectOptions, carry_box, prediction_lost, square_affine, stable_crop
from sdfl_core.smoothing import smoothing_knob
from sdfl_core.sources import open_source
from sdfl_core.tracker import TrackerOptions
from sdfl_core.types import Detection, FrameResult

NUM_FRAMES, FPS, SIZE = 10, 25.0, (320, 240)
STAGES = {"detect", "landmarks", "track", "total"}


def make_options(detector="short", min_confidence=0.5, max_faces=5, running_mode="video", smoothing=0.5, smooth=True,
                 redetect_every=1, crop_deadband=0.04, **model) -> PipelineOptions:
    """The composed options from the flat names the CLI uses."""
    return PipelineOptions(
        detector=DetectorOptions(model=detector, min_confidence=min_confidence, max_faces=max_faces, running_mode=running_mode),
        tracker=TrackerOptions(smoothing=smoothing_knob(smoothing, off=not smooth)),
        redetect=RedetectOptions(every=redetect_every, crop_deadband=crop_deadband), **model)


def synthetic_frame(i: int, num_frames: int = NUM_FRAMES) -> np.ndarray:
    return slide_frame(i, num_frames)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_slide(tmp_path_factory.mktemp("video") / "slide.mp4", NUM_FRAMES)


@pytest.fixture(scope="module")
def engine(tiny_checkpoint, tmp_path_factory) -> Landmarker:
    # Module-scoped, so the per-test ONNX cache fixture has not run yet: point the export at a temp dir here.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SDFL_CACHE", str(tmp_path_factory.mktemp("onnx-cache")))
        return load_landmarker(tiny_checkpoint, device="cpu")


def make_pipeline(engine, **kwargs) -> Pipeline:
    return Pipeline(make_options(**kwargs), landmarker=engine)


@pytest.fixture(scope="module")
def face_grid() -> np.ndarray:
    """5 x 4 tiles of the astronaut's head (128 px each): 20 faces in a 640x512 frame."""
    head = cv2.resize(cv2.imread(str(FIXTURE))[5:125, 50:170], (128, 128))
    return np.tile(head, (4, 5, 1))


def _check_points_in_crop(track, info) -> None:
    units = crops.image_to_units(track.raw.points, detection_to_crop(track.detection, info), info.config.input_size)
    # An untrained head adds small but unbounded offsets to the mean shape: allow 10 % of the crop.
    assert np.all(units >= -0.1) and np.all(units <= 1.1), (units.min(), units.max())


def test_run_yields_frame_results_with_stable_ids(engine, video):
    with make_pipeline(engine) as pipeline, open_source(video) as source:
        results = list(pipeline.run(source))
    assert len(results) == NUM_FRAMES
    assert all(isinstance(r, FrameResult) for r in results)
    assert [r.index for r in results] == list(range(NUM_FRAMES))
    np.testing.assert_allclose([r.timestamp_ms for r in results], np.arange(NUM_FRAMES) * 1000.0 / FPS)
    for r in results:
        assert r.frame_size == SIZE
        assert set(r.timings_ms) == STAGES and all(v >= 0 for v in r.timings_ms.values())
        assert r.timings_ms["total"] >= r.timings_ms["detect"]
        assert len(r.tracks) == 1
        track = r.tracks[0]
        assert track.raw.points.shape == track.smoothed.shape == (68, 2)
        assert track.raw.edge_weights.shape == (68, 68)
    assert {r.tracks[0].track_id for r in results} == {0}
    assert [r.tracks[0].hits for r in results] == list(range(1, NUM_FRAMES + 1))
    # The face slides right by 100 px over the clip; the boxes follow it.
    xs = [r.tracks[0].detection.box[0] for r in results]
    assert xs[-1] - xs[0] == pytest.approx(100, abs=10)


def test_detect_ahead_gives_the_same_results_as_process(engine, video):
    with make_pipeline(engine) as a, make_pipeline(engine) as b, open_source(video) as sa, open_source(video) as sb:
        ahead = list(a.run_frames(sa, detect_ahead=True))
        inline = [b.process(f.image, f.index, f.timestamp_ms) for f in sb]
    assert [f.index for f, _ in ahead] == list(range(NUM_FRAMES))
    for (_, ra), rb in zip(ahead, inline):
        assert [t.track_id for t in ra.tracks] == [t.track_id for t in rb.tracks]
        for ta, tb in zip(ra.tracks, rb.tracks):
            np.testing.assert_array_equal(ta.detection.box, tb.detection.box)
            np.testing.assert_array_equal(ta.raw.points, tb.raw.points)
            np.testing.assert_array_equal(ta.smoothed, tb.smoothed)
        assert set(ra.timings_ms) == STAGES and ra.timings_ms["detect"] > 0


def test_detect_ahead_stops_at_max_frames_and_raises_detector_errors_in_order(engine, video, monkeypatch):
    with make_pipeline(engine) as pipeline, open_source(video) as source:
        assert len(list(pipeline.run_frames(source, max_frames=4, detect_ahead=True))) == 4
    with make_pipeline(engine) as pipeline, open_source(video) as source:
        detect, seen = pipeline.detector.detect, []

        def failing(bgr, ts=None):
            if len(seen) == 3:
                raise ValueError("detector broke")
            seen.append(ts)
            return detect(bgr, ts)

        monkeypatch.setattr(pipeline.detector, "detect", failing)
        got = []
        with pytest.raises(ValueError, match="detector broke"):
            for frame, _ in pipeline.run_frames(source, detect_ahead=True):
                got.append(frame.index)
    assert got == [0, 1, 2]


def test_detect_ahead_is_the_default_only_when_detecting_every_frame(engine, video, monkeypatch):
    import sdfl_core.pipeline as pipeline_module

    calls = []
    real = pipeline_module.prefetch
    monkeypatch.setattr(pipeline_module, "prefetch", lambda items, **kw: calls.append(kw) or real(items, **kw))
    for k, expected in ((1, 2), (3, 1)):
        calls.clear()
        with make_pipeline(engine, redetect_every=k) as pipeline, open_source(video) as source:
            list(pipeline.run_frames(source))
        assert len(calls) == expected  # decode thread, plus the detect thread for K = 1
    with make_pipeline(engine, redetect_every=3) as pipeline, open_source(video) as source:
        with pytest.raises(ValueError, match="redetect.every == 1"):
            next(pipeline.run_frames(source, detect_ahead=True))


def test_max_frames(engine, video):
    with make_pipeline(engine) as pipeline, open_source(video) as source:
        assert len(list(pipeline.run(source, max_frames=3))) == 3


def test_frame_without_face_has_empty_tracks(engine):
    with make_pipeline(engine) as pipeline:
        result = pipeline.process(np.full((240, 320, 3), 90, np.uint8), 0, 0.0)
    assert result.tracks == ()
    assert result.frame_size == (320, 240)
    assert set(result.timings_ms) == STAGES


@pytest.mark.parametrize("kind", ["gray", "gray1", "bgra", "uint16"])
def test_frame_formats(engine, kind):
    bgr = synthetic_frame(3)
    frame = {
        "gray": cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY),
        "gray1": cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)[..., None],
        "bgra": cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA),
        "uint16": bgr.astype(np.uint16) * 257,
    }[kind]
    # The full-range detector: the short-range one scores this colour face only ~0.65 and misses it in grey.
    opts = dict(running_mode="image", detector="full")
    with make_pipeline(engine, **opts) as a, make_pipeline(engine, **opts) as b:
        result = a.process(frame)
        reference = b.process(bgr)
    assert result.frame_size == SIZE and len(result.tracks) == 1
    if kind in ("bgra", "uint16"):  # converts back to exactly the BGR frame
        np.testing.assert_allclose(result.tracks[0].raw.points, reference.tracks[0].raw.points, atol=1e-4)
    else:
        np.testing.assert_allclose(result.tracks[0].detection.box, reference.tracks[0].detection.box, atol=6)


def test_bad_frame_type(engine):
    with make_pipeline(engine) as pipeline, pytest.raises(ValueError, match="dtype"):
        pipeline.process(np.zeros((10, 10, 3), np.float32))


def test_to_bgr_uint8():
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    out = to_bgr_uint8(gray)
    assert out.shape == (3, 4, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out[..., 0], gray)
    np.testing.assert_array_equal(to_bgr_uint8(np.full((2, 2, 3), 65535, np.uint16)), np.full((2, 2, 3), 255))


@pytest.mark.parametrize("size", [(16, 16), (7680, 4320)])
def test_extreme_frame_sizes(engine, size):
    w, h = size
    frame = np.full((h, w, 3), 60, np.uint8)
    if w > 1000:
        frame[500:2500, 3000:5000] = cv2.resize(cv2.imread(str(FIXTURE)), (2000, 2000))
    with make_pipeline(engine) as pipeline:
        result = pipeline.process(frame, 0, 0.0)
    assert result.frame_size == (w, h)
    assert isinstance(result.tracks, tuple)
    for track in result.tracks:
        assert np.isfinite(track.raw.points).all()
        _check_points_in_crop(track, engine.info)


def test_many_faces_one_batch(engine, face_grid, monkeypatch):
    batches = []
    predict = engine.runner.predict

    def spy(batch):
        batches.append(batch.shape)
        return predict(batch)

    monkeypatch.setattr(engine.runner, "predict", spy)
    with make_pipeline(engine, detector="full", max_faces=20) as pipeline:
        results = [pipeline.process(face_grid, i, i * 33.0) for i in range(2)]
    size = engine.info.config.input_size
    for result, shape in zip(results, batches):
        assert 15 <= len(result.tracks) <= 20
        assert shape == (len(result.tracks), size, size, 3)
    assert len(batches) == 2  # one predictor call per frame, all faces in it
    assert [t.track_id for t in results[1].tracks] == [t.track_id for t in results[0].tracks]
    for track in results[1].tracks:
        x, y, w, h = track.detection.box
        assert w < 128 and h < 128  # one head per box, not a merged blob
        _check_points_in_crop(track, engine.info)
        centre = track.raw.points.mean(axis=0)
        assert abs(centre[0] - (x + w / 2)) < w and abs(centre[1] - (y + h / 2)) < h


def test_max_faces_caps_tracks(engine, face_grid):
    with make_pipeline(engine, detector="full", max_faces=6) as pipeline:
        result = pipeline.process(face_grid, 0, 0.0)
    assert len(result.tracks) == 6
    assert len({t.track_id for t in result.tracks}) == 6


def test_points_map_back_into_the_box(engine):
    """Image points = the model's crop units mapped through the crop affine; a shifted face shifts them."""
    image = synthetic_frame(0)
    det = Detection(box=np.array([75.0, 46.0, 42.0, 42.0]), score=0.9)
    [lm] = engine.predict_boxes(image, [det])
    affine = detection_to_crop(det, engine.info)
    size = engine.info.config.input_size
    units, _, _ = engine.runner.predict(engine.crops_for(image, [affine]))
    np.testing.assert_allclose(lm.points, crops.units_to_image(units[0], affine, size), atol=1e-3)
    _check_points_in_crop(SimpleNamespace(raw=lm, detection=det), engine.info)
    # Same face 17 px right, 9 px down: the crop is pixel-identical, so the points move by exactly that.
    shifted = np.full_like(image, 40)
    shifted[9:, 17:] = image[:-9, :-17]
    [lm2] = engine.predict_boxes(shifted, [Detection(box=det.box + [17, 9, 0, 0], score=0.9)])
    np.testing.assert_allclose(lm2.points - lm.points, np.broadcast_to([17, 9], lm.points.shape), atol=1e-2)


def test_detection_to_crop_uses_the_detectors_calibration():
    cal = {"short": {"dx": 0.1, "dy": -0.2, "scale": 1.5}, "full": {"dx": 0.0, "dy": 0.25, "scale": 1.0}}
    info = SimpleNamespace(detector_box=cal, crop_scale=1.4, config=SimpleNamespace(input_size=64))
    det = Detection(box=np.array([10.0, 20.0, 40.0, 20.0]), score=1.0)
    # (detector, centre the crop must be centred on, crop side in image pixels)
    cases = [("short", (34.0, 26.0), 1.4 * 1.5 * 40), ("full", (30.0, 35.0), 1.4 * 40),
             ("custom/model.tflite", (34.0, 26.0), 1.4 * 1.5 * 40)]  # a custom model uses 'short'
    for detector, centre, side in cases:
        affine = detection_to_crop(det, info, detector)
        np.testing.assert_allclose(crops.transform_points(np.array([centre]), affine), [[31.5, 31.5]], atol=1e-4)
        np.testing.assert_allclose(affine[0, 0], 64 / side, rtol=1e-6)
    uncalibrated = detection_to_crop(det, SimpleNamespace(detector_box={}, crop_scale=1.4, config=info.config))
    np.testing.assert_allclose(crops.transform_points(np.array([[30.0, 30.0]]), uncalibrated), [[31.5, 31.5]], atol=1e-4)


def test_empty_predict(engine):
    assert engine.predict(np.zeros((10, 10, 3), np.uint8), []) == []


def test_options_validation():
    with pytest.raises(ValueError, match="max_faces"):
        make_options(max_faces=0)
    with pytest.raises(ValueError, match="smoothing"):
        make_options(smoothing=1.5)


def test_no_smooth_reports_raw_points(engine, video):
    with make_pipeline(engine, smooth=False) as pipeline, open_source(video) as source:
        results = list(pipeline.run(source, max_frames=4))
    for r in results:
        np.testing.assert_array_equal(r.tracks[0].smoothed, r.tracks[0].raw.points)


def test_cuda_without_cuda(tiny_checkpoint):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA"):
        Pipeline(make_options(weights=tiny_checkpoint, device="cuda"))


# --- redetect_every: detect every K-th frame, crop from the previous landmarks in between -------------------
# The conftest model is random: its points sit near an ellipse mean shape whose box is 0.6 of the crop, so
# with the default crop_scale 1.4 a landmark crop shrinks the face by 16 % a frame until the lost check
# fires. ``steady_engine`` uses the same model with crop_scale 1 / 0.6, which makes that mean shape (almost)
# a fixed point of the landmark crop, so the schedule itself can be checked; the drifting model is used
# for the loss mechanics.
SLOW_FRAMES = 12


def slow_frame(i: int) -> np.ndarray:
    """The astronaut sliding 2 px a frame (the landmarks of a random model do not follow the face)."""
    return synthetic_frame(i, num_frames=51)


@pytest.fixture(scope="module")
def steady_engine(tiny_checkpoint, tmp_path_factory) -> Landmarker:
    from dataclasses import replace

    from sdfl_core.checkpoint import load_checkpoint, save_checkpoint

    model, info = load_checkpoint(tiny_checkpoint)
    path = tmp_path_factory.mktemp("steady") / "steady.pt"
    save_checkpoint(path, model, replace(info, crop_scale=1 / 0.6))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SDFL_CACHE", str(tmp_path_factory.mktemp("onnx-cache-steady")))
        return load_landmarker(path, device="cpu")


def spy_detect(pipeline, monkeypatch) -> list[int]:
    """Record the frame index of every detector call (frames are processed with index == position)."""
    calls, detect, frame = [], pipeline.detector.detect, {"index": -1}
    process = pipeline.process

    def spy(bgr, ts=None):
        calls.append(frame["index"])
        return detect(bgr, ts)

    def indexed(image, index=0, timestamp_ms=None):
        frame["index"] = index
        return process(image, index, timestamp_ms)

    monkeypatch.setattr(pipeline.detector, "detect", spy)
    monkeypatch.setattr(pipeline, "process", indexed)
    return calls


def test_redetect_every_runs_the_detector_every_kth_frame(steady_engine, monkeypatch):
    engine = steady_engine
    with make_pipeline(engine, redetect_every=5, crop_deadband=0.0) as pipeline:
        calls = spy_detect(pipeline, monkeypatch)
        results = [pipeline.process(slow_frame(i), i, i * 40.0) for i in range(SLOW_FRAMES)]
    assert calls == [0, 5, 10]
    assert all(len(r.tracks) == 1 for r in results)
    assert {r.tracks[0].track_id for r in results} == {0}
    assert [r.tracks[0].hits for r in results] == list(range(1, SLOW_FRAMES + 1))
    size, scale = engine.info.config.input_size, engine.info.crop_scale
    for prev, r in zip(results, results[1:]):
        assert set(r.timings_ms) == STAGES
        # On every frame after the first, detection frames included, the points are exactly what the
        # model gives for the training crop around the previous frame's raw points (no dead band here), cut
        # upright by the roll of their eyes.
        track = r.tracks[0]
        square = crops.landmark_square(prev.tracks[0].raw.points, scale, engine.eyes)
        assert engine.eyes is not None and square[2] != 0.0  # turned: the random model's eyes are not level
        [expected] = engine.predict(slow_frame(r.index), [square_affine(square, size)])
        np.testing.assert_allclose(track.raw.points, expected.points, atol=1e-3)
        if r.index in calls:
            continue
        # In between: the box is the last detector box carried along by the landmark box, the score the
        # last detection's.
        det = results[max(c for c in calls if c < r.index)].tracks[0]
        expected_box = carry_box(det.detection.box, crops.landmark_box(det.raw.points), crops.landmark_box(track.raw.points))
        np.testing.assert_allclose(track.detection.box, expected_box, atol=1e-3)
        assert track.detection.score == det.detection.score


def test_stable_crop_keeps_the_square_inside_the_dead_band():
    kept = (np.array([100.0, 100.0]), 50.0, 0.0)
    assert stable_crop(None, kept, 0.1) is kept
    inside = (np.array([103.0, 96.0]), 52.0, 5.0)  # moved 5 px (0.1 x 50), 4 % larger, turned 5 deg (< 0.1 rad)
    assert stable_crop(kept, inside, 0.1) is kept
    assert stable_crop(kept, (np.array([106.0, 100.0]), 50.0, 0.0), 0.1)[0][0] == 106.0  # moved 6 px
    assert stable_crop(kept, (np.array([100.0, 100.0]), 56.0, 0.0), 0.1)[1] == 56.0  # 12 % larger
    assert stable_crop(kept, (np.array([100.0, 100.0]), 50.0, -6.0), 0.1)[2] == -6.0  # turned 6 deg (> 5.7)
    assert stable_crop((np.array([100.0, 100.0]), 50.0, 178.0), (np.array([100.0, 100.0]), 50.0, -179.0), 0.1)[2] == 178.0
    assert stable_crop(kept, inside, 0.0) is inside


def test_dead_band_holds_a_still_faces_crop_across_detections(steady_engine, monkeypatch):
    # Axis-aligned crops: the random model puts the same points in every crop, whatever the face, so an
    # upright crop would turn by their eyes' tilt on every frame (a real model's eyes turn with the face).
    monkeypatch.setattr(steady_engine, "upright", False)
    still = slow_frame(0)
    with make_pipeline(steady_engine, redetect_every=4, crop_deadband=0.2) as banded, \
            make_pipeline(steady_engine, redetect_every=4, crop_deadband=0.0) as free:
        held = [banded.process(still, i, i * 40.0).tracks[0].raw.points for i in range(10)]
        followed = [free.process(still, i, i * 40.0).tracks[0].raw.points for i in range(10)]
    # Frame 0 uses the detector's crop, frame 1 the landmark crop; from then on the crop (and, on a
    # still frame, the points) stay put, through the detections at frames 4 and 8 too.
    assert not np.array_equal(held[0], held[1])
    for points in held[2:]:
        np.testing.assert_array_equal(points, held[1])
    # Without the band every frame re-crops from the last points, which the model never reproduces exactly.
    assert any(not np.array_equal(a, b) for a, b in zip(followed[2:], followed[1:]))


def test_new_faces_at_a_detection_frame_use_the_detector_crop(steady_engine, monkeypatch):
    affines = []
    predict = steady_engine.predict

    def spy(bgr, batch):
        affines.append(batch)
        return predict(bgr, batch)

    monkeypatch.setattr(steady_engine, "predict", spy)
    with make_pipeline(steady_engine, redetect_every=3) as pipeline:
        [track] = pipeline.process(slow_frame(0), 0, 0.0).tracks
    np.testing.assert_allclose(affines[0][0], detection_to_crop(track.detection, steady_engine.info), atol=1e-6)


def test_redetect_every_one_is_todays_behaviour(engine, video, monkeypatch):
    with make_pipeline(engine) as a, make_pipeline(engine, redetect_every=1) as b, open_source(video) as source:
        calls = spy_detect(b, monkeypatch)
        for frame in source:
            ra, rb = a.process(frame.image, frame.index, frame.timestamp_ms), b.process(frame.image, frame.index, frame.timestamp_ms)
            np.testing.assert_array_equal(ra.tracks[0].raw.points, rb.tracks[0].raw.points)
            np.testing.assert_array_equal(ra.tracks[0].detection.box, rb.tracks[0].detection.box)
    assert calls == list(range(NUM_FRAMES))


def test_drifting_landmarks_are_caught_as_lost(engine, monkeypatch):
    """The random model's landmark crops shrink 16 % a frame: the lost check must stop that early."""
    def size(track) -> float:
        box = crops.landmark_box(track.raw.points)
        return float(np.sqrt(box[2] * box[3]))

    with make_pipeline(engine, redetect_every=10) as pipeline:
        calls = spy_detect(pipeline, monkeypatch)
        results = [pipeline.process(slow_frame(i), i, i * 40.0) for i in range(SLOW_FRAMES)]
    assert calls[0] == 0 and 1 < len(calls) < SLOW_FRAMES
    assert max(np.diff(calls)) < 10  # re-detected before the schedule would have
    detected = None
    for r in results:
        if r.index in calls:
            detected = size(r.tracks[0]) if r.tracks else None
        elif r.tracks:  # never more than 40 % away from the size at the last detection
            assert 0.6 <= size(r.tracks[0]) / detected <= 1.4
    assert {t.track_id for r in results for t in r.tracks} == {0}


def test_vanished_face_is_redetected_and_dropped(steady_engine, monkeypatch):
    engine = steady_engine
    blank = np.full((SIZE[1], SIZE[0], 3), 40, np.uint8)
    frames = [slow_frame(i) for i in range(3)] + [blank] * 9
    with make_pipeline(engine, redetect_every=5) as pipeline:
        calls = spy_detect(pipeline, monkeypatch)
        results = [pipeline.process(f, i, i * 40.0) for i, f in enumerate(frames)]
    # Frames 3-4 still crop from the last landmarks (or drop a lost track and re-detect early); the
    # detector runs by frame 5 at the latest, finds nothing, and from then on it runs on every frame.
    first_empty = next(i for i, r in enumerate(results) if not r.tracks)
    assert 3 <= first_empty <= 5
    assert all(not r.tracks for r in results[first_empty:])
    assert all(len(r.tracks) == 1 for r in results[:3])
    assert calls[0] == 0 and 0 < len([c for c in calls if c < 3]) <= 1
    assert calls[-7:] == list(range(5, 12))


def test_lost_prediction_forces_redetection_next_frame_and_keeps_the_id(steady_engine, monkeypatch):
    import sdfl_core.redetect as pipeline_module

    real = pipeline_module.prediction_lost
    state = {"calls": 0}

    def lost_on_second(*args):
        state["calls"] += 1
        return state["calls"] == 2 or real(*args)

    monkeypatch.setattr(pipeline_module, "prediction_lost", lost_on_second)
    with make_pipeline(steady_engine, redetect_every=5) as pipeline:
        calls = spy_detect(pipeline, monkeypatch)
        results = [pipeline.process(slow_frame(i), i, i * 40.0) for i in range(NUM_FRAMES)]
    # Frame 2's prediction is declared lost: no track that frame, a detection on frame 3, and the
    # schedule restarts from there (3, 8).
    assert calls == [0, 3, 8]
    assert [len(r.tracks) for r in results] == [1, 1, 0] + [1] * (NUM_FRAMES - 3)
    assert {r.tracks[0].track_id for r in results if r.tracks} == {0}


def test_redetect_keeps_one_batch_and_max_faces(steady_engine, face_grid, monkeypatch):
    engine = steady_engine
    batches = []
    predict = engine.runner.predict

    def spy(batch):
        batches.append(batch.shape[0])
        return predict(batch)

    monkeypatch.setattr(engine.runner, "predict", spy)
    with make_pipeline(engine, detector="full", max_faces=6, redetect_every=3) as pipeline:
        calls = spy_detect(pipeline, monkeypatch)
        results = [pipeline.process(face_grid, i, i * 33.0) for i in range(3)]
    assert calls == [0]
    assert batches == [len(r.tracks) for r in results] == [6, 6, 6]
    assert [t.track_id for t in results[2].tracks] == [t.track_id for t in results[0].tracks]


def test_carry_box():
    detected, landmarks = np.array([10.0, 20.0, 40.0, 40.0]), np.array([15.0, 30.0, 30.0, 36.0])
    np.testing.assert_allclose(carry_box(detected, landmarks, landmarks), detected, atol=1e-5)
    np.testing.assert_allclose(carry_box(detected, landmarks, landmarks + [7, -3, 0, 0]), detected + [7, -3, 0, 0], atol=1e-5)
    # Landmark box twice the size around the same centre (30, 48): the detector box doubles, and so does
    # its centre's offset from the landmark centre ((0, -8) -> (0, -16)).
    grown = carry_box(detected, landmarks, np.array([0.0, 12.0, 60.0, 72.0]))
    np.testing.assert_allclose(grown, [30 - 40, 48 - 16 - 40, 80, 80], atol=1e-5)


def test_prediction_lost():

    square = np.array([[100.0, 100.0], [200.0, 100.0], [200.0, 200.0], [100.0, 200.0]])
    frame = (640, 480)
    assert not prediction_lost(square, square + [30, -20], frame)
    assert not prediction_lost(square, (square - 150) * 1.3 + 150, frame)
    assert prediction_lost(square, square + [60, 0], frame)  # moved > 0.5 box sizes
    assert prediction_lost(square, (square - 150) * 1.5 + 150, frame)  # grew by > 40 %
    assert prediction_lost(square, (square - 150) * 0.5 + 150, frame)  # shrank by > 40 %
    assert prediction_lost(square, square + [0, 0], (120, 120))  # centre outside the frame
    assert prediction_lost(square, np.full_like(square, 150.0), frame)  # collapsed
    assert prediction_lost(square, np.where(square > 150, np.nan, square), frame)


def test_redetect_every_validation_and_cli():
    from sdfl_core.cli import build_parser

    for bad in (0, -2, 1.5, True):
        with pytest.raises(ValueError, match="redetect_every"):
            make_options(redetect_every=bad)
    for bad in (-0.1, 0.5):
        with pytest.raises(ValueError, match="crop_deadband"):
            make_options(crop_deadband=bad)
    assert build_parser().parse_args(["track", "demo"]).redetect_every == 1
    assert build_parser().parse_args(["track", "demo", "--redetect-every", "5"]).redetect_every == 5


def test_streaming_options_leave_the_other_core_to_the_detector_thread():
    assert streaming_options(make_options()).num_threads == 1
    assert streaming_options(make_options(num_threads=2)).num_threads == 2  # the user's choice stands
    assert streaming_options(make_options(redetect_every=3)).num_threads is None  # nothing runs ahead
    assert streaming_options(make_options(smoothing=0.2)).tracker.smoothing == 0.2


def test_pipeline_reused_for_a_new_source_starts_clean(engine, video):
    def run_once(pipeline):
        with open_source(video) as source:
            return [(r.index, t.track_id, t.smoothed.copy()) for r in pipeline.run(source) for t in r.tracks]

    with make_pipeline(engine) as pipeline:
        first, second = run_once(pipeline), run_once(pipeline)
    assert [(i, tid) for i, tid, _ in second] == [(i, tid) for i, tid, _ in first]
    assert first[0][1] == 0
    for (_, _, a), (_, _, b) in zip(first, second):
        np.testing.assert_allclose(b, a, atol=1e-3)


def test_image_mode_shares_nothing_between_photos(engine, tmp_path):
    # The same face a little further right in each photo: video mode would track and smooth it.
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"photo{i}.png"), synthetic_frame(i))
    with make_pipeline(engine, running_mode="image") as pipeline, open_source(tmp_path) as source:
        assert source.running_mode == "image"
        results = list(pipeline.run_frames(source))
    assert [frame.source for frame, _ in results] == [f"photo{i}.png" for i in range(4)]
    for _, result in results:
        assert [t.track_id for t in result.tracks] == [0]
        np.testing.assert_array_equal(result.tracks[0].smoothed, result.tracks[0].raw.points)
    with make_pipeline(engine) as pipeline, open_source(tmp_path, sequence=True) as source:
        tracked = [r for r in pipeline.run(source)]
    assert any(not np.allclose(r.tracks[0].smoothed, r.tracks[0].raw.points) for r in tracked[1:])


def test_running_mode_must_match_the_source(engine, tmp_path):
    cv2.imwrite(str(tmp_path / "photo.png"), synthetic_frame(0))
    with make_pipeline(engine) as pipeline, open_source(tmp_path) as source:
        with pytest.raises(ValueError, match="image mode.*video mode"):
            list(pipeline.run(source))
    with pytest.raises(ValueError, match="running_mode"):
        make_options(running_mode="live")


def test_a_landmarker_and_model_options_together_are_refused(engine, tiny_checkpoint):
    with pytest.raises(ValueError, match="weights"):
        Pipeline(make_options(weights=tiny_checkpoint), landmarker=engine)
    with pytest.raises(ValueError, match="device"):
        Pipeline(make_options(device="cpu"), landmarker=engine)
    with pytest.raises(ValueError, match="crops_per_face"):
        Pipeline(make_options(crops_per_face=5), landmarker=engine)
    with pytest.raises(ValueError, match="passes"):
        Pipeline(make_options(passes=2), landmarker=engine)
    with pytest.raises(ValueError, match="mirror"):
        Pipeline(make_options(mirror=True), landmarker=engine)


def test_photos_default_to_more_passes_and_crops_than_video(tiny_checkpoint):
    assert crops.default_passes("image") == crops.PHOTO_PASSES > 1 == crops.default_passes("video")
    assert crops.default_crops_per_face("image") == crops.PHOTO_CROPS > 1 == crops.default_crops_per_face("video")
    for mode, count, passes, crops_per_face in (("image", None, crops.PHOTO_PASSES, crops.PHOTO_CROPS), ("video", None, 1, 1),
                                                ("image", 1, 1, 1), ("video", 3, 3, 9)):
        options = make_options(weights=tiny_checkpoint, running_mode=mode, passes=count,
                               crops_per_face={None: None, 1: 1, 3: 9}[count])
        with Pipeline(options) as pipeline:
            assert (pipeline.landmarker.passes, pipeline.landmarker.crops_per_face) == (passes, crops_per_face), (mode, count)


def test_reset_clears_the_policy_state(steady_engine):
    with make_pipeline(steady_engine, redetect_every=4) as pipeline:
        for i in range(3):
            pipeline.process(synthetic_frame(i), i)
        assert not pipeline.policy.should_detect()  # frame 3 would crop from the landmarks
        pipeline.reset()
        assert pipeline.policy.should_detect()
        fresh = Pipeline(make_options(redetect_every=4), landmarker=steady_engine)
        assert vars(pipeline.policy).keys() == vars(fresh.policy).keys()
        assert pipeline.policy._previous == () and pipeline.policy._anchors == {} and pipeline.policy._crops == {}
        fresh.close()


def test_composed_options_check_their_parts():
    with pytest.raises(ValueError, match="DetectorOptions"):
        PipelineOptions(detector="full")
    assert PipelineOptions().running_mode == "video" and PipelineOptions().detector.max_faces == 5


@pytest.mark.parametrize("mode, loaded", [("video", True), ("image", False)])
def test_a_video_pipeline_has_filterpy_loaded_before_its_first_frame(mode, loaded):
    """filterpy's import (scipy.stats: over half a second) used to happen at a stream's second frame, as a
    stall; a video-mode pipeline now has it done when it is built. Photos never load it. A fresh
    interpreter, so that nothing else has imported it."""
    import subprocess
    import sys

    code = ("import sys\n"
            "from sdfl_core.detector import DetectorOptions\n"
            "from sdfl_core.pipeline import Pipeline, PipelineOptions\n"
            f"with Pipeline(PipelineOptions(detector=DetectorOptions(running_mode={mode!r}))):\n"
            "    print('filterpy.kalman' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == str(loaded)


def test_a_shared_landmarker_refuses_options_that_would_load_another():
    """Options that choose the model (weights, device, engine, threads, crops, passes, mirror) cannot come with
    a landmarker already loaded: the error names each one given."""
    shared = object()  # refused before it is used
    with pytest.raises(ValueError, match=r"PipelineOptions\.engine: pass one or the other"):
        Pipeline(PipelineOptions(engine="openvino"), landmarker=shared)
    with pytest.raises(ValueError, match=r"PipelineOptions\.weights, device, engine, passes: pass one"):
        Pipeline(PipelineOptions(weights="fc", device="cpu", engine="onnxruntime", passes=2), landmarker=shared)
