import gc
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from sdfl_core.assets import asset_path
from sdfl_core.detector import (
    DetectorOptions,
    FaceDetector,
    _to_detection,
    to_rgb_uint8,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "astronaut.jpg"


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    image = cv2.imread(str(FIXTURE))
    assert image is not None and image.shape == (256, 256, 3)
    return image


@pytest.fixture(scope="module")
def detector():
    with FaceDetector(DetectorOptions(model="short")) as det:
        yield det


def _check_astronaut_face(detections, image_shape):
    assert len(detections) == 1
    det = detections[0]
    h, w = image_shape[:2]
    x, y, bw, bh = det.box
    assert 0.5 < det.score <= 1.0
    # The astronaut's face is about a fifth of the image wide (MediaPipe boxes are tight).
    assert 0.15 * w <= bw <= 0.8 * w and 0.15 * h <= bh <= 0.8 * h
    assert 0 <= x + bw / 2 < w and 0 <= y + bh / 2 < h / 2  # centre in the upper half
    assert det.keypoints.shape == (6, 2)
    right_eye, left_eye = det.keypoints[0], det.keypoints[1]
    for eye in (right_eye, left_eye):  # the box contains the eyes
        assert x <= eye[0] <= x + bw and y <= eye[1] <= y + bh
    assert right_eye[0] < left_eye[0]  # subject's right eye is on the image's left
    nose, mouth = det.keypoints[2], det.keypoints[3]
    assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]


@pytest.mark.parametrize("model", ["short", "full"])
def test_finds_the_one_face(model, astronaut):
    with FaceDetector(DetectorOptions(model=model)) as det:
        _check_astronaut_face(det.detect(astronaut), astronaut.shape)


def test_blank_and_extreme_frames_give_no_face(detector):
    assert detector.detect(np.zeros((240, 320, 3), np.uint8)) == []
    assert detector.detect(np.full((8, 8, 3), 128, np.uint8)) == []
    assert detector.detect(np.zeros((1, 1), np.uint8)) == []
    assert detector.detect(np.zeros((4320, 7680, 3), np.uint8)) == []


def test_face_in_a_huge_frame_is_found_in_full_resolution_pixels(astronaut):
    frame = cv2.resize(astronaut, (2048, 2048), interpolation=cv2.INTER_LINEAR)
    with FaceDetector(DetectorOptions(model="full")) as det:
        small, big = det.detect(astronaut), det.detect(frame)
    _check_astronaut_face(big, frame.shape)
    np.testing.assert_allclose(big[0].box / 8.0, small[0].box, atol=3.0)


@pytest.mark.parametrize(
    "convert",
    [
        lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2GRAY),
        lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)[:, :, None],
        lambda im: cv2.cvtColor(im, cv2.COLOR_BGR2BGRA),
        lambda im: im.astype(np.uint16) * 257,
        lambda im: im[:, ::-1][:, ::-1],  # a non-contiguous view of the same pixels
    ],
    ids=["gray", "gray_hw1", "bgra", "uint16", "strided"],
)
def test_other_frame_formats_give_the_same_box(convert, detector, astronaut):
    reference = detector.detect(astronaut)[0]
    found = detector.detect(convert(astronaut))
    assert len(found) == 1
    np.testing.assert_allclose(found[0].box, reference.box, atol=4.0)


def test_uint16_maps_full_range_to_uint8():
    frame = np.array([[0, 257, 65535]], np.uint16)
    np.testing.assert_array_equal(to_rgb_uint8(frame)[0, :, 0], [0, 1, 255])


def test_bgr_is_swapped_to_rgb():
    frame = np.zeros((2, 2, 3), np.uint8)
    frame[..., 0] = 200  # blue in BGR
    assert to_rgb_uint8(frame)[0, 0].tolist() == [0, 0, 200]


def test_box_is_clipped_to_the_image(detector, astronaut):
    # Move the face to the top-left corner so that its box leaves the frame there.
    shifted = np.zeros_like(astronaut)
    shifted[:-45, :-95] = astronaut[45:, 95:]
    found = detector.detect(shifted)
    assert len(found) == 1
    x, y, w, h = found[0].box
    assert x == -0.5 and y == -0.5 and 0 < w < 60 and 0 < h < 60


def test_mediapipe_pixels_become_sdfl_pixels():
    keypoint = SimpleNamespace(x=0.5, y=0.25)
    inside = SimpleNamespace(
        bounding_box=SimpleNamespace(origin_x=10, origin_y=20, width=30, height=40),
        categories=[SimpleNamespace(score=0.9)],
        keypoints=[keypoint] * 6,
    )
    det = _to_detection(inside, width=100, height=80)
    np.testing.assert_allclose(det.box, [9.5, 19.5, 30, 40])
    np.testing.assert_allclose(det.keypoints[0], [49.5, 19.5])  # edge-based 0.5 * 100 -> centre-based 49.5
    assert det.score == pytest.approx(0.9)
    overhanging = SimpleNamespace(
        bounding_box=SimpleNamespace(origin_x=-20, origin_y=60, width=50, height=50),
        categories=[SimpleNamespace(score=0.9)],
        keypoints=[SimpleNamespace(x=-0.1, y=1.2)] * 6,
    )
    det = _to_detection(overhanging, width=100, height=80)
    np.testing.assert_allclose(det.box, [-0.5, 59.5, 30, 20])
    np.testing.assert_allclose(det.keypoints[0], [-10.5, 95.5])  # keypoints are not clipped
    outside = SimpleNamespace(
        bounding_box=SimpleNamespace(origin_x=150, origin_y=0, width=20, height=20), categories=[], keypoints=[]
    )
    assert _to_detection(outside, width=100, height=80) is None


