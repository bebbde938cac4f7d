"""Shipping a run: calibrated detector boxes, dev-test metrics, ONNX twin and a generated model card."""
from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from train_helpers import tiny_config

from sdfl_core.checkpoint import load_checkpoint
from sdfl_core.runners import OnnxRunner
from training.ship import ship, training_commands, write_model_card
from training.train import train

pytestmark = pytest.mark.slow  # every test here trains or exports a model


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
    onnx_info = OnnxRunner(target.with_suffix(".onnx")).info
    assert onnx_info.detector_box == info.detector_box
    np.testing.assert_array_equal(onnx_info.mask, info.mask)


def test_a_shipped_graph_head_carries_its_hidden_bound_and_onnx_keeps_it(shipped):
    import torch

    from training.ship import HIDDEN_BOUND

    target, metrics = shipped
    model, info = load_checkpoint(target)
    assert info.config.head == "graph" and metrics["hidden_bound"] == HIDDEN_BOUND
    bound = model.hidden_bound
    assert bound is not None and tuple(bound.shape) == (model.bounded_layers, info.config.num_points)
    assert bool((bound > 0).all()) and torch.isfinite(bound).all()
    # The ONNX file carries the bound too: its points equal torch's with it, and torch's without it differ
    # once the bound is tight enough to cut.
    x = np.random.default_rng(0).normal(size=(2, 3, info.config.input_size, info.config.input_size)).astype(np.float32)
    model.set_hidden_bound(model.hidden_norms(torch.from_numpy(x)).amax(0) / 4)
    tight = target.parent / "tight.onnx"
    from sdfl_core.onnx_export import export_onnx
    export_onnx(model, info, tight)
    points = OnnxRunner(tight).run_tensor(x)[0]
    with torch.no_grad():
        np.testing.assert_allclose(points, model(torch.from_numpy(x))[0].numpy(), atol=1e-4)
        model.set_hidden_bound(None)
        assert not np.allclose(points, model(torch.from_numpy(x))[0].numpy(), atol=1e-4)


def test_the_shipped_bound_is_the_calibration_s_quantile_of_the_training_crops(shipped):
    import torch

    from training.calibrate import hidden_bound, hidden_norms, training_crops
    from training.ship import HIDDEN_BOUND

    target, _ = shipped
    model, info = load_checkpoint(target)
    config = info.train_config
    shipped_bound = model.hidden_bound.clone()
    model.set_hidden_bound(None)  # measured on the model without one, as training.ship does
    # ship measured it on the run's float32 weights; these are the shipped float16 ones
    torch.testing.assert_close(hidden_bound(model, info, config, **HIDDEN_BOUND), shipped_bound, rtol=5e-2, atol=1e-3)
    norms = hidden_norms(model, training_crops(config, info, 6))
    assert norms.shape == (6, model.bounded_layers, info.config.num_points)
    torch.testing.assert_close(hidden_bound(model, info, config, faces=6, quantile=0.5, margin=3.0),
                               torch.quantile(norms, 0.5, dim=0) * 3.0)
    # skip takes the next faces of the same shuffled split
    later = hidden_norms(model, training_crops(config, info, 3, skip=3))
    torch.testing.assert_close(later, norms[3:])
    assert not torch.allclose(later, norms[:3])
    with pytest.raises(ValueError, match="quantile"):
        hidden_bound(model, info, config, faces=6, quantile=0.0)
    with pytest.raises(ValueError, match="faces must be at least 1"):
        training_crops(config, info, 0)


def test_card_describes_the_hidden_bound():
    from training.ship import HIDDEN_BOUND, bound_text

    assert bound_text("fc_68", {"calibration": {}}) == []
    (line,) = bound_text("sdfl_68", {"hidden_bound": HIDDEN_BOUND})
    assert line.startswith("`sdfl_68` bounds each node's hidden features") and "2x their 99th-percentile" in line
    assert "2048 training crops" in line


def test_model_card_lists_the_measured_numbers(shipped, tmp_path):
    target, metrics = shipped
    card = tmp_path / "MODEL_CARD.md"
    write_model_card({"tiny": target}, card, configs=target.parent.parent / "runs")
    text = card.read_text()
    assert f"{metrics['faces/gt']['nme_io'] * 100:.2f}" in text
    assert "non-commercial" in text and "tiny_ced.png" in text and "short-range detector" in text


def test_training_commands_follow_warm_starts_back_to_the_first_stage(tmp_path):
    (tmp_path / "base.yaml").write_text(yaml.safe_dump({"optim": {"epochs": 3}}))
    (tmp_path / "m.yaml").write_text(yaml.safe_dump({"base": "base.yaml", "name": "m"}))
    (tmp_path / "m_vis.yaml").write_text(yaml.safe_dump({"base": "m.yaml", "name": "m_vis",
                                                         "train": {"init_from": "runs/m/best.pt"}}))
    assert training_commands("m_vis", tmp_path) == [
        f"sdfl train --config {(tmp_path / 'm.yaml').as_posix()}",
        f"sdfl train --config {(tmp_path / 'm_vis.yaml').as_posix()}",
    ]
    assert training_commands("m", tmp_path) == [f"sdfl train --config {(tmp_path / 'm.yaml').as_posix()}"]


