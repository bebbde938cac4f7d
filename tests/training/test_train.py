"""The training loop end to end on a tiny 300W-style folder (CPU, seconds), the CLI, and calibration."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from synthetic_faces import make_300w_folder, write_pts
from train_helpers import read_metrics, tiny_config

from sdfl_core.checkpoint import load_checkpoint, read_checkpoint
from sdfl_core.cli import main
from sdfl_core.datasets import read_300w
from training.calibrate import calibrate_detector_box
from training.data import gather
from training.train import train

pytestmark = pytest.mark.slow  # every test here trains or exports a model


@pytest.fixture(scope="module")
def trained(tmp_path_factory, w300_folder):
    out = tmp_path_factory.mktemp("runs")
    config = tiny_config(w300_folder, out)
    best = train(config)
    return config, best


def test_train_writes_the_run_folder(trained):
    config, best = trained
    run = best.parent
    assert best == Path(config["train"]["out_dir"]) / "tiny" / "best.pt"
    for name in ("best.pt", "last.pt", "metrics.csv", "config.yaml", "graph.png"):
        assert (run / name).is_file() and (run / name).stat().st_size > 0, name
    assert (run / "graph.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert yaml.safe_load((run / "config.yaml").read_text()) == config
    rows = read_metrics(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    steps = [int(r["step"]) for r in rows]
    assert steps == [2, 4]  # 9 training faces, batches of 4, the last partial batch dropped
    for r in rows:
        assert math.isfinite(float(r["train_loss"])) and 0 < float(r["val_nme_io"]) < 5
    assert float(rows[-1]["best_val_nme_io"]) == min(float(r["val_nme_io"]) for r in rows)


def test_best_checkpoint_carries_everything_inference_needs(trained):
    config, best = trained
    model, info = load_checkpoint(best, expect_points=68)
    assert info.schema.name == "300w" and info.k == 3 and info.name == "tiny"
    assert info.config.backbone == "mobilenetv2_050" and info.config.input_size == 64 and info.config.head == "graph"
    assert info.mask.shape == (68, 68) and info.mask.dtype == bool and info.mask.sum(axis=1).min() >= 3
    assert info.mean_shape.shape == (68, 2) and 0.1 < info.mean_shape.min() and info.mean_shape.max() < 0.9
    assert info.crop_scale == pytest.approx(1.4)
    assert info.train_config == config
    assert set(info.metrics) >= {"val_nme_io", "epoch", "step"}
    rows = read_metrics(best.parent)
    assert info.metrics["val_nme_io"] == pytest.approx(float(rows[-1]["best_val_nme_io"]), abs=1e-4)
    # best.pt is for shipping: no optimizer state.
    assert "extra" not in read_checkpoint(best)
    import torch

    with torch.no_grad():
        pred, _ = model(torch.zeros(1, 3, 64, 64))
    assert pred.shape == (1, 68, 2) and torch.isfinite(pred).all()


def test_resume_from_last_continues_with_the_next_epoch(trained, tmp_path):
    import shutil

    config, best = trained
    run = tmp_path / "runs" / "tiny"
    shutil.copytree(best.parent, run)
    config = {**config, "train": {**config["train"], "out_dir": str(tmp_path / "runs")},
              "optim": {**config["optim"], "epochs": 3}}
    extra = read_checkpoint(run / "last.pt")["extra"]
    assert extra["epoch"] == 1 and extra["step"] == 4 and "optimizer" in extra
    train(config, resume=str(run / "last.pt"))
    rows = read_metrics(run)
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert [int(r["step"]) for r in rows] == [2, 4, 6]
    extra = read_checkpoint(run / "last.pt")["extra"]
    assert extra["epoch"] == 2 and extra["step"] == 6


def test_resume_of_a_finished_run_says_so(trained, tmp_path):
    config, best = trained
    config = {**config, "train": {**config["train"], "out_dir": str(tmp_path)}}
    with pytest.raises(ValueError, match="already finished.*optim.epochs"):
        train(config, resume=str(best.parent / "last.pt"))


def test_resume_from_best_is_refused(trained, tmp_path):
    config, best = trained
    config = {**config, "train": {**config["train"], "out_dir": str(tmp_path)}}
    with pytest.raises(ValueError, match="no optimizer state.*last.pt"):
        train(config, resume=str(best))


def test_init_from_a_checkpoint_warm_starts_the_weights(trained, tmp_path):
    import torch

    config, best = trained
    config = {**config, "name": "warm", "train": {**config["train"], "out_dir": str(tmp_path), "init_from": str(best),
                                                  "max_steps": 1}, "optim": {**config["optim"], "epochs": 1, "lr": 0.0}}
    warm = train(config)
    start, _ = load_checkpoint(best)
    after, _ = load_checkpoint(warm)
    # lr 0: the warm-started weights are the checkpoint's (BN running stats move, weights do not).
    torch.testing.assert_close(after.gc_out.linear.weight, start.gc_out.linear.weight)


@pytest.fixture
def teachers(monkeypatch) -> list:
    """The models every CropMeanTeacher made during the test was built on, in order."""
    import training.train as train_module

    made = []
    teacher_init = train_module.CropMeanTeacher.__init__

    def record(self, model, *args, **kwargs):
        made.append(model)
        teacher_init(self, model, *args, **kwargs)

    monkeypatch.setattr(train_module.CropMeanTeacher, "__init__", record)
    return made


def test_init_from_a_shipped_file_leaves_its_hidden_bound_behind(trained, tmp_path, teachers):
    import torch

    from sdfl_core.checkpoint import save_checkpoint

    config, best = trained
    model, info = load_checkpoint(best)
    x = torch.zeros(1, 3, info.config.input_size, info.config.input_size)
    model.set_hidden_bound(model.hidden_norms(x).amax(0) + 1)
    shipped = tmp_path / "shipped.pt"
    save_checkpoint(shipped, model, info, half=True)
    config = {**config, "name": "from_shipped", "train": {**config["train"], "out_dir": str(tmp_path), "max_steps": 1,
                                                          "init_from": str(shipped)}, "optim": {**config["optim"], "epochs": 1},
              "distill": {**config["distill"], "weight": 0.5, "teacher": "", "crops": 1}}
    warm, _ = load_checkpoint(train(config))
    assert warm.hidden_bound is None and "hidden_bound" not in torch.load(shipped.parent / "from_shipped" / "best.pt",
                                                                          weights_only=True)["state_dict"]
    # The teacher (the same file, by default) runs without it too: the run the file was shipped from had none.
    assert len(teachers) == 1 and teachers[0].hidden_bound is None


def test_init_from_another_architecture_is_refused(trained, tmp_path):
    config, best = trained
    config = {**config, "model": {**config["model"], "input_size": 96},
              "train": {**config["train"], "out_dir": str(tmp_path), "init_from": str(best)}}
    with pytest.raises(ValueError, match="another architecture"):
        train(config)


def test_init_partial_copies_the_shared_backbone_into_another_feature_level(trained, tmp_path):
    import torch

    config, best = trained
    config = {**config, "name": "partial", "model": {**config["model"], "feature_level": -2},
              "train": {**config["train"], "out_dir": str(tmp_path), "init_from": str(best), "init_partial": True,
                        "max_steps": 1}, "optim": {**config["optim"], "epochs": 1, "lr": 0.0}}
    warm = train(config)
    start, _ = load_checkpoint(best)
    after, info = load_checkpoint(warm)
    assert info.config.feature_level == -2
    # The stem and the kept blocks are the checkpoint's; the embedding reads another map, so it is new.
    torch.testing.assert_close(after.backbone.conv_stem.weight, start.backbone.conv_stem.weight)
    torch.testing.assert_close(after.backbone.blocks[4][0].conv_pw.weight, start.backbone.blocks[4][0].conv_pw.weight)
    assert after.embed[0].weight.shape != start.embed[0].weight.shape


def test_refine_stage_warm_starts_from_its_first_stage_and_learns_offsets(trained, tmp_path):
    import torch

    config, best = trained
    config = {**config, "name": "refine", "model": {**config["model"], "refine": True},
              "train": {**config["train"], "out_dir": str(tmp_path), "init_from": str(best), "init_partial": True,
                        "max_steps": 3}, "optim": {**config["optim"], "epochs": 1}}
    refined = train(config)
    start, _ = load_checkpoint(best)
    after, info = load_checkpoint(refined)
    assert info.config.refine and info.provenance["parent"]["path"] == str(best)
    # The new stage's output layer started at zero (the identity) and training moved it.
    assert after.refine_out.linear.weight.abs().sum() > 0
    assert after.gc_in.linear.weight.shape == start.gc_in.linear.weight.shape
    x = torch.zeros(1, 3, 64, 64)
    with torch.no_grad():
        coords, _, _, first = after.eval().forward_train(x, with_visibility=False)
    assert not torch.allclose(coords, first)


def test_ema_run_validates_and_ships_the_average_and_resumes_it(trained, tmp_path):
    import torch

    config, best = trained
    config = {**config, "name": "ema", "optim": {**config["optim"], "epochs": 2, "ema_decay": 0.5},
              "train": {**config["train"], "out_dir": str(tmp_path), "init_from": str(best), "max_steps": 0}}
    run_best = train({**config, "optim": {**config["optim"], "epochs": 1}})
    payload = torch.load(run_best.parent / "last.pt", weights_only=True)
    average = payload["extra"]["ema"]
    shipped, _ = load_checkpoint(run_best)
    # best.pt holds the moving average, which differs from the raw weights last.pt trains on.
    for name, value in shipped.state_dict().items():
        assert torch.equal(value, average[name]), name
    raw = payload["state_dict"]
    assert any(not torch.equal(raw[n], average[n]) for n in average if average[n].is_floating_point())
    # Resuming restores the average (a second epoch continues it; it does not restart from the raw weights).
    train(config, resume=str(run_best.parent / "last.pt"))
    resumed = torch.load(run_best.parent / "last.pt", weights_only=True)["extra"]["ema"]
    assert any(not torch.equal(resumed[n], average[n]) for n in average if average[n].is_floating_point())


@pytest.mark.parametrize("views", [{"crops": 5}, {"crops": 1, "flip": True}])
def test_distill_run_records_its_teacher(trained, tmp_path, views):
    from training.pretrained import sha256

    config, best = trained
    config = {**config, "name": "distill", "distill": {"weight": 1.0, "teacher": "", **views},
              "train": {**config["train"], "out_dir": str(tmp_path), "init_from": str(best), "max_steps": 2},
              "optim": {**config["optim"], "epochs": 1}}
    run_best = train(config)
    _, info = load_checkpoint(run_best)
    # The teacher defaults to the warm start, and the checkpoint names it by hash like its parent, with its views.
    assert info.provenance["teacher"] == {"path": str(best), "sha256": sha256(best), **views}
    assert info.provenance["parent"]["sha256"] == sha256(best)
    assert info.train_config["distill"]["weight"] == 1.0


def test_init_half_starts_from_the_warm_start_rounded_as_a_shipped_file_holds_it(trained, tmp_path, teachers):
    import torch

    config, best = trained
    config = {**config, "name": "rounded", "distill": {**config["distill"], "weight": 1.0, "teacher": "", "crops": 1},
              "train": {**config["train"], "out_dir": str(tmp_path), "init_from": str(best), "init_half": True,
                        "max_steps": 1}, "optim": {**config["optim"], "epochs": 1, "lr": 0.0}}
    _, info = load_checkpoint(train(config))
    start, _ = load_checkpoint(best)
    after, _ = load_checkpoint(tmp_path / "rounded" / "last.pt")
    weight = start.gc_out.linear.weight
    assert not torch.equal(weight.half().float(), weight)  # the rounding is visible in this tensor
    # lr 0: the run's weights are the warm start's in float16 (what training.ship writes), and so is the teacher's.
    torch.testing.assert_close(after.gc_out.linear.weight, weight.half().float(), rtol=0, atol=0)
    torch.testing.assert_close(teachers[0].gc_out.linear.weight, weight.half().float(), rtol=0, atol=0)
    assert info.provenance["parent"]["half"] is True and info.provenance["teacher"]["half"] is True
    config["train"] = {**config["train"], "init_from": ""}
    with pytest.raises(ValueError, match="train.init_half rounds the warm start: set train.init_from"):
        train(config)


@pytest.mark.parametrize("clean", [False, True])
def test_clean_teacher_sees_the_crop_before_its_occluder(trained, tmp_path, monkeypatch, clean):
    import training.train as train_module

    seen = {"student": [], "teacher": []}
    student_forward, teacher_call = train_module.TrainingForward.forward, train_module.CropMeanTeacher.__call__

    def record_student(self, x):
        seen["student"].append(x.detach().clone())
        return student_forward(self, x)

    def record_teacher(self, x):
        seen["teacher"].append(x.detach().clone())
        return teacher_call(self, x)

    monkeypatch.setattr(train_module.TrainingForward, "forward", record_student)
    monkeypatch.setattr(train_module.CropMeanTeacher, "__call__", record_teacher)
    config, best = trained
    config = {**config, "name": f"clean_{clean}", "distill": {"weight": 0.5, "teacher": "", "crops": 1, "clean": clean},
              "augment": {**config.get("augment", {}), "occlusion": 1.0, "occlusion_shapes": 1.0},
              "train": {**config["train"], "out_dir": str(tmp_path), "init_from": str(best), "max_steps": 2},
              "optim": {**config["optim"], "epochs": 1}}
    run_best = train(config)
    assert len(seen["teacher"]) == 2 and len(seen["student"]) >= 2
    for student, teacher in zip(seen["student"], seen["teacher"]):
        assert student.shape == teacher.shape
        differs = (student != teacher).any(dim=1)  # (B, H, W): pixels where the two inputs differ
        if clean:
            # Every crop is occluded: the teacher's copy differs from the student's on part of each crop only.
            covered = differs.flatten(1).float().mean(dim=1)
            assert bool((covered > 0).all()) and bool((covered < 0.9).all())
        else:
            assert not differs.any()
    _, info = load_checkpoint(run_best)
    assert info.provenance["teacher"].get("clean", False) is clean


def test_ema_decay_out_of_range_is_a_clear_error(trained, tmp_path):
    config, _ = trained
    config = {**config, "name": "ema_bad", "optim": {**config["optim"], "ema_decay": 1.5},
              "train": {**config["train"], "out_dir": str(tmp_path)}}
    with pytest.raises(ValueError, match="ema_decay"):
        train(config)


def test_init_partial_from_a_model_sharing_nothing_is_refused(trained, tmp_path):
    from training.train import init_matching

    _, best = trained
    model, _ = load_checkpoint(best)
    import torch
    with pytest.raises(ValueError, match="shares no tensor"):
        init_matching(torch.nn.Linear(2, 2), model)


def test_fc_head_trains_through_the_same_loop(w300_folder, tmp_path):
    config = tiny_config(w300_folder, tmp_path, model={"head": "fc"}, optim={"epochs": 1}, train={"max_steps": 1})
    best = train(config)
    _, info = load_checkpoint(best)
    assert info.config.head == "fc"
    assert len(read_metrics(best.parent)) == 1


def test_missing_data_folder_is_a_clear_error(tmp_path):
    config = tiny_config(tmp_path / "nowhere", tmp_path / "runs")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        train(config)


def test_empty_data_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    config = tiny_config(tmp_path / "empty", tmp_path / "runs")
    with pytest.raises(ValueError, match="no .pts files"):
        train(config)


def test_no_training_data_is_a_clear_error(tmp_path):
    config = tiny_config(tmp_path, tmp_path / "runs")
    config["data"]["train"] = []
    with pytest.raises(ValueError, match="no training data"):
        train(config)


def test_point_count_mismatch_is_a_clear_error(tmp_path):
    folder = make_300w_folder(tmp_path / "faces", count=4)
    write_pts(folder / "face00.pts", np.random.default_rng(0).uniform(80, 150, size=(29, 2)))
    config = tiny_config(folder, tmp_path / "runs")
    with pytest.raises(ValueError, match="face00.* 29 points, expected 68"):
        train(config)


def test_gather_checks_points_against_the_schema_not_68(tmp_path):
    folder = tmp_path / "cofw_pts"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        (folder / f"f{i}.png").write_bytes(b"")  # pairing only needs the file to exist
        write_pts(folder / f"f{i}.pts", rng.uniform(10, 50, size=(29, 2)))
    samples = gather([{"path": str(folder), "format": "300w"}], 29)
    assert len(samples) == 2 and samples[0].points.shape == (29, 2)
    with pytest.raises(ValueError, match="29 points, expected 68"):
        gather([{"path": str(folder), "format": "300w"}], 68)


def test_cli_reports_an_unknown_key_in_one_line(w300_folder, tmp_path, capsys):
    tiny_config(w300_folder, tmp_path)
    assert main(["train", "--config", str(tmp_path / "tiny.yaml"), "--set", "nope.x=1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "sdfl train: error: unknown config key 'nope'"


def test_cli_reports_a_missing_config(tmp_path, capsys):
    assert main(["train", "--config", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "config not found" in err[0]


def test_calibrate_detector_box_on_astronaut_faces(w300_folder):
    samples = read_300w(w300_folder)
    result = calibrate_detector_box(samples, model="full")
    assert result["faces"] >= 10 and result["of"] == len(samples) == 12
    assert all(math.isfinite(result[k]) for k in ("dx", "dy", "scale"))
    assert 0.5 < result["scale"] < 2.0
    # The synthetic landmarks sit a little below the detector box's centre (no forehead).
    assert -0.5 < result["dx"] < 0.5 and -0.5 < result["dy"] < 0.5


def test_calibrate_needs_ten_faces(w300_folder):
    samples = read_300w(w300_folder)[:5]
    with pytest.raises(ValueError, match="only 5 faces"):
        calibrate_detector_box(samples, model="full")


def test_edge_occlusion_loss_trains_the_graph_head_and_is_refused_for_fc(w300_folder, tmp_path):
    config = tiny_config(w300_folder, tmp_path, loss={"edge_occlusion": 5.0}, augment={"occlusion": 1.0},
                         optim={"epochs": 1}, train={"max_steps": 2})
    best = train(config)
    _, info = load_checkpoint(best)
    assert info.train_config["loss"]["edge_occlusion"] == 5.0
    fc = tiny_config(w300_folder, tmp_path / "fc", model={"head": "fc"}, loss={"edge_occlusion": 5.0})
    with pytest.raises(ValueError, match="needs the graph head"):
        train(fc)


def test_select_on_chooses_best_pt_on_one_entrys_validation_faces(w300_folder, tmp_path):
    other = make_300w_folder(tmp_path / "other", count=8, seed=3)
    config = tiny_config(w300_folder, tmp_path / "runs", train={"select_on": "other", "max_steps": 6})
    config["data"]["train"] = [{"path": str(w300_folder), "format": "300w", "weight": 0.5},
                               {"path": str(other), "format": "300w"}]
    best = train(config)
    rows = read_metrics(best.parent)
    selected = [float(r["val_nme_io_selected"]) for r in rows]
    assert float(rows[-1]["best_val_nme_io"]) == min(selected)
    _, info = load_checkpoint(best)
    assert info.metrics["val_nme_io_selected"] == pytest.approx(min(selected), abs=1e-5)
    assert info.metrics["epoch"] == 1 + selected.index(min(selected))

    config["train"]["select_on"] = "elsewhere"
    with pytest.raises(ValueError, match=r"train.select_on 'elsewhere' names no data entry \(valid: faces, other\)"):
        train(config)
    config["train"]["select_on"] = ""
    for entry in config["data"]["train"]:
        entry["weight"] = 0
    with pytest.raises(ValueError, match="every training face has weight 0"):
        train(config)
