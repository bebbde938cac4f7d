"""Small but complete random-init checkpoints for pipeline / CLI / GUI tests.

A module of its own (not conftest.py) so test modules can import it: tests/training has a conftest
too, and `from conftest import ...` then depends on collection order."""
from __future__ import annotations

from pathlib import Path


def make_checkpoint(path: Path, head: str = "graph", num_points: int = 68, input_size: int = 64, seed: int = 0,
                    visibility: bool = False) -> Path:
    """A randomly initialised, small but complete sdfl checkpoint (for pipeline/CLI/GUI tests); with
    ``visibility`` it has the per-point visibility output (random too)."""
    import numpy as np
    import torch

    from sdfl_core.checkpoint import ModelInfo, save_checkpoint
    from sdfl_core.graph import topk_mask
    from sdfl_core.model import ModelConfig, SDFLModel
    from sdfl_core.schemas import get_schema

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    mask = topk_mask(np.abs(np.corrcoef(rng.normal(size=(50, num_points)), rowvar=False)), 3)
    # A plausible mean shape: the points on an ellipse inside the crop.
    angles = np.linspace(0, 2 * np.pi, num_points, endpoint=False)
    mean_shape = np.stack([0.5 + 0.25 * np.cos(angles), 0.5 + 0.3 * np.sin(angles)], 1).astype(np.float32)
    config = ModelConfig(backbone="mobilenetv2_050", num_points=num_points, input_size=input_size, head=head,
                         visibility=visibility)
    model = SDFLModel(config, mask, mean_shape).eval()
    # Trained models start from a zero output layer; give the test model one that responds to its input.
    last = model.gc_out.linear if head == "graph" else model.fc[-1]
    torch.nn.init.normal_(last.weight, std=0.02)
    info = ModelInfo(config=config, schema=get_schema(num_points).name, k=3, mask=mask, mean_shape=mean_shape,
                     name=f"test-{head}")
    save_checkpoint(path, model, info)
    return path
