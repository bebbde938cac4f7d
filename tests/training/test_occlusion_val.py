"""`python -m training.occlusion_val`: occlusion robustness on a config's validation split."""
from __future__ import annotations

import json

import pytest
from train_helpers import tiny_config

from sdfl_core.datasets import load_samples
from training.data import split_samples
from training.occlusion_val import main

pytestmark = pytest.mark.slow  # every test here trains or exports a model


def test_evaluates_exactly_the_validation_split(tmp_path, w300_folder, tiny_checkpoint, tiny_fc_checkpoint, capsys):
    config = tiny_config(w300_folder, tmp_path / "runs")
    train_samples, val = split_samples(config)
    assert val and train_samples
    assert len(train_samples) + len(val) == len(load_samples(w300_folder, "300w"))
    assert not {s.group for s in val} & {s.group for s in train_samples}
    out = tmp_path / "val"
    assert main(["--config", str(tmp_path / "runs" / "tiny.yaml"), "--weights", str(tiny_checkpoint),
                 "--weights", str(tiny_fc_checkpoint), "--levels", "0,30", "--out", str(out)]) == 0
    report = json.loads((out / "occlusion.json").read_text())
    assert list(report) == ["tiny_sdfl", "tiny_fc"]
    for entries in report.values():
        assert [e["level"] for e in entries] == [0, 30]
        assert all(e["count"] == len(val) for e in entries)
    assert report["tiny_sdfl"][1]["edge_occluded"] is not None and report["tiny_fc"][1]["edge_occluded"] is None
    assert f"{len(val)} validation faces" in capsys.readouterr().out


def test_crops_per_face_averages_shifted_crops(tmp_path, w300_folder, tiny_checkpoint):
    """--crops-per-face 5 scores the mean over five crops, as `sdfl occlusion`'s option: other points than one
    crop's, on the same faces; a count the landmarker has no crops for is refused by the parser."""
    tiny_config(w300_folder, tmp_path / "runs")
    config = str(tmp_path / "runs" / "tiny.yaml")
    scores = {}
    for n in (1, 5):
        out = tmp_path / f"crops{n}"
        assert main(["--config", config, "--weights", str(tiny_checkpoint), "--levels", "0",
                     "--crops-per-face", str(n), "--out", str(out)]) == 0
        (entry,) = json.loads((out / "occlusion.json").read_text())["tiny_sdfl"]
        scores[n] = entry["nme_visible"]
    assert scores[1] != scores[5]
    with pytest.raises(SystemExit) as exc:
        main(["--config", config, "--weights", str(tiny_checkpoint), "--crops-per-face", "4", "--out", str(tmp_path)])
    assert exc.value.code == 2
