"""The visibility-weighted Kalman update (sdfl_core.smoothing): known values and its equivalence to the
unweighted filter when every point is visible."""
import numpy as np
import pytest
from filterpy.common import Q_discrete_white_noise

from sdfl_core.smoothing import INITIAL_VELOCITY_STD, MEASUREMENT_STD, MIN_VISIBILITY, KalmanSmoother
from sdfl_core.tracker import Tracker, TrackerOptions
from sdfl_core.types import Detection, Landmarks

SCALE = 100.0


def _first_gain(smoothing: float, visibility: float) -> float:
    """The Kalman gain of a point's position at the second update, from the filter's definition: start
    at the measurement with variances (MEASUREMENT_STD s)^2 and (INITIAL_VELOCITY_STD s)^2, one
    constant-velocity predict step, then R = sigma^2 / max(v, floor)."""
    sigma = MEASUREMENT_STD * SCALE
    q = (10.0 ** (1.0 - 4.0 * smoothing) * sigma) ** 2
    P = np.diag([sigma**2, (INITIAL_VELOCITY_STD * SCALE) ** 2])
    F = np.array([[1.0, 1.0], [0.0, 1.0]])
    prior = F @ P @ F.T + Q_discrete_white_noise(dim=2, dt=1.0, var=q)
    return prior[0, 0] / (prior[0, 0] + sigma**2 / max(visibility, MIN_VISIBILITY))


@pytest.mark.parametrize("visibility", [1.0, 0.5, 0.1, 0.0])
def test_update_moves_a_point_by_the_known_gain(visibility):
    start = np.array([[10.0, 20.0], [30.0, 40.0]])
    step = np.array([[4.0, -2.0], [4.0, -2.0]])
    s = KalmanSmoother(0.5)
    s.update(start, SCALE, np.ones(2))
    out = s.update(start + step, SCALE, np.array([visibility, 1.0]))
    gain = _first_gain(0.5, visibility)
    np.testing.assert_allclose(out[0], start[0] + gain * step[0], rtol=1e-5)
    np.testing.assert_allclose(out[1], start[1] + _first_gain(0.5, 1.0) * step[1], rtol=1e-5)


def test_low_visibility_moves_the_point_less_than_high():
    start = np.zeros((3, 2))
    jump = np.full((3, 2), 5.0)
    moved = {}
    for v in (0.05, 0.5, 0.95):
        s = KalmanSmoother(0.5)
        for _ in range(30):  # a settled track: its velocity is known to be about zero
            s.update(start, SCALE, np.ones(3))
        moved[v] = float(np.linalg.norm(s.update(jump, SCALE, np.full(3, v))[0]))
    assert moved[0.05] < moved[0.5] < moved[0.95]
    assert moved[0.05] < 0.2 * moved[0.95]


def test_all_visible_equals_the_unweighted_filter():
    rng = np.random.default_rng(0)
    track = np.cumsum(rng.normal(size=(40, 6, 2)), axis=0) + 200
    plain, weighted = KalmanSmoother(0.6), KalmanSmoother(0.6)
    for t, pts in enumerate(track):
        scale = 100.0 + t  # a growing face rescales the covariances of both alike
        a = plain.update(pts, scale)
        b = weighted.update(pts, scale, np.ones(6))
        np.testing.assert_allclose(a, b, atol=1e-4)
    np.testing.assert_allclose(plain.predict(), weighted.predict(), atol=1e-4)
    assert weighted.weighted and not plain.weighted


def test_visibility_shape_is_checked_and_switching_restarts():
    s = KalmanSmoother(0.5)
    s.update(np.zeros((3, 2)), SCALE, np.ones(3))
    with pytest.raises(ValueError, match="visibility must be 3 finite probabilities"):
        s.update(np.zeros((3, 2)), SCALE, np.ones(4))
    out = s.update(np.ones((3, 2)), SCALE)  # no visibility any more: a fresh unweighted filter at the measurement
    np.testing.assert_array_equal(out, np.ones((3, 2)))
    assert not s.weighted


def test_tracker_passes_the_landmarks_visibility():
    det = Detection(box=[0, 0, 100, 100], score=0.9)
    pts = np.array([[30.0, 30.0], [70.0, 30.0], [50.0, 70.0]])
    tracker = Tracker(TrackerOptions(smoothing=0.5))
    for _ in range(30):
        tracker.update([det], [Landmarks(pts, np.zeros((3, 0)), np.ones(3))])
    shifted = pts + [6.0, 0.0]
    [track] = tracker.update([det], [Landmarks(shifted, np.zeros((3, 0)), np.array([1.0, 0.01, 1.0]))])
    moved = track.smoothed[:, 0] - pts[:, 0]
    assert moved[1] < 0.2 * moved[0]
    np.testing.assert_allclose(moved[0], moved[2], rtol=1e-5)
