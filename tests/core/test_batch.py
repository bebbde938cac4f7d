"""`sdfl batch` on a local 2-CPU Ray cluster: manifest, CSVs equal to `sdfl track`'s, resume, retries."""
from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import pandas as pd
import pytest
from slide_video import write_slide

from sdfl_core.batch import MANIFEST_COLUMNS, collect_inputs
from sdfl_core.cli import main

HERE = Path(__file__).resolve().parent


def read_manifest(out: Path) -> dict[str, dict]:
    with open(out / "manifest.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == MANIFEST_COLUMNS
        return {Path(row["input"]).name: row for row in reader}


def fingerprint(out: Path, name: str = "a.mp4") -> dict:
    """The model fingerprint manifest.json keeps for the input ``name``."""
    records = json.loads((out / "manifest.json").read_text())["records"]
    return next(r["model"] for key, r in records.items() if Path(key).name == name)


def statuses(out: Path) -> dict[str, str]:
    return {name: row["status"] for name, row in read_manifest(out).items()}


def track_csv(video: Path, weights: Path, out: Path, *options: str) -> pd.DataFrame:
    assert main(["track", str(video), "--csv", str(out), "--weights", str(weights), "--device", "cpu", *options]) == 0
    return pd.read_csv(out)


def assert_same_csv(batch_csv: Path, track: pd.DataFrame) -> None:
    batch = pd.read_csv(batch_csv)
    batch, track = (df.drop(columns=["source"], errors="ignore") for df in (batch, track))
    assert len(batch) > 0
    pd.testing.assert_frame_equal(batch, track)


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """A local 2-CPU cluster whose workers run tests/core/batch_crash.py's hook (see there)."""
    ray = pytest.importorskip("ray")
    crash_dir = tmp_path_factory.mktemp("crash-markers")
    path = os.pathsep.join([str(HERE), *filter(None, [os.environ.get("PYTHONPATH")]), *sys.path])
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING",
             runtime_env={"env_vars": {"PYTHONPATH": path, "SDFL_CRASH_DIR": str(crash_dir)},
                          "worker_process_setup_hook": "batch_crash.install"})
    yield crash_dir
    ray.shutdown()


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clips")
    (folder / "day2").mkdir()
    write_slide(folder / "a.mp4", 8)
    write_slide(folder / "b.mp4", 6)
    write_slide(folder / "day2" / "c.mp4", 7)
    (folder / "broken.mp4").write_bytes(os.urandom(4096))
    (folder / "notes.txt").write_text("not a video")
    return folder


def batch(*args) -> int:
    return main(["batch", *map(str, args)])


def one_clip(tmp_path: Path, name: str = "a.mp4", frames: int = 5) -> tuple[Path, Path]:
    """An input folder holding one slide clip, and the output folder for it."""
    folder = tmp_path / "in"
    folder.mkdir()
    write_slide(folder / name, frames)
    return folder, tmp_path / "out"


@pytest.mark.slow
def test_folder_gives_track_csvs_then_skips_then_redoes_only_the_missing(ray_cluster, clips, tiny_checkpoint, tmp_path):
    out = tmp_path / "out"
    assert batch(clips, "--out", out, "--weights", tiny_checkpoint, "--workers", 2) == 1  # one failed video
    rows = read_manifest(out)
    assert {name: row["status"] for name, row in rows.items()} == \
        {"a.mp4": "done", "b.mp4": "done", "c.mp4": "done", "broken.mp4": "failed"}
    assert "cannot open" in rows["broken.mp4"]["error"] and "\n" not in rows["broken.mp4"]["error"]
    assert rows["c.mp4"]["output"] == "day2/c.csv"
    for name, frames in (("a", 8), ("b", 6), ("day2/c", 7)):
        expected = track_csv(clips / f"{name}.mp4", tiny_checkpoint, tmp_path / "track.csv")
        assert_same_csv(out / f"{name}.csv", expected)
        row = rows[Path(name).name + ".mp4"]
        assert (int(row["frames"]), int(row["rows"])) == (frames, len(expected))
    assert not list(out.rglob(".*.partial.*"))

    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.csv") if p.name != "manifest.csv"}
    assert batch(clips, "--out", out, "--weights", tiny_checkpoint) == 1
    assert statuses(out) == {"a.mp4": "skipped", "b.mp4": "skipped", "c.mp4": "skipped", "broken.mp4": "failed"}
    assert read_manifest(out)["a.mp4"]["frames"] == "8"
    assert {p: p.stat().st_mtime_ns for p in mtimes} == mtimes

    (out / "b.csv").unlink()
    assert batch(clips, "--out", out, "--weights", tiny_checkpoint) == 1
    assert statuses(out) == {"a.mp4": "skipped", "b.mp4": "done", "c.mp4": "skipped",
                             "broken.mp4": "failed"}
    assert (out / "a.csv").stat().st_mtime_ns == mtimes[out / "a.csv"]
    assert_same_csv(out / "b.csv", track_csv(clips / "b.mp4", tiny_checkpoint, tmp_path / "track.csv"))


@pytest.mark.slow
def test_a_changed_input_or_model_runs_again(ray_cluster, tiny_checkpoint, tiny_fc_checkpoint, tmp_path):
    folder, out = one_clip(tmp_path)
    assert batch(folder, "--out", out, "--weights", tiny_checkpoint) == 0
    assert batch(folder, "--out", out, "--weights", tiny_fc_checkpoint) == 0
    assert statuses(out) == {"a.mp4": "done"}
    write_slide(folder / "a.mp4", 6)
    assert batch(folder, "--out", out, "--weights", tiny_fc_checkpoint) == 0
    assert read_manifest(out)["a.mp4"]["status"] == "done" and read_manifest(out)["a.mp4"]["frames"] == "6"


@pytest.mark.slow
def test_passes_reach_the_workers_and_a_changed_count_runs_again(ray_cluster, tiny_checkpoint, tmp_path):
    folder, out = one_clip(tmp_path)
    assert batch(folder, "--out", out, "--weights", tiny_checkpoint, "--passes", 2) == 0
    twice = track_csv(folder / "a.mp4", tiny_checkpoint, tmp_path / "track2.csv", "--passes", "2")
    assert_same_csv(out / "a.csv", twice)
    once = track_csv(folder / "a.mp4", tiny_checkpoint, tmp_path / "track1.csv")
    assert not once.drop(columns=["source"], errors="ignore").equals(twice.drop(columns=["source"], errors="ignore"))
    assert batch(folder, "--out", out, "--weights", tiny_checkpoint, "--passes", 2) == 0
    assert statuses(out) == {"a.mp4": "skipped"}
    assert batch(folder, "--out", out, "--weights", tiny_checkpoint) == 0
    assert statuses(out) == {"a.mp4": "done"}
    assert_same_csv(out / "a.csv", once)


@pytest.mark.slow
def test_the_engine_reaches_the_workers_and_a_changed_one_runs_again(ray_cluster, tiny_checkpoint, tmp_path):
    """Every worker runs the engine the driver chose ('auto' decided once, before any worker starts), its CSV is
    `sdfl track`'s on that engine, and a run on the other engine is not taken for a finished one."""
    pytest.importorskip("openvino")
    from sdfl_core.landmarker import cpu_engine

    folder, out = one_clip(tmp_path)
    assert batch(folder, "--out", out, "--weights", tiny_checkpoint, "--engine", "onnxruntime") == 0
    plain = track_csv(folder / "a.mp4", tiny_checkpoint, tmp_path / "ort.csv", "--engine", "onnxruntime")
    assert_same_csv(out / "a.csv", plain)
    assert "engine" not in fingerprint(out)  # manifests from before the option still match
    assert batch(folder, "--out", out, "--weights", tiny_checkpoint, "--engine", "openvino") == 0
    assert statuses(out) == {"a.mp4": "done"}
    assert fingerprint(out)["engine"] == "openvino"
    assert_same_csv(out / "a.csv", track_csv(folder / "a.mp4", tiny_checkpoint, tmp_path / "ov.csv", "--engine", "openvino"))
    # auto is this machine's choice, and a run on it is the run of that engine
    assert batch(folder, "--out", out, "--weights", tiny_checkpoint) == 0
    assert statuses(out) == {"a.mp4": "skipped" if cpu_engine() == "openvino" else "done"}


@pytest.mark.slow
def test_a_worker_that_dies_mid_video_is_retried(ray_cluster, tiny_checkpoint, tmp_path):
    folder, out = one_clip(tmp_path, "crash_once.mp4", 8)
    assert batch(folder, "--out", out, "--weights", tiny_checkpoint, "--video") == 0
    assert (ray_cluster / "crash_once.crashed").exists()  # the worker did die in the first attempt
    row = read_manifest(out)["crash_once.mp4"]
    assert row["status"] == "done" and row["frames"] == "8"
    assert_same_csv(out / "crash_once.csv", track_csv(folder / "crash_once.mp4", tiny_checkpoint, tmp_path / "t.csv"))
    assert (out / "crash_once.mp4").stat().st_size > 0
    assert not list(out.glob(".*.partial.*"))


