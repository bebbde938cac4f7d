import dataclasses
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from sdfl_core import checkpoint as ckpt
from sdfl_core.checkpoint import (
    CheckpointError,
    ModelInfo,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from sdfl_core.model import ModelConfig, SDFLModel


def ring_mask(n: int, k: int = 3) -> np.ndarray:
    mask = np.eye(n, dtype=bool)
    for d in range(1, k + 1):
        mask[np.arange(n), (np.arange(n) + d) % n] = True
    return mask


@pytest.fixture(scope="module")
def trained():
    """A random-init model with non-trivial BN statistics, and its info."""
    torch.manual_seed(0)
    cfg = ModelConfig(backbone="mobilenetv2_050", num_points=29, input_size=64)
    mean = np.random.default_rng(0).uniform(0.2, 0.8, size=(29, 2)).astype(np.float32)
    model = SDFLModel(cfg, ring_mask(29), mean)
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, 64, 64))  # move BN running stats away from their defaults
    model.eval()
    info = ModelInfo(config=cfg, schema="cofw", k=3, mask=ring_mask(29), mean_shape=mean, crop_scale=1.3,
                     detector_box={"short": {"dx": 0.1, "dy": -0.05, "scale": 1.2}}, train_config={"lr": 0.1},
                     metrics={"nme_io": 0.05}, name="tiny")
    return model, info


def x_batch() -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(1).normal(size=(2, 3, 64, 64)).astype(np.float32))


def test_round_trip_identical_outputs_and_info(tmp_path, trained):
    model, info = trained
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, info, extra={"epoch": 3})
    loaded, info2 = load_checkpoint(path)
    assert not loaded.training
    with torch.no_grad():
        for a, b in zip(model(x_batch()), loaded(x_batch())):
            torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert info2.config == info.config
    np.testing.assert_array_equal(info2.mask, info.mask)
    np.testing.assert_array_equal(info2.mean_shape, info.mean_shape)
    assert (info2.schema.name, info2.k, info2.crop_scale, info2.name) == ("cofw", 3, 1.3, "tiny")
    assert info2.detector_box == info.detector_box
    assert info2.train_config == {"lr": 0.1} and info2.metrics == {"nme_io": 0.05}
    assert info2.norm_mean == ckpt.IMAGENET_MEAN and info2.norm_std == ckpt.IMAGENET_STD
    assert read_checkpoint(path)["extra"] == {"epoch": 3}
    assert not list(tmp_path.glob("*.tmp"))  # the atomic save leaves no temp file behind


def test_a_hidden_bound_round_trips_and_a_wrong_one_is_refused(tmp_path, trained):
    model, info = trained
    bound = model.hidden_norms(x_batch()).amax(0) / 2  # tight enough to cut
    model.set_hidden_bound(bound)
    try:
        path = tmp_path / "bounded.pt"
        save_checkpoint(path, model, info)
        loaded, _ = load_checkpoint(path)
        torch.testing.assert_close(loaded.hidden_bound, bound, atol=0, rtol=0)
        with torch.no_grad():
            torch.testing.assert_close(loaded(x_batch())[0], model(x_batch())[0], atol=0, rtol=0)
        payload = torch.load(path, weights_only=True)
        payload["state_dict"]["hidden_bound"] = bound[:, :5]
        torch.save(payload, path)
        with pytest.raises(CheckpointError, match="weights do not match.*hidden bound must be"):
            load_checkpoint(path)
    finally:
        model.set_hidden_bound(None)


def test_half_round_trip_close(tmp_path, trained):
    model, info = trained
    path = tmp_path / "half.pt"
    save_checkpoint(path, model, info, half=True)
    assert read_checkpoint(path)["state_dict"]["mean_shape"].dtype == torch.float16
    assert path.stat().st_size < 0.7 * _full_size(tmp_path, model, info)
    loaded, _ = load_checkpoint(path)
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    with torch.no_grad():
        torch.testing.assert_close(loaded(x_batch())[0], model(x_batch())[0], atol=1e-2, rtol=0)


