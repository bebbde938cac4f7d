import numpy as np
import pytest

from sdfl_core.smoothing import KalmanSmoother
from sdfl_core.tracker import Tracker, TrackerOptions, iou_matrix
from sdfl_core.types import Detection, Landmarks

N = 5


def face(cx: float, cy: float, size: float = 100.0, rng=None, noise: float = 0.0):
    det = Detection(box=[cx - size / 2, cy - size / 2, size, size], score=0.9)
    offsets = np.array([[-0.3, -0.2], [0.3, -0.2], [0.0, 0.0], [-0.2, 0.3], [0.2, 0.3]]) * size
    pts = np.array([cx, cy]) + offsets
    if rng is not None:
        pts = pts + rng.normal(scale=noise, size=pts.shape)
    return det, Landmarks(points=pts, edge_weights=np.zeros((N, 0)))


def step(tracker, faces):
    dets, lms = zip(*faces) if faces else ((), ())
    return tracker.update(list(dets), list(lms))


def test_iou_matrix_known_values():
    a = np.array([[0, 0, 10, 10], [0, 0, 2, 2]])
    b = np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30]])
    iou = iou_matrix(a, b)
    expected = np.array([[1.0, 50 / 150, 0.0], [4 / 100, 0.0, 0.0]])
    np.testing.assert_allclose(iou, expected)
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)
    with pytest.raises(ValueError, match=r"a_xyxy must have shape \(K, 4\)"):
        iou_matrix(np.zeros((2, 3)), b)


def test_ids_stable_when_faces_swap_order_in_detection_list():
    tracker = Tracker(TrackerOptions(smoothing=0.5))
    seen = []
    for t in range(30):
        a = face(100 + 2 * t, 200)
        b = face(400 - 2 * t, 220)
        faces = [a, b] if t % 2 == 0 else [b, a]
        tracks = step(tracker, faces)
        assert [tr.track_id for tr in tracks] == [0, 1]  # ordered by id
        by_id = {tr.track_id: tr.detection.box[0] for tr in tracks}
        seen.append(by_id)
    # Track 0 is always the face moving right, track 1 the one moving left.
    xs0 = np.array([s[0] for s in seen])
    xs1 = np.array([s[1] for s in seen])
    assert np.all(np.diff(xs0) > 0) and np.all(np.diff(xs1) < 0)
    assert tracks[0].hits == 30 and tracks[0].age == 30


def test_track_survives_max_misses_and_dies_after():
    opts = TrackerOptions(max_misses=3)
    tracker = Tracker(opts)
    for _ in range(3):
        assert step(tracker, [face(100, 100)])[0].track_id == 0
    for _ in range(3):  # exactly max_misses frames missing: still the same face
        assert step(tracker, []) == []
    tracks = step(tracker, [face(100, 100)])
    assert tracks[0].track_id == 0 and tracks[0].hits == 4 and tracks[0].age == 7

    for _ in range(4):  # more than max_misses: the track dies
        step(tracker, [])
    assert tracker.num_live_tracks == 0
    assert step(tracker, [face(100, 100)])[0].track_id == 1


def test_min_hits_and_reset():
    tracker = Tracker(TrackerOptions(min_hits=3))
    assert step(tracker, [face(50, 50)]) == []
    assert step(tracker, [face(50, 50)]) == []
    assert step(tracker, [face(50, 50)])[0].track_id == 0
    tracker.reset()
    assert tracker.num_live_tracks == 0
    step(tracker, [face(50, 50)]), step(tracker, [face(50, 50)])
    assert step(tracker, [face(50, 50)])[0].track_id == 0


def test_mismatched_inputs_rejected():
    det, lm = face(10, 10)
    with pytest.raises(ValueError, match="2 detections but 1 landmark"):
        Tracker().update([det, det], [lm])
    with pytest.raises(ValueError, match="smoothing must be in"):
        TrackerOptions(smoothing=1.5)
    with pytest.raises(ValueError, match="smoothing must be in"):
        Tracker().smoothing = -0.1


def test_smoothing_zero_returns_measurement_exactly():
    rng = np.random.default_rng(0)
    tracker = Tracker(TrackerOptions(smoothing=0.0))
    for t in range(20):
        tracks = step(tracker, [face(100 + t, 100, rng=rng, noise=2.0)])
        np.testing.assert_array_equal(tracks[0].smoothed, tracks[0].raw.points)


