"""Shipping a run: calibrated detector boxes, dev-test metrics, ONNX twin and a generated model card."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from sdfl_core.checkpoint import load_checkpoint
from sdfl_core.predictor import OnnxPredictor
from training.ship import ship, training_commands, write_model_card
from training.train import train

from test_train import tiny_config


@pytest.fixture(scope="module")
def shipped(tmp_path_factory, w300_folder):
    out = tmp_path_factory.mktemp("ship")
    config = tiny_config(w300_folder, out / "runs")
    config["data"]["test"] = [{"path": str(w300_folder), "format": "300w"}]
    best = train(config)
    target = out / "models" / "tiny.pt"
    metrics = ship(best.parent, target, calibration_faces=12)
    return target, metrics


def test_ship_writes_checkpoint_onnx_metrics_and_plot(shipped):
    target, metrics = shipped
    for path in (target, target.with_suffix(".onnx"), target.with_suffix(".json"), target.with_name("tiny_ced.png")):
        assert path.is_file() and path.stat().st_size > 0, path
    assert json.loads(target.with_suffix(".json").read_text()) == json.loads(json.dumps(metrics))
    assert metrics["onnx_max_abs_diff"] < 1e-4
    for protocol in ("gt", "detector"):
        report = metrics[f"faces/{protocol}"]
        assert report["count"] == 12 and 0 <= report["fr_10"] <= 1 and 0 <= report["auc_10"] <= 1


def test_shipped_files_carry_the_calibration_and_metrics(shipped):
    target, metrics = shipped
    _, info = load_checkpoint(target)
    assert info.name == "tiny"  # the shipped file's stem
    assert set(info.detector_box) == {"short", "full"}
    for cal in info.detector_box.values():
        assert set(cal) == {"dx", "dy", "scale"} and 0.5 < cal["scale"] < 2 and np.isfinite([cal["dx"], cal["dy"]]).all()
    assert info.metrics["dev_test"]["faces/gt"]["nme_io"] == pytest.approx(metrics["faces/gt"]["nme_io"])
    onnx_info = OnnxPredictor(target.with_suffix(".onnx")).info
    assert onnx_info.detector_box == info.detector_box
    np.testing.assert_array_equal(onnx_info.mask, info.mask)


def test_model_card_lists_the_measured_numbers(shipped, tmp_path):
    target, metrics = shipped
    card = tmp_path / "MODEL_CARD.md"
    write_model_card({"tiny": target}, card)
    text = card.read_text()
    assert f"{metrics['faces/gt']['nme_io'] * 100:.2f}" in text
    assert "non-commercial" in text and "tiny_ced.png" in text and "short-range detector" in text


def test_training_commands_follow_warm_restarts_back_to_the_first_stage(tmp_path):
    (tmp_path / "m.yaml").write_text(yaml.safe_dump({"name": "m"}))
    (tmp_path / "m_ft.yaml").write_text(yaml.safe_dump({"name": "m_ft", "train": {"init_from": "runs/m/best.pt"}}))
    s3 = {"name": "m_s3", "train": {"init_from": "assets/models/m.pt"}}
    assert training_commands("m_s3", s3, tmp_path) == [
        "sdfl train --config training/configs/m.yaml",
        "sdfl train --config training/configs/m_ft.yaml",
        "python -m training.ship --run runs/m_ft --out assets/models/m.pt",  # s3 starts from the shipped m_ft
        "sdfl train --config training/configs/m_s3.yaml",
    ]
    assert training_commands("m", {"name": "m"}, tmp_path) == ["sdfl train --config training/configs/m.yaml"]


def test_training_commands_of_a_stage_variant_follow_the_stage_before(tmp_path):
    (tmp_path / "m.yaml").write_text(yaml.safe_dump({"name": "m"}))
    (tmp_path / "m_ft.yaml").write_text(yaml.safe_dump({"name": "m_ft", "train": {"init_from": "assets/models/m.pt"}}))
    (tmp_path / "m_s3.yaml").write_text(yaml.safe_dump({"name": "m_s3", "train": {"init_from": "assets/models/m.pt"}}))
    variant = {"name": "m_s16_att", "train": {"init_from": "assets/models/m.pt"}}
    assert training_commands("m_s16_att", variant, tmp_path) == [
        "sdfl train --config training/configs/m.yaml",
        "python -m training.ship --run runs/m --out assets/models/m.pt",
        "sdfl train --config training/configs/m_ft.yaml",
        "python -m training.ship --run runs/m_ft --out assets/models/m.pt",
        "sdfl train --config training/configs/m_s3.yaml",
        "python -m training.ship --run runs/m_s3 --out assets/models/m.pt",
        "sdfl train --config training/configs/m_s16_att.yaml",
    ]
