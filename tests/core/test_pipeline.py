from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from sdfl_core import crops
from sdfl_core.pipeline import LandmarkEngine, Pipeline, PipelineOptions, detection_to_crop, to_bgr_uint8
from sdfl_core.sources import open_source
from sdfl_core.types import Detection, FrameResult

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "astronaut.jpg"
NUM_FRAMES, FPS, SIZE = 10, 25.0, (320, 240)
STAGES = {"detect", "landmarks", "track", "total"}


def synthetic_frame(i: int, num_frames: int = NUM_FRAMES) -> np.ndarray:
    """The astronaut (200 px) sliding left to right over a dark 320x240 frame."""
    frame = np.full((SIZE[1], SIZE[0], 3), 40, np.uint8)
    x = 10 + round(100 * i / max(1, num_frames - 1))
    frame[20:220, x:x + 200] = cv2.resize(cv2.imread(str(FIXTURE)), (200, 200))
    return frame


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "slide.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, SIZE)
    for i in range(NUM_FRAMES):
        writer.write(synthetic_frame(i))
    writer.release()
    return path


@pytest.fixture(scope="module")
def engine(tiny_checkpoint, tmp_path_factory) -> LandmarkEngine:
    # Module-scoped, so the per-test ONNX cache fixture has not run yet: point the export at a temp dir here.
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SDFL_CACHE", str(tmp_path_factory.mktemp("onnx-cache")))
        return LandmarkEngine(tiny_checkpoint, device="cpu")


def make_pipeline(engine, **kwargs) -> Pipeline:
    return Pipeline(PipelineOptions(**kwargs), engine=engine)


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
    predict = engine.predictor.predict

    def spy(batch):
        batches.append(batch.shape)
        return predict(batch)

    monkeypatch.setattr(engine.predictor, "predict", spy)
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
    units, _ = engine.predictor.predict(engine.crops_for(image, [affine]))
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
        PipelineOptions(max_faces=0)
    with pytest.raises(ValueError, match="smoothing"):
        PipelineOptions(smoothing=1.5)


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
        Pipeline(PipelineOptions(weights=tiny_checkpoint, device="cuda"))
