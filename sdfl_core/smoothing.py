"""The per-face point smoother of the tracker: a Kalman filter (filterpy) over a face's N points, each
point constant-velocity, or with the model's per-point visibility a face-level model that carries covered
points along with the face; and the one smoothing knob in [0, 1] (0 = off: the measurement itself).

``TrackerOptions.filter_factory`` may build any :class:`PointFilter` instead.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from filterpy.kalman import KalmanFilter

MEASUREMENT_STD = 0.01
"""Assumed landmark noise as a fraction of face size; only the noise *ratio* sets the smoothing, this
fixes the units so that the filter's covariances scale with the face."""

INITIAL_VELOCITY_STD = 0.1
"""Prior uncertainty of a new track's velocity, as a fraction of face size per frame."""


def _tracking_index(smoothing: float) -> float:
    """Process-to-measurement noise ratio for a ``smoothing`` knob in [0, 1].

    Log-linear from 10 (the filter almost follows the measurement) to 1e-3 (heavy smoothing); 0.5 gives
    0.1, which cuts the frame-to-frame jitter of a static point about fourfold.
    """
    return float(10.0 ** (1.0 - 4.0 * smoothing))


def smoothing_knob(smoothing: float, off: bool = False) -> float:
    """The smoothing value for a user's ``smoothing`` and an "off" switch (``--no-smooth``): 0 when off;
    ``smoothing`` is checked either way."""
    smoothing = check_smoothing(smoothing)
    return 0.0 if off else smoothing


def check_smoothing(smoothing: float) -> float:
    smoothing = float(smoothing)
    if not 0.0 <= smoothing <= 1.0:
        raise ValueError(f"smoothing must be in [0, 1], got {smoothing}")
    return smoothing


OCCLUDED_NOISE = 4.0
"""Measurement variance of a point the model cannot see, relative to a visible point's: a point visible
with probability v has variance ``sigma^2 (v + (1 - v) OCCLUDED_NOISE)``, the mixture of the two. The
model still guesses covered points from the rest of the face, so they are noisier, not worthless."""

OFFSET_NOISE = 1.0
"""Process noise of each point's motion relative to the face (expression, head turns), relative to that
of the face's own motion."""

PSEUDO_NOISE = 1e-6
"""Variance of the face model's zero-sum pseudo-measurements, relative to a point's: exact in effect,
while keeping the innovation covariance well conditioned."""

SHARED_NOISE = 0.8
"""Measurement noise that all points of a face share (the crop moves with the detector box, so its error
moves every point alike), relative to each point's own."""

_blas_controller = None
_preload = None


def preload_filterpy():
    """Import filterpy's Kalman filter in a background thread, once, and return that thread.

    The filter is built when a track's second frame needs it, and filterpy's import pulls in scipy.stats:
    0.5-0.7 s here, which stalled a video or camera stream at its second or third frame. A video-mode
    pipeline calls this as it starts and joins the thread once its model and detector are loaded, so the
    import overlaps that loading; photos, which never smooth, never pay for it."""
    import threading

    global _preload
    if _preload is None:
        def load() -> None:
            try:
                import filterpy.common
                import filterpy.kalman  # noqa: F401
            except ImportError:  # the first filter then raises it where it is needed
                pass

        _preload = threading.Thread(target=load, name="sdfl-filterpy-import", daemon=True)
        _preload.start()
    return _preload


def one_blas_thread():
    """A context in which NumPy's BLAS runs on the calling thread alone (threadpoolctl).

    The face model's matrices are at most (2N + 2) wide, 138 for 68 points: BLAS threads gain nothing on
    them, and OpenBLAS's idle threads spin on the cores that detection and ONNX Runtime need, which
    slowed ``sdfl track`` (docs/benchmarks/notes.md has the measurement). The controller is made once,
    after filterpy has loaded NumPy's BLAS; entering the limit then costs microseconds."""
    global _blas_controller
    if _blas_controller is None:
        from threadpoolctl import ThreadpoolController

        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=1, user_api="blas")


class PointFilter(Protocol):
    """What ``TrackerOptions.filter_factory`` must build: a smoother for one face's (N, 2) points.

    ``visibility`` is the model's (N,) probability that each point is visible, or None for a model
    without that output; a filter may ignore it."""

    smoothing: float

    def update(self, points: np.ndarray, scale: float, visibility: np.ndarray | None = None) -> np.ndarray: ...

    def predict(self) -> np.ndarray: ...


def _keep_velocity(F: np.ndarray, visibility: np.ndarray) -> None:
    """Set, in the face model's transition ``F``, the share of its own velocity each offset keeps: its
    visibility. A point the model could not see has no measured motion of its own, so it moves with the
    face instead of coasting."""
    n = len(visibility)
    F[n + 2 :, n + 2 :][np.diag_indices(n)] = np.clip(visibility, 0.0, 1.0)