def test_half_keeps_a_tensor_float16_cannot_hold(tmp_path, trained):
    import copy

    model, info = trained
    model = copy.deepcopy(model)  # the fixture is shared
    # A BatchNorm running variance above float16's 65504 (the shipped FC twin's head once had one).
    name = next(k for k in model.state_dict() if k.endswith("running_var"))
    big = model.state_dict()[name].clone()
    big[0] = 7e4
    model.state_dict()[name].copy_(big)
    path = tmp_path / "half.pt"
    save_checkpoint(path, model, info, half=True)
    state = read_checkpoint(path)["state_dict"]
    assert state[name].dtype == torch.float32 and state["mean_shape"].dtype == torch.float16
    loaded, _ = load_checkpoint(path)
    torch.testing.assert_close(loaded.state_dict()[name], big)
    with torch.no_grad():
        assert torch.isfinite(loaded(x_batch())[0]).all()


def _full_size(tmp_path, model, info) -> int:
    path = tmp_path / "full.pt"
    save_checkpoint(path, model, info)
    return path.stat().st_size


def test_file_loads_with_weights_only(tmp_path, trained):
    model, info = trained
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, info)
    payload = torch.load(path, weights_only=True)
    assert payload["format"] == ckpt.FORMAT and payload["version"] == ckpt.VERSION


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_corrupt_file(tmp_path):
    path = tmp_path / "junk.pt"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("content", [b"junk" * 50, b"\x80\x02}q\x00.", b"PK\x03\x04" + b"\x00" * 60, b""])
def test_garbage_files(tmp_path, content):
    path = tmp_path / "garbage.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="not a readable checkpoint|is not an sdfl checkpoint"):
        load_checkpoint(path)


def test_truncated_file(tmp_path, trained):
    model, info = trained
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, info)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)


def test_foreign_torch_file(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"a": 1}, path)
    with pytest.raises(CheckpointError, match="is not an sdfl checkpoint"):
        load_checkpoint(path)
    torch.save(torch.zeros(3), path)
    with pytest.raises(CheckpointError, match="is not an sdfl checkpoint"):
        load_checkpoint(path)


def test_version_mismatch(tmp_path, monkeypatch, trained):
    model, info = trained
    path = tmp_path / "future.pt"
    monkeypatch.setattr(ckpt, "VERSION", 99)
    save_checkpoint(path, model, info)
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match=r"checkpoint version 99, this sdfl reads version 1"):
        load_checkpoint(path)


def test_expect_points_mismatch(tmp_path, trained):
    model, info = trained
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, info)
    assert load_checkpoint(path, expect_points=29)[1].config.num_points == 29
    with pytest.raises(CheckpointError, match=r"predicts 29 points \(cofw\) but 68 are needed"):
        load_checkpoint(path, expect_points=68)


def test_schema_point_count_mismatch(tmp_path, trained):
    model, info = trained
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, dataclasses.replace(info, schema="300w"))
    with pytest.raises(CheckpointError, match="schema 300w has 68 points but the model has 29"):
        load_checkpoint(path)


def saved_then_edited(tmp_path, trained, edit) -> Path:
    """A checkpoint of ``trained`` whose saved payload ``edit`` changed in place."""
    model, info = trained
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, info)
    payload = torch.load(path, weights_only=True)
    edit(payload)
    torch.save(payload, path)
    return path


def test_malformed_metadata(tmp_path, trained):
    path = saved_then_edited(tmp_path, trained, lambda payload: payload["info"].pop("mask"))
    with pytest.raises(CheckpointError, match="metadata is incomplete or malformed"):
        load_checkpoint(path)


def test_weights_not_matching_model(tmp_path, trained):
    path = saved_then_edited(tmp_path, trained, lambda payload: payload["state_dict"].pop("gc_out.linear.weight"))
    with pytest.raises(CheckpointError, match="weights do not match"):
        load_checkpoint(path)


def test_saved_file_is_readable_by_others(tmp_path, trained):
    # mkstemp creates 0600 files; a shipped checkpoint must keep the usual umask permissions.
    model, info = trained
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, info)
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask
