from pathlib import Path

import pytest

from sdfl_core.registry import (
    MODEL_CHOICES,
    default_weights,
    fc_twin,
    require_model_file,
    resolve_weights,
)


def test_choices_resolve_to_the_shipped_files():
    assert MODEL_CHOICES == ("sdfl", "fc")
    assert resolve_weights(None) == resolve_weights("sdfl") == default_weights("sdfl")
    assert resolve_weights("fc").name == "fc_68.onnx"
    assert default_weights("fc", "pt").name == "fc_68.pt"
    assert resolve_weights("runs/x.pt") == Path("runs/x.pt")
    with pytest.raises(ValueError, match="unknown shipped model"):
        default_weights("dlib")


def test_fc_twin_renames_the_sdfl_part_when_that_file_exists(tmp_path):
    run = tmp_path / "sdfl_68_run" / "best.pt"
    twin = tmp_path / "fc_68_run" / "best.pt"
    run.parent.mkdir()
    run.write_bytes(b"x")
    assert fc_twin("sdfl") == "fc"
    assert fc_twin(run) == "fc"  # no twin on disk: the shipped one
    twin.parent.mkdir()
    twin.write_bytes(b"x")
    assert fc_twin(run) == str(twin)


def test_require_model_file_names_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found"):
        require_model_file(tmp_path / "none.pt")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="not a model file"):
        require_model_file(tmp_path / "notes.txt")
