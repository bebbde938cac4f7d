"""The optimizer's learning rates per parameter (``optim.backbone_lr_mult``, ``optim.lr_mults``)."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from sdfl_core.model import ModelConfig, SDFLModel  # noqa: E402
from training.train import param_groups  # noqa: E402

OPTIM = {"lr": 0.01, "backbone_lr_mult": 0.5}


def model() -> SDFLModel:
    cfg = ModelConfig(backbone="mobilenetv2_050", num_points=8, input_size=64, feature_level=-2, global_context=True)
    return SDFLModel(cfg, np.eye(8, dtype=bool) | np.roll(np.eye(8, dtype=bool), 1, axis=1))


def lr_of(groups: list[dict]) -> dict[int, float]:
    return {id(p): g["lr"] for g in groups for p in g["params"]}


def test_named_modules_get_their_own_rate_and_the_rest_keep_head_and_backbone_rates():
    m = model()
    groups = param_groups(m, {**OPTIM, "lr_mults": {"context.": 10}})
    lrs = lr_of(groups)
    assert len(lrs) == sum(1 for _ in m.parameters())  # every parameter, once
    for name, p in m.named_parameters():
        want = 0.1 if name.startswith("context.") else 0.005 if name.startswith("backbone.") else 0.01
        assert lrs[id(p)] == pytest.approx(want), name
    assert groups[0]["lr"] == pytest.approx(0.01)  # the head's group first, as resumed optimizer states expect
    assert lr_of(param_groups(m, OPTIM))[id(m.context[-1].weight)] == pytest.approx(0.01)


def test_without_lr_mults_the_groups_are_the_head_then_the_backbone_even_at_one_rate():
    m = model()
    for backbone_mult in (0.5, 1.0):  # a resumed optimizer state expects these two groups in this order
        head, backbone = param_groups(m, {"lr": 0.01, "backbone_lr_mult": backbone_mult})
        assert all(not n.startswith("backbone.") for n, p in m.named_parameters() if any(p is q for q in head["params"]))
        assert len(head["params"]) + len(backbone["params"]) == sum(1 for _ in m.parameters())
        assert backbone["lr"] == pytest.approx(0.01 * backbone_mult)


def test_a_prefix_that_names_no_parameter_is_refused():
    with pytest.raises(ValueError, match="optim.lr_mults names no trainable parameter: contxt"):
        param_groups(model(), {**OPTIM, "lr_mults": {"contxt": 10}})
