import numpy as np
import pytest
import torch

from sdfl_core.checkpoint import CheckpointError, save_checkpoint
from sdfl_core.predictor import OnnxPredictor, TorchPredictor, default_weights, load_predictor

from small_models import SIZE, build  # noqa: E402  (tests/core is on sys.path)


def test_default_weights_unknown_kind():
    with pytest.raises(ValueError, match="unknown shipped model 'big'"):
        default_weights("big")


def test_torch_predictor_rejects_bad_crops():
    model, info = build("fc")
    with pytest.raises(ValueError, match=r"crops must be \(B, S, S, 3\) uint8 BGR"):
        TorchPredictor(model, info).predict(np.zeros((1, SIZE, SIZE, 3), np.float32))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_non_sdfl_onnx_raises(tmp_path):
    path = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),), str(path), dynamo=False)
    with pytest.raises(CheckpointError, match="not an sdfl export"):
        OnnxPredictor(path)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"definitely not protobuf" * 10)
    with pytest.raises(CheckpointError, match="not a loadable ONNX model"):
        OnnxPredictor(junk)
    with pytest.raises(FileNotFoundError, match="ONNX model not found"):
        OnnxPredictor(tmp_path / "missing.onnx")


def test_load_predictor_cpu_uses_onnx_and_matches_torch(tmp_path, monkeypatch):
    monkeypatch.setenv("SDFL_CACHE", str(tmp_path / "cache"))
    model, info = build("graph")
    weights = tmp_path / "weights.pt"
    save_checkpoint(weights, model, info)
    pred = load_predictor(weights, device="cpu")
    assert isinstance(pred, OnnxPredictor)
    assert pred.path.parent == tmp_path / "cache"
    crops = np.random.default_rng(0).integers(0, 256, size=(2, SIZE, SIZE, 3), dtype=np.uint8)
    ref = TorchPredictor(model, info, "cpu").predict(crops)
    got = pred.predict(crops)
    for a, b in zip(ref, got):
        np.testing.assert_allclose(b, a, atol=1e-4, rtol=0)
    # The second load reuses the cached export.
    assert load_predictor(weights, device="cpu").path == pred.path
    assert len(list((tmp_path / "cache").glob("*.onnx"))) == 1
    # An .onnx file loads directly; torch cannot run it.
    assert isinstance(load_predictor(pred.path, device="cpu"), OnnxPredictor)
    with pytest.raises(ValueError, match="runs on ONNX Runtime only"):
        load_predictor(pred.path, device="cpu", engine="torch")
    assert isinstance(load_predictor(weights, device="cpu", engine="torch"), TorchPredictor)


def test_load_predictor_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found"):
        load_predictor(tmp_path / "missing.pt", device="cpu")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError):
        load_predictor(bad, device="cpu")
    model, info = build("fc")
    weights = tmp_path / "w.pt"
    save_checkpoint(weights, model, info)
    with pytest.raises(ValueError, match="engine must be"):
        load_predictor(weights, device="cpu", engine="tensorrt")
    with pytest.raises(ValueError, match="device must be"):
        load_predictor(weights, device="tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_load_predictor_cuda_without_cuda(tmp_path):
    model, info = build("fc")
    weights = tmp_path / "w.pt"
    save_checkpoint(weights, model, info)
    with pytest.raises(ValueError, match="CUDA"):
        load_predictor(weights, device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_torch_predictor_on_cuda(tmp_path):
    model, info = build("graph")
    weights = tmp_path / "w.pt"
    save_checkpoint(weights, model, info)
    crops = np.random.default_rng(0).integers(0, 256, size=(2, SIZE, SIZE, 3), dtype=np.uint8)
    ref = TorchPredictor(build("graph")[0], info, "cpu").predict(crops)
    pred = load_predictor(weights, device="cuda")
    assert isinstance(pred, TorchPredictor) and pred.device.type == "cuda"
    got = pred.predict(crops)
    assert got[0].dtype == np.float32 and got[0].shape == (2, 68, 2)
    np.testing.assert_allclose(got[0], ref[0], atol=2e-2)  # autocast runs in float16
