import functools
import math

import numpy as np
import pytest
import torch
from torch import nn

from sdfl_core.model import GATE_START, GraphConv, ModelConfig, SDFLModel, build_model, grid_patch_sample, masked_softmax, patch_window

SIZE = 64
TINY = "mobilenetv2_050"


def ring_mask(n: int, k: int) -> np.ndarray:
    """Each point's k neighbours are the next k points on a ring (self-loops included)."""
    mask = np.eye(n, dtype=bool)
    for d in range(1, k + 1):
        mask[np.arange(n), (np.arange(n) + d) % n] = True
    return mask


def make(n=68, k=3, backbone=TINY, **kw) -> SDFLModel:
    torch.manual_seed(0)
    return build_model(ModelConfig(backbone=backbone, num_points=n, input_size=SIZE, **kw), ring_mask(n, k))


@functools.cache
def shared(n=68, k=3, backbone=TINY, head="graph", edge_mode="dynamic") -> SDFLModel:
    """An eval-mode model that tests must not modify (building models dominates the test time)."""
    return make(n, k, backbone, head=head, edge_mode=edge_mode).eval()


def images(b=2, seed=0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).normal(size=(b, 3, SIZE, SIZE)).astype(np.float32))


@pytest.mark.parametrize("n, backbone", [(68, TINY), (98, TINY), (29, TINY), (68, "resnet10t")])
def test_output_shapes(backbone, n):
    x = images(3)
    for head, wdim in (("graph", n), ("fc", 0)):
        model = shared(n, backbone=backbone, head=head)
        with torch.no_grad():
            coords, weights = model(x)
        assert coords.shape == (3, n, 2)
        assert weights.shape == (3, n, wdim)
        assert torch.isfinite(coords).all()


@pytest.mark.parametrize("mode", ["dynamic", "static", "binary"])
def test_masked_weights_zero_off_mask_rows_sum_to_one(mode):
    k = 4
    if mode == "static":
        model = make(k=k, edge_mode=mode).eval()
        with torch.no_grad():
            model.edge_logits.normal_()
    else:
        model = shared(k=k, edge_mode=mode)
    with torch.no_grad():
        _, w = model(images())
    mask = torch.from_numpy(ring_mask(68, k))
    assert (w[:, ~mask] == 0).all()
    assert (w[:, mask] > 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 68), atol=1e-5, rtol=0)


def test_binary_is_uniform():
    k = 3
    model = shared(k=k, edge_mode="binary")
    with torch.no_grad():
        _, w = model(images())
    mask = torch.from_numpy(ring_mask(68, k))
    torch.testing.assert_close(w[:, mask], torch.full_like(w[:, mask], 1 / (k + 1)))


def test_dynamic_weights_depend_on_input_static_do_not():
    a, b = images(1, seed=1), images(1, seed=2)
    dyn = shared()
    sta = make(edge_mode="static").eval()
    with torch.no_grad():
        sta.edge_logits.normal_()
        assert (dyn(a)[1] - dyn(b)[1]).abs().max() > 1e-6
        torch.testing.assert_close(sta(a)[1], sta(b)[1], atol=0, rtol=0)


def test_masked_softmax_irregular_mask():
    mask = torch.tensor([[1, 1, 0], [0, 1, 0], [1, 1, 1]], dtype=torch.bool)
    w = masked_softmax(torch.zeros(1, 3, 3), mask)
    torch.testing.assert_close(w[0], torch.tensor([[0.5, 0.5, 0], [0, 1, 0], [1 / 3, 1 / 3, 1 / 3]]))


@pytest.mark.parametrize("head", ["graph", "fc"])
def test_fresh_model_starts_at_the_mean_shape(head):
    model = make(head=head).eval()
    coords, _ = model(images())
    torch.testing.assert_close(coords, model.mean_shape.expand_as(coords))


@pytest.mark.parametrize("head", ["graph", "fc"])
def test_gradients_reach_backbone(head):
    model = make(head=head).train()
    # The output layer starts at zero, so the first step only moves it; the second reaches the backbone.
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(images())[0].square().sum().backward()
    opt.step()
    opt.zero_grad()
    coords, weights = model(images())
    (coords.square().sum() + weights.sum()).backward()
    first_conv = next(m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d))
    assert first_conv.weight.grad is not None
    assert first_conv.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("head", ["graph", "fc"])
def test_eval_is_deterministic(head):
    model = shared(head=head)
    x = images()
    with torch.no_grad():
        a, b = model(x), model(x)
    for t, u in zip(a, b):
        torch.testing.assert_close(t, u, atol=0, rtol=0)


