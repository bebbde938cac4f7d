import numpy as np
import pytest

from sdfl_core.draw import (
    DrawOptions,
    annotate,
    colormap_lut,
    draw_box,
    draw_graph,
    draw_groups,
    draw_landmarks,
)
from sdfl_core.schemas import W300
from sdfl_core.types import Detection, FrameResult, Landmarks, Track


def blank(h=100, w=100):
    return np.zeros((h, w, 3), np.uint8)


def changed(img):
    return img.any(axis=2)


def test_landmarks_drawn_at_points_only():
    img = blank()
    pts = np.array([[20.0, 30.0], [70.0, 60.0]])
    out = draw_landmarks(img, pts, radius=2)
    assert out is img
    assert tuple(img[30, 20]) == (0, 255, 0) and tuple(img[60, 70]) == (0, 255, 0)
    ys, xs = np.nonzero(changed(img))
    dist = np.min(np.hypot(xs[:, None] - pts[:, 0], ys[:, None] - pts[:, 1]), axis=1)
    assert dist.max() <= 3.5  # nothing drawn away from the points


def test_points_outside_image_do_not_crash():
    img = blank()
    pts = np.array([[-50.0, 10.0], [1e12, -1e12], [np.nan, 5.0], [150.0, 150.0], [50.0, 50.0]])
    draw_landmarks(img, pts, indices=True)
    mask = np.ones((5, 5), bool)
    draw_graph(img, pts, mask, weights=np.full((5, 5), 0.2))
    assert changed(img)[50, 50]


def test_groups_follow_schema_and_close():
    img = blank(200, 200)
    pts = np.full((68, 2), np.nan)
    # right eye (36..41, closed) as a hexagon-ish ring, jaw (open) left out entirely
    ring = np.array([[50, 100], [80, 80], [120, 80], [150, 100], [120, 120], [80, 120]], float)
    pts[36:42] = ring
    draw_groups(img, pts, W300)
    assert changed(img)[100, 100] == 0  # inside of the ring untouched
    assert changed(img)[110, 65]  # closing edge 41 -> 36, between (80,120) and (50,100)
    assert changed(img)[80, 100]  # edge 37 -> 38
    with pytest.raises(ValueError, match="schema/mask expects 68"):
        draw_groups(img, np.zeros((5, 2)), W300)


def test_graph_draws_only_mask_edges():
    img = blank()
    pts = np.array([[10.0, 10.0], [90.0, 10.0], [50.0, 90.0]])
    mask = np.zeros((3, 3), bool)
    mask[0, 1] = True
    np.fill_diagonal(mask, True)  # self loops are ignored
    draw_graph(img, pts, mask)
    assert changed(img)[10, 50]  # midpoint of the edge 0-1
    assert not changed(img)[50, 30]  # midpoint of the missing edge 0-2
    assert not changed(img)[50, 70]  # midpoint of the missing edge 1-2
    with pytest.raises(ValueError, match=r"mask must have shape \(3, 3\)"):
        draw_graph(img, pts, np.ones((2, 2)))


def test_weights_change_edge_colour():
    pts = np.array([[10.0, 10.0], [90.0, 10.0], [10.0, 90.0]])
    mask = np.array([[0, 1, 1], [1, 0, 0], [1, 0, 0]], bool)
    weights = np.array([[0, 0.9, 0.1], [1.0, 0, 0], [1.0, 0, 0]])
    plain = draw_graph(blank(), pts, mask)
    weighted = draw_graph(blank(), pts, mask, weights)
    assert not np.array_equal(plain, weighted)
    lut = colormap_lut("viridis")
    # Both edges have symmetric weight max(w_ij, w_ji) = 1.0 here, so they share the top colour.
    assert tuple(weighted[10, 50]) == tuple(lut[255]) == tuple(weighted[50, 10])

    weights = np.array([[0, 0.9, 0.1], [0.9, 0, 0], [0.1, 0, 0]])
    # Thickness >= 2 so the line's centre pixel carries the full, un-anti-aliased colour.
    weighted = draw_graph(blank(), pts, mask, weights, thickness=2, max_thickness=4)
    assert tuple(weighted[10, 50]) == tuple(lut[255])
    assert tuple(weighted[50, 10]) == tuple(lut[round(0.1 / 0.9 * 255)])
    # Strong edges are thicker.
    assert changed(weighted)[0:25, 50].sum() > changed(weighted)[50, 0:25].sum()


