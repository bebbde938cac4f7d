"""Occluder generation (coverage, determinism, visibility, parts) and the `sdfl occlusion` command."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from model_factory import make_checkpoint

from sdfl_core.cli import main
from sdfl_core.crops import landmark_box
from sdfl_core.occluders import (
    available_parts,
    box_coverage,
    case_rng,
    occlude_part,
    occlude_random,
    part_points,
    point_visibility,
)
from sdfl_core.occlusion import visible_to_occluded_edges
from sdfl_core.schemas import W300

ASTRONAUT = Path(__file__).resolve().parents[1] / "fixtures" / "astronaut.jpg"


def synthetic_68() -> np.ndarray:
    """A rough 68-point face in unit coordinates (jaw, brows, nose, eyes, lips in 300W order)."""
    def arc(cx, cy, rx, ry, t0, t1, n):
        t = np.linspace(t0, t1, n)
        return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], 1)

    jaw = arc(0.5, 0.45, 0.42, 0.5, np.pi, 0.0, 17)  # lower half of an ellipse, image left to right
    brows = np.concatenate([arc(0.3, 0.33, 0.12, 0.04, np.pi, 2 * np.pi, 5), arc(0.7, 0.33, 0.12, 0.04, np.pi, 2 * np.pi, 5)])
    bridge = np.stack([np.full(4, 0.5), np.linspace(0.4, 0.58, 4)], 1)
    base = np.stack([np.linspace(0.42, 0.58, 5), np.full(5, 0.63)], 1)
    eye = lambda cx: arc(cx, 0.43, 0.07, 0.03, np.pi, 3 * np.pi, 7)[:6]  # noqa: E731
    outer = arc(0.5, 0.78, 0.16, 0.07, np.pi, 3 * np.pi, 13)[:12]
    inner = arc(0.5, 0.78, 0.1, 0.03, np.pi, 3 * np.pi, 9)[:8]
    pts = np.concatenate([jaw, brows, bridge, base, eye(0.3), eye(0.7), outer, inner])
    assert pts.shape == (68, 2)
    return pts


def face_image(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A warped astronaut in a 200x220 image with a 68-point synthetic shape on the face area."""
    rng = np.random.default_rng(seed)
    src = cv2.imread(str(ASTRONAUT))
    angle, scale = rng.uniform(-15, 15), rng.uniform(0.9, 1.1)
    m = cv2.getRotationMatrix2D((128, 128), angle, scale)
    m[:, 2] += rng.uniform(-10, 10, 2) - [28, 18]
    image = cv2.warpAffine(src, m, (200, 220), borderMode=cv2.BORDER_REFLECT)
    side = rng.uniform(90, 110)
    points = synthetic_68() * side + [50 + rng.uniform(-5, 5), 40 + rng.uniform(-5, 5)]
    return image, points.astype(np.float32)


def write_300w(folder: Path, count: int = 4, num_points: int = 68) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image, points = face_image(i)
        cv2.imwrite(str(folder / f"face{i}_1.jpg"), image)
        points = points[:num_points] + 1  # .pts files are 1-based
        body = "\n".join(f"{x:.3f} {y:.3f}" for x, y in points)
        (folder / f"face{i}_1.pts").write_text(f"version: 1\nn_points: {len(points)}\n{{\n{body}\n}}\n")
    return folder


@pytest.fixture(scope="module")
def face():
    return face_image(0)


@pytest.mark.parametrize("level", [10, 20, 30, 40, 50])
def test_random_occluder_reaches_the_coverage_level(face, level):
    image, points = face
    box = landmark_box(points)
    for index in range(6):
        occ = occlude_random(image, points, level, case_rng(0, index, "random"), textures=[image[::-1]])
        measured = box_coverage(occ.mask, box)
        assert abs(100 * measured - level) <= 5, (index, measured)
        assert occ.coverage == pytest.approx(measured)
        assert occ.mask.any()
        # Pixels outside the mask are untouched.
        assert np.array_equal(occ.image[~occ.mask], image[~occ.mask])


def test_level_zero_occludes_nothing(face):
    image, points = face
    occ = occlude_random(image, points, 0, case_rng(3, 0, "random"))
    assert not occ.mask.any()
    assert occ.visible.all()
    assert occ.coverage == 0.0
    assert np.array_equal(occ.image, image)


def test_same_seed_same_occlusion_other_seed_differs(face):
    image, points = face
    a = occlude_random(image, points, 30, case_rng(7, 2, "random"), textures=[image])
    b = occlude_random(image, points, 30, case_rng(7, 2, "random"), textures=[image])
    c = occlude_random(image, points, 30, case_rng(8, 2, "random"), textures=[image])
    assert np.array_equal(a.image, b.image) and np.array_equal(a.mask, b.mask)
    assert np.array_equal(a.visible, b.visible)
    assert not np.array_equal(a.mask, c.mask)
    p1 = occlude_part(image, points, "eyes", W300, case_rng(7, 2, "eyes"))
    p2 = occlude_part(image, points, "eyes", W300, case_rng(7, 2, "eyes"))
    assert np.array_equal(p1.image, p2.image)