def test_predictions_are_offsets_from_mean_shape():
    mean = np.random.default_rng(0).uniform(0.2, 0.8, size=(68, 2)).astype(np.float32)
    for head in ("graph", "fc"):
        model = build_model(ModelConfig(backbone=TINY, input_size=SIZE, head=head), ring_mask(68, 3), mean).eval()
        last = model.gc_out.linear if head == "graph" else model.fc[-1]
        with torch.no_grad():
            last.weight.zero_()
            if last.bias is not None:
                last.bias.zero_()
            coords, _ = model(images())
        torch.testing.assert_close(coords, torch.from_numpy(mean).expand(2, -1, -1))


@pytest.mark.parametrize("backbone", [TINY, "resnet10t"])
def test_graph_head_much_smaller_than_fc(backbone):
    # The FC head grows with the feature map (channels x side^2); the graph head barely does.
    cfg = dict(backbone=backbone, input_size=128)
    graph = SDFLModel(ModelConfig(head="graph", **cfg), ring_mask(68, 3)).head_parameters()
    fc = SDFLModel(ModelConfig(head="fc", **cfg), ring_mask(68, 3)).head_parameters()
    assert fc >= 2 * graph, (fc, graph)


@pytest.mark.parametrize("k", [1, 67])
def test_any_k(k):
    model = shared(k=k)
    with torch.no_grad():
        _, w = model(images(1))
    assert ((w[0] > 0).sum(-1) == k + 1).all()


def test_bad_config():
    with pytest.raises(ValueError, match="unknown timm backbone"):
        SDFLModel(ModelConfig(backbone="not_a_backbone"), ring_mask(68, 3))
    with pytest.raises(ValueError, match="head must be one of"):
        ModelConfig(backbone=TINY, head="mlp")
    with pytest.raises(ValueError, match="edge_mode must be one of"):
        ModelConfig(backbone=TINY, edge_mode="learned")
    with pytest.raises(ValueError, match="input_size"):
        ModelConfig(backbone=TINY, input_size=16)
    with pytest.raises(ValueError, match="num_points"):
        ModelConfig(backbone=TINY, num_points=1)
    with pytest.raises(ValueError, match="feature_level"):
        ModelConfig(backbone=TINY, feature_level=0)


def test_bad_mask_and_mean_shape():
    cfg = ModelConfig(backbone=TINY, input_size=SIZE)
    with pytest.raises(ValueError, match=r"adjacency mask must be \(68, 68\)"):
        SDFLModel(cfg, ring_mask(98, 3))
    no_self = ring_mask(68, 3)
    np.fill_diagonal(no_self, False)
    with pytest.raises(ValueError, match="self-loops"):
        SDFLModel(cfg, no_self)
    with pytest.raises(ValueError, match=r"mean shape must be \(68, 2\)"):
        SDFLModel(cfg, ring_mask(68, 3), np.zeros((68, 3)))


@pytest.mark.parametrize("shape", [(3, SIZE, SIZE), (1, 1, SIZE, SIZE), (1, 3, SIZE + 32, SIZE + 32), (1, 3, SIZE, 32)])
def test_wrong_input_shape(shape):
    model = shared()
    with pytest.raises(ValueError, match=r"expected a \(B, 3, 64, 64\) image batch"):
        model(torch.zeros(shape))


def test_config_to_dict_round_trip():
    cfg = ModelConfig(backbone=TINY, num_points=29, input_size=SIZE, head="fc", edge_mode="static")
    assert ModelConfig(**cfg.to_dict()) == cfg


@pytest.mark.parametrize("head", ["graph", "fc"])
def test_stride_16_features_give_a_finer_map_and_drop_the_unused_stages(head):
    deep = shared(head=head)
    mid = make(head=head, feature_level=-2).eval()
    assert deep.feature_side == SIZE // 32 and mid.feature_side == SIZE // 16
    # mobilenetv2 reaches stride 16 after 5 of its 7 blocks; the last two would only cost time.
    assert len(mid.backbone.blocks) == 5 and len(deep.backbone.blocks) == 7
    with torch.no_grad():
        coords, weights = mid(images(2))
    assert coords.shape == (2, 68, 2) and weights.shape == (2, 68, 68 if head == "graph" else 0)
    # Every remaining backbone weight is trained: each one gets a gradient.
    mid.train()
    coords, _ = mid(images(2))
    coords.sum().backward()
    assert all(p.grad is not None for p in mid.backbone.parameters())