def test_smoothing_halves_jitter_of_static_point():
    rng = np.random.default_rng(1)
    tracker = Tracker(TrackerOptions(smoothing=0.5))
    raw, smooth = [], []
    for _ in range(200):
        tr = step(tracker, [face(300, 300, rng=rng, noise=1.5)])[0]
        raw.append(tr.raw.points)
        smooth.append(tr.smoothed)
    raw, smooth = np.array(raw[50:]), np.array(smooth[50:])
    raw_jitter = np.diff(raw, axis=0).std()
    smooth_jitter = np.diff(smooth, axis=0).std()
    assert smooth_jitter < 0.5 * raw_jitter


def test_jitter_reduction_is_resolution_independent():
    def ratio(size):
        rng = np.random.default_rng(2)
        s = KalmanSmoother(0.5)
        base = np.zeros((N, 2))
        out = [s.update(base + rng.normal(scale=size / 100, size=base.shape), size) for _ in range(150)]
        return np.diff(np.array(out[50:]), axis=0).std() / (size / 100)

    assert ratio(50.0) == pytest.approx(ratio(800.0), rel=1e-6)


def test_constant_velocity_followed_with_less_than_one_frame_lag():
    rng = np.random.default_rng(3)
    v = 4.0
    tracker = Tracker(TrackerOptions(smoothing=0.7))
    errors = []
    for t in range(120):
        det, lm = face(100 + v * t, 200, rng=rng, noise=0.5)
        tr = tracker.update([det], [lm])[0]
        assert tr.track_id == 0
        truth = face(100 + v * t, 200)[1].points
        errors.append((truth - tr.smoothed)[:, 0].mean())
    lag_frames = np.mean(errors[60:]) / v
    assert abs(lag_frames) < 1.0


def test_more_smoothing_gives_less_jitter():
    def jitter(smoothing):
        rng = np.random.default_rng(4)
        s = KalmanSmoother(smoothing)
        out = [s.update(rng.normal(size=(N, 2)), 100.0) for _ in range(150)]
        return np.diff(np.array(out[50:]), axis=0).std()

    values = [jitter(s) for s in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert all(a > b for a, b in zip(values, values[1:]))


def test_smoothing_can_change_at_runtime():
    rng = np.random.default_rng(5)
    tracker = Tracker(TrackerOptions(smoothing=0.8))
    for _ in range(10):
        tr = step(tracker, [face(100, 100, rng=rng, noise=1.0)])[0]
    assert not np.array_equal(tr.smoothed, tr.raw.points)
    tracker.smoothing = 0.0
    tr = step(tracker, [face(100, 100, rng=rng, noise=1.0)])[0]
    np.testing.assert_array_equal(tr.smoothed, tr.raw.points)


def test_filter_factory_is_pluggable():
    made = []

    class Identity:
        def __init__(self, smoothing):
            self.smoothing = smoothing
            self.last = None
            made.append(self)

        def update(self, points, scale):
            self.last = np.asarray(points) + 1.0
            return self.last

        def predict(self):
            return self.last

    tracker = Tracker(TrackerOptions(filter_factory=Identity, smoothing=0.3))
    tracks = step(tracker, [face(100, 100), face(400, 100)])
    assert len(made) == 2 and made[0].smoothing == 0.3
    np.testing.assert_allclose(tracks[0].smoothed, tracks[0].raw.points + 1.0)
    tracker.smoothing = 0.9
    assert all(m.smoothing == 0.9 for m in made)


def test_kalman_smoother_predict_extrapolates_motion():
    s = KalmanSmoother(0.5)
    base = np.zeros((3, 2))
    for t in range(60):
        s.update(base + [2.0 * t, -1.0 * t], 100.0)
    predicted = s.predict()
    np.testing.assert_allclose(predicted, base + [2.0 * 60, -1.0 * 60], atol=0.05)
    with pytest.raises(ValueError, match="before the first update"):
        KalmanSmoother().predict()
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        s.update(np.zeros((3, 3)), 100.0)


def test_update_indexed_names_the_detection_each_track_took():
    tracker = Tracker(TrackerOptions(smoothing=0.0))
    a, b = face(100, 100), face(400, 100)
    tracks, indices = tracker.update_indexed([a[0], b[0]], [a[1], b[1]])
    assert [t.track_id for t in tracks] == [0, 1] and indices == [0, 1]
    # Next frame the detector lists them the other way round: ids stay, indices follow the list.
    tracks, indices = tracker.update_indexed([b[0], a[0]], [b[1], a[1]])
    assert [t.track_id for t in tracks] == [0, 1] and indices == [1, 0]
    for track, i in zip(tracks, indices):
        assert track.raw is [b[1], a[1]][i]
