"""Occluder geometry and the latest-frame-wins queue (no window needed)."""
from __future__ import annotations

import numpy as np
import pytest

from sdfl_core.occluders import (
    Occluder,
    apply_occluders,
    cover_occluder,
    random_occluder,
)
from sdfl_core.sources import Frame


def test_apply_occluders_fills_only_the_rectangle_and_copies():
    image = np.full((40, 60, 3), 200, np.uint8)
    out = apply_occluders(image, [Occluder(10, 5, 20, 10)], color=(1, 2, 3))
    assert (image == 200).all(), "the source frame must not be changed"
    inside = np.zeros((40, 60), bool)
    inside[5:15, 10:30] = True
    assert (out[inside] == (1, 2, 3)).all()
    assert (out[~inside] == 200).all()


def test_occluder_is_clipped_to_the_image():
    out = apply_occluders(np.zeros((10, 10, 3), np.uint8), [Occluder(-5, -5, 8, 100)], color=(9, 9, 9))
    assert (out[:, :3] == 9).all() and (out[:, 3:] == 0).all()


@pytest.mark.parametrize("side, expected", [("left", (10, 20, 25, 40)), ("right", (35, 20, 25, 40)),
                                            ("top", (10, 20, 50, 20)), ("bottom", (10, 40, 50, 20))])
def test_cover_occluder_covers_the_fraction_from_a_side(side, expected):
    occ = cover_occluder(np.array([10, 20, 50, 40]), 0.5, side)
    assert (occ.x, occ.y, occ.w, occ.h) == pytest.approx(expected)


def test_cover_occluder_zero_and_bad_values():
    assert cover_occluder(np.array([0, 0, 10, 10]), 0.0) is None
    full = cover_occluder(np.array([0, 0, 10, 10]), 1.0, "top")
    assert (full.w, full.h) == (10, 10)
    with pytest.raises(ValueError, match="cover side"):
        cover_occluder(np.array([0, 0, 10, 10]), 0.5, "middle")
    with pytest.raises(ValueError, match="fraction"):
        cover_occluder(np.array([0, 0, 10, 10]), 1.5)
    with pytest.raises(ValueError, match="positive"):
        Occluder(0, 0, 0, 5)


def test_random_occluder_lies_inside_the_face_box():
    rng = np.random.default_rng(0)
    box = np.array([100, 50, 80, 120])
    for _ in range(20):
        occ = random_occluder(rng, box, (640, 480))
        assert occ.x >= 100 and occ.x + occ.w <= 180 + 1e-6
        assert occ.y >= 50 and occ.y + occ.h <= 170 + 1e-6
        assert 0.25 * 80 <= occ.w <= 0.5 * 80


def test_latest_frame_queue_keeps_the_newest_and_counts_drops():
    from app.capture import LatestFrameQueue

    q = LatestFrameQueue()
    assert q.idle and q.take() is None
    frames = [Frame(i, i * 40.0, np.zeros((2, 2, 3), np.uint8)) for i in range(3)]
    for f in frames:
        q.put(f, generation=7)
    assert q.dropped == 2 and not q.idle
    frame, generation = q.take()
    assert frame.index == 2 and generation == 7
    assert not q.idle, "busy until the consumer calls done()"
    q.done()
    assert q.idle
