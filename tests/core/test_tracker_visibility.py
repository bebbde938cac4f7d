"""The visibility-weighted Kalman update (sdfl_core.smoothing): known values from the face model's
definition, and its behaviour when points are covered."""
import numpy as np
import pytest
from filterpy.common import Q_discrete_white_noise

from sdfl_core.smoothing import (
    INITIAL_VELOCITY_STD,
    MEASUREMENT_STD,
    OCCLUDED_NOISE,
    OFFSET_NOISE,
    PSEUDO_NOISE,
    SHARED_NOISE,
    KalmanSmoother,
)
from sdfl_core.tracker import Tracker, TrackerOptions
from sdfl_core.types import Detection, Landmarks

SCALE = 100.0


def _second_update(start: np.ndarray, measured: np.ndarray, visibility: np.ndarray, smoothing: float) -> np.ndarray:
    """The face model's posterior points after a first update at ``start`` (all visible) and a second at
    ``measured``, written out from the documented model with the Kalman equations (no filterpy). State:
    face position, its velocity, each point's offset, the offsets' velocities, all constant-velocity. The
    first update starts at the measurement: position = the mean point, offsets = the rest, velocities 0;
    variances (MEASUREMENT_STD s)^2 (1/N + SHARED_NOISE), (INITIAL_VELOCITY_STD s)^2, (MEASUREMENT_STD s)^2
    per offset and (INITIAL_VELOCITY_STD s)^2 per offset velocity. One predict (Q: white-noise
    acceleration, the offsets' scaled by OFFSET_NOISE); then R = sigma^2 (diag(v + (1 - v) OCCLUDED_NOISE)
    + SHARED_NOISE), with two exact (PSEUDO_NOISE) zero measurements of the offsets' and their velocities'
    sums."""
    n = len(start)
    sigma2 = (MEASUREMENT_STD * SCALE) ** 2
    vel2 = (INITIAL_VELOCITY_STD * SCALE) ** 2
    q = (10.0 ** (1.0 - 4.0 * smoothing)) ** 2 * sigma2
    F = np.eye(2 * n + 2)
    F[0, 1] = 1.0
    F[2:n + 2, n + 2:] = np.eye(n)
    H = np.zeros((n + 2, 2 * n + 2))
    H[:n, 0] = 1.0
    H[:n, 2:n + 2] = np.eye(n)
    H[n, 2:n + 2] = 1.0  # pseudo-measurements: offsets and their velocities sum to zero
    H[n + 1, n + 2:] = 1.0
    Q = np.zeros((2 * n + 2, 2 * n + 2))
    Q[:2, :2] = Q_discrete_white_noise(dim=2, dt=1.0, var=q)
    block = Q_discrete_white_noise(dim=2, dt=1.0, var=OFFSET_NOISE * q)
    for i in range(n):
        for r in range(2):
            for c in range(2):
                Q[2 + r * n + i, 2 + c * n + i] = block[r, c]
    P = np.diag([sigma2 * (1.0 / n + SHARED_NOISE), vel2] + [sigma2] * n + [vel2] * n)
    center = start.mean(axis=0)
    x = np.vstack([center, np.zeros(2), start - center, np.zeros_like(start)])
    x, P = F @ x, F @ P @ F.T + Q
    R = np.zeros((n + 2, n + 2))
    R[:n, :n] = sigma2 * (np.diag(visibility + (1.0 - visibility) * OCCLUDED_NOISE) + SHARED_NOISE)
    R[n:, n:] = np.eye(2) * sigma2 * PSEUDO_NOISE
    gain = P @ H.T @ np.linalg.inv(H @ P @ H.T + R)
    x = x + gain @ (np.vstack([measured, np.zeros((2, 2))]) - H @ x)
    return x[0] + x[2:n + 2]


@pytest.mark.parametrize("visibility", [1.0, 0.5, 0.1, 0.0])
def test_update_gives_the_known_posterior(visibility):
    start = np.array([[10.0, 20.0], [30.0, 40.0], [50.0, 25.0]])
    measured = start + np.array([[4.0, -2.0], [1.0, 3.0], [-2.0, 1.0]])
    vis = np.array([visibility, 1.0, 0.7])
    s = KalmanSmoother(0.5)
    s.update(start, SCALE, np.ones(3))
    out = s.update(measured, SCALE, vis)
    np.testing.assert_allclose(out, _second_update(start, measured, vis, 0.5), rtol=1e-5, atol=1e-4)


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
    # The whole face jumped, so nothing visible contradicts it: a covered measurement is only noisier
    # (OCCLUDED_NOISE), not ignored.
    assert moved[0.05] < 0.8 * moved[0.95]


