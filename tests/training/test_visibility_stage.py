"""The visibility output: trained against the augmentation's occluder cover, as a frozen-landmark stage or
jointly; provenance of warm starts."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from train_helpers import read_metrics, tiny_config

from sdfl_core.checkpoint import load_checkpoint
from training.train import train, visibility_loss

pytestmark = pytest.mark.slow  # every test here trains or exports a model


@pytest.fixture(scope="module")
def parent(tmp_path_factory, w300_folder):
    out = tmp_path_factory.mktemp("vis_runs")
    return train(tiny_config(w300_folder, out, optim={"epochs": 1}))


def test_visibility_stage_changes_nothing_but_the_visibility_output(tmp_path, w300_folder, parent):
    config = tiny_config(w300_folder, tmp_path, model={"visibility": True},
                         augment={"occlusion": 1.0, "occlusion_area": 0.3},
                         train={"init_from": str(parent), "init_partial": True, "trainable": "visibility"})
    config["name"] = "tiny_vis"
    best = train(config)
    before, _ = load_checkpoint(parent)
    after, info = load_checkpoint(best)
    assert info.config.visibility
    # Every tensor the parent has (weights and BatchNorm statistics) is exactly the parent's.
    for key, value in before.state_dict().items():
        torch.testing.assert_close(after.state_dict()[key], value, rtol=0, atol=0, msg=key)
    changed = [k for k, v in after.state_dict().items() if k.startswith("vis_")]
    assert changed and all(k not in before.state_dict() for k in changed)
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        coords, adj, vis = after.forward_with_visibility(x)
        torch.testing.assert_close(coords, before(x)[0])
    assert vis.shape == (2, 68)
    rows = read_metrics(best.parent)
    assert all(0.0 <= float(r["val_vis_auroc"]) <= 1.0 for r in rows)
    assert info.metrics["val_vis_auroc"] == pytest.approx(max(float(r["val_vis_auroc"]) for r in rows), abs=1e-4)
    assert info.provenance["parent"]["sha256"] and info.provenance["parent"]["path"] == str(parent)
    assert len(info.provenance["config_sha256"]) == 64


def test_joint_visibility_training_runs_for_both_heads(tmp_path, w300_folder):
    for head in ("graph", "fc"):
        config = tiny_config(w300_folder, tmp_path / head, model={"visibility": True, "head": head},
                             train={"max_steps": 3})
        _, info = load_checkpoint(train(config))
        assert info.config.visibility and info.config.head == head
        assert 0.0 <= info.metrics["val_vis_auroc"] <= 1.0


def test_visibility_stage_needs_the_visibility_output(tmp_path, w300_folder, parent):
    config = tiny_config(w300_folder, tmp_path, train={"init_from": str(parent), "init_partial": True,
                                                       "trainable": "visibility"})
    with pytest.raises(ValueError, match="needs model.visibility: true"):
        train(config)


def test_visibility_stage_refuses_a_gated_model(tmp_path, w300_folder, parent):
    # Training the gate alone would move the landmarks, which a visibility stage promises to keep.
    config = tiny_config(w300_folder, tmp_path, model={"visibility": True, "visibility_gate": True},
                         train={"init_from": str(parent), "init_partial": True, "trainable": "visibility"})
    with pytest.raises(ValueError, match="under model.visibility_gate the visibility output gates"):
        train(config)


def test_visibility_loss_known_values():
    logits = torch.tensor([[0.0, 10.0, -10.0]])
    occluded = torch.tensor([[1.0, 0.0, 1.0]])
    # log 2 for the undecided point, ~0 for the two confident right answers
    assert float(visibility_loss(logits, occluded)) == pytest.approx(np.log(2) / 3, abs=1e-4)
    assert float(visibility_loss(-logits, occluded)) > 6