def test_box_and_annotate():
    det = Detection(box=[20, 20, 50, 40], score=0.9)
    img = draw_box(blank(), det, track_id=3)
    assert changed(img)[20, 45] and changed(img)[40, 20]
    assert not changed(img)[40, 45]  # inside the box

    n = 68
    pts = np.stack([np.linspace(20, 80, n), np.linspace(30, 70, n)], axis=1)
    lm = Landmarks(points=pts + 5, edge_weights=np.zeros((n, 0)))
    track = Track(track_id=0, detection=det, raw=lm, smoothed=pts, age=1, hits=1)
    result = FrameResult(index=0, timestamp_ms=0.0, tracks=(track,))
    nothing = DrawOptions(landmarks=False, boxes=False, ids=False)
    assert not annotate(blank(), result, W300, options=nothing).any()
    only_raw = annotate(blank(), result, W300, options=DrawOptions(landmarks=False, boxes=False, raw=True))
    assert tuple(only_raw[int(pts[10, 1] + 5), int(pts[10, 0] + 5)]) == (0, 0, 255)
    full = annotate(blank(), result, W300, mask=np.eye(n, k=1, dtype=bool), options=DrawOptions(graph=True, indices=True))
    assert changed(full).sum() > changed(only_raw).sum()
    assert not annotate(blank(), FrameResult(index=1, timestamp_ms=0.0), W300).any()


def test_bad_image_rejected():
    with pytest.raises(ValueError, match="BGR uint8"):
        draw_landmarks(np.zeros((10, 10), np.uint8), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="C-contiguous"):
        draw_landmarks(blank()[:, ::2], np.zeros((1, 2)))


def test_hollow_points_are_rings_around_an_untouched_centre():
    img = blank(40, 40)
    draw_landmarks(img, np.array([[10.0, 10.0], [30.0, 30.0]]), radius=2, hollow=np.array([True, False]))
    assert not changed(img)[10, 10] and changed(img)[10, 13]  # a ring of radius 3
    assert changed(img)[30, 30]  # a filled dot
    with pytest.raises(ValueError, match="hollow must have shape"):
        draw_landmarks(blank(), np.zeros((2, 2)), hollow=np.array([True]))


def _track_with_visibility(visibility):
    pts = np.array([[20.0, 20.0], [60.0, 60.0]])
    lm = Landmarks(points=pts, edge_weights=np.zeros((2, 0)), visibility=visibility)
    det = Detection(box=[10, 10, 60, 60], score=0.9)
    return FrameResult(index=0, timestamp_ms=0.0, tracks=(Track(0, det, lm, pts, 1, 1),))


@pytest.mark.parametrize("threshold, hollow_first", [(0.5, True), (0.05, False)])
def test_annotate_draws_points_below_the_visibility_threshold_hollow(threshold, hollow_first):
    opts = DrawOptions(boxes=False, ids=False, visibility_threshold=threshold)
    img = annotate(blank(), _track_with_visibility([0.1, 0.9]), options=opts)
    assert changed(img)[20, 20] != hollow_first
    assert changed(img)[60, 60]
    # No visibility output: every point filled, whatever the threshold.
    plain = annotate(blank(), _track_with_visibility(np.zeros(0)), options=DrawOptions(boxes=False, ids=False,
                                                                                          visibility_threshold=1.0))
    assert changed(plain)[20, 20] and changed(plain)[60, 60]


def test_visibility_check_colours_agreement_with_the_cover():
    from sdfl_core.draw import AGREE_COLOR, DISAGREE_COLOR, draw_visibility_check

    pts = np.array([[20.0, 20.0], [60.0, 60.0], [20.0, 60.0]])
    img = draw_visibility_check(blank(), pts, np.array([0.1, 0.9, 0.9]), np.array([True, False, True]))
    def tint(y, x):  # the colour's channel, anti-aliased edges included
        return int(np.argmax(img[y, x])) if img[y, x].max() > 150 else None

    green, red = int(np.argmax(AGREE_COLOR)), int(np.argmax(DISAGREE_COLOR))
    assert tint(23, 20) == green and not changed(img)[20, 20]  # covered, said covered: green ring
    assert tint(60, 60) == green  # visible, said visible: green dot
    assert tint(60, 20) == red  # covered, said visible: red dot
    assert not draw_visibility_check(blank(), pts, np.zeros(0), np.zeros(3, bool)).any()
