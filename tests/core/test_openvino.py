"""The OpenVINO engine (``runners.OpenVinoRunner``) on the shipped ONNX exports, against ONNX Runtime."""
import threading
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from sdfl_core.assets import asset_path
from sdfl_core.checkpoint import CheckpointError
from sdfl_core.landmarker import Landmarker
from sdfl_core.runners import PRECISIONS, OnnxRunner, OpenVinoRunner, openvino_precision

pytest.importorskip("openvino")

MODELS = asset_path("models")


def crops(count: int, seed: int = 0) -> np.ndarray:
    """``count`` 128 px crops of the demo photo, each cut at another place and scale."""
    image = cv2.imread(str(asset_path("demo", "astronaut.jpg")))
    rng = np.random.default_rng(seed)
    h, w = image.shape[:2]
    out = []
    for _ in range(count):
        side = int(rng.integers(min(h, w) // 3, min(h, w)))
        y, x = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        out.append(cv2.resize(image[y:y + side, x:x + side], (128, 128), interpolation=cv2.INTER_AREA))
    return np.stack(out)


@pytest.mark.parametrize("name", ["sdfl_68", "fc_68"])
@pytest.mark.parametrize("count", [1, 3])
def test_float32_equals_onnx_runtime(name, count):
    """In float32 the engine gives ONNX Runtime's outputs on the same file, for the batch-of-one model and
    the any-batch one alike."""
    path = MODELS / f"{name}.onnx"
    ours, theirs = OpenVinoRunner(path, 1, precision="f32"), OnnxRunner(path, 1)
    assert ours.precision == "f32" and ours.engine == "openvino"
    assert Landmarker(ours).engine_label == "openvino f32" and Landmarker(theirs).engine_label == "onnxruntime f32"
    assert ours.info.config == theirs.info.config and ours.has_visibility == theirs.has_visibility
    batch = crops(count)
    for got, ref in zip(ours.predict(batch), theirs.predict(batch)):
        assert got.shape == ref.shape and got.dtype == np.float32
        np.testing.assert_allclose(got, ref, atol=2e-5, rtol=0)


def test_bfloat16_stays_close_to_float32():
    """bfloat16 (where the CPU has it; float32 elsewhere) moves the points by a small fraction of the crop."""
    path = MODELS / "sdfl_68.onnx"
    batch = crops(8, seed=1)
    fast = OpenVinoRunner(path, precision="auto").predict(batch)
    exact = OnnxRunner(path).predict(batch)
    shift = np.abs(fast[0] - exact[0])
    assert shift.max() < 0.02 and shift.mean() < 0.003  # crop units: 0.02 is 2.6 px of a 128 px crop
    assert np.abs(fast[1] - exact[1]).max() < 0.02  # edge weights
    # Visibility probabilities: these crops are mostly not faces, so many points sit near 0.5, where a
    # logit's rounding moves the probability most.
    moved = np.abs(fast[2] - exact[2])
    assert moved.max() < 0.2 and moved.mean() < 0.03


def test_outputs_outlive_the_next_inference():
    """The arrays returned are the caller's: the next inference, which reuses the request's buffers, leaves
    them as they were."""
    runner = OpenVinoRunner(MODELS / "sdfl_68.onnx", 1, precision="f32")
    first, second = crops(1, seed=2), crops(1, seed=3)
    kept = runner.predict(first)
    copies = [a.copy() for a in kept]
    runner.predict(second)
    for a, b in zip(kept, copies):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(kept[0], runner.predict(second)[0])


def test_threads_share_one_runner():
    """Threads calling one runner at once each get their own crops' results (one inference at a time)."""
    runner = OpenVinoRunner(MODELS / "sdfl_68.onnx", 1, precision="f32")
    batches = [crops(1, seed=s) for s in range(6)]
    expected = [runner.predict(b)[0] for b in batches]
    got: dict[int, np.ndarray] = {}

    def work(k: int) -> None:
        for _ in range(5):
            got[k] = runner.predict(batches[k])[0]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(batches))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for k, points in enumerate(expected):
        np.testing.assert_array_equal(got[k], points)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_bad_files_give_one_line_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="ONNX model not found"):
        OpenVinoRunner(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"definitely not protobuf" * 10)
    with pytest.raises(CheckpointError, match="not a loadable ONNX model"):
        OpenVinoRunner(junk)
    plain = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),), str(plain), dynamo=False)
    with pytest.raises(CheckpointError, match="not an sdfl export"):
        OpenVinoRunner(plain)


def test_precision_auto_follows_the_cpu():
    def core(*capabilities):
        return SimpleNamespace(get_property=lambda device, key: list(capabilities) if key == "OPTIMIZATION_CAPABILITIES" else None)

    assert openvino_precision(core("FP32", "BF16", "INT8")) == "bf16"
    assert openvino_precision(core("FP32", "INT8")) == "f32"
    assert openvino_precision(core("FP32"), "bf16") == "bf16"  # asked for, not looked up
    assert openvino_precision(core("FP32", "BF16"), "f32") == "f32"
    assert set(PRECISIONS) == {"auto", "f32", "bf16"}
    with pytest.raises(ValueError, match="precision must be one of auto, f32, bf16, got 'fp8'"):
        openvino_precision(core("FP32"), "fp8")


def test_metadata_is_read_where_openvino_keeps_it_or_with_onnx_runtime():
    """The sdfl metadata comes from OpenVINO's reader; a release that kept it elsewhere is read with ONNX
    Runtime instead, to the same map."""
    from sdfl_core.onnx_meta import META_KEY, SOURCE_KEY, onnx_metadata

    runner = OpenVinoRunner(MODELS / "sdfl_68.onnx", 1, precision="f32")
    expected = onnx_metadata(runner.path)
    assert {META_KEY, SOURCE_KEY} <= set(expected)
    assert runner._metadata() == expected
    runner._model = SimpleNamespace(get_rt_info=lambda *key: {})  # no 'framework' entry
    assert runner._metadata() == expected