@pytest.mark.slow
def test_without_retries_a_dying_worker_fails_its_video_only(ray_cluster, tiny_checkpoint, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    write_slide(folder / "crash_noretry.mp4", 8)
    write_slide(folder / "fine.mp4", 4)
    out = tmp_path / "out"
    assert batch(folder, "--out", out, "--weights", tiny_checkpoint, "--retries", 0, "--workers", 1) == 1
    rows = read_manifest(out)
    assert rows["crash_noretry.mp4"]["status"] == "failed" and "worker died" in rows["crash_noretry.mp4"]["error"]
    assert rows["fine.mp4"]["status"] == "done"  # the restarted worker took the next video
    assert not (out / "crash_noretry.csv").exists()


def test_inputs_from_files_folders_and_lists(tmp_path, monkeypatch):
    (tmp_path / "f" / "s").mkdir(parents=True)
    for name in ("f/x.mp4", "f/s/y.MOV", "f/readme.md", "z.avi"):
        (tmp_path / name).write_bytes(b"0")
    (tmp_path / "list.txt").write_text("# videos\nz.avi\n\nf/s/y.MOV\n")
    monkeypatch.chdir(tmp_path)
    got = {str(rel) for _, rel in collect_inputs([tmp_path / "f", "z.avi"])}
    assert got == {"x", "s/y", "z"}
    assert {str(rel) for _, rel in collect_inputs(["list.txt"])} == {"z", "f/s/y"}
    (tmp_path / "f" / "s" / "link.mp4").symlink_to(tmp_path / "z.avi")  # a symlink is named where it is
    assert {str(rel) for _, rel in collect_inputs([tmp_path / "f"])} == {"x", "s/y", "s/link"}
    (tmp_path / "f" / "s" / "link.mp4").unlink()
    (tmp_path / "f" / "z.mp4").write_bytes(b"0")
    with pytest.raises(ValueError, match="both write"):
        collect_inputs([tmp_path / "f", tmp_path / "f" / "s", tmp_path / "list.txt", tmp_path / "f" / "z.mp4"])


def _one_line_error(capsys, *needles: str) -> None:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("sdfl batch: error:")]
    assert len(errors) == 1 and not any("Traceback" in line for line in err), err
    for needle in needles:
        assert needle in errors[0], errors[0]


def test_bad_inputs_are_one_line_errors(tmp_path, capsys):
    assert batch(tmp_path / "missing.mp4", "--out", tmp_path / "out") == 2
    _one_line_error(capsys, "not found", "missing.mp4")
    (tmp_path / "empty").mkdir()
    assert batch(tmp_path / "empty", "--out", tmp_path / "out") == 2
    _one_line_error(capsys, "no videos")
    write_slide(tmp_path / "a.mp4", 2)
    assert batch(tmp_path / "a.mp4", "--out", tmp_path / "out", "--retries", -1) == 2
    _one_line_error(capsys, "--retries")


def test_without_ray_it_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    write_slide(tmp_path / "a.mp4", 2)
    assert batch(tmp_path / "a.mp4", "--out", tmp_path / "out") == 2
    _one_line_error(capsys, "pip install 'sdfl[batch]'")


@pytest.mark.slow
def test_ctrl_c_leaves_a_manifest_of_what_finished(ray_cluster, tiny_checkpoint, tmp_path, monkeypatch, capsys):
    from sdfl_core.batch import Manifest

    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a", "b", "c"):
        write_slide(folder / f"{name}.mp4", 6)
    out = tmp_path / "out"
    record = Manifest.record

    def interrupted_after_one(self, job, row, model):
        record(self, job, row, model)
        raise KeyboardInterrupt  # Ctrl-C while the other videos are running

    monkeypatch.setattr(Manifest, "record", interrupted_after_one)
    assert batch(folder, "--out", out, "--weights", tiny_checkpoint, "--workers", 2) == 130
    assert "interrupted" in capsys.readouterr().err
    finished = read_manifest(out)
    assert [row["status"] for row in finished.values()] == ["done"]
    assert not list(out.glob("*.partial*"))
    monkeypatch.setattr(Manifest, "record", record)
    assert batch(folder, "--out", out, "--weights", tiny_checkpoint) == 0
    assert statuses(out) == {**{name: "done" for name in ("a.mp4", "b.mp4", "c.mp4")},
                             next(iter(finished)): "skipped"}
