import numpy as np
import pytest

from sdfl_core.crops import (
    CROP_SHIFT,
    crop_affine,
    image_to_units,
    invert,
    landmark_box,
    landmark_crop_affine,
    landmark_square,
    recrop_affine,
    roll_degrees,
    rotate_about,
    shifted_affines,
    square_from_box,
    transform_points,
    units_to_image,
    upright_square,
    warp,
)


def test_landmark_box_and_square():
    pts = np.array([[10, 20], [50, 30], [30, 80]], np.float32)
    np.testing.assert_allclose(landmark_box(pts), [10, 20, 40, 60])
    centre, side = square_from_box(landmark_box(pts), 1.5)
    np.testing.assert_allclose(centre, [30, 50])
    assert side == pytest.approx(90)
    with pytest.raises(ValueError, match="positive size"):
        square_from_box(np.array([0, 0, 0, 10]), 1.0)
    with pytest.raises(ValueError, match="side must be positive"):
        crop_affine(np.array([0, 0]), 0.0, 64)


@pytest.mark.parametrize("angle", [0.0, 17.0, -90.0])
def test_units_round_trip(angle):
    m = crop_affine(np.array([120.3, 80.7]), 95.0, 64, angle)
    pts = np.random.default_rng(0).uniform(50, 200, size=(3, 10, 2)).astype(np.float32)
    units = image_to_units(pts.reshape(-1, 2), m, 64).reshape(3, 10, 2)
    np.testing.assert_allclose(units_to_image(units, m, 64), pts, atol=1e-3)


@pytest.mark.parametrize("angle", [0.0, 30.0])
def test_box_centre_maps_to_crop_centre(angle):
    centre = np.array([200.25, 141.5])
    m = crop_affine(centre, 77.0, 128, angle)
    np.testing.assert_allclose(image_to_units(centre[None], m, 128), [[0.5, 0.5]], atol=1e-6)
    np.testing.assert_allclose(transform_points(centre[None], m), [[63.5, 63.5]], atol=1e-6)


def test_square_edges_map_to_crop_edges():
    centre, side, size = np.array([100.0, 100.0]), 50.0, 64
    m = crop_affine(centre, side, size)
    corners = np.array([[75, 75], [125, 125]], np.float64)  # continuous edges of the square
    np.testing.assert_allclose(image_to_units(corners, m, size), [[0, 0], [1, 1]], atol=1e-6)


def test_positive_angle_rotates_counter_clockwise():
    m = crop_affine(np.array([100.0, 100.0]), 100.0, 100)
    r = crop_affine(np.array([100.0, 100.0]), 100.0, 100, 90.0)
    right_of_centre = np.array([[120.0, 100.0]])
    np.testing.assert_allclose(transform_points(right_of_centre, m), [[69.5, 49.5]], atol=1e-5)
    # y points down in images, so counter-clockwise on screen moves a point on the right to the top.
    np.testing.assert_allclose(transform_points(right_of_centre, r), [[49.5, 29.5]], atol=1e-5)


def test_invert_composes_to_identity():
    m = crop_affine(np.array([40.0, 60.0]), 33.0, 96, 12.0)
    pts = np.array([[1.0, 2.0], [40.0, 60.0]])
    np.testing.assert_allclose(transform_points(transform_points(pts, m), invert(m)), pts, atol=1e-4)


@pytest.mark.parametrize("angle", [0.0, 25.0])
def test_marked_pixel_lands_at_transformed_point(angle):
    image = np.zeros((240, 320, 3), np.uint8)
    point = np.array([[170.0, 110.0]])
    image[110, 170] = 255
    image[109:112, 169:172] = np.maximum(image[109:112, 169:172], 200)
    m = crop_affine(np.array([160.0, 120.0]), 80.0, 160, angle)  # 2x zoom
    crop = warp(image, m, 160)
    assert crop.shape == (160, 160, 3)
    expected = transform_points(point, m)[0]
    gray = crop[..., 0].astype(np.float64)
    ys, xs = np.nonzero(gray > 0)
    weights = gray[ys, xs]
    centroid = np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()
    np.testing.assert_allclose(centroid, expected, atol=0.75)
    peak = np.unravel_index(np.argmax(gray), gray.shape)
    assert abs(peak[1] - expected[0]) <= 1.5 and abs(peak[0] - expected[1]) <= 1.5