def test_max_faces_and_confidence(astronaut):
    two = np.hstack([astronaut, astronaut])
    with FaceDetector(DetectorOptions(model="full")) as det:
        both = det.detect(two)
    with FaceDetector(DetectorOptions(model="full", max_faces=1)) as det:
        one = det.detect(two)
    with FaceDetector(DetectorOptions(model="full", min_confidence=0.99)) as det:
        none = det.detect(two)
    assert len(both) == 2 and both[0].score >= both[1].score
    assert len(one) == 1 and one[0].score == pytest.approx(both[0].score)
    assert none == []


def test_video_mode_with_increasing_timestamps(astronaut):
    with FaceDetector(DetectorOptions(running_mode="video")) as det:
        boxes = [det.detect(astronaut, timestamp_ms=t)[0].box for t in (0, 33, 66, np.int64(100))]
        with pytest.raises(ValueError, match="must increase.*66 after 100"):
            det.detect(astronaut, timestamp_ms=66)
        with pytest.raises(ValueError, match="must increase"):
            det.detect(astronaut, timestamp_ms=100)
        with pytest.raises(ValueError, match="needs timestamp_ms"):
            det.detect(astronaut)
        with pytest.raises(ValueError, match="must be an int"):
            det.detect(astronaut, timestamp_ms=133.5)
        assert len(det.detect(astronaut, timestamp_ms=133)) == 1  # a rejected frame leaves the graph usable
    np.testing.assert_allclose(boxes[-1], boxes[0], atol=4.0)


@pytest.mark.parametrize(
    "frame, message",
    [
        (np.zeros((16, 16, 3), np.float32), "dtype must be uint8 or uint16"),
        (np.zeros((16, 16, 2), np.uint8), "got shape \\(16, 16, 2\\)"),
        (np.zeros((2, 16, 16, 3), np.uint8), "got shape"),
        (np.zeros((0, 16, 3), np.uint8), "empty"),
        ([[0, 1], [2, 3]], "numpy array"),
    ],
)
def test_bad_frames_raise(frame, message, detector):
    with pytest.raises(ValueError, match=message):
        detector.detect(frame)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"min_confidence": 1.5}, "min_confidence"),
        ({"min_suppression": -0.1}, "min_suppression"),
        ({"running_mode": "live"}, "running_mode"),
        ({"max_faces": 0}, "max_faces"),
        ({"model": ""}, "model"),
    ],
)
def test_bad_options_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DetectorOptions(**kwargs)


def test_model_lookup(tmp_path):
    assert DetectorOptions(model="full").model_path() == asset_path("mediapipe", "face_detection_full_range.tflite")
    relative = DetectorOptions(model="mediapipe/face_detection_short_range.tflite").model_path()
    assert relative == asset_path("mediapipe", "face_detection_short_range.tflite")
    with pytest.raises(FileNotFoundError, match="no_such.tflite"):
        FaceDetector(DetectorOptions(model=tmp_path / "no_such.tflite"))
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="cannot load face detector model"):
        FaceDetector(DetectorOptions(model=junk))


def test_asset_path_missing_raises():
    with pytest.raises(FileNotFoundError, match="not_there.bin"):
        asset_path("not_there.bin")


def test_closed_detector_refuses_to_detect(astronaut):
    with FaceDetector() as det:
        assert len(det.detect(astronaut)) == 1
    assert det.closed
    det.close()  # closing twice is harmless
    with pytest.raises(ValueError, match="closed"):
        det.detect(astronaut)


@pytest.mark.data
def test_full_range_finds_more_faces_in_group_photos(shared_data):
    photos = sorted((shared_data / "images").glob("sample*.jpg"))
    counts = {}
    for model in ("short", "full"):
        with FaceDetector(DetectorOptions(model=model)) as det:
            counts[model] = [len(det.detect(cv2.imread(str(p)))) for p in photos]
    assert len(counts["full"]) == 6
    assert sum(counts["full"]) > sum(counts["short"])
    assert all(n >= 3 for n in counts["full"])


def test_dropped_detector_is_closed_by_gc():
    det = FaceDetector()
    finalizer = det._finalizer
    del det
    gc.collect()
    assert not finalizer.alive


@pytest.mark.slow
@pytest.mark.slow
def test_detector_left_open_exits_cleanly():
    # MediaPipe's own __del__ fails at interpreter exit; the detector must close before that.
    code = "import numpy as np\nfrom sdfl_core.detector import FaceDetector\nFaceDetector().detect(np.zeros((32, 32, 3), np.uint8))\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr[-2000:]
