"""Starting a smaller refinement patch from a larger one (``train.init_partial`` with a smaller
``model.refine_patch``): the small patch is the large one's centre."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sdfl_core.model import REFINE_CHANNELS, ModelConfig, SDFLModel  # noqa: E402
from training.train import init_matching, shrink_patch  # noqa: E402

N, SIZE = 12, 64


def model(patch: int, seed: int, head: str = "graph", k: int = 1, **config) -> SDFLModel:
    """Each point joined to the next ``k`` on a ring."""
    torch.manual_seed(seed)
    cfg = ModelConfig(backbone="mobilenetv2_050", num_points=N, input_size=SIZE, head=head, refine=True,
                      refine_patch=patch, **config)
    mask = np.eye(N, dtype=bool)
    for d in range(1, k + 1):
        mask |= np.roll(np.eye(N, dtype=bool), d, axis=1)
    return SDFLModel(cfg, mask).eval()


def central(patches: torch.Tensor, large: int, small: int) -> torch.Tensor:
    """(B, N, C*small^2): the central small x small taps of (B, N, C*large^2) channel-major patches."""
    lo = (large - small) // 2
    grid = patches.unflatten(-1, (REFINE_CHANNELS, large, large))
    return grid[..., lo:lo + small, lo:lo + small].flatten(-3)


def test_the_smaller_patch_samples_the_larger_ones_central_taps():
    big, small = model(5, seed=0), model(3, seed=1)
    init_matching(small, big)
    x = torch.rand(2, 3, SIZE, SIZE)
    points = torch.rand(2, N, 2) * 0.6 + 0.2
    with torch.no_grad():
        fine = big.backbone(x)[0]
        assert torch.allclose(small.sample_patches(fine, points), central(big.sample_patches(fine, points), 5, 3),
                              atol=1e-5)


@pytest.mark.parametrize("head, layer", [("graph", "refine_in.linear.weight"), ("fc", "refine_point.0.weight")])
def test_the_patch_layer_keeps_its_weights_for_the_central_taps(head, layer):
    big, small = model(5, seed=0, head=head), model(3, seed=1, head=head)
    copied, total = init_matching(small, big)
    assert copied == total - 1  # every tensor but the graph, which stays the config's
    w_big, w_small = big.state_dict()[layer], small.state_dict()[layer]
    assert w_small.shape[1] == w_big.shape[1] - REFINE_CHANNELS * (25 - 9)
    patch_big = w_big[:, :REFINE_CHANNELS * 25]
    assert torch.equal(w_small[:, :REFINE_CHANNELS * 9], central(patch_big, 5, 3))
    assert torch.equal(w_small[:, REFINE_CHANNELS * 9:], w_big[:, REFINE_CHANNELS * 25:])  # the node features


def test_the_visibility_layer_keeps_the_node_features_and_the_central_taps():
    big, small = model(5, seed=0, visibility=True), model(3, seed=1, visibility=True)
    assert shrink_patch(small, big) == 2  # the refinement's first conv and the visibility layer
    start = big.gc_in.linear.in_features + big.config.hidden  # the first stage's node features come first
    w_big, w_small = big.vis_head[0].weight, small.vis_head[0].weight
    assert torch.equal(w_small[:, :start], w_big[:, :start])
    assert torch.equal(w_small[:, start:start + REFINE_CHANNELS * 9],
                       central(w_big[:, start:start + REFINE_CHANNELS * 25], 5, 3))
    assert torch.equal(w_small[:, start + REFINE_CHANNELS * 9:], w_big[:, start + REFINE_CHANNELS * 25:])


@pytest.mark.parametrize("pair", [(3, 5), (5, 5), (5, 4)])
def test_only_a_patch_smaller_by_whole_rings_is_shrunk(pair):
    """A larger patch, the same patch, or one whose centre is not on the other's grid: nothing to do."""
    small, big = model(pair[0], seed=1), model(pair[1], seed=0)
    before = {k: v.clone() for k, v in big.state_dict().items()}
    assert shrink_patch(big, small) == 0
    assert all(torch.equal(before[k], v) for k, v in big.state_dict().items())


def test_a_grown_graph_and_a_smaller_patch_are_both_carried_over():
    big, small = model(5, seed=0, k=1), model(3, seed=1, k=2)
    copied, total = init_matching(small, big)
    assert copied == total - 1
    w_big, w_small = big.refine_in.linear.weight, small.refine_in.linear.weight
    assert torch.equal(w_small[:, :REFINE_CHANNELS * 9], central(w_big[:, :REFINE_CHANNELS * 25], 5, 3))
    # The old edges keep their rows of the edge layer's output (training.train.grow_edges).
    old_rows = big.edge_fc[-1].weight
    new_slots = torch.zeros(N, N, dtype=torch.long)
    new_slots[small.mask] = torch.arange(int(small.mask.sum()))
    assert torch.equal(small.edge_fc[-1].weight[new_slots[big.mask]], old_rows)


def test_a_shallower_refinement_keeps_the_first_blocks_weights():
    deep, shallow = model(5, seed=0), model(3, seed=1, refine_blocks=1)
    init_matching(shallow, deep)
    kept, old = shallow.state_dict(), deep.state_dict()
    block = [key for key in kept if key.startswith("refine_blocks.")]
    assert block and all(key.startswith("refine_blocks.0.") for key in block)
    assert all(torch.equal(kept[key], old[key]) for key in block)
    assert "refine_blocks.1.conv1.linear.weight" in old  # the cut block