@pytest.mark.parametrize("head", ["graph", "fc"])
def test_head_side_resamples_the_map_so_a_head_runs_at_another_input_size(head):
    base = make(head=head, feature_level=-2, refine=True, visibility=True).eval()  # 64 px: a 4 x 4 map
    assert base.feature_side == 4 and not base.resample_map
    torch.manual_seed(0)
    cfg = ModelConfig(backbone=TINY, num_points=68, input_size=48, head=head, feature_level=-2, refine=True,
                      visibility=True, head_side=4)  # 48 px: a 3 x 3 map, read as 4 x 4
    small = build_model(cfg, ring_mask(68, 3)).eval()
    assert small.feature_side == 4 and small.resample_map
    # The head is sized as at 64 px, so every weight of the 64 px model loads.
    small.load_state_dict(base.state_dict())
    x = images(2)
    with torch.no_grad():
        coords, weights, vis = small.forward_with_visibility(torch.nn.functional.interpolate(x, size=(48, 48)))
    assert coords.shape == (2, 68, 2) and vis.shape == (2, 68) and torch.isfinite(coords).all()
    assert weights.shape == (2, 68, 68 if head == "graph" else 0)
    # Without head_side the 48 px model's head is sized for its own 3 x 3 map, and the weights do not fit.
    plain = build_model(ModelConfig(**{**cfg.to_dict(), "head_side": 0}), ring_mask(68, 3))
    assert plain.feature_side == 3
    with pytest.raises(RuntimeError, match="size mismatch"):
        plain.load_state_dict(base.state_dict())
    # head_side equal to the map's own side changes nothing.
    same = build_model(ModelConfig(**{**base.config.to_dict(), "head_side": 4}), ring_mask(68, 3)).eval()
    same.load_state_dict(base.state_dict())
    assert not same.resample_map
    with torch.no_grad():
        torch.testing.assert_close(same(x)[0], base(x)[0])
    with pytest.raises(ValueError, match="head_side"):
        ModelConfig(backbone=TINY, head_side=-1)


def test_node_attention_starts_as_the_plain_map_to_node_and_learns_a_gate():
    plain = make(head="graph", feature_level=-2).eval()
    gated = make(head="graph", feature_level=-2, node_attention=True).eval()
    shared_keys = plain.state_dict().keys()
    assert set(gated.state_dict()) - set(shared_keys) == {"node_attn.weight", "node_attn.bias"}
    gated.load_state_dict({**gated.state_dict(), **plain.state_dict()})
    torch.nn.init.normal_(plain.gc_out.linear.weight, 0, 0.1)
    gated.gc_out.linear.weight.data.copy_(plain.gc_out.linear.weight.data)
    x = images(2)
    with torch.no_grad():
        torch.testing.assert_close(gated(x)[0], plain(x)[0])  # zero-initialised gate: uniform, a no-op
        torch.nn.init.normal_(gated.node_attn.weight, 0, 1.0)
        assert not torch.allclose(gated(x)[0], plain(x)[0])
    gated.train()
    coords, _ = gated(x)
    coords.sum().backward()
    assert gated.node_attn.weight.grad is not None and gated.node_attn.weight.grad.abs().sum() > 0


def test_attention_prior_starts_as_the_model_without_it_and_moves_each_node_by_position():
    plain = make(feature_level=-2, node_attention=True).eval()
    prior = make(feature_level=-2, node_attention=True, attention_prior=True).eval()
    assert set(prior.state_dict()) - set(plain.state_dict()) == {"attn_prior"}
    assert prior.attn_prior.shape == (68, prior.feature_side ** 2)
    prior.load_state_dict({**prior.state_dict(), **plain.state_dict()})
    for model in (plain, prior):
        torch.nn.init.normal_(model.node_attn.weight, 0, 1.0)
    prior.node_attn.weight.data.copy_(plain.node_attn.weight.data)
    torch.nn.init.normal_(plain.gc_out.linear.weight, 0, 0.1)
    prior.gc_out.linear.weight.data.copy_(plain.gc_out.linear.weight.data)
    x = images(2)
    with torch.no_grad():
        torch.testing.assert_close(prior(x)[0], plain(x)[0])  # zero-initialised prior: the plain attention
        prior.attn_prior[:, 0] = 5.0  # every node drawn to the first cell
        assert not torch.allclose(prior(x)[0], plain(x)[0])
    prior.train()
    prior(x)[0].sum().backward()
    assert prior.attn_prior.grad is not None and prior.attn_prior.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="attention_prior needs node_attention"):
        ModelConfig(backbone=TINY, feature_level=-2, attention_prior=True)


def test_node_attention_needs_the_graph_head():
    with pytest.raises(ValueError, match="node_attention needs the graph head"):
        ModelConfig(backbone=TINY, head="fc", node_attention=True)