def test_levels_of_one_face_are_nested(face):
    image, points = face
    masks = [occlude_random(image, points, lv, case_rng(1, 0, "random")).mask for lv in (10, 30, 50)]
    assert (masks[0] <= masks[1]).all() and (masks[1] <= masks[2]).all()


def test_visibility_labels_match_the_mask(face):
    image, points = face
    occ = occlude_random(image, points, 40, case_rng(0, 5, "random"))
    ij = np.round(points).astype(int)
    expected = ~occ.mask[ij[:, 1], ij[:, 0]]
    assert np.array_equal(occ.visible, expected)
    assert (~occ.visible).any() and occ.visible.any()
    assert np.array_equal(point_visibility(points, occ.mask), expected)
    # A point off the image is never occluded.
    assert point_visibility(np.array([[-50.0, 10.0], [10.0, 5000.0]]), np.ones((20, 20), bool)).all()


@pytest.mark.parametrize("part", ["eyes", "mouth", "left_half", "right_half"])
def test_part_occluder_covers_its_points(face, part):
    image, points = face
    assert part in available_parts(W300)
    target = part_points(part, points, W300)
    for index in range(4):  # both shapes (rect and blob) come up
        occ = occlude_part(image, points, part, W300, case_rng(0, index, part), textures=[image])
        assert occ.target == part
        assert not occ.visible[target].any(), index
        assert occ.visible.any()  # the rest of the face stays partly visible
    if part == "eyes":
        assert set(target) == set(range(36, 48))
    if part == "mouth":
        assert set(target) == set(range(48, 68))
    if part.endswith("half"):
        assert 0.4 <= occ.coverage <= 0.65


def test_occluder_input_errors(face):
    image, points = face
    with pytest.raises(ValueError, match="percentage"):
        occlude_random(image, points, 120, case_rng(0, 0, "random"))
    with pytest.raises(ValueError, match="unknown part"):
        occlude_part(image, points, "nose", W300, case_rng(0, 0, "random"))
    with pytest.raises(ValueError, match="uint8"):
        occlude_random(image.astype(np.float32), points, 10, case_rng(0, 0, "random"))
    with pytest.raises(ValueError, match="seed"):
        case_rng(-1, 0, "random")


# ----------------------------------------------------------------------------------------------- CLI


def test_cli_writes_csv_json_and_plots(tmp_path, tiny_checkpoint, tiny_fc_checkpoint):
    data = write_300w(tmp_path / "data", count=3)
    out = tmp_path / "out"
    rc = main(["occlusion", "--weights", str(tiny_checkpoint), "--weights", str(tiny_fc_checkpoint),
               "--weights", str(tiny_checkpoint), "--data", str(data), "--format", "300w", "--out", str(out),
               "--levels", "0,20,40", "--parts", "--no-dlib", "--seed", "3"])
    assert rc == 0
    for name in ("occlusion.csv", "occlusion.json", "occlusion.png", "examples.png"):
        assert (out / name).stat().st_size > 0, name
    report = json.loads((out / "occlusion.json").read_text())
    assert list(report) == ["test-graph", "test-fc", "test-graph-2"]
    for entries in report.values():
        assert [e["level"] for e in entries] == [0, 20, 40]
        for e in entries:
            assert set(e) >= {"level", "nme_visible", "nme_occluded", "nme_all", "fr_10", "count"}
            assert e["count"] == 3
            assert 0 < e["nme_all"] < 10 and 0 < e["nme_visible"] < 10
            assert 0.0 <= e["fr_10"] <= 1.0
        assert entries[0]["nme_occluded"] is None  # level 0 has no occluded point
        assert all(0 < e["nme_occluded"] < 10 for e in entries[1:])
    # Edge weights: a softmax row's entries lie in (0, 1); none at level 0 (nothing occluded), none for the FC head.
    for name in ("test-graph", "test-graph-2"):
        assert report[name][0]["edge_occluded"] is None and report[name][0]["edge_clean"] is None
        for e in report[name][1:]:
            assert 0 < e["edge_occluded"] < 1 and 0 < e["edge_clean"] < 1
    assert all(e["edge_occluded"] is None and e["edge_clean"] is None for e in report["test-fc"])
    # The duplicate model sees the same occluded pixels, so its numbers are the same.
    assert report["test-graph"] == report["test-graph-2"]
    lines = (out / "occlusion.csv").read_text().splitlines()
    assert lines[0] == ("model,level,kind,count,nme_visible,nme_occluded,nme_all,fr_10,edge_occluded,edge_clean,"
                        "vis_auroc,nme_occluded_tracked")
    # No visibility output: both visibility keys are null at every level.
    assert all(e["vis_auroc"] is None and e["nme_occluded_tracked"] is None for v in report.values() for e in v)
    kinds = {line.split(",")[2] for line in lines[1:]}
    assert kinds == {"random", "eyes", "mouth", "left_half", "right_half"}
    assert len(lines) == 1 + 3 * (3 + 4)
    png = cv2.imread(str(out / "examples.png"))
    assert png is not None and abs(png.shape[0] - png.shape[1]) < 0.1 * png.shape[1]  # 3 levels x 3 models


