import math

import numpy as np
import pytest
import torch

from sdfl_core.graph import uniform_laplacian
from sdfl_core.losses import LandmarkLoss, edge_occlusion_loss, soft_wing, wing


def t(*values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_soft_wing_continuous_at_w1():
    left = soft_wing(t(2.0 - 1e-7)).item()
    right = soft_wing(t(2.0 + 1e-7)).item()
    at = soft_wing(t(2.0)).item()
    assert left == pytest.approx(right, abs=1e-5)
    assert at == pytest.approx(2.0, abs=1e-5)


def test_soft_wing_linear_below_w1():
    x = t(-1.9, -0.5, 0.0, 0.3, 1.999)
    torch.testing.assert_close(soft_wing(x), x.abs())


def test_soft_wing_known_value_and_symmetry():
    b = 2 - 20 * math.log(5)
    expected = 20 * math.log(1 + 10 / 0.5) + b
    assert soft_wing(t(10.0)).item() == pytest.approx(expected, rel=1e-9)
    assert soft_wing(t(-10.0)).item() == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("fn", [soft_wing, wing])
@pytest.mark.parametrize("x0", [0.0, 1.999, 2.0, 2.001, 10.0, -10.0])
def test_finite_gradients(fn, x0):
    x = t(x0).requires_grad_()
    fn(x).sum().backward()
    assert torch.isfinite(x.grad).all()


def test_soft_wing_slope_above_w1():
    # d/dx [w2 ln(1 + x/eps)] = w2 / (eps + x); at x = 10: 20 / 10.5
    x = t(10.0).requires_grad_()
    soft_wing(x).backward()
    assert x.grad.item() == pytest.approx(20 / 10.5)


def test_wing_known_values():
    w, eps = 10.0, 2.0
    c = w - w * math.log(1 + w / eps)
    assert wing(t(1.0)).item() == pytest.approx(10 * math.log(1.5))
    assert wing(t(20.0)).item() == pytest.approx(20.0 - c)
    assert wing(t(10.0 - 1e-9)).item() == pytest.approx(wing(t(10.0 + 1e-9)).item(), abs=1e-6)
    assert wing(t(0.0)).item() == 0.0


def ring_laplacian(n=6, k=2) -> np.ndarray:
    mask = np.eye(n, dtype=bool)
    for d in range(1, k + 1):
        mask[np.arange(n), (np.arange(n) + d) % n] = True
    return uniform_laplacian(mask)


def random_points(b=3, n=6, seed=0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).uniform(0, 1, size=(b, n, 2)).astype(np.float32))


@pytest.mark.parametrize("kind", ["softwing", "wing", "l1"])
def test_total_is_absolute_plus_lambda_relative(kind):
    loss = LandmarkLoss(ring_laplacian(), kind, relative_weight=0.7)
    out = loss(random_points(seed=1), random_points(seed=2))
    assert out["relative"] > 0
    torch.testing.assert_close(out["total"], out["absolute"] + 0.7 * out["relative"])


def test_l1_absolute_value_by_hand():
    pred = torch.zeros(2, 6, 2)
    target = torch.zeros(2, 6, 2)
    target[0, 0, 0] = 0.01  # 2.56 px at the 256-px reference
    out = LandmarkLoss(None, "l1", relative_weight=0.0)(pred, target)
    assert out["absolute"].item() == pytest.approx(2.56 / 2, rel=1e-5)  # summed over points, mean over batch
    assert "relative" not in out
    assert out["total"].item() == out["absolute"].item()


def test_zero_when_pred_equals_target():
    p = random_points()
    out = LandmarkLoss(ring_laplacian())(p, p.clone())
    for value in out.values():
        assert value.item() == 0.0


def test_translation_leaves_relative_zero():
    target = random_points()
    pred = target + torch.tensor([0.05, -0.03])
    out = LandmarkLoss(ring_laplacian())(pred, target)
    assert out["relative"].item() == pytest.approx(0.0, abs=1e-3)
    assert out["absolute"].item() > 1.0


def test_gradient_flows_to_prediction():
    pred = random_points(seed=3).requires_grad_()
    LandmarkLoss(ring_laplacian())(pred, random_points(seed=4))["total"].backward()
    assert pred.grad.abs().sum() > 0


def test_shape_mismatch():
    loss = LandmarkLoss(ring_laplacian())
    with pytest.raises(ValueError, match=r"must both be \(B, N, 2\)"):
        loss(torch.zeros(2, 6, 2), torch.zeros(2, 5, 2))
    with pytest.raises(ValueError, match=r"must both be \(B, N, 2\)"):
        loss(torch.zeros(6, 2), torch.zeros(6, 2))


def test_laplacian_size_mismatch():
    with pytest.raises(ValueError, match=r"Laplacian is \(6, 6\) but the landmarks have 5 points"):
        LandmarkLoss(ring_laplacian())(torch.zeros(1, 5, 2), torch.zeros(1, 5, 2))


def test_bad_construction():
    with pytest.raises(ValueError, match="needs the graph's Laplacian"):
        LandmarkLoss(None, relative_weight=1.0)
    with pytest.raises(ValueError, match="unknown loss 'l2'"):
        LandmarkLoss(ring_laplacian(), "l2")


def test_edge_occlusion_loss_is_the_visible_rows_neighbour_share_on_occluded_nodes():
    # 3 nodes; row i's weights on (0, 1, 2). Node 2 occluded: rows 0 and 1 count, row 2 does not.
    adj = torch.tensor([[[0.5, 0.2, 0.3], [0.1, 0.5, 0.4], [0.3, 0.3, 0.4]]])
    occ = torch.tensor([[0.0, 0.0, 1.0]])
    expected = 0.3 / 0.5 + 0.4 / 0.5  # self-loops left out of each row's share
    assert edge_occlusion_loss(adj, occ).item() == pytest.approx(expected, rel=1e-4)
    # Batch mean; nothing occluded costs nothing.
    both = edge_occlusion_loss(torch.cat([adj, adj]), torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 0.0]]))
    assert both.item() == pytest.approx(expected / 2, rel=1e-4)


def test_edge_occlusion_loss_is_not_lowered_by_moving_weight_onto_self_loops():
    occ = torch.tensor([[0.0, 1.0, 0.0]])
    spread = torch.tensor([[[0.4, 0.3, 0.3], [0.3, 0.4, 0.3], [0.3, 0.3, 0.4]]])
    selfish = torch.tensor([[[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]])
    assert edge_occlusion_loss(spread, occ).item() == pytest.approx(edge_occlusion_loss(selfish, occ).item(), rel=1e-4)


def test_edge_occlusion_loss_gradient_moves_weight_from_occluded_to_visible_neighbours():
    logits = torch.zeros(1, 3, 3, requires_grad=True)
    occ = torch.tensor([[0.0, 1.0, 0.0]])
    edge_occlusion_loss(torch.softmax(logits, dim=-1), occ).backward()
    grad = logits.grad[0]
    # Visible row 0 pushes its edge into occluded node 1 down and the one into visible node 2 up.
    assert grad[0, 1] > 0 and grad[0, 2] < 0 and grad[2, 1] > 0 and grad[2, 0] < 0
    assert torch.all(grad[1] == 0)


def test_edge_occlusion_loss_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="do not match"):
        edge_occlusion_loss(torch.zeros(2, 3, 3), torch.zeros(2, 4))
