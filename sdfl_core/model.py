"""The SDFL landmark regressor (paper III-A..C) and its FC-head twin, on any timm backbone.

Coordinates are regressed in crop units: (0, 0) is the crop's top-left pixel centre's corner and
(1, 1) its bottom-right, so the same weights work at any crop resolution.
"""
from __future__ import annotations

import math

import numpy as np
import timm
import torch
from torch import nn

from .model_config import EDGE_MODES, HEADS, ModelConfig  # noqa: F401  (re-exported)

REFINE_CHANNELS = 32
"""Channels of the fine map after the refinement stage's 1x1 reduction (each patch sample has this many)."""
REFINE_POINT_CODE = 16
"""Width of each point's patch code in the refinement's context (``model.refine_context``)."""
GATE_START = 3.0
"""``model.visibility_gate``: the visibility logit every node starts at (probability 0.95); the gate is the
probability divided by this one, so it starts at 1 and closes toward 0 for a node judged covered."""
_GATE_START_PROBABILITY = 1.0 / (1.0 + math.exp(-GATE_START))


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Row softmax over the edges of ``mask`` only; non-edges are exactly 0."""
    filled = logits.masked_fill(~mask, float("-inf"))
    return torch.softmax(filled, dim=-1)


class GraphConv(nn.Module):
    """H' = psi(sigma(A) H W), psi = BN-ReLU (or identity for the output layer). With ``self_path``,
    H' = psi(sigma(A) H W + H W_self): each node also reads its own features through weights of their own
    (``model.refine_self``), which start at zero, so the layer starts as the one without them."""

    def __init__(self, in_dim: int, out_dim: int, activate: bool = True, self_path: bool = False) -> None:
        super().__init__()
        self.activate = activate
        self.linear = nn.Linear(in_dim, out_dim, bias=not activate)
        self.bn = nn.BatchNorm1d(out_dim) if activate else None
        self.self_linear = nn.Linear(in_dim, out_dim, bias=False) if self_path else None
        if self.self_linear is not None:
            nn.init.zeros_(self.self_linear.weight)

    def forward(self, h: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        out = adj @ self.linear(h)
        if self.self_linear is not None:
            out = out + self.self_linear(h)
        if self.bn is not None:
            out = self.bn(out.transpose(1, 2)).transpose(1, 2)
        return torch.relu(out) if self.activate else out

    @torch.no_grad()
    def fold_batchnorm(self) -> None:
        """Fold the (eval-mode) BatchNorm into the linear layer, for inference graphs: BN(A H W) = A H W' + b'
        exactly, because each row of the edge weights A sums to 1 (a softmax), so the shift passes through A
        (a self path's weights take the scale alone)."""
        if self.bn is None:
            return
        scale = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
        if self.self_linear is not None:
            self.self_linear.weight.mul_(scale[:, None])
        folded = nn.Linear(self.linear.in_features, self.linear.out_features, bias=True).to(self.linear.weight)
        folded.weight.copy_(self.linear.weight * scale[:, None])
        bias = self.linear.bias if self.linear.bias is not None else torch.zeros_like(scale)
        folded.bias.copy_(bias * scale + self.bn.bias - self.bn.running_mean * scale)
        self.linear, self.bn = folded, None


class GraphBlock(nn.Module):
    """Residual graph block (Eq. 5)."""

    def __init__(self, dim: int, self_path: bool = False) -> None:
        super().__init__()
        self.conv1 = GraphConv(dim, dim, self_path=self_path)
        self.conv2 = GraphConv(dim, dim, self_path=self_path)

    def forward(self, h: torch.Tensor, adj: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(h, adj), adj) + h


def patch_window(span: float, side: int) -> int:
    """The cells per axis that hold every bilinear corner of a patch whose taps span ``span`` (in [0, 1] map
    units) on a map of ``side`` cells, wherever the patch lies: from the first tap's lower corner to the
    last tap's upper one, ceil(span in cells) + 2."""
    return math.ceil(span * side - 1e-6) + 2


def grid_patch_sample(fmap: torch.Tensor, centers: torch.Tensor, ticks: torch.Tensor, window: int) -> torch.Tensor:
    """(B, N, p*p, C): ``fmap`` (B, C, H, W) sampled bilinearly on a p x p grid around each of ``centers``
    (B, N, 2), (x, y) in map units of [0, 1] (pixel corners at 0 and 1); tap (i, j) lies at
    ``center + (ticks[j], ticks[i])``, so ``ticks`` (p,) must increase. Equal to
    ``F.grid_sample(..., "bilinear", "border", align_corners=False)`` at those points, computed as one gather
    of the ``window`` x ``window`` cells around each centre (``patch_window``) and the bilinear weights as two
    small matrix products, one per axis: ONNX Runtime runs that several times faster than GridSample or
    four gathers per tap."""
    b, c, h, w = fmap.shape
    n, p = centers.shape[1], ticks.shape[0]
    reach = torch.arange(window, dtype=fmap.dtype, device=fmap.device)

    def axis(coord: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        taps = ((coord.unsqueeze(-1) + ticks) * size - 0.5).clamp(0, size - 1)  # (B, N, p), cells
        cells = taps[..., :1].floor() + reach  # (B, N, K): the window's cells on this axis
        # The bilinear weight of cell m for a tap at t is max(0, 1 - |t - m|); cells past the border get 0.
        weights = (1 - (taps.unsqueeze(-1) - cells.unsqueeze(-2)).abs()).clamp(min=0)  # (B, N, p, K)
        return cells.clamp(max=size - 1).long(), weights

    xi, wx = axis(centers[..., 0], w)
    yi, wy = axis(centers[..., 1], h)
    first = (torch.arange(b, device=fmap.device) * (h * w)).view(b, 1, 1, 1)  # each image's first row
    index = first + yi.unsqueeze(-2) * w + xi.unsqueeze(-1)  # (B, N, K columns, K rows)
    table = fmap.permute(0, 2, 3, 1).reshape(-1, c)  # (B*H*W, C): one row per pixel
    cells = table[index.flatten()].view(b, n, window, window * c)
    columns = (wx @ cells).view(b, n, p, window, c).transpose(2, 3)  # (B, N, K rows, p x taps, C)
    return (wy @ columns.flatten(3)).view(b, n, p * p, c)


class SDFLModel(nn.Module):
    """Backbone -> (graph head | FC head) -> (B, N, 2) coordinates in crop units, plus edge weights.

    ``forward`` returns ``(coords, edge_weights)``; edge weights are (B, N, N) for the graph head and
    (B, N, 0) for the FC head, so callers never branch on the head type.
    """

    def __init__(self, config: ModelConfig, mask: np.ndarray, mean_shape: np.ndarray | None = None) -> None:
        super().__init__()
        if not timm.is_model(config.backbone):
            raise ValueError(f"unknown timm backbone {config.backbone!r}")
        self.config = config
        n = config.num_points
        mask_t = torch.as_tensor(np.asarray(mask), dtype=torch.bool)
        if mask_t.shape != (n, n):
            raise ValueError(f"adjacency mask must be ({n}, {n}) for {n} points, got {tuple(mask_t.shape)}")
        if not bool(mask_t.diagonal().all()):
            raise ValueError("adjacency mask must include self-loops (the diagonal)")
        self.register_buffer("mask", mask_t)
        if mean_shape is None:
            mean_shape = np.full((n, 2), 0.5, np.float32)
        mean_t = torch.as_tensor(np.asarray(mean_shape), dtype=torch.float32)
        if mean_t.shape != (n, 2):
            raise ValueError(f"mean shape must be ({n}, 2), got {tuple(mean_t.shape)}")
        # Predictions are offsets from the training mean shape: training from scratch converges faster.
        self.register_buffer("mean_shape", mean_t)

        levels = (config.feature_level - 1, config.feature_level) if config.refine else (config.feature_level,)
        self.backbone = timm.create_model(config.backbone, pretrained=False, features_only=True, out_indices=levels)
        _drop_unused_blocks(self.backbone)
        _skip_blocks(self.backbone, config.skip_blocks)
        channels = self.backbone.feature_info.channels()[-1]
        reduction = self.backbone.feature_info.reduction()[-1]
        self.map_side = max(1, -(-config.input_size // reduction))  # the backbone map's own side
        side = config.head_side or self.map_side
        self.feature_side = side  # the side the head reads
        self.resample_map = side != self.map_side

        if config.head == "graph":
            nn_ch = n * config.expansion
            # Map-to-node (III-A): 1x1 conv to N*n channels, then a 3x3 conv grouped per landmark so each
            # node's channels gather spatial context without mixing landmarks.
            self.embed = nn.Sequential(
                nn.Conv2d(channels, nn_ch, 1, bias=False), nn.BatchNorm2d(nn_ch), nn.ReLU(inplace=True),
                nn.Conv2d(nn_ch, nn_ch, 3, padding=1, groups=n, bias=False), nn.BatchNorm2d(nn_ch), nn.ReLU(inplace=True),
            )
            node_dim = config.expansion * side * side
            if config.node_attention:
                # One logit map per node from its own channels; zero-initialised, so training starts from
                # the paper's plain map-to-node (a uniform gate).
                self.node_attn = nn.Conv2d(nn_ch, n, 1, groups=n)
                nn.init.zeros_(self.node_attn.weight)
                nn.init.zeros_(self.node_attn.bias)
                if config.attention_prior:
                    self.attn_prior = nn.Parameter(torch.zeros(n, side * side))
            nnz = int(mask_t.sum())
            if config.edge_mode == "dynamic":
                self.edge_fc = nn.Sequential(nn.Linear(nn_ch, config.hidden), nn.ReLU(inplace=True), nn.Linear(config.hidden, nnz))
            elif config.edge_mode == "static":
                self.edge_logits = nn.Parameter(torch.zeros(nnz))
            else:
                self.register_buffer("edge_zeros", torch.zeros(nnz), persistent=False)
            slots = torch.zeros(n * n, dtype=torch.long)
            slots[mask_t.flatten()] = torch.arange(1, nnz + 1)
            self.register_buffer("edge_slots", slots, persistent=False)
            self.gc_in = GraphConv(node_dim, config.hidden)
            if config.global_context:
                width = config.context_code_width
                self.context = nn.Sequential(nn.Flatten(), nn.Linear(channels * side * side, width),
                                             nn.ReLU(inplace=True), nn.Linear(width, n * config.hidden))
                nn.init.zeros_(self.context[-1].weight)
                nn.init.zeros_(self.context[-1].bias)
            self.blocks = nn.ModuleList(GraphBlock(config.hidden) for _ in range(config.num_blocks))
            self.gc_out = GraphConv(config.hidden, 2, activate=False)
            last = self.gc_out.linear
            if config.visibility_gate:
                # The gate's MLP reads only the map-to-node features; its output layer starts at zero and the
                # per-landmark bias at GATE_START, so every gate starts at 1 (see _graph).
                self.vis_head = nn.Sequential(nn.Linear(node_dim, 64), nn.ReLU(inplace=True), nn.Linear(64, 1))
                nn.init.zeros_(self.vis_head[-1].weight)
                nn.init.zeros_(self.vis_head[-1].bias)
                self.vis_bias = nn.Parameter(torch.full((n,), GATE_START))
            elif config.visibility:
                # One MLP shared by the nodes over [map-to-node features, last hidden features], plus a
                # per-landmark bias (some points, e.g. the jaw, are covered more often than others). Under
                # model.refine the nodes also carry the fine patch around their point and its stage's features.
                vis_dim = node_dim + config.hidden + (REFINE_CHANNELS * config.refine_patch ** 2 + config.hidden if config.refine else 0)
                self.vis_head = nn.Sequential(nn.Linear(vis_dim, 64), nn.ReLU(inplace=True), nn.Linear(64, 1))
                self.vis_bias = nn.Parameter(torch.zeros(n))
        else:
            norm = [nn.BatchNorm1d(config.fc_hidden)] if config.fc_norm else []
            self.fc = nn.Sequential(
                nn.Flatten(), nn.Linear(channels * side * side, config.fc_hidden), *norm, nn.ReLU(inplace=True),
                nn.Linear(config.fc_hidden, 2 * n),
            )
            last = self.fc[-1]
            if config.visibility:
                self.vis_head = nn.Sequential(nn.Flatten(), nn.Linear(channels * side * side, 128), nn.ReLU(inplace=True),
                                              nn.Linear(128, n))
        if config.refine:
            self._build_refine(config)
        # Per layer and node, the largest hidden-feature norm the graph head may pass on (set_hidden_bound);
        # None (the default, and in training) bounds nothing.
        self.register_buffer("hidden_bound", None)
        self._norm_log: list[torch.Tensor] | None = None
        # Start exactly at the mean shape. With random output weights the quickest early win is to
        # shrink the output's variance, which kills the ReLUs feeding it (the FC head collapsed to a
        # constant that way in training from scratch).
        nn.init.zeros_(last.weight)
        if last.bias is not None:
            nn.init.zeros_(last.bias)

    def _build_refine(self, config: ModelConfig) -> None:
        """The second stage (``config.refine``); its output layer starts at zero, so it starts as the identity."""
        n, p, reduced = config.num_points, config.refine_patch, REFINE_CHANNELS
        fine_channels = self.backbone.feature_info.channels()[0]
        fine_reduction = self.backbone.feature_info.reduction()[0]
        self.refine_reduce = nn.Sequential(nn.Conv2d(fine_channels, reduced, 1, bias=False), nn.BatchNorm2d(reduced),
                                           nn.ReLU(inplace=True))
        # A p x p grid centred on the point, half a fine-map cell apart, in crop units.
        ticks = (torch.arange(p, dtype=torch.float32) - (p - 1) / 2) * (0.5 * fine_reduction / config.input_size)
        self.register_buffer("patch_ticks", ticks, persistent=False)
        fine_side = -(-config.input_size // fine_reduction)
        self.patch_window = patch_window(float(ticks[-1] - ticks[0]), fine_side)
        patch_dim = reduced * p * p
        if config.head == "graph":
            own = config.refine_self
            self.refine_in = GraphConv(patch_dim + config.hidden, config.hidden, self_path=own)
            self.refine_blocks = nn.ModuleList(GraphBlock(config.hidden, self_path=own) for _ in range(config.refine_blocks))
            self.refine_out = GraphConv(config.hidden, 2, activate=False, self_path=own)
            last = self.refine_out.linear
            if config.refine_context:
                # Each patch to a short code (one layer shared by the points), then every code to the width and back
                # to each node: an FC over the raw patches would hold 68 x 800 x width weights, read on every face.
                self.refine_context = nn.Sequential(
                    nn.Linear(patch_dim, REFINE_POINT_CODE), nn.ReLU(inplace=True), nn.Flatten(),
                    nn.Linear(n * REFINE_POINT_CODE, config.refine_context), nn.ReLU(inplace=True),
                    nn.Linear(config.refine_context, n * config.hidden))
                nn.init.zeros_(self.refine_context[-1].weight)
                nn.init.zeros_(self.refine_context[-1].bias)
        else:
            # The FC twin: the same patches, through a per-point layer and then one FC over all points.
            self.refine_point = nn.Sequential(nn.Linear(patch_dim, 64), nn.ReLU(inplace=True))
            self.refine_fc = nn.Sequential(nn.Linear(n * 64 + config.fc_hidden, config.fc_hidden),
                                           nn.BatchNorm1d(config.fc_hidden), nn.ReLU(inplace=True),
                                           nn.Linear(config.fc_hidden, 2 * n))
            last = self.refine_fc[-1]
        nn.init.zeros_(last.weight)
        if last.bias is not None:
            nn.init.zeros_(last.bias)

    def sample_patches(self, fine: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """(B, N, C*p*p): the reduced fine map sampled bilinearly on each point's grid (no gradient to the points)."""
        sampled = grid_patch_sample(self.refine_reduce(fine), coords.detach(), self.patch_ticks, self.patch_window)
        return sampled.transpose(2, 3).flatten(2)  # (B, N, p*p, C) -> (B, N, C*p*p)

    def edge_weights(self, feats: torch.Tensor) -> torch.Tensor:
        """sigma(A): (B, N, N) row-softmax over the edges of M, from the node feature maps."""
        pooled = feats.mean(dim=(2, 3))
        base = pooled[:, :1] * 0  # (B, 1): keeps the batch size symbolic for ONNX export
        if self.config.edge_mode == "dynamic":
            values = self.edge_fc(pooled)
        elif self.config.edge_mode == "static":
            values = base + self.edge_logits
        else:
            values = base + self.edge_zeros  # all edges equal -> uniform over neighbours
        # Scatter the E edge values into an N x N grid: slot 0 holds 0 for the non-edges.
        padded = torch.cat([base, values], dim=1)
        n = self.config.num_points
        logits = padded[:, self.edge_slots].unflatten(1, (n, n))
        return masked_softmax(logits, self.mask)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        coords, adj, _, _ = self._run(x, with_visibility=False)
        return coords, adj

    def forward_with_visibility(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``forward`` plus (B, N) visibility logits (sigmoid = probability that the point is visible)."""
        if not self.config.visibility:
            raise ValueError("this model has no visibility output (model.visibility is false)")
        return self._run(x, with_visibility=True)[:3]

    def forward_train(self, x: torch.Tensor, with_visibility: bool):
        """(coords, edge weights, visibility logits or None, first-stage coords): the first stage's points
        equal ``coords`` without ``model.refine``."""
        return self._run(x, with_visibility)

    def _run(self, x: torch.Tensor, with_visibility: bool):
        size = self.config.input_size
        # The heads are sized for one feature-map side, so any other resolution cannot run.
        if x.ndim != 4 or x.shape[1] != 3 or tuple(x.shape[2:]) != (size, size):
            raise ValueError(f"expected a (B, 3, {size}, {size}) image batch, got shape {tuple(x.shape)}")
        maps = self.backbone(x)
        feats = maps[-1]
        if self.resample_map:
            side = self.feature_side
            feats = nn.functional.interpolate(feats, size=(side, side), mode="bilinear", align_corners=False)
        n = self.config.num_points
        if self.config.head == "fc":
            hidden = self.fc[:-1](feats)
            first = self.fc[-1](hidden).unflatten(1, (n, 2)) + self.mean_shape
            vis = self.vis_head(feats) if with_visibility else None
            coords = first
            if self.config.refine:
                points = self.refine_point(self.sample_patches(maps[0], first)).flatten(1)
                coords = first + self.refine_fc(torch.cat([points, hidden], dim=1)).unflatten(1, (n, 2))
            return coords, first[..., :0], vis, first
        h = self.embed(feats)
        adj = self.edge_weights(h)
        first, nodes_in, nodes_out, gate_logits = self._graph(h, adj, self.node_context(feats))
        coords, node_features = first, [nodes_in, nodes_out]
        if self.config.refine:
            patches = self.sample_patches(maps[0], first)
            hidden = self.refine_in(torch.cat([patches, nodes_out], dim=-1), adj)
            if self.config.refine_context:
                hidden = hidden + self.refine_context(patches).unflatten(1, (n, self.config.hidden))
            start = 1 + len(self.blocks)  # the refinement's layers follow the first stage's in hidden_bound
            hidden = self._bounded(hidden, start)
            for layer, block in enumerate(self.refine_blocks, start + 1):
                hidden = self._bounded(block(hidden, adj), layer)
            coords = first + self.refine_out(hidden, adj)
            node_features += [patches, hidden]
        vis = None
        if with_visibility:
            vis = gate_logits if gate_logits is not None else (
                self.vis_head(torch.cat(node_features, dim=-1)).squeeze(-1) + self.vis_bias)
        return coords, adj, vis, first

    def node_context(self, feats: torch.Tensor) -> torch.Tensor | None:
        """(B, N, hidden): each node's share of the whole map's code (``model.global_context``), or None."""
        if not self.config.global_context:
            return None
        return self.context(feats).unflatten(1, (self.config.num_points, self.config.hidden))

    def graph_regress(self, h: torch.Tensor, adj: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """Graph head from the map-to-node output ``h`` (B, N*n, H, W) and edge weights ``adj`` (B, N, N),
        plus, under ``model.global_context``, the nodes' context (``node_context`` of the backbone's map).

        Split out of ``forward`` so an analysis can feed node features and adjacencies of its own (e.g.
        the clean image's features for some nodes, ``benchmarks/occlusion_paths.py``). With ``model.refine`` these
        are the first stage's points."""
        if self.config.global_context and context is None:
            raise ValueError("this model has model.global_context: pass the nodes' context (node_context)")
        return self._graph(h, adj, context)[0]

    def _graph(self, h: torch.Tensor, adj: torch.Tensor, context: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Coordinates, each node's input features (B, N, n*H*W), its last hidden features (B, N, hidden) and,
        under ``model.visibility_gate``, the (B, N) visibility logits that gated its input (else None)."""
        n = self.config.num_points
        nodes = h.unflatten(1, (n, self.config.expansion)).flatten(3)  # (B, N, n, HW)
        if self.config.node_attention:
            logits = self.node_attn(h).flatten(2)
            if self.config.attention_prior:
                logits = logits + self.attn_prior  # where on the crop each node's landmark lies
            gate = torch.softmax(logits, dim=-1)  # (B, N, HW), sums to 1 per node
            nodes = nodes * (gate * gate.shape[-1]).unsqueeze(2)  # a uniform gate leaves the features as they are
        nodes_in = nodes.flatten(2)
        gate_logits = None
        if self.config.visibility_gate:
            gate_logits = self.vis_head(nodes_in).squeeze(-1) + self.vis_bias
            opening = gate_logits.detach() if self.config.gate_from_cover_only else gate_logits
            gate = torch.sigmoid(opening) / _GATE_START_PROBABILITY  # 1 at the start
            hidden = self.gc_in(nodes_in * gate.unsqueeze(-1), adj)
        else:
            hidden = self.gc_in(nodes_in, adj)
        if context is not None:
            hidden = hidden + context
        hidden = self._bounded(hidden, 0)
        for layer, block in enumerate(self.blocks, 1):
            hidden = self._bounded(block(hidden, adj), layer)
        return self.gc_out(hidden, adj) + self.mean_shape, nodes_in, hidden, gate_logits

    @property
    def bounded_layers(self) -> int:
        """How many hidden layers ``hidden_bound`` covers: the graph head's input layer and blocks, then
        (with ``model.refine``) the refinement's. 0 for the FC head."""
        if self.config.head != "graph":
            return 0
        return 1 + len(self.blocks) + ((1 + len(self.refine_blocks)) if self.config.refine else 0)

    def set_hidden_bound(self, bound: torch.Tensor | None) -> None:
        """Bound each node's hidden features, per layer, to at most ``bound`` (L, N) in norm (a longer vector
        keeps its direction and is shortened; ``None`` removes the bound). The graph head is piecewise linear,
        so a feature far beyond anything seen in training is carried through every block and throws the
        points off the face; a bound measured on training crops (``training.calibrate.hidden_bound``) leaves
        those crops as they are and keeps such an input's features in range."""
        if bound is not None:
            expected = (self.bounded_layers, self.config.num_points)
            if not self.bounded_layers or tuple(bound.shape) != expected:
                raise ValueError(f"hidden bound must be {expected} for this model, got {tuple(bound.shape)}")
            if not bool((bound > 0).all()):
                raise ValueError("hidden bound must be positive")
            bound = bound.detach().float().to(self.mean_shape.device)
        self.register_buffer("hidden_bound", bound)

    @torch.no_grad()
    def hidden_norms(self, x: torch.Tensor) -> torch.Tensor:
        """(B, L, N): each node's hidden-feature norm at every bounded layer, for one batch (after any bound), in
        the model's current mode (call it in eval mode: in train mode BatchNorm would use and update batch statistics)."""
        if not self.bounded_layers:
            raise ValueError("only the graph head has bounded hidden layers")
        self._norm_log = []
        try:
            self._run(x, with_visibility=False)
            return torch.stack(self._norm_log, dim=1)
        finally:
            self._norm_log = None

    def _bounded(self, hidden: torch.Tensor, layer: int) -> torch.Tensor:
        if self.hidden_bound is not None:
            # In float32 under CUDA autocast too: a norm of a few hundred over the hidden width overflows float16.
            norm = torch.linalg.vector_norm(hidden.float(), dim=-1, keepdim=True)
            scale = torch.clamp(self.hidden_bound[layer].unsqueeze(-1) / norm.clamp_min(1e-6), max=1.0)
            hidden = hidden * scale.to(hidden.dtype)
        if self._norm_log is not None:
            self._norm_log.append(torch.linalg.vector_norm(hidden, dim=-1))
        return hidden

    def visibility_parameters(self) -> list[nn.Parameter]:
        """The parameters of the visibility output only (empty without one)."""
        if not self.config.visibility:
            return []
        params = list(self.vis_head.parameters())
        return params + ([self.vis_bias] if self.config.head == "graph" else [])

    def head_parameters(self) -> int:
        backbone = sum(p.numel() for p in self.backbone.parameters())
        return sum(p.numel() for p in self.parameters()) - backbone


def _drop_unused_blocks(backbone: nn.Module) -> None:
    """Drop the stages after the requested feature map where timm keeps them.

    timm's generic feature wrapper already stops at the last requested layer; its EfficientNet family
    wrapper (MobileNet, EfficientNet) builds and runs every block, so an earlier map would still pay for
    the later stages (and leave their weights without gradients). Kept block indices keep their names.
    """
    stage_out = getattr(backbone, "_stage_out_idx", None)
    blocks = getattr(backbone, "blocks", None)
    if not stage_out or not isinstance(blocks, nn.Sequential):
        return
    last = max(stage_out)
    if last < len(blocks):
        backbone.blocks = blocks[:last]


def _skip_blocks(backbone: nn.Module, names: tuple[str, ...]) -> None:
    """Replace each "stage.block" of ``names`` by the identity (``ModelConfig.skip_blocks``); a block that is
    missing or not residual (it changes the map's shape) is an error."""
    if not names:
        return
    blocks = getattr(backbone, "blocks", None)
    if not isinstance(blocks, nn.Sequential):
        raise ValueError(f"skip_blocks needs a backbone built of timm blocks (EfficientNet / MobileNet family), "
                         f"not {type(backbone).__name__}")
    for name in names:
        stage, index = (int(part) for part in name.split("."))
        if stage >= len(blocks) or index >= len(blocks[stage]):
            raise ValueError(f"skip_blocks: the backbone has no block {name} (its stages hold "
                             f"{[len(s) for s in blocks]} blocks)")
        if not getattr(blocks[stage][index], "has_skip", False):
            raise ValueError(f"skip_blocks: block {name} is not residual (it changes the map's channels or "
                             f"stride), so it cannot be left out")
        blocks[stage][index] = nn.Identity()


def build_model(config: ModelConfig, mask: np.ndarray, mean_shape: np.ndarray | None = None) -> SDFLModel:
    return SDFLModel(config, mask, mean_shape)
