"""`sdfl eval`: visibility_auroc, reported where the data flags occluded points and the model has the output,
test-time crops per face, and landmark passes."""
import numpy as np
from model_factory import make_checkpoint

from sdfl_core import crops
from sdfl_core.datasets import Sample
from sdfl_core.evaluate import evaluate, predict_samples
from sdfl_core.landmarker import load_landmarker


def _samples(count: int, flags: bool) -> list[Sample]:
    rng = np.random.default_rng(0)
    angles = np.linspace(0, 2 * np.pi, 29, endpoint=False)
    out = []
    for i in range(count):
        image = rng.integers(0, 256, size=(120, 120, 3), dtype=np.uint8)
        points = np.stack([60 + 30 * np.cos(angles), 60 + 35 * np.sin(angles)], 1) + rng.normal(size=(29, 2))
        occluded = rng.uniform(size=29) < 0.3 if flags else None
        out.append(Sample(f"face{i}", points, image=image, occluded=occluded))
    return out


def test_visibility_auroc_only_with_flags_and_the_output(tmp_path):
    vis = load_landmarker(make_checkpoint(tmp_path / "vis29.pt", num_points=29, visibility=True), device="cpu")
    plain = load_landmarker(make_checkpoint(tmp_path / "plain29.pt", num_points=29), device="cpu")
    report, _ = evaluate(vis, _samples(4, flags=True))
    assert 0.0 <= report["visibility_auroc"] <= 1.0
    assert "visibility_auroc" not in evaluate(vis, _samples(4, flags=False))[0]
    assert "visibility_auroc" not in evaluate(plain, _samples(4, flags=True))[0]


def test_crops_per_face_scores_the_mean_over_each_faces_shifted_crops(tmp_path):
    path = make_checkpoint(tmp_path / "plain29.pt", num_points=29)
    one, five = load_landmarker(path, device="cpu"), load_landmarker(path, device="cpu", crops_per_face=5)
    samples = _samples(5, flags=False)
    pred, *_ = predict_samples(five, samples, batch_size=2)  # faces split over batches of 2, 2 and 1
    size = one.input_size
    for sample, got in zip(samples, pred):
        base = crops.landmark_crop_affine(sample.points, one.info.crop_scale, size)
        moved = crops.shifted_affines(base, size, 5)
        each = [one.predict_warped(crops.warp(sample.image, a, size)[None], [a])[0][0] for a in moved]
        np.testing.assert_allclose(got, np.mean(each, axis=0), atol=1e-3)
        assert np.abs(each[0] - got).max() > 1e-3  # the shifted crops do change the answer


def test_a_second_pass_crops_each_face_from_the_first_pass_landmarks(tmp_path):
    path = make_checkpoint(tmp_path / "plain29.pt", num_points=29)
    one, two = load_landmarker(path, device="cpu"), load_landmarker(path, device="cpu", passes=2)
    samples = _samples(3, flags=False)
    pred, *_ = predict_samples(two, samples, batch_size=2)
    size, scale = one.input_size, one.info.crop_scale
    for sample, got in zip(samples, pred):
        base = crops.landmark_crop_affine(sample.points, scale, size)
        first = one.predict_warped(crops.warp(sample.image, base, size)[None], [base])[0][0]
        center, side, angle = crops.landmark_square(first, scale, two.eyes)  # cut upright by the first pass's eyes
        assert angle != 0.0
        again = crops.crop_affine(center, side, size, angle)
        second = one.predict_warped(crops.warp(sample.image, again, size)[None], [again])[0][0]
        np.testing.assert_allclose(got, second, atol=1e-3)
        assert np.abs(first - got).max() > 1e-3  # the second crop does change the answer


def test_detector_boxes_without_a_calibration_say_so(tmp_path, caplog):
    landmarker = load_landmarker(make_checkpoint(tmp_path / "plain29.pt", num_points=29), device="cpu")
    assert "full" not in landmarker.info.detector_box
    with caplog.at_level("WARNING", logger="sdfl_core.evaluate"):
        predict_samples(landmarker, _samples(2, flags=False), "detector")
    assert "no calibration for the full-range detector" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="sdfl_core.evaluate"):
        predict_samples(landmarker, _samples(2, flags=False), "gt")
    assert "calibration" not in caplog.text