def _face_model(num_points: int, visibility: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """F and H of the visibility-weighted filter's face model. State rows: 0 the face's position, 1 its
    velocity, 2..N+1 each point's offset from that position, N+2..2N+1 the offsets' velocities (all
    constant-velocity); columns image x and y. A point is measured as position + its offset. With
    ``visibility`` (the last frame's), F is set by :func:`_keep_velocity`.
    """
    n = num_points
    F = np.eye(2 * n + 2)
    F[0, 1] = 1.0
    F[2 : n + 2, n + 2 :] = np.eye(n)
    if visibility is not None:
        _keep_velocity(F, visibility)
    H = np.zeros((n + 2, 2 * n + 2))
    H[:n, 0] = 1.0
    H[:n, 2 : n + 2] = np.eye(n)
    # Two exact pseudo-measurements of 0: the offsets and their velocities sum to zero, so the face's
    # position and velocity are the points' mean ones (without them the split is arbitrary, and a covered
    # point that drops its own velocity would drift with that arbitrary part).
    H[n, 2 : n + 2] = 1.0
    H[n + 1, n + 2 :] = 1.0
    return F, H


class KalmanSmoother:
    """Constant-velocity Kalman smoother over the N points of one face.

    Without visibility all points share the same motion model, noise and update schedule, so their
    covariances and Kalman gains are identical: one filterpy ``KalmanFilter`` with a 4-state model
    (x, y, vx, vy) carries the N points as the N columns of its state matrix (4, N). That is exactly N
    independent filters, at the cost of one 4x4 filter plus a (4, N) matrix product per frame.

    With visibility (the first update says which) an occluded point must lean on something better than
    its own coasting velocity, which drifts within a few frames. So the filter tracks the face: a
    constant-velocity face position plus a constant-velocity offset per point (``OFFSET_NOISE``), with
    measurement noise shared by all points (``SHARED_NOISE``) on top of each point's own. Each point's
    own noise grows as its visibility falls (``OCCLUDED_NOISE``), given to filterpy per update
    (``update(z, R=...)``), and a point keeps only the visible share of its own velocity from one frame
    to the next (the filter's transition ``F``, set from each frame's visibility): a covered point then moves with the face
    as the visible points move it, while a visible point follows its measurement much as without
    visibility. The state is (2N + 2, 2) (x and y share the model); one filter with a (2N + 2)^2
    covariance.

    Noise is expressed in units of ``scale`` (the face size in pixels), so a given ``smoothing`` behaves
    the same at any resolution or distance from the camera.
    """

    def __init__(self, smoothing: float = 0.5) -> None:
        self._smoothing = check_smoothing(smoothing)
        self._kf: KalmanFilter | None = None
        self._first: tuple[np.ndarray, float] = (np.zeros((0, 2)), 0.0)
        self._weighted = False
        self._visibility: np.ndarray | None = None
        self._scale = 0.0
        self._num_points = -1
        self._predicted = False

    @property
    def smoothing(self) -> float:
        return self._smoothing

    @smoothing.setter
    def smoothing(self, value: float) -> None:
        self._smoothing = check_smoothing(value)
        if self._kf is not None and self._scale > 0:
            self._set_noise(self._scale)

    @property
    def num_points(self) -> int:
        """Points the filter is tracking, -1 before the first update."""
        return self._num_points

    @property
    def weighted(self) -> bool:
        """Whether measurements are weighted by visibility (the filter was started with visibility)."""
        return self._weighted

    def _set_noise(self, scale: float) -> None:
        if self._scale > 0 and scale != self._scale:
            # Keep the covariance in the same face-relative units, so the gain does not jump when the
            # face box changes size.
            self._kf.P = self._kf.P * (scale / self._scale) ** 2
        self._scale = scale
        from filterpy.common import (
            Q_discrete_white_noise,  # imported on first use: a second of start-up
        )

        sigma = MEASUREMENT_STD * scale
        q = (_tracking_index(self._smoothing) * sigma) ** 2
        if self._weighted:
            n = self._num_points
            self._kf.R = self.measurement_noise(np.ones(n), scale)
            self._kf.Q = np.zeros((2 * n + 2, 2 * n + 2))
            self._kf.Q[:2, :2] = Q_discrete_white_noise(dim=2, dt=1.0, var=q)
            # Each offset's (position, velocity) block, rows 2..N+1 and N+2..2N+1.
            self._kf.Q[2:, 2:] = np.kron(Q_discrete_white_noise(dim=2, dt=1.0, var=OFFSET_NOISE * q), np.eye(n))
        else:
            self._kf.R = np.eye(2) * sigma**2
            self._kf.Q = Q_discrete_white_noise(dim=2, dt=1.0, var=q, block_size=2, order_by_dim=False)

    def _start(self, points: np.ndarray, scale: float, visibility: np.ndarray | None) -> None:
        """(Re)start at a first measurement. The filterpy filter itself is built when a second frame needs
        it: filterpy pulls in scipy.stats and matplotlib, which photos never need."""
        self._num_points, self._weighted = points.shape[0], visibility is not None
        self._visibility = visibility
        self._kf = None
        self._first = (points.copy(), scale)
        self._scale = 0.0
        self._predicted = False

    def _filter(self) -> KalmanFilter:
        if self._kf is not None:
            return self._kf
        from filterpy.kalman import KalmanFilter

        points, scale = self._first
        n = self._num_points
        pos_var = (MEASUREMENT_STD * scale) ** 2
        vel_var = (INITIAL_VELOCITY_STD * scale) ** 2
        if self._weighted:
            self._kf = KalmanFilter(dim_x=2 * n + 2, dim_z=n + 2)
            self._kf.F, self._kf.H = _face_model(n, self._visibility)
            center = points.mean(axis=0)
            self._kf.x = np.vstack([center, np.zeros(2), points - center, np.zeros_like(points)])
            self._kf.P = np.diag([pos_var * (1.0 / n + SHARED_NOISE), vel_var] + [pos_var] * n + [vel_var] * n)
        else:
            self._kf = KalmanFilter(dim_x=4, dim_z=2)
            self._kf.F = np.array([[1, 0, 1, 0], [0, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1]], np.float64)
            self._kf.H = np.eye(2, 4)
            self._kf.x = np.vstack([points.T, np.zeros_like(points.T)])
            self._kf.P = np.diag([pos_var, pos_var, vel_var, vel_var])
        self._scale = 0.0
        self._set_noise(scale)
        return self._kf

    def _positions(self) -> np.ndarray:
        x = self._kf.x
        n = self._num_points
        return (x[0] + x[2 : n + 2] if self._weighted else x[:2].T).astype(np.float32)

    def predict(self) -> np.ndarray:
        """Advance the filter one frame and return the predicted (N, 2) points."""
        if self._num_points < 0:
            raise ValueError("KalmanSmoother.predict() called before the first update()")
        kf = self._filter()
        with one_blas_thread():
            kf.predict()
        self._predicted = True
        return self._positions()

    def measurement_noise(self, visibility: np.ndarray, scale: float | None = None) -> np.ndarray:
        """The (N + 2, N + 2) measurement covariance of the face model for this visibility (at ``scale``,
        default the current one): each point's own noise, growing as its visibility falls, plus the noise
        all points share; then the two zero-sum pseudo-measurements, exact up to a tiny variance."""
        sigma2 = (MEASUREMENT_STD * (self._scale if scale is None else scale)) ** 2
        own = np.clip(visibility, 0.0, 1.0)
        n = len(own)
        R = np.zeros((n + 2, n + 2))
        R[:n, :n] = sigma2 * (np.diag(own + (1.0 - own) * OCCLUDED_NOISE) + SHARED_NOISE)
        R[n:, n:] = np.eye(2) * sigma2 * PSEUDO_NOISE
        return R

    def update(self, points: np.ndarray, scale: float, visibility: np.ndarray | None = None) -> np.ndarray:
        """Correct the filter with this frame's (N, 2) measurement and return the smoothed points.

        ``visibility`` is the (N,) probability that each point is visible (None or empty: no weighting).
        Runs the predict step itself unless ``predict()`` was already called for this frame. The first
        update, or one with a different point count or with visibility where there was none (or the
        reverse), (re)starts the filter at the measurement.
        """
        points = np.asarray(points, np.float64)
        if points.ndim != 2 or points.shape[1] != 2:
            raise ValueError(f"points must have shape (N, 2), got {points.shape}")
        scale = float(scale)
        if not np.isfinite(scale) or scale <= 0:
            raise ValueError(f"scale must be a positive face size in pixels, got {scale}")
        if not np.isfinite(points).all():
            raise ValueError("points contain NaN or infinite coordinates")
        vis = None if visibility is None else np.asarray(visibility, np.float64).ravel()
        if vis is not None and vis.size == 0:
            vis = None
        if vis is not None and (vis.shape != (points.shape[0],) or not np.isfinite(vis).all()):
            raise ValueError(f"visibility must be {points.shape[0]} finite probabilities, got shape {vis.shape}")
        if points.shape[0] != self._num_points or (vis is not None) != self._weighted:
            self._start(points, scale, vis)
            return points.astype(np.float32)
        self._filter()
        self._set_noise(scale)
        with one_blas_thread():
            if not self._predicted:
                self._kf.predict()
            self._predicted = False
            if self._weighted:
                self._kf.update(np.vstack([points, np.zeros((2, 2))]), R=self.measurement_noise(vis), H=self._kf.H)
                _keep_velocity(self._kf.F, vis)  # the next predict step's transition
            else:
                # H is passed explicitly so filterpy takes z as the (2, N) matrix of all points' measurements
                # instead of reshaping it into a single column vector.
                self._kf.update(points.T, H=self._kf.H)
        if self._smoothing == 0.0:
            return points.astype(np.float32)
        return self._positions()
