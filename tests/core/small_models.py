"""Small random-init models shared by the ONNX-export and predictor tests."""
from __future__ import annotations

import numpy as np
import torch

from sdfl_core.checkpoint import ModelInfo
from sdfl_core.model import ModelConfig, SDFLModel

SIZE = 64


def ring_mask(n: int, k: int = 3) -> np.ndarray:
    mask = np.eye(n, dtype=bool)
    for d in range(1, k + 1):
        mask[np.arange(n), (np.arange(n) + d) % n] = True
    return mask


LOCAL = {"feature_level": -2, "node_attention": True}
"""The stride-16, node-attention graph head (``build("graph", LOCAL)``)."""


def build(head: str, config: dict | None = None, **info_fields) -> tuple[SDFLModel, ModelInfo]:
    """A 68-point model whose output depends on its input (the output layer and any node gate are
    re-randomised: trained models start from zeros there, which would make engine comparisons trivial)."""
    torch.manual_seed(0)
    cfg = ModelConfig(**{"backbone": "mobilenetv2_050", **(config or {})}, num_points=68, input_size=SIZE, head=head)
    mean = np.random.default_rng(0).uniform(0.2, 0.8, size=(68, 2)).astype(np.float32)
    model = SDFLModel(cfg, ring_mask(68), mean).eval()
    last = model.gc_out.linear if head == "graph" else model.fc[-1]
    torch.nn.init.normal_(last.weight, std=0.02)
    if cfg.node_attention:
        torch.nn.init.normal_(model.node_attn.weight, std=0.5)
    if cfg.attention_prior:
        torch.nn.init.normal_(model.attn_prior, std=1.0)
    if cfg.global_context:
        torch.nn.init.normal_(model.context[-1].weight, std=0.02)
    if cfg.refine_context:
        torch.nn.init.normal_(model.refine_context[-1].weight, std=0.02)
    if cfg.refine_self:
        for name, weight in model.named_parameters():
            if name.endswith("self_linear.weight"):
                torch.nn.init.normal_(weight, std=0.02)
    if cfg.refine:
        torch.nn.init.normal_((model.refine_out.linear if head == "graph" else model.refine_fc[-1]).weight, std=0.02)
    info = ModelInfo(config=cfg, schema="300w", k=3, mask=ring_mask(68), mean_shape=mean, **info_fields)
    return model, info