def test_global_context_starts_as_the_model_without_it_and_then_reaches_every_node():
    plain = make(feature_level=-2, node_attention=True, refine=True).eval()
    ctx = make(feature_level=-2, node_attention=True, refine=True, global_context=True).eval()
    assert set(ctx.state_dict()) - set(plain.state_dict()) == {
        "context.1.weight", "context.1.bias", "context.3.weight", "context.3.bias"}
    ctx.load_state_dict({**ctx.state_dict(), **plain.state_dict()})
    torch.nn.init.normal_(plain.gc_out.linear.weight, 0, 0.1)
    ctx.gc_out.linear.weight.data.copy_(plain.gc_out.linear.weight.data)
    x = images(2)
    with torch.no_grad():
        torch.testing.assert_close(ctx(x)[0], plain(x)[0])  # zero-initialised projection: the plain model
        context = ctx.node_context(ctx.backbone(x)[-1])
        assert context.shape == (2, 68, ctx.config.hidden) and not context.any()
        assert plain.node_context(plain.backbone(x)[-1]) is None
        torch.nn.init.normal_(ctx.context[-1].weight, 0, 0.1)
        context = ctx.node_context(ctx.backbone(x)[-1])
        # Every node gets its own projection of one code of the whole map.
        assert not torch.allclose(context[:, 0], context[:, 1])
        assert not torch.allclose(ctx(x)[0], plain(x)[0])
    torch.nn.init.zeros_(ctx.context[-1].weight)
    ctx.train()
    ctx(x)[0].sum().backward()
    assert ctx.context[-1].weight.grad.abs().sum() > 0  # it learns from the zero start


def test_context_width_sets_the_code_between_the_map_and_the_nodes_and_defaults_to_fc_hidden():
    wide = make(feature_level=-2, global_context=True, fc_hidden=48)
    narrow = make(feature_level=-2, global_context=True, fc_hidden=48, context_width=8)
    flat = wide.context[1].in_features
    assert wide.context[1].weight.shape == (48, flat)  # 0: fc_hidden, as the first context models were built
    assert narrow.context[1].weight.shape == (8, flat) and narrow.context[3].weight.shape == (68 * narrow.config.hidden, 8)
    with torch.no_grad():
        assert narrow.node_context(narrow.backbone(images(2))[-1]).shape == (2, 68, narrow.config.hidden)
    with pytest.raises(ValueError, match="context_width sets the width of model.global_context's code"):
        ModelConfig(backbone=TINY, context_width=8)
    with pytest.raises(ValueError, match="context_width must be 0"):
        ModelConfig(backbone=TINY, global_context=True, context_width=-1)


def test_global_context_needs_the_graph_head_and_graph_regress_its_context():
    with pytest.raises(ValueError, match="global_context needs the graph head"):
        ModelConfig(backbone=TINY, head="fc", global_context=True)
    model = make(feature_level=-2, global_context=True).eval()
    x = images(1)
    with torch.no_grad():
        feats = model.backbone(x)[-1]
        h = model.embed(feats)
        with pytest.raises(ValueError, match="pass the nodes' context"):
            model.graph_regress(h, model.edge_weights(h))
        torch.testing.assert_close(model.graph_regress(h, model.edge_weights(h), model.node_context(feats)), model(x)[0])


def test_fc_norm_adds_batchnorm_to_the_fc_head_only():
    from sdfl_core.model import ModelConfig, SDFLModel

    mask = np.eye(68, dtype=bool)
    plain = SDFLModel(ModelConfig(backbone="mobilenetv2_050", input_size=64, head="fc"), mask)
    normed = SDFLModel(ModelConfig(backbone="mobilenetv2_050", input_size=64, head="fc", fc_norm=True), mask)
    assert not any(isinstance(m, torch.nn.BatchNorm1d) for m in plain.fc)
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in normed.fc) == 1
    normed.eval()
    with torch.no_grad():
        coords, edges = normed(torch.zeros(2, 3, 64, 64))
    assert coords.shape == (2, 68, 2) and edges.shape == (2, 68, 0)
    with pytest.raises(ValueError, match="fc_norm needs the FC head"):
        ModelConfig(backbone="mobilenetv2_050", head="graph", fc_norm=True)


@pytest.mark.parametrize("head", ["graph", "fc"])
def test_refine_starts_as_the_identity_and_then_moves_the_first_stage_points(head):
    model = make(head=head, feature_level=-2, refine=True).eval()
    x = images(2)
    with torch.no_grad():
        coords, _, _, first = model.forward_train(x, with_visibility=False)
        torch.testing.assert_close(coords, first)  # zero-initialised output layer
        last = model.refine_out.linear if head == "graph" else model.refine_fc[-1]
        torch.nn.init.normal_(last.weight, 0, 0.1)
        coords, _, _, first = model.forward_train(x, with_visibility=False)
        assert coords.shape == first.shape == (2, 68, 2)
        assert not torch.allclose(coords, first)
        torch.testing.assert_close(model(x)[0], coords)  # forward returns the refined points
    # The patches come from the next finer map: stride 8 under a stride-16 head.
    assert model.backbone.feature_info.reduction() == [8, 16]


