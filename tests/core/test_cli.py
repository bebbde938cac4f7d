import subprocess
import sys

import numpy as np
import pytest

from sdfl_core.cli import COMMANDS, build_parser, main
from sdfl_core.landmarker import cpu_engine


@pytest.mark.slow
def test_help_lists_every_subcommand():
    out = subprocess.run([sys.executable, "-m", "sdfl_core.cli", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for name in ("track", "batch", "eval", "train", "export", "graph", "occlusion", "gui"):
        assert name in out.stdout
    assert set(COMMANDS) == {"track", "batch", "eval", "train", "export", "graph", "occlusion", "gui"}


@pytest.mark.slow
def test_cli_import_is_cheap():
    # `sdfl --help` must not pay for torch / Qt start-up.
    code = "import sys, sdfl_core.cli; print(any(m in sys.modules for m in ('torch', 'PyQt6', 'cv2')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_parser_requires_a_command(capsys):
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args([])
    assert exc.value.code == 2
    args = build_parser().parse_args(["graph", "--data", "d", "--format", "300w", "--out", "g.npz", "--k", "5"])
    assert (args.command, args.k, args.plot) == ("graph", 5, None)


def test_export_missing_weights_is_one_line_error(tmp_path, capsys):
    rc = main(["export", "--weights", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "m.onnx")])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("sdfl export: error: checkpoint not found")
    assert "Traceback" not in err[0]
    assert not (tmp_path / "m.onnx").exists()


def test_export_corrupt_weights_is_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"junk" * 50)
    assert main(["export", "--weights", str(bad), "--out", str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a readable checkpoint" in err[0]


@pytest.mark.slow
def test_export_end_to_end(tmp_path, capsys):
    import torch

    from sdfl_core.checkpoint import ModelInfo, save_checkpoint
    from sdfl_core.model import ModelConfig, SDFLModel
    from sdfl_core.runners import OnnxRunner

    torch.manual_seed(0)
    cfg = ModelConfig(backbone="mobilenetv2_050", num_points=29, input_size=64, head="fc")
    mask = np.eye(29, dtype=bool) | np.roll(np.eye(29, dtype=bool), 1, axis=1)
    weights = tmp_path / "w.pt"
    save_checkpoint(weights, SDFLModel(cfg, mask), ModelInfo(config=cfg, schema="cofw", k=1, mask=mask,
                                                             mean_shape=np.full((29, 2), 0.5, np.float32)))
    out = tmp_path / "w.onnx"
    assert main(["export", "--weights", str(weights), "--out", str(out)]) == 0
    assert "max |torch - onnxruntime|" in capsys.readouterr().out
    assert OnnxRunner(out).info.config == cfg


def write_300w_folder(root, count=6, seed=0):
    """A tiny 300W-style folder: a black image and an .pts file per face, shapes jittered around a template."""
    import cv2

    rng = np.random.default_rng(seed)
    angles = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    template = np.stack([100 + 40 * np.cos(angles), 100 + 50 * np.sin(angles)], axis=1)
    root.mkdir()
    for i in range(count):
        pts = template + rng.normal(scale=3.0, size=template.shape) + rng.uniform(-10, 10, size=2)
        cv2.imwrite(str(root / f"face_{i}.png"), np.zeros((200, 200, 3), np.uint8))
        lines = ["version: 1", "n_points:  68", "{"] + [f"{x:.3f} {y:.3f}" for x, y in pts] + ["}"]
        (root / f"face_{i}.pts").write_text("\n".join(lines) + "\n")
    return root


def test_graph_command_on_tiny_300w_folder(tmp_path, capsys):
    try:
        import sdfl_core.datasets  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"sdfl_core.datasets is not available yet ({exc})")
    from sdfl_core.graph import load_graph

    data = write_300w_folder(tmp_path / "300w")
    out, plot = tmp_path / "graph.npz", tmp_path / "graph.png"
    rc = main(["graph", "--data", str(data), "--format", "300w", "--k", "2", "--out", str(out), "--plot", str(plot)])
    assert rc == 0, capsys.readouterr().err
    mask, mean, k = load_graph(out)
    assert mask.shape == (68, 68) and mean.shape == (68, 2) and k == 2
    assert (mask.sum(axis=1) == 3).all()
    assert plot.stat().st_size > 1000
    assert "6 shapes, 68 points" in capsys.readouterr().out


def test_eval_records_its_passes_and_crops_defaults_them_by_box_and_refuses_an_unknown_count(tmp_path, capsys):
    import json

    from model_factory import make_checkpoint

    data = write_300w_folder(tmp_path / "300w", count=3)
    weights = make_checkpoint(tmp_path / "m68.pt")
    out = tmp_path / "report.json"
    with pytest.raises(SystemExit) as refused:
        main(["eval", "--weights", str(weights), "--data", str(data), "--format", "300w", "--out", str(out), "--passes", "4"])
    assert refused.value.code == 2 and "--passes: invalid choice: 4" in capsys.readouterr().err
    assert not out.exists()
    for passes in (1, 2):
        assert main(["eval", "--weights", str(weights), "--data", str(data), "--format", "300w", "--out", str(out),
                     "--passes", str(passes)]) == 0, capsys.readouterr().err
        report = json.loads(out.read_text())
        assert report["passes"] == passes and report["count"] == 3
        assert report["engine"] == cpu_engine()  # the report says which runtime scored it
    # Unless told: ground-truth boxes are the training crop, detector boxes are cropped as photos are.
    plain = {}
    for boxes, passes, crops in (("gt", 1, 1), ("detector", 2, 5), ("detector", 2, 1)):
        told = ["--crops-per-face", "1"] if boxes == "detector" and crops == 1 else []
        assert main(["eval", "--weights", str(weights), "--data", str(data), "--format", "300w", "--out", str(out),
                     "--boxes", boxes, *told]) == 0, capsys.readouterr().err
        report = json.loads(out.read_text())
        assert (report["passes"], report["crops_per_face"], report["mirror"]) == (passes, crops, False), boxes
        if boxes == "gt":
            plain = report
    assert main(["eval", "--weights", str(weights), "--data", str(data), "--format", "300w", "--out", str(out),
                 "--mirror"]) == 0, capsys.readouterr().err
    mirrored = json.loads(out.read_text())
    assert mirrored["mirror"] is True and mirrored["boxes"] == "gt"
    # the worst face beside the mean, in the report and the printed line
    assert mirrored["worst_io"] >= mirrored["nme_io"]
    assert f"worst face {mirrored['worst_io'] * 100:.1f}%" in capsys.readouterr().out
    assert mirrored["nme_io"] != plain["nme_io"], "the mirror images change the points"
    assert main(["eval", "--weights", str(weights), "--data", str(data), "--format", "300w", "--out", str(out),
                 "--engine", "onnxruntime"]) == 0, capsys.readouterr().err
    assert json.loads(out.read_text())["engine"] == "onnxruntime"


def test_engine_choices_are_the_landmarkers():
    """The commands that load a model offer every engine the landmarker has, spelt out in the parser."""
    from sdfl_core.landmarker import ENGINES

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in ("track", "eval", "occlusion", "gui"):
        [engine] = [a for a in sub.choices[name]._actions if a.dest == "engine"]
        assert engine.default == "auto" and tuple(engine.choices) == ENGINES, name
    [engine] = [a for a in sub.choices["batch"]._actions if a.dest == "engine"]
    assert set(engine.choices) == set(ENGINES) - {"torch"}  # Ray's workers run the ONNX export on their CPUs


def test_photo_default_help_follows_the_constants(monkeypatch):
    # The help states the photo defaults from sdfl_core.crops, so it cannot drift from what the commands do.
    from sdfl_core import crops

    monkeypatch.setattr(crops, "PHOTO_CROPS", 7)
    monkeypatch.setattr(crops, "PHOTO_PASSES", 3)
    sub = next(a for a in build_parser()._actions if a.dest == "command")

    def helps(name):
        return {a.dest: " ".join(a.help.split()) for a in sub.choices[name]._actions if a.help}

    track, evaluate = helps("track"), helps("eval")
    assert "default 7 for an image" in track["crops_per_face"]
    assert "default 3 for an image" in track["passes"]
    assert "7 with --boxes detector" in evaluate["crops_per_face"]
    assert "3 with --boxes detector" in evaluate["passes"]
