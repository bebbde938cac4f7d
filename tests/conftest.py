"""Shared test set-up: headless Qt and the optional shared data folder."""
from __future__ import annotations

import os
from pathlib import Path

# Must be set before anything imports Qt (pytest-qt imports it while collecting).
os.environ["QT_QPA_PLATFORM"] = "offscreen"
# One intra-op thread: on a shared 2-core box OpenMP's spinning workers make the torch tests ~10x slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The shared data folder; the test is skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


def make_checkpoint(path: Path, head: str = "graph", num_points: int = 68, input_size: int = 64, seed: int = 0) -> Path:
    """A randomly initialised, small but complete sdfl checkpoint (for pipeline/CLI/GUI tests)."""
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
    config = ModelConfig(backbone="mobilenetv2_050", num_points=num_points, input_size=input_size, head=head)
    model = SDFLModel(config, mask, mean_shape).eval()
    # Trained models start from a zero output layer; give the test model one that responds to its input.
    last = model.gc_out.linear if head == "graph" else model.fc[-1]
    torch.nn.init.normal_(last.weight, std=0.02)
    info = ModelInfo(config=config, schema=get_schema(num_points).name, k=3, mask=mask, mean_shape=mean_shape,
                     name=f"test-{head}")
    save_checkpoint(path, model, info)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """Random-init 68-point SDFL (graph head) checkpoint, input 64 px."""
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny_sdfl.pt")


@pytest.fixture(scope="session")
def tiny_fc_checkpoint(tmp_path_factory) -> Path:
    """Random-init 68-point FC-twin checkpoint, input 64 px."""
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny_fc.pt", head="fc")


@pytest.fixture(autouse=True)
def _onnx_cache(tmp_path_factory, monkeypatch):
    """ONNX exports of test checkpoints go to a per-session temp cache, not ~/.cache."""
    monkeypatch.setenv("SDFL_CACHE", str(tmp_path_factory.getbasetemp() / "onnx-cache"))
