"""Growing a trained graph to a larger k (``train.init_partial`` with a larger ``model.k``)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sdfl_core.model import ModelConfig, SDFLModel  # noqa: E402
from training.train import NEW_EDGE_OFFSET, grow_edges, init_matching  # noqa: E402

N, SIZE = 12, 64


def ring_mask(k: int) -> np.ndarray:
    """Each point's k neighbours are the next k points on a ring (self-loops included)."""
    mask = np.eye(N, dtype=bool)
    for d in range(1, k + 1):
        mask[np.arange(N), (np.arange(N) + d) % N] = True
    return mask


def model(k: int, seed: int, **config) -> SDFLModel:
    torch.manual_seed(seed)
    cfg = ModelConfig(**{"backbone": "mobilenetv2_050", **config}, num_points=N, input_size=SIZE)
    built = SDFLModel(cfg, ring_mask(k)).eval()
    if hasattr(built, "edge_fc"):  # trained edges differ from edge to edge
        torch.nn.init.normal_(built.edge_fc[-1].weight, std=0.5)
        torch.nn.init.normal_(built.edge_fc[-1].bias, std=0.5)
    return built


def edge_logits(m: SDFLModel, x: torch.Tensor) -> torch.Tensor:
    """(B, N, N) edge logits, non-edges NaN."""
    with torch.no_grad():
        values = m.edge_fc(m.embed(m.backbone(x)[-1]).mean(dim=(2, 3)))
    grid = torch.full((x.shape[0], N, N), float("nan"))
    grid[:, m.mask] = values
    return grid


def test_a_grown_graph_keeps_the_old_edges_and_starts_the_new_ones_below_their_node_mean():
    small, grown = model(2, seed=0), model(4, seed=1)
    copied, total = init_matching(grown, small)
    assert copied == total - 1  # all but the graph itself, which stays the config's
    assert torch.equal(grown.mask, torch.from_numpy(ring_mask(4)))
    x = torch.rand(3, 3, SIZE, SIZE)
    old, new = edge_logits(small, x), edge_logits(grown, x)
    was = torch.from_numpy(ring_mask(2))
    added = grown.mask & ~was
    assert torch.allclose(new[:, was], old[:, was], atol=1e-5)
    row_mean = torch.nanmean(old, dim=2, keepdim=True).expand(-1, N, N)
    assert torch.allclose(new[:, added], row_mean[:, added] - NEW_EDGE_OFFSET, atol=1e-5)
    # The grown model starts next to the old one: its points move by a small part of the crop.
    with torch.no_grad():
        assert (grown(x)[0] - small(x)[0]).abs().max() < 0.05


def test_growing_does_nothing_for_the_same_graph_or_a_head_without_edge_layer():
    assert not grow_edges(model(2, seed=0), model(2, seed=1))
    assert not grow_edges(model(4, seed=0), model(2, seed=1, head="fc"))
    assert not grow_edges(model(4, seed=0, edge_mode="static"), model(2, seed=1))


def test_a_graph_that_loses_edges_is_refused():
    with pytest.raises(ValueError, match="edges this config's graph lacks"):
        grow_edges(model(2, seed=0), model(4, seed=1))
