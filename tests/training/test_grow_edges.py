"""Growing a trained graph to a larger k (``train.init_partial`` with a larger ``model.k``)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sdfl_core.model import ModelConfig, SDFLModel  # noqa: E402
from training.train import NEW_EDGE_OFFSET, graph_change, grow_edges, init_matching  # noqa: E402

N, SIZE = 12, 64


def ring_mask(k: int, step: int = 1) -> np.ndarray:
    """Each point's k neighbours are the next k points on a ring (the previous k with ``step`` -1), self-loops
    included."""
    mask = np.eye(N, dtype=bool)
    for d in range(1, k + 1):
        mask[np.arange(N), (np.arange(N) + step * d) % N] = True
    return mask


def model(k: int, seed: int, step: int = 1, **config) -> SDFLModel:
    torch.manual_seed(seed)
    cfg = ModelConfig(**{"backbone": "mobilenetv2_050", **config}, num_points=N, input_size=SIZE)
    built = SDFLModel(cfg, ring_mask(k, step)).eval()
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


def test_only_a_dynamic_graph_that_adds_edges_is_grown():
    assert graph_change(model(2, seed=0), model(2, seed=1)) == "same"
    assert graph_change(model(4, seed=0), model(2, seed=1, head="fc")) == "same"
    assert graph_change(model(4, seed=0, edge_mode="static"), model(2, seed=1)) == "same"
    assert graph_change(model(4, seed=0), model(2, seed=1)) == "grown"
    assert graph_change(model(2, seed=0), model(4, seed=1)) == "other"
    with pytest.raises(ValueError, match="adds edges"):
        grow_edges(model(2, seed=0), model(4, seed=1))


def test_another_graph_of_the_same_size_starts_its_edge_output_untrained(caplog):
    """The same number of edges on other pairs: the old rows would weigh the wrong edges, so none is copied."""
    other, source = model(2, seed=0, step=-1), model(2, seed=1)
    before = other.edge_fc[-1].weight.clone()
    assert before.shape == source.edge_fc[-1].weight.shape and graph_change(other, source) == "other"
    copied, total = init_matching(other, source)
    assert copied == total - 3  # the graph and the edge output's weight and bias
    assert torch.equal(other.edge_fc[-1].weight, before)
    assert torch.equal(other.edge_fc[0].weight, source.edge_fc[0].weight)
    assert "starts untrained" in caplog.text


def test_a_model_given_a_global_context_starts_from_one_without_it():
    """``train.init_partial`` from a model without ``model.global_context``: every shared tensor is copied and the
    new projection stays at zero, so the new model's points are its source's."""
    source = model(3, seed=0, feature_level=-2)
    torch.nn.init.normal_(source.gc_out.linear.weight, std=0.1)
    target = model(3, seed=1, feature_level=-2, global_context=True)
    copied, total = init_matching(target, source)
    assert total - copied == 5  # the context's four tensors and the mask (always the config's own)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(2, 3, SIZE, SIZE)).astype(np.float32))
    with torch.no_grad():
        torch.testing.assert_close(target(x)[0], source(x)[0])