def test_hidden_bound_cuts_only_features_beyond_it_and_keeps_their_direction():
    model = make(refine=True, feature_level=-2, node_attention=True).eval()
    for last in (model.gc_out.linear, model.refine_out.linear):  # zero at the start: the points would not move
        nn.init.normal_(last.weight, 0, 0.1)
    x = images(3)
    norms = model.hidden_norms(x)
    assert model.bounded_layers == 1 + len(model.blocks) + 1 + len(model.refine_blocks)
    assert norms.shape == (3, model.bounded_layers, 68) and bool((norms > 0).all())
    with torch.no_grad():
        free = model(x)[0]
        model.set_hidden_bound(norms.amax(0) * 1.01)  # above every norm: nothing is cut
        torch.testing.assert_close(model(x)[0], free)
        tight = norms.amax(0) / 3
        model.set_hidden_bound(tight)
        cut = model(x)[0]
        assert not torch.allclose(cut, free)
        assert bool((model.hidden_norms(x) <= tight * (1 + 1e-5)).all())
        # A vector beyond the bound keeps its direction and is shortened to the bound; one within it is kept.
        hidden = torch.randn(3, 68, model.config.hidden) * norms[:, 0].unsqueeze(-1) / model.config.hidden ** 0.5
        bounded = model._bounded(hidden, 0)
        torch.testing.assert_close(nn.functional.cosine_similarity(bounded, hidden, dim=-1), torch.ones(3, 68))
        over = hidden.norm(dim=-1) > tight[0]
        torch.testing.assert_close(bounded.norm(dim=-1)[over], tight[0].expand(3, 68)[over])
        torch.testing.assert_close(bounded[~over], hidden[~over])
        model.set_hidden_bound(None)
        torch.testing.assert_close(model(x)[0], free)


def test_hidden_bound_errors():
    model = shared()
    with pytest.raises(ValueError, match=r"hidden bound must be \(5, 68\)"):
        model.set_hidden_bound(torch.ones(3, 68))
    with pytest.raises(ValueError, match="must be positive"):
        make().set_hidden_bound(torch.zeros(5, 68))
    with pytest.raises(ValueError, match="only the graph head"):
        shared(head="fc").hidden_norms(images(1))
    with pytest.raises(ValueError, match=r"hidden bound must be \(0, 68\)"):
        make(head="fc").set_hidden_bound(torch.ones(1, 68))


def share_plain_weights(plain: SDFLModel, extended: SDFLModel) -> None:
    """Give ``extended`` (``plain`` plus a zero-initialised addition) every weight of ``plain``, after a random
    refinement output layer for both (a fresh one is zero, which would hide any difference in the points)."""
    torch.nn.init.normal_(plain.refine_out.linear.weight, 0, 0.1)
    extended.load_state_dict({**extended.state_dict(), **plain.state_dict()})


def test_refine_context_starts_as_the_model_without_it_and_then_carries_every_patch_to_every_node():
    plain = make(feature_level=-2, refine=True).eval()
    ctx = make(feature_level=-2, refine=True, refine_context=8).eval()
    assert {k.split(".")[0] for k in set(ctx.state_dict()) - set(plain.state_dict())} == {"refine_context"}
    share_plain_weights(plain, ctx)
    x = images(1)
    with torch.no_grad():
        torch.testing.assert_close(ctx(x)[0], plain(x)[0])  # zero-initialised projection: the plain model
        patches = plain.sample_patches(plain.backbone(x)[0], plain.forward_train(x, False)[3])
        moved = patches.clone()
        moved[:, 40] += 1.0

        def point_0(model, given):
            model.sample_patches = lambda fine, coords: given
            try:
                return model(x)[0][0, 0]
            finally:
                del model.sample_patches
        # On the ring graph, node 40 is beyond the refinement's reach from node 0 (6 graph convs of 3 hops ahead) ...
        torch.testing.assert_close(point_0(plain, moved), point_0(plain, patches))
        torch.nn.init.normal_(ctx.refine_context[-1].weight, 0, 0.1)
        # ... but not beyond the code of every patch.
        assert not torch.allclose(point_0(ctx, moved), point_0(ctx, patches))
    assert ctx.refine_context[3].weight.shape == (8, 68 * 16)
    with pytest.raises(ValueError, match="refine_context needs the graph head and model.refine"):
        ModelConfig(backbone=TINY, feature_level=-2, refine_context=8)
    with pytest.raises(ValueError, match="refine_context needs the graph head and model.refine"):
        ModelConfig(backbone=TINY, head="fc", feature_level=-2, refine=True, refine_context=8)
    with pytest.raises(ValueError, match="refine_context must be 0"):
        ModelConfig(backbone=TINY, feature_level=-2, refine=True, refine_context=-1)


