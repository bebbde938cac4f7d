"""Shared test set-up: headless Qt and the optional shared data folder."""
from __future__ import annotations

import os
from pathlib import Path

# Must be set before anything imports Qt (pytest-qt imports it while collecting).
os.environ["QT_QPA_PLATFORM"] = "offscreen"
# One intra-op thread: on a shared 2-core box OpenMP's spinning workers slow the torch tests many times over.
os.environ.setdefault("OMP_NUM_THREADS", "1")

# The tests use torch and mediapipe in one process, in any order: torch's native libraries load first
# (sdfl_core.devices).
from sdfl_core.devices import load_torch_native_first

load_torch_native_first(always=True)

import pytest  # noqa: E402
from model_factory import make_checkpoint  # noqa: E402  (tests/ is on sys.path; re-exported for tests)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The shared data folder; the test is skipped when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """Random-init 68-point SDFL (graph head) checkpoint, input 64 px."""
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny_sdfl.pt")


@pytest.fixture(scope="session")
def tiny_fc_checkpoint(tmp_path_factory) -> Path:
    """Random-init 68-point FC-twin checkpoint, input 64 px."""
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny_fc.pt", head="fc")


@pytest.fixture(scope="session")
def tiny_vis_checkpoint(tmp_path_factory) -> Path:
    """Random-init 68-point SDFL checkpoint with the per-point visibility output, input 64 px."""
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny_vis.pt", visibility=True)


@pytest.fixture(autouse=True)
def _onnx_cache(tmp_path_factory, monkeypatch):
    """ONNX exports of test checkpoints go to a per-session temp cache, not ~/.cache."""
    monkeypatch.setenv("SDFL_CACHE", str(tmp_path_factory.getbasetemp() / "onnx-cache"))
