"""`python -m training.validate`: the validation table, overall and per data entry."""
from __future__ import annotations

import json

import yaml
from synthetic_faces import make_300w_folder
from train_helpers import tiny_config

from training.config import load_config
from training.data import split_samples
from training.validate import main


def test_by_source_splits_the_validation_faces_by_their_entry(tmp_path, tiny_checkpoint, capsys):
    first = make_300w_folder(tmp_path / "hand", count=8, seed=0)
    second = make_300w_folder(tmp_path / "machine", count=8, seed=1)
    tiny_config(first, tmp_path / "runs")
    path = tmp_path / "runs" / "tiny.yaml"
    layers = yaml.safe_load(path.read_text())
    layers["data"].update(val_fraction=0.5, train=[{"path": str(first), "format": "300w"},
                                                   {"path": str(second), "format": "300w", "weight": 2}])
    path.write_text(yaml.safe_dump(layers))
    _, val = split_samples(load_config(path))
    out = tmp_path / "val.json"
    assert main(["--config", str(path), "--weights", str(tiny_checkpoint),
                 "--by-source", "--out", str(out)]) == 0
    report = json.loads(out.read_text())["tiny_sdfl"]
    sources = report["sources"]
    assert set(sources) <= {"hand", "machine"} and sources
    assert sum(part["count"] for part in sources.values()) == report["count"] == len(val)
    assert sources.get("hand", {"count": 0})["count"] == sum("/hand/" in s.image_path for s in val)
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| tiny_sdfl |")]
    assert [row.split(" | ")[1] for row in rows] == ["all", *sources]
    assert rows[0].split(" | ")[-1] == f"{report['worst_io'] * 100:.1f} |"  # the worst face, beside the mean
    assert report["worst_io"] >= report["nme_io"]


def test_boxes_and_passes_reach_the_evaluation(tmp_path, tiny_checkpoint):
    folder = make_300w_folder(tmp_path / "hand", count=8, seed=0)
    tiny_config(folder, tmp_path / "runs")
    path = tmp_path / "runs" / "tiny.yaml"
    reports = {}
    for args in ([], ["--passes", "2"], ["--boxes", "detector"], ["--mirror"]):
        out = tmp_path / f"val{len(reports)}.json"
        assert main(["--config", str(path), "--weights", str(tiny_checkpoint), "--out", str(out), *args]) == 0
        reports[" ".join(args)] = json.loads(out.read_text())["tiny_sdfl"]
    one, two, detector = reports[""], reports["--passes 2"], reports["--boxes detector"]
    assert one["count"] == two["count"] == detector["count"] > 0
    assert abs(one["nme_io"] - two["nme_io"]) > 1e-6, "a second pass re-crops, so it scores differently"
    assert reports["--mirror"]["count"] == one["count"]
    assert abs(one["nme_io"] - reports["--mirror"]["nme_io"]) > 1e-6, "the mirror images change the points"
    assert "missed_detections" not in one and 0 <= detector["missed_detections"] <= detector["count"]


def test_it_scores_on_onnx_runtime_unless_told(tmp_path, tiny_checkpoint, monkeypatch):
    """Validation figures choose runs, so they come from one engine (ONNX Runtime, float32) whatever is
    installed; --engine scores on another."""
    import importlib.util

    import training.validate as validate

    folder = make_300w_folder(tmp_path / "hand", count=8, seed=0)
    tiny_config(folder, tmp_path / "runs")
    path = tmp_path / "runs" / "tiny.yaml"
    engines = []
    real = validate.load_landmarker

    def recording(*args, **kwargs):
        landmarker = real(*args, **kwargs)
        engines.append(landmarker.engine)
        return landmarker

    monkeypatch.setattr(validate, "load_landmarker", recording)
    assert main(["--config", str(path), "--weights", str(tiny_checkpoint)]) == 0
    assert engines == ["onnxruntime"]
    if importlib.util.find_spec("openvino") is not None:
        assert main(["--config", str(path), "--weights", str(tiny_checkpoint), "--engine", "openvino"]) == 0
        assert engines == ["onnxruntime", "openvino"]