@pytest.mark.parametrize("angle", [0.0, 30.0])
@pytest.mark.parametrize("count", [1, 5, 9])
def test_test_time_crops_move_the_window_along_the_crop_axes(angle, count):
    base = crop_affine(np.array([150.0, 90.0]), 70.0, 64, angle)
    moved = shifted_affines(base, 64, count)
    assert len(moved) == count
    np.testing.assert_array_equal(moved[0], base)
    points = np.random.default_rng(0).uniform(0, 200, size=(7, 2))
    offsets = [image_to_units(points, base, 64) - image_to_units(points, m, 64) for m in moved]
    steps = np.array([o[0] for o in offsets]) / CROP_SHIFT
    for o in offsets:  # every point moves by the same step along the crop axes: a pure shift of the window
        np.testing.assert_allclose(o, np.broadcast_to(o[0], o.shape), atol=1e-6)
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-6)
    assert len({tuple(np.round(s).astype(int)) for s in steps}) == count  # no crop twice
    np.testing.assert_allclose(steps.sum(axis=0), 0, atol=1e-6)  # symmetric: the mean crop is the crop
    if count == 5:
        assert {tuple(np.abs(np.round(s)).astype(int)) for s in steps[1:]} == {(1, 1)}


def test_test_time_crop_counts_are_checked():
    with pytest.raises(ValueError, match="must be one of 1, 5, 9, got 3"):
        shifted_affines(np.eye(2, 3), 64, 3)


# --- upright crops of tilted faces ----------------------------------------------------------------

def _tilted(points: np.ndarray, angle: float, about=(200.0, 150.0)) -> np.ndarray:
    """``points`` turned by ``angle`` degrees about ``about``, clockwise on screen (image y points down)."""
    a = np.radians(angle)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    return (np.asarray(points, np.float64) - about) @ rot.T + about


# An upright face: eyes level (points 0-1 the right eye on the image's left, 2-3 the left eye), then chin and mouth.
FACE = np.array([[160.0, 120.0], [180.0, 120.0], [220.0, 120.0], [240.0, 120.0], [200.0, 200.0], [185.0, 175.0],
                 [215.0, 175.0]])
EYES = ((0, 1), (2, 3))


@pytest.mark.parametrize("angle", [0.0, 20.0, -35.0, 90.0, 150.0])
def test_roll_is_the_eye_lines_angle(angle):
    tilted = _tilted(FACE, angle)
    assert roll_degrees(tilted[:2].mean(0), tilted[2:4].mean(0)) == pytest.approx(angle)
    assert roll_degrees(np.array([5.0, 5.0]), np.array([5.0, 5.0])) == 0.0  # no line: no roll
    assert roll_degrees(np.array([np.nan, 0.0]), np.array([1.0, 0.0])) == 0.0


@pytest.mark.parametrize("angle", [0.0, 25.0, -60.0, 120.0])
def test_an_upright_crop_sees_a_tilted_face_as_the_upright_one(angle):
    """The invariant: whatever the roll, the face lands on the same crop pixels as the upright face in its
    standard crop."""
    standard = transform_points(FACE, landmark_crop_affine(FACE, 1.4, 128))
    tilted = _tilted(FACE, angle)
    center, side, turn = landmark_square(tilted, 1.4, EYES)
    assert turn == pytest.approx(angle)
    np.testing.assert_allclose(transform_points(tilted, crop_affine(center, side, 128, turn)), standard, atol=1e-4)
    np.testing.assert_allclose(transform_points(tilted, recrop_affine(tilted, None, 1.4, 128, EYES)), standard, atol=1e-4)
    # Without eyes: the standard (axis-aligned) square of the tilted points, as before.
    box_center, box_side = square_from_box(landmark_box(tilted), 1.4)
    center, side, turn = landmark_square(tilted, 1.4)
    assert turn == 0.0 and side == pytest.approx(box_side)
    np.testing.assert_allclose(center, box_center)
    if angle % 90:  # the axis-aligned box of a tilted face is larger than the face's own
        assert box_side > 1.05 * landmark_square(tilted, 1.4, EYES)[1]


def test_upright_square_with_no_roll_is_the_standard_square():
    center, side = upright_square(FACE, 1.4, 0.0)
    box_center, box_side = square_from_box(landmark_box(FACE), 1.4)
    np.testing.assert_allclose(center, box_center)
    assert side == pytest.approx(box_side)


def test_rotate_about_turns_a_face_frame_offset_into_image_axes():
    np.testing.assert_allclose(rotate_about([0.0, 10.0], 0.0), [0.0, 10.0])
    np.testing.assert_allclose(rotate_about([0.0, 10.0], 90.0), [-10.0, 0.0], atol=1e-9)  # "down the face" on a face lying left
    np.testing.assert_allclose(rotate_about([3.0, 4.0], 37.0), _tilted([[3.0, 4.0]], 37.0, about=(0.0, 0.0))[0])
