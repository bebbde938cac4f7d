"""The per-face point smoother of the tracker: a constant-velocity Kalman filter over a face's N points
(filterpy), and the one smoothing knob in [0, 1] (0 = off: the measurement itself).

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


MIN_VISIBILITY = 1e-3
"""Floor of the visibility that scales a point's measurement variance, ``R = sigma^2 / max(v, floor)``: a
point the model is sure it cannot see counts 1000x less than a visible one, never nothing, so a point that
stays hidden still drifts back to the measurement as the track's uncertainty grows."""


class PointFilter(Protocol):
    """What ``TrackerOptions.filter_factory`` must build: a smoother for one face's (N, 2) points.

    ``visibility`` is the model's (N,) probability that each point is visible, or None for a model
    without that output; a filter may ignore it."""

    smoothing: float

    def update(self, points: np.ndarray, scale: float, visibility: np.ndarray | None = None) -> np.ndarray: ...

    def predict(self) -> np.ndarray: ...


def _constant_velocity(num_points: int) -> tuple[np.ndarray, np.ndarray]:
    """F and H of N independent constant-velocity points in the layout of the visibility-weighted filter:
    state rows 0..N-1 positions, N..2N-1 velocities; columns image x and y."""
    eye = np.eye(num_points)
    return np.kron(np.array([[1.0, 1.0], [0.0, 1.0]]), eye), np.hstack([eye, np.zeros_like(eye)])


class KalmanSmoother:
    """Constant-velocity Kalman smoother over the N points of one face.

    Without visibility all points share the same motion model, noise and update schedule, so their
    covariances and Kalman gains are identical: one filterpy ``KalmanFilter`` with a 4-state model
    (x, y, vx, vy) carries the N points as the N columns of its state matrix (4, N). That is exactly N
    independent filters, at the cost of one 4x4 filter plus a (4, N) matrix product per frame.

    With visibility (the first update says which) each point's measurement noise is its own,
    ``R_i = sigma^2 / max(v_i, MIN_VISIBILITY)``, given to filterpy per update (``update(z, R=...)``):
    an occluded point leans on its track, a visible one on the measurement. The points' gains then
    differ, so the filter carries them as the rows of a (2N, 2) state (positions, then velocities; x and
    y share a point's gain) with a 2N x 2N covariance that stays block-diagonal per point: still N
    independent filters, at the cost of 2N x 2N products (docs/benchmarks/notes.md has the time).

    Noise is expressed in units of ``scale`` (the face size in pixels), so a given ``smoothing`` behaves
    the same at any resolution or distance from the camera.
    """

    def __init__(self, smoothing: float = 0.5) -> None:
        self._smoothing = check_smoothing(smoothing)
        self._kf: KalmanFilter | None = None
        self._first: tuple[np.ndarray, float] = (np.zeros((0, 2)), 0.0)
        self._weighted = False
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
            self._kf.R = np.eye(self._num_points) * sigma**2
            self._kf.Q = np.kron(Q_discrete_white_noise(dim=2, dt=1.0, var=q), np.eye(self._num_points))
        else:
            self._kf.R = np.eye(2) * sigma**2
            self._kf.Q = Q_discrete_white_noise(dim=2, dt=1.0, var=q, block_size=2, order_by_dim=False)

    def _start(self, points: np.ndarray, scale: float, weighted: bool) -> None:
        """(Re)start at a first measurement. The filterpy filter itself is built when a second frame needs
        it: filterpy pulls in scipy.stats and matplotlib, which photos never need."""
        self._num_points, self._weighted = points.shape[0], weighted
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
            self._kf = KalmanFilter(dim_x=2 * n, dim_z=n)
            self._kf.F, self._kf.H = _constant_velocity(n)
            self._kf.x = np.vstack([points, np.zeros_like(points)])
            self._kf.P = np.kron(np.diag([pos_var, vel_var]), np.eye(n))
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
        return (x[: self._num_points] if self._weighted else x[:2].T).astype(np.float32)

    def predict(self) -> np.ndarray:
        """Advance the filter one frame and return the predicted (N, 2) points."""
        if self._num_points < 0:
            raise ValueError("KalmanSmoother.predict() called before the first update()")
        self._filter().predict()
        self._predicted = True
        return self._positions()

    def measurement_noise(self, visibility: np.ndarray) -> np.ndarray:
        """The (N, N) diagonal measurement covariance for this visibility at the current scale."""
        sigma2 = (MEASUREMENT_STD * self._scale) ** 2
        return np.diag(sigma2 / np.maximum(visibility, MIN_VISIBILITY))

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
            self._start(points, scale, weighted=vis is not None)
            return points.astype(np.float32)
        self._filter()
        self._set_noise(scale)
        if not self._predicted:
            self._kf.predict()
        self._predicted = False
        if self._weighted:
            self._kf.update(points, R=self.measurement_noise(vis), H=self._kf.H)
        else:
            # H is passed explicitly so filterpy takes z as the (2, N) matrix of all points' measurements
            # instead of reshaping it into a single column vector.
            self._kf.update(points.T, H=self._kf.H)
        if self._smoothing == 0.0:
            return points.astype(np.float32)
        return self._positions()
