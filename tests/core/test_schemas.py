import numpy as np
import pytest

from sdfl_core.schemas import COFW, W300, WFLW, WFLW_TO_68, get_schema, wflw_to_68

ALL = [W300, WFLW, COFW]


def random_shape(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(10, 200, size=(n, 2)).astype(np.float32)


@pytest.mark.parametrize("schema", ALL, ids=lambda s: s.name)
def test_mirror_is_involution_permutation(schema):
    mirror = np.asarray(schema.mirror)
    assert sorted(mirror.tolist()) == list(range(schema.num_points))
    np.testing.assert_array_equal(mirror[mirror], np.arange(schema.num_points))


@pytest.mark.parametrize("schema", ALL, ids=lambda s: s.name)
def test_flip_twice_is_identity(schema):
    pts = random_shape(schema.num_points)
    np.testing.assert_allclose(schema.flip_points(schema.flip_points(pts, 240), 240), pts, atol=1e-4)


@pytest.mark.parametrize("schema", ALL, ids=lambda s: s.name)
def test_symmetric_shape_flips_onto_itself(schema):
    width = 256
    s = random_shape(schema.num_points, seed=1)
    symmetric = (s + schema.flip_points(s, width)) / 2
    np.testing.assert_allclose(schema.flip_points(symmetric, width), symmetric, atol=1e-4)


def test_flip_uses_pixel_centre_convention():
    pts = np.zeros((68, 2), np.float32)
    pts[36] = [0.0, 5.0]  # leftmost pixel centre -> rightmost pixel centre (width - 1)
    flipped = W300.flip_points(pts, 100)
    np.testing.assert_allclose(flipped[45], [99.0, 5.0])


def test_flip_keeps_batch_dims_and_input():
    pts = np.random.default_rng(2).uniform(0, 50, size=(3, 68, 2)).astype(np.float32)
    before = pts.copy()
    out = W300.flip_points(pts, 64)
    assert out.shape == (3, 68, 2)
    np.testing.assert_array_equal(pts, before)


def test_known_mirror_pairs():
    assert W300.mirror[0] == 16 and W300.mirror[36] == 45 and W300.mirror[30] == 30 and W300.mirror[57] == 57
    assert WFLW.mirror[0] == 32 and WFLW.mirror[60] == 72 and WFLW.mirror[96] == 97 and WFLW.mirror[16] == 16
    assert COFW.mirror[8] == 9 and COFW.mirror[28] == 28


def test_ocular_indices():
    assert W300.ocular == (36, 45)
    assert WFLW.ocular == (60, 72)
    assert COFW.ocular == (8, 9)


def test_ocular_distance_value():
    pts = np.zeros((68, 2))
    pts[36] = [10, 20]
    pts[45] = [13, 24]
    assert W300.ocular_distance(pts) == pytest.approx(5.0)


def test_pupil_distance_300w_hand_computed():
    pts = np.zeros((68, 2))
    pts[36:42] = [[0, 0], [2, 0], [4, 0], [6, 0], [4, 6], [2, 6]]  # mean (3, 2)
    pts[42:48] = [[20, 2], [22, 2], [24, 2], [26, 2], [24, 8], [22, 8]]  # mean (23, 4)
    assert W300.pupil_distance(pts) == pytest.approx(np.hypot(20, 2))


def test_pupil_distance_single_index_schemas():
    pts = np.zeros((98, 2))
    pts[96] = [1, 1]
    pts[97] = [4, 5]
    assert WFLW.pupil_distance(pts) == pytest.approx(5.0)


def test_wflw_to_68_indices():
    src = np.stack([np.arange(98), np.arange(98) * 10], axis=1).astype(np.float32)
    out = wflw_to_68(src)
    assert out.shape == (68, 2)
    np.testing.assert_array_equal(out[:17, 0], np.arange(0, 33, 2))
    assert out[36, 0] == 60 and out[45, 0] == 72
    assert out[39, 0] == 64 and out[42, 0] == 68
    np.testing.assert_array_equal(out[48:, 0], np.arange(76, 96))
    assert len(set(WFLW_TO_68)) == 68


def test_wflw_to_68_batched_and_rejects_wrong_shapes():
    assert wflw_to_68(np.zeros((4, 98, 2))).shape == (4, 68, 2)
    with pytest.raises(ValueError, match="98, 2"):
        wflw_to_68(np.zeros((68, 2)))
    with pytest.raises(ValueError, match="98, 2"):
        wflw_to_68(np.zeros((98, 3)))


def test_get_schema_by_name_and_count():
    assert get_schema("300w") is W300
    assert get_schema("WFLW") is WFLW
    assert get_schema("cofw") is COFW
    assert get_schema(68) is W300
    assert get_schema(np.int64(98)) is WFLW
    assert get_schema(29) is COFW


def test_get_schema_unknown():
    with pytest.raises(ValueError, match="unknown schema"):
        get_schema("helen")
    with pytest.raises(ValueError, match="no schema with 5 points"):
        get_schema(5)


def test_schema_rejects_bad_mirror():
    from sdfl_core.schemas import Schema

    with pytest.raises(ValueError, match="permutation"):
        Schema("bad", 3, (0, 0, 1), (0, 1), ((0,), (1,)))
    with pytest.raises(ValueError, match="involution"):
        Schema("bad", 3, (1, 2, 0), (0, 1), ((0,), (1,)))
