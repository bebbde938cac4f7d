import numpy as np
import pytest

from sdfl_core.graph import (
    correlation_matrix,
    edge_list,
    load_graph,
    mine_adjacency,
    normalize_shapes,
    plot_graph,
    save_graph,
    topk_mask,
    uniform_laplacian,
)


def paired_shapes(m: int = 200, seed: int = 0) -> np.ndarray:
    """6 points: (0,1), (2,3), (4,5) move together; pairs are independent of each other."""
    rng = np.random.default_rng(seed)
    base = np.array([[0, 0], [1, 0], [5, 5], [6, 5], [10, 0], [11, 0]], np.float64)
    shapes = np.repeat(base[None], m, axis=0)
    for pair in range(3):
        motion = rng.normal(size=(m, 2))
        noise = rng.normal(scale=0.05, size=(m, 2, 2))
        shapes[:, 2 * pair: 2 * pair + 2] += motion[:, None] + noise
    return shapes


def test_k1_neighbour_is_partner():
    mask = mine_adjacency(paired_shapes(), k=1, normalize=False)
    partner = [1, 0, 3, 2, 5, 4]
    for i in range(6):
        assert set(np.flatnonzero(mask[i])) == {i, partner[i]}


def test_mask_has_diagonal_and_k_plus_1_per_row():
    shapes = paired_shapes()
    for k in (1, 2, 5):
        mask = mine_adjacency(shapes, k=k)
        assert mask.dtype == bool and mask.shape == (6, 6)
        assert mask.diagonal().all()
        np.testing.assert_array_equal(mask.sum(axis=1), k + 1)


def test_correlation_matrix_properties():
    c = correlation_matrix(paired_shapes())
    np.testing.assert_allclose(c, c.T)
    np.testing.assert_allclose(c.diagonal(), 1.0)
    assert (c >= 0).all() and (c <= 1 + 1e-12).all()
    assert c[0, 1] > 0.9 and c[0, 2] < 0.3


def test_topk_ties_are_deterministic():
    mask = topk_mask(np.ones((4, 4)), 1)
    np.testing.assert_array_equal(mask.sum(axis=1), 2)
    assert mask.diagonal().all()


def test_uniform_laplacian():
    k = 2
    mask = mine_adjacency(paired_shapes(), k=k)
    lap = uniform_laplacian(mask)
    assert lap.dtype == np.float32
    np.testing.assert_allclose(lap.sum(axis=1), 0.0, atol=1e-6)
    np.testing.assert_allclose(lap.diagonal(), 1.0)
    off = mask & ~np.eye(6, dtype=bool)
    np.testing.assert_allclose(lap[off], -1.0 / k, rtol=1e-6)
    np.testing.assert_array_equal(lap[~mask], 0.0)


def test_uniform_laplacian_rejects_isolated_point():
    with pytest.raises(ValueError, match=r"landmarks \[0, 1, 2\] have no neighbour"):
        uniform_laplacian(np.eye(3, dtype=bool))
    with pytest.raises(ValueError, match="square"):
        uniform_laplacian(np.ones((2, 3), bool))


def test_normalize_removes_translation_and_scale():
    shapes = paired_shapes(10)
    moved = shapes * 3.0 + np.array([50.0, -20.0])
    np.testing.assert_allclose(normalize_shapes(moved), normalize_shapes(shapes), atol=1e-9)


def test_error_nan():
    shapes = paired_shapes(10)
    shapes[3, 2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        mine_adjacency(shapes, k=1)


def test_error_constant_landmark():
    shapes = paired_shapes(10)
    shapes[:, 4] = [7.0, 7.0]
    with pytest.raises(ValueError, match=r"landmarks \[4\] never move"):
        mine_adjacency(shapes, k=1, normalize=False)


def test_error_all_points_together():
    shapes = paired_shapes(10)
    shapes[2] = 1.0
    with pytest.raises(ValueError, match="all its points at one location"):
        mine_adjacency(shapes, k=1)


@pytest.mark.parametrize("k", [0, -1, 6, 7])
def test_error_bad_k(k):
    with pytest.raises(ValueError, match=r"k must be in \[1, N-1\]"):
        mine_adjacency(paired_shapes(10), k=k)


@pytest.mark.parametrize("shape", [(10, 6), (10, 6, 3), (2, 10, 6, 2)])
def test_error_wrong_ndim(shape):
    with pytest.raises(ValueError, match=r"\(M, N, 2\)"):
        mine_adjacency(np.zeros(shape), k=1)


def test_error_too_few_shapes():
    with pytest.raises(ValueError, match="at least 3"):
        mine_adjacency(paired_shapes(2), k=1)


def test_edge_list_undirected():
    mask = np.eye(4, dtype=bool)
    mask[0, 1] = mask[1, 0] = mask[2, 3] = True  # 2->3 only one way
    np.testing.assert_array_equal(edge_list(mask), [[0, 1], [2, 3]])


def test_save_load_round_trip(tmp_path):
    shapes = paired_shapes()
    mask = mine_adjacency(shapes, k=2)
    mean = normalize_shapes(shapes).mean(axis=0).astype(np.float32)
    path = tmp_path / "graph.npz"
    save_graph(path, mask, mean, 2)
    m2, mean2, k2 = load_graph(path)
    np.testing.assert_array_equal(m2, mask)
    np.testing.assert_allclose(mean2, mean)
    assert k2 == 2 and m2.dtype == bool


def test_load_graph_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="graph file not found"):
        load_graph(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match="not an sdfl graph file"):
        load_graph(tmp_path / "other.npz")


def test_plot_graph_writes_png(tmp_path):
    shapes = paired_shapes()
    mask = mine_adjacency(shapes, k=1)
    out = tmp_path / "graph.png"
    plot_graph(out, normalize_shapes(shapes).mean(axis=0), mask, "test")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 1000