def test_cli_reports_visibility_for_a_model_with_the_output(tmp_path, tiny_vis_checkpoint, tiny_checkpoint):
    data = write_300w(tmp_path / "data", count=3)
    out = tmp_path / "out"
    assert main(["occlusion", "--weights", str(tiny_vis_checkpoint), "--weights", str(tiny_checkpoint), "--data", str(data),
                 "--format", "300w", "--out", str(out), "--levels", "0,30", "--no-dlib"]) == 0
    report = json.loads((out / "occlusion.json").read_text())
    vis, plain = report["test-graph"], report["test-graph-2"]
    assert vis[0]["vis_auroc"] is None and vis[0]["nme_occluded_tracked"] is None  # level 0: nothing covered
    assert 0.0 <= vis[1]["vis_auroc"] <= 1.0
    assert 0 < vis[1]["nme_occluded_tracked"] < 10
    assert all(e["vis_auroc"] is None and e["nme_occluded_tracked"] is None for e in plain)


def test_cli_same_seed_same_numbers(tmp_path, tiny_checkpoint):
    data = write_300w(tmp_path / "data", count=2)
    args = ["occlusion", "--weights", str(tiny_checkpoint), "--data", str(data), "--format", "300w",
            "--levels", "30", "--no-dlib"]
    assert main(args + ["--out", str(tmp_path / "a"), "--seed", "5"]) == 0
    assert main(args + ["--out", str(tmp_path / "b"), "--seed", "5"]) == 0
    assert main(args + ["--out", str(tmp_path / "c"), "--seed", "6"]) == 0
    a, b, c = ((tmp_path / d / "occlusion.csv").read_text() for d in "abc")
    assert a == b
    assert a != c


def test_cli_point_count_mismatch(tmp_path, capsys):
    data = write_300w(tmp_path / "data", count=2)
    weights = make_checkpoint(tmp_path / "cofw.pt", num_points=29)
    rc = main(["occlusion", "--weights", str(weights), "--data", str(data), "--format", "300w", "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("sdfl occlusion: error:") and "29 points" in err and "68 points" in err
    assert len(err.splitlines()) == 1


def test_cli_missing_model(tmp_path, capsys):
    data = write_300w(tmp_path / "data", count=1)
    rc = main(["occlusion", "--weights", str(tmp_path / "nope.pt"), "--data", str(data), "--format", "300w", "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "model file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    rc = main(["occlusion", "--weights", str(bad), "--data", str(data), "--format", "300w", "--out", str(tmp_path / "o")])
    assert rc == 2
    assert "not a readable checkpoint" in capsys.readouterr().err


def test_cli_empty_folder(tmp_path, tiny_checkpoint, capsys):
    (tmp_path / "empty").mkdir()
    rc = main(["occlusion", "--weights", str(tiny_checkpoint), "--data", str(tmp_path / "empty"), "--format", "300w",
               "--out", str(tmp_path / "o")])
    assert rc == 2
    err = capsys.readouterr().err
    assert "sdfl occlusion: error:" in err and "no .pts files" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.skipif(importlib.util.find_spec("dlib") is None, reason="dlib is not installed")
def test_dlib_baseline_joins(tmp_path, tiny_checkpoint, face):
    from sdfl_core.baselines import DlibModel, dlib_available

    if not dlib_available():
        pytest.skip("face_recognition_models (dlib's 68-point model) is not installed")
    image, points = face
    pred, weights, visibility = DlibModel().predict_face([image, image], points)
    assert weights.shape == (2, 68, 0) and visibility.shape == (2, 0)
    assert pred.shape == (2, 68, 2)
    assert np.array_equal(pred[0], pred[1])
    # dlib's points land around the given box.
    x, y, w, h = (float(v) for v in landmark_box(points))
    assert np.median(pred[0, :, 0]) == pytest.approx(x + w / 2, abs=0.3 * w)
    data = write_300w(tmp_path / "data", count=1)
    out = tmp_path / "out"
    assert main(["occlusion", "--weights", str(tiny_checkpoint), "--data", str(data), "--format", "300w",
                 "--out", str(out), "--levels", "0,30"]) == 0
    report = json.loads((out / "occlusion.json").read_text())
    assert list(report) == ["test-graph", "dlib"]
    assert [e["level"] for e in report["dlib"]] == [0, 30]


def test_visible_to_occluded_edges_picks_edges_into_occluded_nodes_only():
    mask = np.ones((3, 3), bool)
    mask[0, 2] = False
    visible = np.array([True, False, True])
    expected = np.zeros((3, 3), bool)
    expected[0, 1] = expected[2, 1] = True  # 0 -> 2 is not an edge; 1 is occluded, so its own row is left out
    np.testing.assert_array_equal(visible_to_occluded_edges(mask, visible), expected)
    assert not visible_to_occluded_edges(mask, np.ones(3, bool)).any()