def test_a_covered_point_moves_with_the_face():
    # The face moves at 2 px a frame. Then point 0 is covered, and its measurement stays where it was (the
    # model's guess under an occluder that does not move with the face). The visible points carry the
    # face's motion, so the covered point stays nearer its true place than a filter without visibility,
    # whose point follows its own measurement.
    rng = np.random.default_rng(0)
    face = rng.uniform(0, 100, size=(12, 2))
    weighted, plain = KalmanSmoother(0.5), KalmanSmoother(0.5)
    for t in range(40):
        weighted.update(face + [2.0 * t, 0.0], SCALE, np.ones(12))
        plain.update(face + [2.0 * t, 0.0], SCALE)
    stale = face[0] + [2.0 * 39, 0.0]
    for t in range(40, 46):
        truth = face + [2.0 * t, 0.0]
        measured = truth.copy()
        measured[0] = stale
        out_w = weighted.update(measured, SCALE, np.array([0.0] + [1.0] * 11))
        out_p = plain.update(measured, SCALE)
    np.testing.assert_allclose(out_w[1:], truth[1:], atol=0.5)
    assert abs(out_w[0, 0] - truth[0, 0]) < 0.6 * abs(out_p[0, 0] - truth[0, 0])


def test_all_visible_face_follows_a_moving_face_without_lag():
    rng = np.random.default_rng(1)
    face = rng.uniform(0, 100, size=(6, 2))
    s = KalmanSmoother(0.6)
    errors = []
    for t in range(80):
        truth = face + [3.0 * t, -1.0 * t]
        out = s.update(truth + rng.normal(scale=0.3, size=truth.shape), SCALE + t, np.ones(6))
        errors.append(np.abs(out - truth).mean())
    assert np.mean(errors[40:]) < 0.5
    assert s.weighted


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
    moved = {}
    for v in (1.0, 0.01):
        tracker = Tracker(TrackerOptions(smoothing=0.5))
        for _ in range(30):
            tracker.update([det], [Landmarks(pts, np.zeros((3, 0)), np.ones(3))])
        jumped = pts.copy()
        jumped[1] += [6.0, 0.0]  # only point 1's measurement moves
        [track] = tracker.update([det], [Landmarks(jumped, np.zeros((3, 0)), np.array([1.0, v, 1.0]))])
        moved[v] = track.smoothed[1, 0] - pts[1, 0]
    assert 0 <= moved[0.01] < 0.5 * moved[1.0]


@pytest.mark.parametrize("weighted", [True, False])
def test_filter_steps_run_on_one_blas_thread_and_restore_it(monkeypatch, weighted):
    """filterpy's predict and update run with NumPy's BLAS on one thread (its idle threads spin on the
    cores detection and ONNX Runtime need); the caller's BLAS threads are back afterwards."""
    from filterpy.kalman import KalmanFilter
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> set[int]:
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    if not blas_threads():
        pytest.skip("NumPy has no BLAS that threadpoolctl can see")
    seen: list[tuple[str, set[int]]] = []
    for step in ("predict", "update"):
        original = getattr(KalmanFilter, step)

        def spy(self, *args, _original=original, _step=step, **kwargs):
            seen.append((_step, blas_threads()))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(KalmanFilter, step, spy)
    rng = np.random.default_rng(0)
    points = rng.uniform(0, SCALE, (68, 2))
    visibility = np.ones(68) if weighted else None
    with threadpool_limits(limits=2, user_api="blas"):
        smoother = KalmanSmoother(0.5)
        for _ in range(3):
            smoother.update(points + rng.normal(0, 1, points.shape), SCALE, visibility)
        smoother.predict()
        assert blas_threads() == {2}
    assert {step for step, _ in seen} == {"predict", "update"}
    assert all(threads == {1} for _, threads in seen)