def test_graph_conv_self_path_adds_each_nodes_own_features_to_the_neighbourhood_mean():
    torch.manual_seed(0)
    conv = GraphConv(6, 4, activate=False, self_path=True)
    h, adj = torch.randn(2, 10, 6), masked_softmax(torch.randn(2, 10, 10), torch.as_tensor(ring_mask(10, 2)))
    with torch.no_grad():
        torch.testing.assert_close(conv(h, adj), adj @ conv.linear(h))  # zero self weights: the plain conv
        conv.self_linear.weight.normal_()
        torch.testing.assert_close(conv(h, adj), adj @ conv.linear(h) + h @ conv.self_linear.weight.T)
    assert conv.self_linear.bias is None  # the bias is the neighbourhood path's


def test_refine_self_starts_as_the_model_without_it_and_moves_only_the_refined_points():
    plain = make(feature_level=-2, refine=True).eval()
    own = make(feature_level=-2, refine=True, refine_self=True).eval()
    extra = set(own.state_dict()) - set(plain.state_dict())
    assert extra == {f"{layer}.self_linear.weight" for layer in
                     ["refine_in", "refine_out"] + [f"refine_blocks.{b}.conv{c}" for b in (0, 1) for c in (1, 2)]}
    share_plain_weights(plain, own)
    x = images(1)
    with torch.no_grad():
        torch.testing.assert_close(own(x)[0], plain(x)[0])  # zero self weights: the plain model
        for name, weight in own.named_parameters():
            if name.endswith("self_linear.weight"):
                torch.nn.init.normal_(weight, 0, 0.1)
        assert not torch.allclose(own(x)[0], plain(x)[0])
        # The first stage is untouched: the self path is the refinement's only.
        torch.testing.assert_close(own.forward_train(x, False)[3], plain.forward_train(x, False)[3])
    with pytest.raises(ValueError, match="refine_self needs the graph head and model.refine"):
        ModelConfig(backbone=TINY, feature_level=-2, refine_self=True)
    with pytest.raises(ValueError, match="refine_self needs the graph head and model.refine"):
        ModelConfig(backbone=TINY, head="fc", feature_level=-2, refine=True, refine_self=True)


def test_refine_samples_each_point_at_its_own_place_in_the_fine_map():
    model = make(feature_level=-2, refine=True, refine_patch=1).eval()
    # A fine map whose reduced channels equal x and y of the map, so a sample tells where it was taken.
    side = SIZE // 8
    ramp = (torch.arange(side, dtype=torch.float32) + 0.5) / side  # cell centres in crop units
    fine = torch.stack([ramp.expand(side, side), ramp[:, None].expand(side, side)])[None]
    model.refine_reduce = torch.nn.Identity()
    points = torch.tensor([[[0.3125, 0.6875], [0.5625, 0.1875]]])  # cell centres
    sampled = model.sample_patches(fine, points)
    assert sampled.shape == (1, 2, 2)
    torch.testing.assert_close(sampled, points)


@pytest.mark.parametrize("activate, self_path", [(True, False), (False, False), (True, True), (False, True)])
def test_graph_conv_folds_its_batchnorm_into_the_linear_layer(activate, self_path):
    torch.manual_seed(0)
    conv = GraphConv(12, 8, activate=activate, self_path=self_path)
    if self_path:
        torch.nn.init.normal_(conv.self_linear.weight)
    if activate:
        conv.bn.running_mean.normal_()
        conv.bn.running_var.uniform_(0.5, 2.0)
        conv.bn.weight.data.normal_()
        conv.bn.bias.data.normal_()
    conv.eval()
    h = torch.randn(3, 10, 12)
    adj = masked_softmax(torch.randn(3, 10, 10), torch.as_tensor(ring_mask(10, 2)))
    with torch.no_grad():
        before = conv(h, adj)
    conv.fold_batchnorm()
    assert conv.bn is None and conv.linear.bias is not None
    with torch.no_grad():
        torch.testing.assert_close(conv(h, adj), before, atol=1e-5, rtol=1e-5)
    if activate:
        assert (before >= 0).all()  # still followed by its ReLU