def test_training_commands_include_a_distillation_teacher_from_another_run(tmp_path):
    (tmp_path / "a.yaml").write_text(yaml.safe_dump({"name": "a"}))
    (tmp_path / "b.yaml").write_text(yaml.safe_dump({"name": "b", "train": {"init_from": "runs/a/best.pt"}}))
    (tmp_path / "t.yaml").write_text(yaml.safe_dump({"name": "t", "train": {"init_from": "runs/a/best.pt"}}))
    (tmp_path / "b_d.yaml").write_text(yaml.safe_dump({"name": "b_d", "train": {"init_from": "runs/b/best.pt"},
                                                       "distill": {"weight": 0.5, "teacher": "runs/t/best.pt"}}))
    # a comes once, though both the warm start and the teacher start from it.
    assert training_commands("b_d", tmp_path) == [
        f"sdfl train --config {(tmp_path / name).as_posix()}" for name in ("a.yaml", "b.yaml", "t.yaml", "b_d.yaml")]
    (tmp_path / "b_x.yaml").write_text(yaml.safe_dump({"name": "b_x", "distill": {"weight": 0.5,
                                                                                  "teacher": "assets/models/m.pt"}}))
    with pytest.raises(ValueError, match="distill.teacher 'assets/models/m.pt' is not a run of this chain"):
        training_commands("b_x", tmp_path)


def test_a_stage_that_starts_from_a_shipped_file_cannot_be_rebuilt(tmp_path):
    (tmp_path / "m_s3.yaml").write_text(yaml.safe_dump({"name": "m_s3", "train": {"init_from": "assets/models/m.pt"}}))
    with pytest.raises(ValueError, match="cannot be rebuilt"):
        training_commands("m_s3", tmp_path)
    (tmp_path / "m_s4.yaml").write_text(yaml.safe_dump({"name": "m_s4", "train": {"init_from": "runs/gone/best.pt"}}))
    with pytest.raises(FileNotFoundError, match="no config for run 'gone'"):
        training_commands("m_s4", tmp_path)


def test_the_shipped_chain_starts_from_imagenet_and_the_card_names_existing_configs():
    import re
    from pathlib import Path

    from training.config import load_config

    repo = Path(__file__).resolve().parents[2]
    configs = repo / "training" / "configs"
    for name in ("sdfl_68", "fc_68"):
        _, info = load_checkpoint(repo / "assets" / "models" / f"{name}.pt")
        run = info.train_config["name"]
        chain = training_commands(run, configs)
        first = load_config(configs / f"{chain[0].split('/')[-1]}")
        assert first["model"]["pretrained"] and not first["train"]["init_from"]
    card = (repo / "assets" / "models" / "MODEL_CARD.md").read_text()
    named = re.findall(r"--config (\S+\.yaml)", card)
    assert named, "the model card names no training command"
    for path in named:
        assert (repo / path).is_file(), path


def test_card_says_when_the_head_reads_a_resampled_map():
    from types import SimpleNamespace

    from sdfl_core.model import ModelConfig
    from training.ship import resample_text

    def info(**kw):
        config = ModelConfig(backbone="mobilenetv2_050", feature_level=-2, **kw)
        return SimpleNamespace(config=config, mask=np.eye(68, dtype=bool), mean_shape=None)

    assert resample_text(info(input_size=128)) == ""
    assert resample_text(info(input_size=128, head_side=8)) == ""  # the map's own side: nothing resampled
    assert resample_text(info(input_size=112, head_side=8)) == (
        " (7 x 7 at 112 px, resampled to 8 x 8 for the head: `model.head_side`)")


def test_card_names_the_backbone_blocks_a_model_leaves_out():
    from sdfl_core.model import ModelConfig
    from training.ship import skipped_text

    assert skipped_text(ModelConfig()) == ""
    assert skipped_text(ModelConfig(skip_blocks=["4.2"])) == " without its residual block 4.2 (`model.skip_blocks`)"
    assert skipped_text(ModelConfig(skip_blocks=["3.1", "3.2", "4.1"])) == (
        " without its residual blocks 3.1, 3.2 and 4.1 (`model.skip_blocks`)")


def test_card_gives_the_width_of_the_global_context_code():
    from sdfl_core.model import ModelConfig
    from training.ship import context_text

    assert "one FC layer of 256 units over the flattened map" in context_text("sdfl_68", ModelConfig(global_context=True))
    line = context_text("sdfl_68", ModelConfig(global_context=True, context_width=32))
    assert line.startswith("`sdfl_68` also gives each node a code of the whole feature map")
    assert "one FC layer of 32 units" in line