@pytest.mark.parametrize("shape, taps, step", [((1, 4, 16, 16), 5, 0.5), ((3, 5, 7, 9), 3, 0.8), ((2, 3, 6, 6), 1, 0.0)])
def test_grid_patch_sample_is_grid_sample_with_border_padding(shape, taps, step):
    b, _, h, w = shape
    gen = torch.Generator().manual_seed(0)
    fmap = torch.randn(*shape, generator=gen, requires_grad=True)
    centers = torch.rand(b, 40, 2, generator=gen) * 1.6 - 0.3  # some patches past the border: clamped
    centers[0, :4] = torch.tensor([[0.0, 0.0], [1.0, 1.0], [0.5, 0.5], [1.2, -0.1]])
    ticks = (torch.arange(taps, dtype=torch.float32) - (taps - 1) / 2) * step / max(h, w)  # step in cells
    window = patch_window(float(ticks[-1] - ticks[0]), max(h, w))
    assert window == math.ceil((taps - 1) * step) + 2
    gy, gx = torch.meshgrid(ticks, ticks, indexing="ij")
    points = (centers.unsqueeze(2) + torch.stack([gx, gy], dim=-1).reshape(1, 1, -1, 2)).flatten(1, 2)
    ref = torch.nn.functional.grid_sample(fmap, (points * 2 - 1).unsqueeze(2), mode="bilinear",
                                          padding_mode="border", align_corners=False)[..., 0].transpose(1, 2)
    got = grid_patch_sample(fmap, centers, ticks, window)
    assert got.shape == (b, 40, taps * taps, shape[1])
    torch.testing.assert_close(got.flatten(1, 2), ref, atol=1e-5, rtol=0)
    weights = torch.randn(ref.shape, generator=gen)
    grad_ref, = torch.autograd.grad((ref * weights).sum(), fmap)
    grad_got, = torch.autograd.grad((got.flatten(1, 2) * weights).sum(), fmap)
    torch.testing.assert_close(grad_got, grad_ref, atol=1e-5, rtol=0)


def test_refine_needs_a_finer_map_and_a_patch():
    with pytest.raises(ValueError, match="feature map below"):
        ModelConfig(backbone=TINY, feature_level=-5, refine=True)
    with pytest.raises(ValueError, match="refine_patch"):
        ModelConfig(backbone=TINY, refine=True, refine_patch=0)
    with pytest.raises(ValueError, match="refine_blocks"):
        ModelConfig(backbone=TINY, refine=True, refine_blocks=-1)


@pytest.mark.parametrize("blocks", [0, 1, 3])
def test_refine_blocks_sets_the_refinement_stage_depth(blocks):
    model = make(feature_level=-2, refine=True, refine_blocks=blocks).eval()
    assert len(model.refine_blocks) == blocks
    assert len(make(feature_level=-2, refine=True).refine_blocks) == 2  # the default: the shipped models' depth
    last = model.refine_out.linear
    torch.nn.init.normal_(last.weight, 0, 0.1)
    coords, _, _, first = model.forward_train(images(2), with_visibility=False)
    assert coords.shape == (2, 68, 2) and not torch.allclose(coords, first)


@pytest.mark.parametrize("head", ["graph", "fc"])
def test_skip_blocks_leaves_residual_blocks_out_and_keeps_the_others_weights(head, tmp_path):
    from sdfl_core.checkpoint import ModelInfo, load_checkpoint, save_checkpoint

    full = make(head=head, feature_level=-2).eval()  # mobilenetv2 stages 0-4: 1, 2, 3, 4, 3 blocks
    torch.manual_seed(1)
    cfg = ModelConfig(**{**full.config.to_dict(), "skip_blocks": ["3.1", "4.2"]})  # a list, as YAML gives it
    assert cfg.skip_blocks == ("3.1", "4.2") and ModelConfig(**cfg.to_dict()) == cfg
    short = build_model(cfg, ring_mask(68, 3)).eval()
    blocks = short.backbone.blocks
    assert isinstance(blocks[3][1], torch.nn.Identity) and isinstance(blocks[4][2], torch.nn.Identity)
    assert not any(isinstance(b, torch.nn.Identity) for i, s in enumerate(blocks) for j, b in enumerate(s)
                   if (i, j) not in ((3, 1), (4, 2)))
    # The kept blocks keep their names: every tensor loads from the full model, and the result is the full model
    # with exactly those two blocks passed through.
    state = full.state_dict()
    assert set(short.state_dict()) < set(state)
    assert not any(k.startswith(("backbone.blocks.3.1.", "backbone.blocks.4.2.")) for k in short.state_dict())
    short.load_state_dict({k: state[k] for k in short.state_dict()})
    x = images(2)
    with torch.no_grad():
        reference = full.backbone(x)[-1]
        got = short.backbone(x)[-1]
        full.backbone.blocks[3][1] = torch.nn.Identity()
        full.backbone.blocks[4][2] = torch.nn.Identity()
        torch.testing.assert_close(got, full.backbone(x)[-1])
        torch.testing.assert_close(short(x)[0], full(x)[0])
    assert got.shape == reference.shape and not torch.allclose(got, reference)
    # A checkpoint rebuilds the shallower network.
    info = ModelInfo(config=cfg, schema="300w", k=3, mask=ring_mask(68, 3), mean_shape=np.full((68, 2), 0.5, np.float32))
    save_checkpoint(tmp_path / "short.pt", short, info)
    again, again_info = load_checkpoint(tmp_path / "short.pt")
    assert again_info.config.skip_blocks == ("3.1", "4.2")
    with torch.no_grad():
        torch.testing.assert_close(again.backbone(x)[-1], got)


def test_skip_blocks_errors():
    with pytest.raises(ValueError, match=r'"stage.block"'):
        ModelConfig(backbone=TINY, skip_blocks=["4"])
    assert ModelConfig(backbone=TINY, skip_blocks="4.1").skip_blocks == ("4.1",)  # one name, as YAML may give it
    with pytest.raises(ValueError, match="twice"):
        ModelConfig(backbone=TINY, skip_blocks=["4.1", "4.1"])
    with pytest.raises(ValueError, match="block 0.0 is not residual"):
        make(feature_level=-2, skip_blocks=["0.0"])
    with pytest.raises(ValueError, match=r"no block 5.0 \(its stages hold \[1, 2, 3, 4, 3\] blocks\)"):
        make(feature_level=-2, skip_blocks=["5.0"])
    with pytest.raises(ValueError, match="timm blocks"):
        make(backbone="resnet10t", skip_blocks=["1.1"])


def test_visibility_gate_starts_open_and_a_closed_gate_silences_the_node_own_features():
    plain = make(feature_level=-2, global_context=True).eval()
    gated = make(feature_level=-2, global_context=True, visibility=True, visibility_gate=True).eval()
    assert set(gated.state_dict()) - set(plain.state_dict()) == {
        "vis_head.0.weight", "vis_head.0.bias", "vis_head.2.weight", "vis_head.2.bias", "vis_bias"}
    # The gate reads only the map-to-node features (the shipped visibility head also reads later ones).
    assert gated.vis_head[0].in_features == gated.gc_in.linear.in_features
    gated.load_state_dict({**gated.state_dict(), **plain.state_dict()})
    torch.nn.init.normal_(plain.gc_out.linear.weight, 0, 0.1)
    gated.gc_out.linear.weight.data.copy_(plain.gc_out.linear.weight.data)
    x = images(2)
    with torch.no_grad():
        coords, adj, logits = gated.forward_with_visibility(x)
        torch.testing.assert_close(coords, plain(x)[0])  # an open gate: the model without it
        assert logits.shape == (2, 68)
        torch.testing.assert_close(torch.sigmoid(logits), torch.full((2, 68), torch.sigmoid(torch.tensor(GATE_START)).item()))
        # Close node 0's gate: its own features no longer reach any node, so the points move; other inputs of
        # node 0's state (neighbours, the whole-map code) remain, so it still gets a point.
        gated.vis_bias[0] = -30.0
        closed = gated(x)[0]
        assert not torch.allclose(closed, coords)
        feats = gated.backbone(x)[-1]
        h = gated.embed(feats)
        h_zero = h.clone()
        h_zero[:, :gated.config.expansion] = 0  # node 0's channels of the map-to-node output
        torch.testing.assert_close(gated.graph_regress(h_zero, gated.edge_weights(h), gated.node_context(feats)), closed,
                                   atol=1e-5, rtol=1e-4)
    gated.train()
    logits = gated.forward_train(x, True)[2]
    logits.sum().backward()
    assert gated.vis_head[-1].weight.grad.abs().sum() > 0  # the gate learns from its zero start


def test_visibility_gate_needs_the_graph_head_and_the_visibility_output():
    with pytest.raises(ValueError, match="visibility_gate needs the graph head and model.visibility"):
        ModelConfig(backbone=TINY, visibility_gate=True)
    with pytest.raises(ValueError, match="visibility_gate needs the graph head and model.visibility"):
        ModelConfig(backbone=TINY, head="fc", visibility=True, visibility_gate=True)


def test_a_gate_from_cover_only_learns_from_the_visibility_loss_alone():
    x = images(2)
    for cover_only in (False, True):
        gated = make(feature_level=-2, visibility=True, visibility_gate=True, gate_from_cover_only=cover_only).train()
        torch.nn.init.normal_(gated.gc_out.linear.weight, 0, 0.1)
        torch.nn.init.normal_(gated.vis_head[-1].weight, 0, 0.1)
        coords, _, logits, _ = gated.forward_train(x, True)
        coords.sum().backward(retain_graph=True)
        from_landmarks = gated.vis_head[-1].weight.grad
        assert (from_landmarks is not None and from_landmarks.abs().sum() > 0) != cover_only
        gated.zero_grad()
        logits.sum().backward()
        assert gated.vis_head[-1].weight.grad.abs().sum() > 0  # the visibility loss reaches the gate either way
    with pytest.raises(ValueError, match="gate_from_cover_only needs model.visibility_gate"):
        ModelConfig(backbone=TINY, visibility=True, gate_from_cover_only=True)