def test_card_describes_the_node_attention_and_its_position_prior():
    from sdfl_core.model import ModelConfig
    from training.ship import attention_text

    assert attention_text("fc_68", ModelConfig(head="fc")) == []
    (gate,) = attention_text("sdfl_68", ModelConfig(node_attention=True))
    assert gate.startswith("`sdfl_68` gates each node's features") and "`model.node_attention`" in gate
    lines = attention_text("sdfl_68", ModelConfig(node_attention=True, attention_prior=True))
    assert lines[0] == gate and len(lines) == 2 and "`model.attention_prior`" in lines[1]


def test_card_says_which_runs_started_off_the_chain(tmp_path):
    from training.ship import off_chain_starts, off_chain_text

    (tmp_path / "m2.yaml").write_text(yaml.safe_dump({"name": "m2", "train": {"init_from": "runs/m1/best.pt"}}))
    # m_vis <- runs/m2 <- a shipped file (made by a run that started from runs/m1) <- ...
    provenance = {"parent": {"path": "runs/m2/best.pt", "sha256": "a" * 64, "provenance": {
        "parent": {"path": "assets/models/m.pt", "sha256": "b" * 64, "provenance": {
            "parent": {"path": "runs/m1/best.pt", "sha256": "c" * 64, "provenance": {}}}}}}}
    assert off_chain_starts("m_vis", provenance) == [
        {"run": "m2", "file": "assets/models/m.pt", "sha256": "b" * 64, "file_parent": "runs/m1/best.pt"}]
    text = off_chain_text([("m_vis", provenance)], tmp_path)
    assert "`m2` was started from `assets/models/m.pt`" in text and "`bbbbbbbbbbbb...`" in text
    assert "had started from `runs/m1/best.pt`" in text and "not from `runs/m1/best.pt` as its config says" in text
    # The config names the run that shipped file came from, rounded as the file held it: rebuilt, and said so.
    (tmp_path / "m2.yaml").write_text(yaml.safe_dump({"name": "m2", "train": {"init_from": "runs/m1/best.pt",
                                                                                "init_half": True}}))
    text = off_chain_text([("m_vis", provenance)], tmp_path)
    assert text.startswith("; where a shipped run was started from a shipped file, its config starts from the run that "
                           "file came from, rounded to float16 as the file held it (`train.init_half`): the shipped run "
                           "`m2` was started from `assets/models/m.pt`") and "but" not in text
    assert "shipped from a run that had started from `runs/m1/best.pt`)" in text
    # Rounding another run than the one the file came from rebuilds nothing.
    (tmp_path / "m2.yaml").write_text(yaml.safe_dump({"name": "m2", "train": {"init_from": "runs/m0/best.pt",
                                                                                "init_half": True}}))
    assert "not from `runs/m0/best.pt` as its config says" in off_chain_text([("m_vis", provenance)], tmp_path)
    # A chain of runs only, back to the ImageNet start: nothing to say.
    on_chain = {"parent": {"path": "runs/m2/best.pt", "sha256": "a" * 64, "provenance": {
        "parent": {"path": "runs/m1/best.pt", "sha256": "c" * 64, "provenance": {"backbone": {}}}}}}
    assert off_chain_starts("m_vis", on_chain) == [] and off_chain_text([("m_vis", on_chain)], tmp_path) == ""


def test_remeasure_rewrites_the_dev_test_rows_and_leaves_the_weights(shipped, tmp_path):
    import shutil

    from training.ship import remeasure

    target, metrics = shipped
    copy = tmp_path / "tiny.pt"
    for suffix in (".pt", ".onnx", ".json"):
        shutil.copy(target.with_suffix(suffix), copy.with_suffix(suffix))
    stale = {**metrics, "faces/detector": {**metrics["faces/detector"], "nme_io": 9.0}}  # a row from older code
    copy.with_suffix(".json").write_text(json.dumps(stale))
    weights = copy.read_bytes(), copy.with_suffix(".onnx").read_bytes()
    again = remeasure(copy)
    assert (copy.read_bytes(), copy.with_suffix(".onnx").read_bytes()) == weights
    assert json.loads(copy.with_suffix(".json").read_text()) == json.loads(json.dumps(again))
    assert again["faces/detector"]["nme_io"] == pytest.approx(metrics["faces/detector"]["nme_io"])  # measured, not kept
    assert again["faces/gt"] == pytest.approx(metrics["faces/gt"])
    assert again["calibration"] == metrics["calibration"]  # the rest of the record is kept
    assert copy.with_name("tiny_ced.png").is_file()
    copy.with_suffix(".json").unlink()
    with pytest.raises(FileNotFoundError, match="needs a model that training.ship shipped"):
        remeasure(copy)
